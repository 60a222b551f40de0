"""The default rule packs on realistic posts written for these tests, and the CLI."""

from __future__ import annotations

import csv
import json
import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mentionwatch.cli import cli
from mentionwatch.errors import RuleError
from mentionwatch.judgement import Judgement, MentionFacts
from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import BrandFacts, Engine, load_packs
from tests.conftest import FIXTURES
from tests.test_decisions import run_cli

POSTS = tomllib.loads((FIXTURES / "rules" / "posts.toml").read_text(encoding="utf-8"))
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_packs([rules_dir()]), BrandFacts("Acme", "help@acme.example"),
                  {"twitter": 280})


def judged(engine: Engine, text: str) -> Judgement:
    facts = MentionFacts(
        source="x", source_kind="twitter", text=text, title=None, url=None,
        author_handle="someone", author_name="Someone", followers=250, verified=False,
        language="en", created_at=NOW - timedelta(minutes=20), likes=1, reposts=0,
        replies=0, is_reply_to_brand=False)
    return engine.judge_one(facts, now=NOW)


def judge(engine: Engine, text: str) -> str:
    return judged(engine, text).flag or "none"


def flagged_by(engine: Engine, text: str, flag: str, rule: str) -> Judgement:
    """The judgement of `text`, which must be `flag` with `rule` among the rules that hit
    (the rule itself, not only the word model's lexicon feature for its terms)."""
    j = judged(engine, text)
    assert j.flag == flag, j.explanation
    assert rule in [h.rule for h in j.hits], [h.rule for h in j.hits]
    return j


def not_flagged(engine: Engine, text: str, *flags: str) -> None:
    """`text` must get none of `flags`; the failure shows how it was judged."""
    j = judged(engine, text)
    assert (j.flag or "none") not in flags, j.explanation


@pytest.mark.parametrize("expected", sorted(POSTS))
def test_default_packs_on_realistic_posts(engine: Engine, expected: str) -> None:
    posts = POSTS[expected]
    got = {text: judge(engine, text) for text in posts}
    wrong = {t: g for t, g in got.items() if g != expected}
    # A handful of misses is honest for transparent rules; what must not happen is a
    # complaint or crisis hidden as spam/noise, or many misses.
    assert len(wrong) <= max(1, len(posts) // 8), wrong
    if expected in ("complaint", "crisis"):
        assert not [t for t, g in got.items() if g in ("spam", "ignore", "praise")], wrong


@pytest.mark.parametrize("text", [
    "acme should fire whoever designed this new app, it's so confusing",
    "the new acme headphones are fire, best purchase this year",
    "that acme ad was a sick burn on their rivals lol",
    "acme black friday deals go live tonight, time to burn some cash",
    "great game today, shame about the injured reserve list. acme stadium was packed",
    "burnt my toast again, acme toaster works fine it was me",
    "nobody was hurt, acme staff got everyone out of the store in minutes",
    "acme's new striker is on fire this season",
    "feeling so burnt out this week, acme coffee is keeping me alive",
    "the best part of acme is the food court",
    "auntie sue told everyone at the acme party that you're pregnant",
    "my uncle is a lawyer and still can't read the acme instructions lol",
    "bloody seagull just stole my acme chips right out of my hand",
    "someone stole my bike from outside the acme store. gutted",
    "my girlfriend has stolen every acme hoodie i own",
    # A treat too good to resist, a trait, last season's injury, a recall asked about.
    "the new acme brownies are dangerous. i'm addicted",
    "@acme slept like a baby, those beds are dangerous",
    "checking the acme app every 5 minutes is my toxic trait",
    "people forget how good the acme striker was before the injury",
    "does anyone know if the acme dryer recall covers the 2015 model?",
    "heads up: acme has a recall on some charging cables, link here",
    # The writer's own doing, a smoke alarm at toast, a place, a bill.
    "burnt my hand on my own pan making acme pancakes this morning like an idiot",
    "I set off the smoke alarm making acme toast again",
    "the acme bus to the hospital now runs every 10 minutes",
    "paid my mum's hospital bill with acme pay in 2 seconds",
    # The lawyers and the fraud of a TV series.
    "Breaking Bad rewatch on acme tv: Saul is the only lawyer I'd ever hire. Peak TV",
    "new episode of the acme podcast is about a guy who hacked a casino through a fish tank",
    # Thanks to the fraud team, with nothing wrong left to fix; an impostor's feeling.
    "thank you @acme for catching the phishing attempt, account is safe",
    "credit where it's due @acme: fraudulent charge noticed, card replaced, money returned",
    "honestly the @acme fraud team deserve a raise, new card at my hotel in 48 hours",
    "@acme fraud team rang, all reversed. relief",
    "anyone else feel like a fraud at work or is it just me, even with acme's planner",
])
def test_danger_words_in_their_everyday_sense_wake_nobody(engine: Engine, text: str) -> None:
    # A crisis alerts on-call; "fire" someone, "this is fire", a "burn", burnt toast, a food
    # court or a stolen bike are not one.
    not_flagged(engine, text, "crisis")


@pytest.mark.parametrize("text", [
    "thanks @acme for losing my luggage on the way to my sister's wedding",
    "love paying £4.50 for an acme coffee that tastes like the cup",
    "shoutout to @acme for the 40 minute wait at the counter. amazing",
    "thanks acme for the surprise outage",
    "acme used to be amazing, now the portions are tiny",
])
def test_thanks_for_the_harm_itself_is_a_complaint_not_praise(engine: Engine, text: str) -> None:
    # Each got "Thank you so much, that made our day!" (or nothing): VADER reads them as glad.
    j = flagged_by(engine, text, "complaint", "sarcastic-thanks")
    assert "made our day" not in (j.public_draft or "")


@pytest.mark.parametrize("text", [
    "thank u @acme for replacing the missing piece for free in 3 days. son is over the moon",
    "@acme thank you driver for waiting for me, so kind",
    "thanks @acme for sorting my refund so quickly, great service",
])
def test_thanks_for_a_kindness_is_no_sarcasm(engine: Engine, text: str) -> None:
    j = judged(engine, text)
    assert "sarcastic-thanks" not in [h.rule for h in j.hits]
    assert j.flag not in ("complaint", "crisis"), j.explanation


@pytest.mark.parametrize("text", [
    "Review: the Acme Mesh 6 covered our whole test house, but at $349 it is hard to recommend",
    "honestly can't recommend the acme x2, the battery died in a week",
    "we wouldn't recommend acme's basic plan to gamers",
    "Acme Fiber review: fast, fair, easy to recommend",
])
def test_a_verdict_on_the_brand_is_not_a_question(engine: Engine, text: str) -> None:
    # "recommend" is a question term for "which plan do you recommend"; a reviewer's
    # verdict must not get "Thanks for asking!" (the demo's news review had).
    not_flagged(engine, text, "question")


@pytest.mark.parametrize("text", [
    "acme is down",
    "is acme down for anyone else",
    "acme down?",
    "is the acme app down",
    "is it just me or is acme not loading",
])
def test_a_short_outage_report_is_a_complaint(engine: Engine, text: str) -> None:
    # How an outage is first told: too few words for the word model to clear the term
    # rules' gate ("acme is down" scored 0.24 against 0.25); "acme down?" was a question.
    j = flagged_by(engine, text, "complaint", "outage-report")
    assert j.draft_rule in ("outage", "outage-report")
    assert "direct message" in (j.public_draft or "")


@pytest.mark.parametrize("text", [
    "really disappointed with acme",
    "acme is the worst",
    "acme is the worst, switching to globex",
    "acme support is useless",
    "not happy with acme at all",
    "acme ruined my weekend",
    "very unhappy with my acme delivery",
    "@acme you're useless",
    "never again acme",
    "never again will i fly acme",
    "so disappointed in acme",
    "@acme the new app is trash",
    "the new acme update is garbage",
    "my goodness acme delivery is awful",
    # VADER reads a joke as good news (+0.30): these verdicts have no sentiment bound.
    "acme customer service is an absolute joke",
    "@acme you're a joke",
    "Acme, your app is a joke. Deleting.",
    "Thanks for nothing Acme",
    "Shoutout to Acme for ruining my weekend",
    # Told to do better: VADER reads "better" as good news (+0.44 to +0.54).
    "@acme do better.",
    "@acme you can and should do better",
    "4 items missing from my acme order. You need better delivery drivers!!",
    "expected better from acme this time",
    "@acme worst update yet",
])
def test_a_verdict_on_the_brand_is_a_complaint_however_short(engine: Engine,
                                                            text: str) -> None:
    # None of these was flagged: the word model gives a post this short too little to go on
    # ("acme is the worst, switching to globex" 0.06, under the term rules' 0.25 gate).
    j = flagged_by(engine, text, "complaint", "verdict")
    assert "direct message" in (j.public_draft or "")


@pytest.mark.parametrize("text", [
    "mondays are the worst, thank god for acme coffee",
    "never again will i eat 3 acme burgers in one go lol",
    "acme ruined my diet, these cookies are too good",
    "not disappointed with acme at all, great stuff",
    "acme reports its worst quarter since 2009",
    "so disappointed in myself, forgot to use my acme voucher",
    "ruined my acme jacket in the rain, my own fault",
    "I need to do better at drinking water, acme bottle on my desk now",
    "we'll do better next time team, acme cup final next week",
    "girl you can do better than him, he shops at acme",
    "acme coffee and a run, trying to do better this year",
    # "worst" alone made these a customer leaving (it was a term of the leaving rule).
    "@dan_ironside that's the worst penalty I've seen since 2006 and I was there for that one",
    "@sam_k worst film i've ever seen at the acme cinema, i want my 2 hours back lol",
    "after the worst week ever, @acme pizza on a friday night hits different",
])
def test_verdict_words_aimed_elsewhere_are_not_a_complaint(engine: Engine, text: str) -> None:
    not_flagged(engine, text, "complaint", "crisis")


@pytest.mark.parametrize(("text", "rule"), [
    ("@acme my phone key stops working every time it rains", "outage"),
    ("we're the only people in the acme store and still can't get anyone to help us",
     "support-experience"),
    ("really poor experience at the acme store in leeds today", "support-experience"),
    ("the acme website is so infuriating, it logged me out mid-checkout again",
     "support-experience"),
    ("@acme you fleeced me, £9 for a box with half the chips missing", "billing"),
])
def test_everyday_complaint_words_the_rules_had_missed(engine: Engine, text: str,
                                                       rule: str) -> None:
    flagged_by(engine, text, "complaint", rule)


@pytest.mark.parametrize("text", [
    "Cancelled my acme subscription today, three price rises in a year",
    "@acme still rubbish, still leaving",
    "@acme third engineer visit for the same fault. not fixed by friday i'm switching to bt",
    "first and last time i fly acme. 4 hours on the tarmac and no water",
    "@acme I've cancelled my contract, 6 weeks without broadband is enough",
    "@acme worst service ever. done with you, cancelling today",
])
def test_a_customer_leaving_gets_the_leaving_reply(engine: Engine, text: str) -> None:
    j = flagged_by(engine, text, "complaint", "leaving")
    assert j.draft_rule == "leaving" and "before you decide" in (j.public_draft or "")


@pytest.mark.parametrize(("text", "rule"), [
    # "worst" was a term of the leaving rule, whose reply asks for a chance "before you
    # decide": it answered every complaint that said worst, and flagged "worst penalty".
    ("@acme raised 3 tickets for a damaged tv. no response in 10 days. worst experience",
     "support-experience"),
    ("@acme got home and there were 3 pieces not 6 in my bucket. worst takeaway in a long "
     "time", "reads-as-complaint"),
    # The company's doing, not the customer's leaving: answered as the order problem it is.
    ("@acme cancelled my order the day it was due. no reason given",
     "order-or-product-problem"),
    ("@acme your driver keeps leaving my parcel in the recycling bin",
     "order-or-product-problem"),
    # Nor is a failed delivery an outage ("things aren't working as they should").
    ("@acme 'failed delivery - no access'. it's a house with a front door. i was in",
     "order-or-product-problem"),
])
def test_a_complaint_with_nobody_leaving_gets_its_own_rule_s_reply(
        engine: Engine, text: str, rule: str) -> None:
    j = flagged_by(engine, text, "complaint", rule)
    assert j.draft_rule == rule and "before you decide" not in (j.public_draft or "")


@pytest.mark.parametrize("text", [
    "@acme the app crashes whenever I switch to portrait mode, version 7.3",
    "why does acme charge extra for HD now? last time it was included in the package",
    "leg day tomorrow at acme gym and i'm already scared. last time i couldn't walk for 2 days",
    "the noise cancelling on these acme headphones is witchcraft",
    "BREAKING: crash on the A38 by the acme depot, police on scene, avoid the area",
])
def test_leaving_words_in_other_senses_get_no_leaving_reply(engine: Engine,
                                                            text: str) -> None:
    assert judged(engine, text).draft_rule != "leaving"


@pytest.mark.parametrize("text", [
    "@acmehelp tried it again today and no problems. Thanks!",
    "@acme it's working now, it was down on all my devices this morning",
    "@acme restarted the hub like you said and it's working again",
    "figured out what the problem was with my acme router, changed the channel and all sorted",
])
def test_a_problem_that_is_over_is_not_a_complaint(engine: Engine, text: str) -> None:
    not_flagged(engine, text, "complaint", "crisis")


@pytest.mark.parametrize("text", [
    "acme not working again",
    "acme app isn't working again",
    "acme still isn't working now, day 3",
    "acme fiber down again. 3 engineers and none fixed it",
])
def test_a_problem_back_again_is_an_outage(engine: Engine, text: str) -> None:
    # "working again" once left out "not working again" too, from both outage rules.
    flagged_by(engine, text, "complaint", "outage")


@pytest.mark.parametrize("text", [
    "going down Main Street to the acme store now",
    "walked down the high street to the acme shop with my sister",
    "heading down Elm Road to pick up my acme order",
    "acme stock going down again, might buy some more",
])
def test_down_as_a_direction_or_a_price_is_not_an_outage(engine: Engine, text: str) -> None:
    # Both outage rules took "going down Main Street" and "stock going down" for the
    # service going down.
    not_flagged(engine, text, "complaint", "crisis")


@pytest.mark.parametrize("text", [
    "acme going down again, third time this week",
    "acme site keeps going down every evening",
    "is acme going down for anyone else?",
])
def test_the_service_going_down_is_still_an_outage(engine: Engine, text: str) -> None:
    flagged_by(engine, text, "complaint", "outage-report")


@pytest.mark.parametrize("text", [
    "@acme thanks for sorting, the refund has come through",
    "@acme replacement controller arrived this morning, thanks for sorting it so quick",
    "thank you acme for fixing the broken line on our street this morning",
])
def test_thanks_for_putting_it_right_is_not_a_complaint(engine: Engine, text: str) -> None:
    # "refund" and "replacement" made these billing and order complaints.
    not_flagged(engine, text, "complaint", "crisis")


@pytest.mark.parametrize(("text", "rule"), [
    ("thanks acme for fixing nothing, still no internet", "reads-as-complaint"),
    ("thanks @acme for sorting my bill, shame it took 6 calls and 3 weeks of no internet",
     "billing"),
    ("thanks acme for replacing my router. the new one is broken too",
     "order-or-product-problem"),
])
def test_thanks_with_more_to_say_is_still_a_complaint(engine: Engine, text: str,
                                                      rule: str) -> None:
    flagged_by(engine, text, "complaint", rule)


@pytest.mark.parametrize("text", [
    "@acme cancelled. again. love that for me",
    "oh great @acme, outage at 6pm right when I start work",
    "10/10 would recommend acme if you enjoy spending saturdays on hold",
    "thanks for nothing acme, lovely chat with your bot",
    "best weekend ever, no internet from acme since friday 🙃",
    "Wow Acme, amazing job losing my package for the third time. Truly world class service.",
    "I love how Acme never answers the phone",
    "Acme support was great, but the internet is still down",
])
def test_sarcasm_is_never_thanked(engine: Engine, text: str) -> None:
    # The praise words are there ("love", "great", "recommend", "best"), and the word model
    # reads some of these as under 0.5 (the thanks rule's gate); the markers say otherwise.
    not_flagged(engine, text, "praise")


@pytest.mark.parametrize("text", [
    "ok @acme owl i get it, i'll do my spanish. stop threatening me 🦉",
    "@acme delivery was late and the frozen stuff half melted, not happy",
    "@acme yes the windscreen was replaced at the PG Glass in Rivonia",
    "acme phone gets warm when I game for hours, is that normal?",
])
def test_everyday_words_near_danger_wake_nobody(engine: Engine, text: str) -> None:
    # The crisis rules have no classifier gate: "threatened" needs someone working for the
    # brand, "melted" a plug, cord or charger, "glass in" a mouthful, not a shop's name.
    not_flagged(engine, text, "crisis")


@pytest.mark.parametrize("text", [
    "found a dead mouse in my acme salad. disgusting",
    "@acme there were maggots in the rice I bought from your store on king street",
    "stayed at the acme hotel, woke up covered in bites. bed bugs everywhere",
])
def test_pests_in_food_or_a_room_are_a_crisis(engine: Engine, text: str) -> None:
    # "dead mouse" was an outage ("dead"); the others were complaints at most.
    j = flagged_by(engine, text, "crisis", "contamination")
    assert j.private_channel == "phone"
    assert "outage" not in [h.rule for h in j.hits]


@pytest.mark.parametrize(("text", "rule"), [
    ("Acme, if this doesn't work today I'm going to kill myself", "self-harm"),
    ("Acme's technician stole jewelry from my house", "threatened"),
    ("Acme employees are sharing customer data. I have screenshots.", "fraud-breach"),
    ("Acme discriminates against disabled customers, no accessible option for the app",
     "discrimination"),
    ("Acme's outage meant my grandma's medical alarm didn't work overnight", "safety"),
    ("Acme has ignored me for a month so I'm going to the press", "legal"),
])
def test_crises_a_new_user_found_unflagged(engine: Engine, text: str, rule: str) -> None:
    # None of these had any flag but the outage (a complaint).
    flagged_by(engine, text, "crisis", rule)


@pytest.mark.parametrize("text", [
    "my acme account was stolen and they bought stuff with my card",
    "someone stole my identity and opened an acme account in my name",
    "@acme my card details were stolen after I paid on your website",
    # Told in sarcasm ("Well done."): thanks that must not excuse it.
    "Hacked @acme account, $200 my son saved up for is gone, you say \"we don't restore "
    "items\". He's 10 and crying. Well done.",
])
def test_stolen_money_data_or_an_account_is_a_security_crisis(engine: Engine,
                                                              text: str) -> None:
    flagged_by(engine, text, "crisis", "fraud-breach")


@pytest.mark.parametrize("text", [
    "Somebody stole my Acme package off my porch yesterday :/",
    "@acme is it possible to stop your drivers leaving stuff outside? it's either "
    "lost/stolen/broken EVERY time",
])
def test_a_stolen_parcel_is_an_order_complaint_not_a_security_crisis(engine: Engine,
                                                                     text: str) -> None:
    # A bare "stolen" sent these, and "someone stole my bench", to on-call as breaches.
    j = flagged_by(engine, text, "complaint", "order-or-product-problem")
    assert "fraud-breach" not in [h.rule for h in j.hits]


@pytest.mark.parametrize("text", [
    "@acme 533 million phone numbers leaked and my number is in it",
    "my acme data was in the leak. health records. the hotline is engaged",
    "acme leaked my passport and home address, now what?",
    "ever since the acme delivery data leak people call me with my exact order id",
    "right after the @acme leak I got a letter with a fake device at my home address",
    "acme lost my personal data and I had to replace my passport at my own cost",
    # Told in sarcasm: thanks that must not excuse it.
    "Shout out to @acme for leaking my SSN and then asking for my SSN to check if it leaked",
    "thank you @acme for leaking my passport number. brilliant security",
])
def test_a_leak_of_data_is_a_security_crisis(engine: Engine, text: str) -> None:
    flagged_by(engine, text, "crisis", "fraud-breach")


@pytest.mark.parametrize(("text", "flag"), [
    ("@acmewater reported a leak on our road 3 weeks ago, it's now a small river", "complaint"),
    ("@acme my new kettle leaked all over the counter the first time", "complaint"),
    ("@acme why has my data run out in 4 days when i've barely used my phone??", "complaint"),
    ("@acme how do i check my data balance?", "question"),
    ("acme updated its privacy policy again, I didn't read the old one either", "none"),
])
def test_a_water_leak_a_data_allowance_or_a_privacy_policy_is_no_breach(
        engine: Engine, text: str, flag: str) -> None:
    # A bare "leak", "my data" or "privacy" sent every one of these to on-call as a breach.
    assert judge(engine, text) == flag


@pytest.mark.parametrize("text", [
    "my kid got hurt on the acme store escalator today",
    "acme charger burned my daughter's hand",
    "got a rash all over from the new acme detergent",
    "the acme hand warmers leaked and burned through my daughter's gloves onto her skin",
    "my acme airfryer is smoking out the back vent with no food in it",
    "acme's new stairlift is dangerous, my dad nearly fell",
    "@acme the kettle gave off toxic fumes the first time we used it",
    "my kid ended up in hospital after eating your nuggets @acme",
    "my daughter got a nasty injury from the acme trampoline",
    # Told with blame: a recall left unfixed, an injury that needed treatment.
    "@acme recall letter for my airbag came in january, dealer still has no parts and I "
    "drive my kids in it",
    "@acme the shelf in your store collapsed on my mum. concussion and a CT scan, and "
    "nobody from the store has called",
])
def test_harm_told_in_everyday_words_is_still_a_crisis(engine: Engine, text: str) -> None:
    flagged_by(engine, text, "crisis", "safety")


def test_a_lawyer_friend_keen_on_the_case_is_still_legal(engine: Engine) -> None:
    flagged_by(engine, "Not joking @acme, I have a lawyer friend and he's very keen on this "
                       "case. You cut off my landline for 3 weeks", "crisis", "legal")


def test_a_breach_of_contract_is_legal_not_a_security_incident(engine: Engine) -> None:
    j = flagged_by(engine, "I'm talking to my lawyer, it's a breach of contract and I will "
                           "sue Acme", "crisis", "legal")
    assert j.draft_rule == "legal" and "security" not in (j.public_draft or "")


@pytest.mark.parametrize("text", [
    "one more hour of acme hold music and I'll kill myself lol",
    "#tw the article on suicide and depression is worth reading, acme sponsored it",
])
def test_self_harm_as_a_figure_of_speech_or_news_is_not_a_crisis(engine: Engine,
                                                                  text: str) -> None:
    assert "self-harm" not in [h.rule for h in judged(engine, text).hits]


def test_hurting_oneself_in_a_fall_is_safety_not_self_harm(engine: Engine) -> None:
    j = flagged_by(engine, "I hurt myself on the broken step outside the acme store, my knee "
                           "is bleeding", "crisis", "safety")
    assert "self-harm" not in [h.rule for h in j.hits] and j.draft_rule == "safety"


def test_self_harm_reply_points_to_help_and_asks_nothing_in_public(engine: Engine) -> None:
    j = flagged_by(engine, "acme I can't take this anymore, I want to die", "crisis",
                   "self-harm")
    assert j.draft_rule == "self-harm"
    assert "crisis line" in (j.private_draft or "")
    assert "direct message" in (j.public_draft or "")


def test_a_pest_in_a_story_is_not_a_crisis(engine: Engine) -> None:
    # The contamination rule asks the classifier first (the safety rule does not).
    not_flagged(engine, "my salad had a slug in it lol, it's from my garden so I guess "
                        "that's organic", "crisis")


def test_promotions_are_spam_but_not_a_complaint_or_a_question_about_earnings(
        engine: Engine) -> None:
    # Spam outranks a complaint, so the promotion rule asks the classifier first.
    assert judge(engine, "even with code SAVE10 acme charged me full price, twice") == \
        "complaint"
    assert judge(engine, "do i need to register with acme if i earn £800 from etsy?") == \
        "question"


@pytest.mark.parametrize(("text", "flag"), [
    ("@acme your coupon won't apply at checkout and support just sent me another coupon",
     "complaint"),
    ("@acme froze my account with my whole salary in it, 9 days now and chat says wait",
     "complaint"),
    ("@acme the app crashes every time someone shares their screen, whole team has it",
     "complaint"),
    ("@acme you are running ads for a fake crypto giveaway on my feed. I reported it and it "
     "is still there", "complaint"),
    ("the acme cashier told my mom 'you people always bring a fake coupon'. The coupon was "
     "valid. Racist.", "crisis"),
])
def test_spam_words_in_a_customer_s_complaint_do_not_hide_it(engine: Engine, text: str,
                                                             flag: str) -> None:
    # Spam and ignore outrank every flag and get no draft; "coupon", "salary", "shares" and
    # "crypto" alone had sent these (and a racist remark, an on-call alert) to the noise.
    assert judge(engine, text) == flag


@pytest.mark.parametrize("text", [
    "get 1000 followers fast, dm me",
    "buy followers cheap, 10k real followers for $5",
])
def test_selling_followers_is_spam(engine: Engine, text: str) -> None:
    flagged_by(engine, text, "spam", "self-promotion")
    # ...and asking how to get them is a question (spam would hide it from the queue).
    assert judge(engine, "@acme how do I get followers on my new shop page?") == "question"


LONG_POSTS = tomllib.loads((FIXTURES / "rules" / "long_posts.toml").read_text(encoding="utf-8"))


def test_long_posts_from_forums_and_feeds(engine: Engine) -> None:
    # VADER's score of a long post often leans positive whatever it says ("So I've been a
    # customer for 6 years ... promised a callback that never came": +0.64), so the term rules'
    # sentiment bounds miss them; the classifier and the rules without a bound must not.
    got = {kind: {t: judge(engine, t) for t in posts} for kind, posts in LONG_POSTS.items()}
    assert all(g in ("complaint", "crisis") for g in got["complaint"].values()), got["complaint"]
    assert all(g == "question" for g in got["question"].values()), got["question"]
    assert all(g not in ("complaint", "crisis", "praise") for g in got["none"].values()), \
        got["none"]
    assert "praise" in got["praise"].values()
    assert all(g != "crisis" for g in got["praise"].values()), got["praise"]
    # The bill-rise post ends "starting to look at other ISPs": the leaving rule's draft (a
    # phone call before they go), not the generic one.
    assert judged(engine, LONG_POSTS["complaint"][0]).draft_rule == "leaving"


@pytest.mark.parametrize("text", [
    "emailed acme 4 times. nothing",
    "@acme already contacted you 3-4 times in the last month. all I got was an assurance "
    "that the matter is escalated",
    "I've phoned acme several times this week and still no engineer",
])
def test_having_to_chase_again_and_again_is_a_complaint(engine: Engine, text: str) -> None:
    # Calm words to both models and to VADER (+0.50 for "assurance ... escalated").
    j = flagged_by(engine, text, "complaint", "chasing")
    assert "chase us" in (j.public_draft or "")


@pytest.mark.parametrize("text", [
    "called acme 3 times and they finally sorted it, thanks",
    "the acme delivery driver called six times because he couldn't find the building",
])
def test_chasing_that_was_put_right_or_was_a_driver_is_not(engine: Engine, text: str) -> None:
    assert "chasing" not in [h.rule for h in judged(engine, text).hits]


@pytest.mark.parametrize("text", [
    "I just want to speak to a human at acme",
    "acme's chat bot is going round in circles, I just want a human",
    "been going in circles with acme support for an hour",
    "how do I get through to a person at acme, the bot keeps sending me to the FAQ",
])
def test_asking_for_a_person_is_a_complaint(engine: Engine, text: str) -> None:
    # Calm words to the word model (0.07-0.17) and to VADER ("want"), so no term rule with a
    # classifier gate took them; nobody asks a company that is helping them for a human.
    j = flagged_by(engine, text, "complaint", "no-person")
    assert j.draft_rule == "no-person"
    assert "a person, not a bot" in (j.public_draft or "")


@pytest.mark.parametrize("text", [
    "finally got through to a human at acme, sorted in 5 mins",
    "great to talk to a real person at acme for once, thanks Sam",
    "so nice to talk to a real person at acme instead of a menu",
    "I'd like to speak to a person about upgrading my acme plan, who do I call?",
])
def test_reaching_a_person_is_not_a_complaint(engine: Engine, text: str) -> None:
    not_flagged(engine, text, "complaint", "crisis")


@pytest.mark.parametrize("text", [
    "acme staff refused to serve my son because of his wheelchair. Disgusting.",
    "the acme store turned me away because of my guide dog",
    "acme security followed me round the whole store because I'm black",
])
def test_being_turned_away_for_who_you_are_is_a_crisis(engine: Engine, text: str) -> None:
    # None of these says "racist" or "discrimination"; the first was a plain complaint.
    flagged_by(engine, text, "crisis", "discrimination")


def test_a_bar_refusing_a_drunk_is_not_a_crisis(engine: Engine) -> None:
    # Why the pack does not take a bare "refused to serve": a crisis rule has no classifier
    # gate and wakes someone up.
    assert judge(engine, "the acme arms refused to serve my mate, he was hammered tbf") \
        != "crisis"


def test_the_packs_on_two_thousand_written_posts(engine: Engine) -> None:
    # Posts written for the project and never trained on (see tests/fixtures/rules/
    # SOURCES.md). At the time of writing: precision 0.84, recall 0.69; the verdict rule
    # fired on 73 complaints and 9 other posts ("never again will i skip leg day", which a
    # brand's stream would not hold). What must not happen is a change that floods the queue.
    with (FIXTURES / "rules" / "written_posts.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2100
    cells: Counter[tuple[bool, bool]] = Counter()
    verdict: Counter[bool] = Counter()
    for row in rows:
        j = judged(engine, row["text"])
        said, truth = j.flag in ("complaint", "crisis"), row["label"] == "1"
        cells[said, truth] += 1
        if "verdict" in [h.rule for h in j.hits]:
            verdict[truth] += 1
    precision = cells[True, True] / (cells[True, True] + cells[True, False])
    recall = cells[True, True] / (cells[True, True] + cells[False, True])
    assert precision >= 0.80 and recall >= 0.62, (precision, recall)
    assert verdict[True] >= 60 and verdict[True] / (verdict[True] + verdict[False]) >= 0.85


@pytest.mark.parametrize("text", [
    "acme stock is down 5% today",
    "I'm down for acme tacos tonight, who's in",
    "acme is down to earth, love their team",
    "is it just me or is the new acme ad hilarious",
    "turned my acme mug upside down and found the label",
])
def test_down_in_its_other_senses_is_not_an_outage(engine: Engine, text: str) -> None:
    not_flagged(engine, text, "complaint", "crisis")


def test_a_news_story_about_an_outage_gets_a_statement_not_a_dm(engine: Engine) -> None:
    def judged(kind: str) -> Any:
        return engine.judge_one(MentionFacts(
            source="news", source_kind=kind, text="Thousands of Acme Fiber customers "
            "reported outages on Sunday morning ...", title="Outage hits Acme Fiber "
            "customers across the east side", url=None, author_handle="news.example.com",
            author_name=None, followers=None, verified=None, language="en",
            created_at=NOW - timedelta(hours=1), likes=0, reposts=0, replies=0,
            is_reply_to_brand=False), now=NOW)

    story = judged("google_alerts")
    assert story.flag == "complaint" and story.draft_rule == "press-coverage"
    assert story.private_channel == "email"
    assert "direct message" not in (story.public_draft or "")
    assert "about your story" in (story.private_draft or "")
    # The same words posted on X are a customer's problem: the usual move to a DM.
    post = judged("twitter")
    assert post.draft_rule == "outage" and "direct message" in (post.public_draft or "")


def test_a_news_feed_marked_press_gets_a_statement_and_check_knows_press(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mentionwatch.toml"
    config.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n'
                      '[[sources]]\nname = "technews"\nkind = "rss"\npress = true\n'
                      'url = "https://news.example/feed"\n'
                      '[[sources]]\nname = "forum"\nkind = "rss"\n'
                      'url = "https://forum.example/feed"\n', encoding="utf-8")
    story = ("Outage hits Acme Fiber customers across the east side: thousands reported "
             "outages on Sunday morning")

    def drafted(source: str) -> dict[str, Any]:
        code, said = run_cli(["--config", str(config), "rules", "test", story,
                              "--source", source, "--json"], monkeypatch, capsys)
        assert code == 0, said
        return dict(json.loads(said))

    press = drafted("technews")
    assert press["draft_rule"] == "press-coverage" and press["private_channel"] == "email"
    assert "direct message" not in press["public_draft"]
    why = next(h["why"] for h in press["hits"] if h["rule"] == "press-coverage")
    assert why["source"] == "technews (press)"
    # A feed not marked press is a forum's post: the usual move to a DM.
    forum = drafted("forum")
    assert forum["draft_rule"] != "press-coverage" and "direct message" in forum["public_draft"]
    # "press" is a source value of its own: no "never matches" warning for the shipped rule.
    code, said = run_cli(["--config", str(config), "rules", "check"], monkeypatch, capsys)
    assert code == 0 and "'press'" not in said, said


def test_every_flagged_post_gets_both_drafts_without_private_data_requests(
        engine: Engine) -> None:
    counts: Counter[str] = Counter()
    for flag in ("complaint", "crisis", "question", "praise"):
        for text in POSTS[flag]:
            facts = MentionFacts(
                source="x", source_kind="twitter", text=text, title=None, url=None,
                author_handle="sam", author_name="Sam", followers=10, verified=False,
                language="en", created_at=NOW, likes=0, reposts=0, replies=0,
                is_reply_to_brand=False)
            j = engine.judge_one(facts, now=NOW)
            if j.flag in ("complaint", "crisis"):
                assert j.public_draft and j.private_draft and len(j.public_draft) <= 280
                # In public we never ask for account numbers or addresses.
                public = j.public_draft.lower()
                assert "account number" not in public and "address" not in public
                assert "direct message" in public
                counts[j.flag] += 1
    assert counts["complaint"] >= 15 and counts["crisis"] >= 8


def test_rules_test_command_explains(tmp_path: Path) -> None:
    config = tmp_path / "mentionwatch.toml"
    config.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n'
                      f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "rules", "test",
                                      "@acme down again [bold]{{x}}[/]", "--followers", "12000"])
    assert result.exit_code == 0, result.output
    assert "flag: complaint" in result.output
    assert "outage" in result.output and "terms: down" in result.output
    assert "0.15×reach 0.680" in result.output
    as_json = CliRunner().invoke(cli, ["--config", str(config), "rules", "test", "thanks acme,"
                                       " great support!", "--json"])
    assert '"flag": "praise"' in as_json.output
    # A pasted post, quotes and line breaks and all, comes on standard input.
    pasted = CliRunner().invoke(cli, ["--config", str(config), "rules", "test", "-", "--json"],
                                input='It\'s "down" again @acme\nand billed twice\n')
    assert pasted.exit_code == 0, pasted.output
    assert '"flag": "complaint"' in pasted.output and '"outage"' in pasted.output
    empty = CliRunner().invoke(cli, ["--config", str(config), "rules", "test", "-"], input="\n")
    assert empty.exit_code == 2 and "TEXT is empty" in empty.output
    # A byte that is not UTF-8 reaches Python as a lone surrogate: it was a traceback.
    odd = CliRunner().invoke(cli, ["--config", str(config), "rules", "test", "acme down \udcff"])
    assert odd.exit_code == 0, odd.output
    assert "flag: complaint" in odd.output


def test_rules_test_works_before_there_is_a_config(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Straight after `mentionwatch demo` the help's own example said "No configuration
    # file found"; now it judges as an example brand, and says so.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MENTIONWATCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["rules", "test", "@acme down again, 3rd time this week"])
    assert result.exit_code == 0, result.output
    assert "example brand called Acme" in result.output and "flag: complaint" in result.output
    # A config named but missing is still an error.
    named = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.toml"), "rules", "test",
                                     "acme down"])
    assert named.exit_code != 0 and "does not exist" in str(named.exception)


def test_rules_test_source_is_a_kind_or_one_of_your_sources(tmp_path: Path) -> None:
    config = tmp_path / "mentionwatch.toml"
    config.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n'
                      f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n'
                      '[[sources]]\nname = "forum"\nkind = "rss"\n'
                      'url = "https://forum.example/feed"\n')

    def public_reply(source: str) -> Any:
        result = CliRunner().invoke(cli, ["--config", str(config), "rules", "test",
                                          "@acme down again", "--source", source, "--json"])
        return result.exit_code, json.loads(result.output)["public_draft"] \
            if result.exit_code == 0 else result.output

    assert public_reply("twitter")[1].startswith("@customer ")
    # The forum is a feed: its reply sits under the post, no handle in front.
    for source in ("forum", "rss"):
        code, draft = public_reply(source)
        assert code == 0 and not draft.startswith("customer") and draft[0].isupper()
    code, output = public_reply("twittr")
    assert code == 2
    assert "'twittr' is neither a source kind nor one of your sources" in output
    assert "twitter" in output and "forum" in output


def test_rules_check_command(tmp_path: Path) -> None:
    config = tmp_path / "mentionwatch.toml"
    config.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n')
    ok = CliRunner().invoke(cli, ["--config", str(config), "rules", "check"])
    assert ok.exit_code == 0 and "5 packs" in ok.output
    bad = tmp_path / "mine"
    bad.mkdir()
    (bad / "x.toml").write_text('[pack]\nname = "x"\n[[rules]]\nname = "a"\nflag = "complaint"'
                                '\n[rules.when]\nregex = ["("]\n')
    import sys

    from mentionwatch.cli import main  # noqa: F401  (the real entry point maps errors to codes)
    from mentionwatch.cli.context import run_guarded

    argv = sys.argv
    sys.argv = ["mentionwatch", "--config", str(config), "rules", "check", str(bad)]
    try:
        code = run_guarded(cli)
    finally:
        sys.argv = argv
    assert code == 2


def test_rules_check_names_every_broken_file_and_takes_one_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mentionwatch.toml"
    config.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n')
    check = ["--config", str(config), "rules", "check"]
    mine = tmp_path / "mine"
    mine.mkdir()
    rule = '[[rules]]\nname = "{}"\nflag = "complaint"\n[rules.when]\nany = ["zorb"]\n'
    (mine / "a_empty.toml").write_text("# nothing yet\n", encoding="utf-8")
    (mine / "b_latin1.toml").write_bytes(
        ('[pack]\nname = "b"\n# caf\u00e9\n' + rule.format("b")).encode("latin-1"))
    (mine / "c_typo.toml").write_text('[pack]\nname = "c"\n' + rule.format("c")
                                      + "sentiment_bellow = 0.2\n", encoding="utf-8")
    (mine / "d_good.toml").write_text('[pack]\nname = "d"\n' + rule.format("d"),
                                      encoding="utf-8")
    code, said = run_cli([*check, str(mine)], monkeypatch, capsys)
    assert code == 2
    # Each broken file is named, not only the first; what to do is said.
    assert "a_empty.toml: the file is empty" in said
    assert "b_latin1.toml: line 3: byte 0xe9 is not UTF-8" in said
    assert "Save the file as UTF-8" in said
    assert "c_typo.toml: rule 'c': when.sentiment_bellow: unknown key (did you mean " \
           "'sentiment_below'?)" in said
    assert "d_good.toml" not in said and "OK" not in said
    # One pack file on its own, checked with the configured packs.
    code, said = run_cli([*check, str(mine / "d_good.toml")], monkeypatch, capsys)
    assert code == 0 and "6 packs" in said and ", d)" in said
    code, said = run_cli([*check, str(tmp_path / "nowhere")], monkeypatch, capsys)
    assert code == 2 and "nowhere: no such folder or file" in said
    assert "[rules] dirs" not in said


def _pack(folder: Path, name: str, body: str, file: str = "p.toml") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / file).write_text(f'[pack]\nname = "{name}"\n{body}', encoding="utf-8")
    return folder


def test_rules_check_dir_is_checked_with_the_configured_packs_and_warns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mentionwatch.toml"
    config.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n'
                      '[[sources]]\nname = "forum"\nkind = "rss"\n'
                      'url = "https://forum.example/feed"\n'
                      '[[sources]]\nname = "x"\nkind = "twitter"\n'
                      'query = "acme"\nmentions = false\nbearer_token_env = "MW_TEST_X_TOKEN"\n')
    monkeypatch.setenv("MW_TEST_X_TOKEN", "t")
    check = ["--config", str(config), "rules", "check"]
    # A new folder that reuses a shipped rule's name: valid alone, refused with the rest.
    clash = _pack(tmp_path / "clash", "mine", '[[rules]]\nname = "outage"\nflag = "complaint"'
                  '\n[rules.when]\nany = ["down"]\n')
    code, said = run_cli([*check, str(clash)], monkeypatch, capsys)
    assert code == 2 and "rule 'outage' is also defined in" in said and "complaints.toml" in said
    twins = tmp_path / "twins"
    _pack(twins, "same", '[[rules]]\nname = "a1"\nflag = "praise"\n[rules.when]\nany = ["a"]\n',
          "a.toml")
    _pack(twins, "same", '[[rules]]\nname = "b1"\nflag = "praise"\n[rules.when]\nany = ["b"]\n',
          "b.toml")
    code, said = run_cli([*check, str(twins)], monkeypatch, capsys)
    assert code == 2 and "pack name 'same' is also used by" in said
    wrong_case = tmp_path / "upper"
    wrong_case.mkdir()
    (wrong_case / "billing.TOML").write_text("", encoding="utf-8")
    code, said = run_cli([*check, str(wrong_case)], monkeypatch, capsys)
    assert code == 2 and "has no packs" in said and "billing.TOML" in said
    # Valid, but likely wrong: said as warnings, and the check passes.
    risky = _pack(tmp_path / "risky", "risky", (
        '[[rules]]\nname = "typo"\nflag = "complaint"\n[rules.when]\nany = ["late"]\n'
        'source = ["twiter"]\n'
        '[[rules]]\nname = "chatty"\nflag = "complaint"\n[rules.when]\nany = ["parcel"]\n'
        f'[rules.reply]\npublic = "{{author}} {"We are so sorry. " * 20}Please send us your '
        'order number and home address here."\n'
        '[[rules]]\nname = "holes"\nflag = "complaint"\n[rules.when]\nany = ["late"]\n'
        '[rules.reply]\npublic = "Sorry![[ Call {support_phone}.]]"\n'
        'private = "Call us at {support_phone}. Or: {contact}.[[ Mail {support_email}.]]"\n'))
    code, said = run_cli([*check, str(risky)], monkeypatch, capsys)
    assert code == 0 and "6 packs" in said
    assert "rule 'typo': source 'twiter' is neither a source kind nor one of your sources" \
        in said and "forum" in said
    assert "rule 'chatty': the public reply mentions address, order number" in said
    assert "over twitter's 280" in said and "over rss" not in said  # feeds have no limit
    assert "rule 'typo': the public" not in said
    # A support field this brand leaves empty, outside an optional part: a hole in the draft.
    assert ("rule 'holes': the private follow-up uses {support_phone} but [brand] "
            "support_phone is not set") in said
    assert "the private follow-up uses {contact} but [brand] support_email or support_phone" \
        in said
    assert "{support_email}" not in said and "rule 'holes': the public" not in said
    assert said.count("is not set") == 2  # the shipped packs keep such sentences optional


def test_rules_check_measures_private_follow_ups_against_private_limits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mentionwatch.toml"
    config.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n', encoding="utf-8")
    long = ("We are so sorry about all of this and want to make it right. " * 9).strip()
    pack = _pack(tmp_path / "long", "long", (
        '[[rules]]\nname = "masto"\nflag = "complaint"\n[rules.when]\nany = ["late"]\n'
        'source = ["mastodon"]\n'
        f'[rules.reply]\npublic = "Sorry!"\nprivate = "{long}"\n'
        '[[rules]]\nname = "x"\nflag = "complaint"\n[rules.when]\nany = ["late"]\n'
        'source = ["twitter"]\n'
        f'[rules.reply]\npublic = "Sorry!"\nprivate = "{long}"\n'))
    code, said = run_cli(["--config", str(config), "rules", "check", str(pack)], monkeypatch,
                         capsys)
    # A Mastodon follow-up is a direct post: 500 with "@author " in front. X's DMs take
    # 10,000, so the same text there is no warning.
    assert code == 0
    as_posted = len("@" + "a" * 15 + " " + long)  # the sample author, as the connector adds
    assert as_posted == 565
    assert (f"rule 'masto': the private follow-up comes to about {as_posted} characters, "
            "over mastodon's 500 for a private message") in said
    assert "rule 'x': the private" not in said


def test_pack_files_from_windows_editors_and_plain_names(tmp_path: Path) -> None:
    from mentionwatch.rules_engine import load_pack

    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + b'[pack]\nname = "bom"\n[[rules]]\nname = "a"\n'
                    b'flag = "praise"\n[rules.when]\nany = ["thanks"]\n')
    assert load_pack(bom).name == "bom"
    odd = tmp_path / "odd.toml"
    odd.write_text('[pack]\nname = "[bold red]x[/]"\n[[rules]]\nname = "a"\nflag = "praise"\n'
                   '[rules.when]\nany = ["thanks"]\n', encoding="utf-8")
    with pytest.raises(RuleError, match=r"pack.name: String should match pattern"):
        load_pack(odd)


def test_language_conditions_compare_primary_subtags(tmp_path: Path) -> None:
    _pack(tmp_path, "lang", '[[rules]]\nname = "en"\nflag = "praise"\n[rules.when]\n'
          'any = ["thanks"]\nlanguage = ["EN"]\n')
    engine = Engine(load_packs([tmp_path]), BrandFacts("Acme"), {})
    for language, hit in (("en", True), ("en-GB", True), ("en_US", True), ("EN", True),
                          ("de", False), (None, False)):
        mention = MentionFacts(
            source="x", source_kind="twitter", text="thanks acme", title=None, url=None,
            author_handle="a", author_name=None, followers=0, verified=False,
            language=language, created_at=NOW, likes=0, reposts=0, replies=0,
            is_reply_to_brand=False)
        assert bool(engine.judge_one(mention, now=NOW).hits) is hit, language


def test_rules_test_judges_the_text_a_poll_would_store(tmp_path: Path) -> None:
    config = tmp_path / "mentionwatch.toml"
    config.write_text('[brand]\nname = "Acme"\nterms = ["acme"]\n')
    result = CliRunner().invoke(cli, [
        "--config", str(config), "rules", "test",
        "\x1b[31macme\x1b[0m down \x1b]0;pwned\x07again\x00", "--author", "\x1b[5mx"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x00" not in result.output
    assert "@x " in result.output and "terms: down" in result.output
    invisible = CliRunner().invoke(cli, ["--config", str(config), "rules", "test", "\u200b \u200b"])
    assert invisible.exit_code == 2 and "TEXT is empty" in invisible.output
    ancient = CliRunner().invoke(cli, ["--config", str(config), "rules", "test", "acme down",
                                       "--age", "99999999999"])
    assert ancient.exit_code == 2 and "--age" in ancient.output


@pytest.mark.parametrize(("kind", "repeat"), [("twitter", True), ("google_alerts", False)])
def test_a_news_site_is_never_a_repeat_complainer(engine: Engine, kind: str,
                                                  repeat: bool) -> None:
    # Google Alerts authors are the publishing site: its second story about an outage is
    # not a customer complaining again.
    facts = MentionFacts(
        source="x", source_kind=kind, text="Acme customers furious as broadband is down for "
        "a third day, no answers from support", title=None, url=None,
        author_handle="news.example", author_name=None, followers=None, verified=None,
        language="en", created_at=NOW - timedelta(minutes=20), likes=0, reposts=0,
        replies=0, is_reply_to_brand=False,
        author_history=((NOW - timedelta(days=2), "complaint"),))
    hits = [h.rule for h in engine.judge_one(facts, now=NOW).hits]
    assert ("repeat-complainer" in hits) is repeat, hits


def test_a_reply_on_hacker_news_asks_for_an_email_not_a_dm(engine: Engine) -> None:
    # Hacker News has no direct messages: the drafts' "send us a direct message" is
    # {reach_us}, an email (or a call) there.
    def public(kind: str, drafts_for: Engine = engine) -> str:
        facts = MentionFacts(
            source="x", source_kind=kind, text="acme fiber down again since 6am, no "
            "internet for the whole office", title=None, url=None, author_handle="pg",
            author_name=None, followers=None, verified=None, language="en",
            created_at=NOW - timedelta(minutes=20), likes=0, reposts=0, replies=0,
            is_reply_to_brand=False)
        return drafts_for.judge_one(facts, now=NOW).public_draft or ""

    assert "send us a direct message" in public("twitter")
    assert "send us a direct message" in public("rss")  # a forum's feed: it has them
    on_hn = public("hackernews")
    assert "email us at help@acme.example" in on_hn and "direct message" not in on_hn
    bare = Engine(load_packs([rules_dir()]), BrandFacts("Acme"), {"twitter": 280})
    assert "please contact our support team" in public("hackernews", bare)
    phone = Engine(load_packs([rules_dir()]), BrandFacts("Acme", None, "+1 555 0100"), {})
    assert "please call us on +1 555 0100" in public("hackernews", phone)
