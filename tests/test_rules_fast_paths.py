"""The rules engine's fast paths give the same answers as the plain ones: each rule's compiled
test agrees with the condition walk that records the reasons, a batch is judged as one by one,
drafts tidied once per template shape equal drafts rendered and tidied in full, and ingest
(judging from the batch in memory) stores what a rescore from the stored rows stores."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mentionwatch.connector import AuthorIn, Batch, MentionIn
from mentionwatch.judgement import MentionFacts
from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import BrandFacts, Engine, load_judge, load_packs
from mentionwatch.rules_engine.templates import render
from mentionwatch.store import Store
from tests.conftest import FIXTURES, make_config

# Close to the clock `judge` reads itself, so that "in the last N days" means the same.
NOW = datetime.now(UTC)
POSTS = tomllib.loads((FIXTURES / "rules" / "posts.toml").read_text(encoding="utf-8"))

# Every condition kind, nested, with reasons that a failed alternative leaves behind. A new
# condition kind belongs here too, so that both of its implementations are compared.
ALL_KINDS = '''
[pack]
name = "kinds"

[[rules]]
name = "k-terms-regex"
flag = "complaint"
[rules.when]
all = ["router", "down"]
none = ["back up"]
regex = ["r(o)uter", "d[aeiou]wn"]

[[rules]]
name = "k-nested"
flag = "question"
[rules.when]
any_of = [{ any = ["bill"], sentiment_below = -0.9 }, { all = ["refund"], regex = ["xyz"] },
          { followers_at_least = 1000 }, { verified = true }]
all_of = [{ not = { any = ["giveaway"] } }, { language = ["en", "fr"] }]

[[rules]]
name = "k-facts"
flag = "praise"
[rules.when]
source = ["twitter", "feed-b"]
reply_to_brand = true
engagement_at_least = 5
sentiment_above = -0.5
complained_within_days = 3

[[rules]]
name = "k-classifier"
flag = "complaint"
[rules.when]
any_of = [{ complaint_score_at_least = 0.6 }, { complaint_score_below = 0.05, any = ["bill"] }]

[[rules]]
name = "k-not"
flag = "spam"
[rules.when]
not = { sentiment_below = 0.0, any_of = [{ any = ["love"] }, { regex = ["great"] }] }
language = ["fr"]
'''


def _engine(tmp_path: Path) -> Engine:
    (tmp_path / "kinds.toml").write_text(ALL_KINDS, encoding="utf-8")
    return Engine(load_packs([rules_dir(), tmp_path]), BrandFacts("Acme", "help@acme.example"),
                  {"twitter": 280})


def _variants(text: str) -> list[MentionFacts]:
    """The same text from a few kinds of author and context."""
    recent = ((NOW - timedelta(days=1), "complaint"),)
    old = ((NOW - timedelta(days=30), "complaint"),)
    return [
        MentionFacts(source="feed-a", source_kind="twitter", text=text, title=None, url=None,
                     author_handle="sam", author_name="Sam Smith", followers=None,
                     verified=None, language="en", created_at=NOW - timedelta(hours=1),
                     likes=0, reposts=0, replies=0, is_reply_to_brand=False),
        MentionFacts(source="feed-b", source_kind="reddit", text=text, title="Re: my bill",
                     url="https://r.test/1", author_handle="u/bo", author_name="bo",
                     followers=60_000, verified=True, language="fr-CA",
                     created_at=NOW - timedelta(days=2), likes=400, reposts=150, replies=3,
                     is_reply_to_brand=True, author_history=recent),
        MentionFacts(source="feed-c", source_kind="twitter", text=text, title=None, url=None,
                     author_handle="kim", author_name=None, followers=1200, verified=False,
                     language=None, created_at=NOW, likes=5, reposts=0, replies=0,
                     is_reply_to_brand=True, author_history=old + recent),
    ]


def _corpus() -> list[str]:
    texts = [t for posts in POSTS.values() for t in posts]
    return [*texts, "my router is down", "router down, back up now", "love it, great!",
            "c'est super, j'adore", "giveaway: win a router", "refund xyz please", ""]


def test_compiled_tests_agree_with_the_condition_walk(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    held = 0
    for text in _corpus():
        for facts in _variants(text):
            ctx = engine._contexts([facts], NOW)[0]
            for compiled in engine._compiled:
                walked = engine._holds(compiled.rule.when, ctx, {})
                assert compiled.test(ctx) == walked, (compiled.rule.name, text, facts.source)
                held += walked
    assert held > 100  # the corpus exercises rules that hold, not only ones that fail


GATES = '''
[pack]
name = "gates"

[[rules]]
name = "g-any"
flag = "complaint"
[rules.when]
any = ["Router"]

[[rules]]
name = "g-all-of"
flag = "complaint"
[rules.when]
all_of = [{ sentiment_below = 0.5 }, { all = ["late", "bill"] }]

[[rules]]
name = "g-any-of"
flag = "question"
[rules.when]
any_of = [{ any = ["modem"] }, { all = ["wifi"] }]

[[rules]]
name = "g-open"
flag = "question"
[rules.when]
any_of = [{ any = ["modem"] }, { regex = ["wi-?fi"] }]

[[rules]]
name = "g-not"
flag = "spam"
[rules.when]
not = { any = ["router"] }
'''


def test_a_rule_is_tested_only_for_a_mention_with_one_of_its_terms(tmp_path: Path) -> None:
    (tmp_path / "gates.toml").write_text(GATES, encoding="utf-8")
    engine = Engine(load_packs([tmp_path]), BrandFacts("Acme"), {})
    gates = {rule.name: engine._gate(rule.when) for _, rule in engine.rules}
    assert gates == {"g-any": {"router"}, "g-all-of": {"bill"}, "g-any-of": {"modem", "wifi"},
                     "g-open": None, "g-not": None}

    def tested(text: str) -> list[str]:
        return [c.rule.name for c in engine._candidates(engine.matcher.find(text))]

    assert tested("nothing here") == ["g-open", "g-not"]
    assert tested("my ROUTER and modem, a late bill") == [  # in the pack's order
        "g-any", "g-all-of", "g-any-of", "g-open", "g-not"]
    assert tested("wifi") == ["g-any-of", "g-open", "g-not"]


def test_testing_only_the_rules_a_mention_can_meet_changes_no_judgement(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gates.toml").write_text(GATES, encoding="utf-8")
    (tmp_path / "kinds.toml").write_text(ALL_KINDS, encoding="utf-8")
    engine = Engine(load_packs([rules_dir(), tmp_path]), BrandFacts("Acme", "help@acme.example"),
                    {"twitter": 280})
    texts = [*_corpus(), "my ROUTER and modem, a late bill", "wi-fi down", "wifi"]
    facts = [f for text in texts for f in _variants(text)]
    gated = [engine.judge_one(f, now=NOW) for f in facts]
    assert sum(1 for j in gated if j.hits) > 200
    monkeypatch.setattr(engine, "_candidates", lambda terms: engine._compiled)
    assert [engine.judge_one(f, now=NOW) for f in facts] == gated


def count_searches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The patterns the engine searches from now on, one entry per search."""
    import mentionwatch.rules_engine.engine as engine_module

    searched: list[str] = []
    bounded = engine_module._bounded_search

    def counting(pattern: str, *args: Any) -> Any:
        search = bounded(pattern, *args)

        def counted(text: str) -> Any:
            searched.append(pattern)
            return search(text)
        return counted

    monkeypatch.setattr(engine_module, "_bounded_search", counting)
    return searched


def test_a_pattern_rules_share_is_searched_once_a_mention(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default packs give five rules one "a problem that is over" pattern; each mention
    # pays for one search of it, not five (and the reasons walk reuses it too).
    searched = count_searches(monkeypatch)
    rules = "".join(f'[[rules]]\nname = "r{i}"\nflag = "complaint"\n[rules.when]\n'
                    f'any = ["router"]\nnot = {{ regex = ["back (up|on)"] }}\n'
                    for i in range(3))
    (tmp_path / "shared.toml").write_text('[pack]\nname = "shared"\n' + rules,
                                          encoding="utf-8")
    engine = Engine(load_packs([tmp_path]), BrandFacts("Acme"), {})
    down, back = (_variants(t)[0] for t in ("my router is down", "router down, back up now"))
    judged = engine.judge([down, back])
    assert [h.rule for h in judged[0].hits] == ["r0", "r1", "r2"] and not judged[1].hits
    assert searched == ["back (up|on)", "back (up|on)"]  # one search for each mention


def test_a_rule_s_patterns_are_searched_as_one_alternation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each search costs about 2.5 us in setting up its time limit alone, so a `regex` list is
    # one search of its alternation (each pattern's leading flags kept to it); the verdict
    # and the reasons are those of the patterns one by one.
    searched = count_searches(monkeypatch)
    (tmp_path / "p.toml").write_text(
        '[pack]\nname = "p"\n[[rules]]\nname = "r"\nflag = "complaint"\n[rules.when]\n'
        'regex = ["(?s)refund.*never", "\\\\bdo better\\\\b", "^why"]\n', encoding="utf-8")
    engine = Engine(load_packs([tmp_path]), BrandFacts("Acme"), {})
    texts = ["the refund\nnever came", "acme do better", "why acme", "refund me", "Do Better"]
    judged = engine.judge([_variants(t)[0] for t in texts])
    assert [j.flag for j in judged] == ["complaint", "complaint", "complaint", None, "complaint"]
    joined = "(?s:refund.*never)|(?:\\bdo better\\b)|(?:^why)"
    assert searched.count(joined) == len(texts)
    # The patterns one by one only for the reasons of the four that hit, not for the miss.
    assert 0 < len(searched) - len(texts) <= 3 * 4
    assert judged[1].hits[0].explanation == {"regex": ["do better"]}
    # A pattern whose meaning joining would change (a backreference) is searched alone.
    from mentionwatch.rules_engine.engine import _alternation

    assert _alternation(["(a)\\1", "b"]) is None
    assert _alternation(["(?x) a # comment", "b"]) is None
    assert _alternation(["(?s)a.b", "c"]) == "(?s:a.b)|(?:c)"


def test_a_batch_is_judged_as_one_mention_at_a_time(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    mentions = [facts for text in _corpus() for facts in _variants(text)]
    batch = engine.judge(mentions)
    assert len(batch) == len(mentions)
    for facts, judged in zip(mentions, batch, strict=True):
        alone = engine.judge_one(facts, now=NOW)
        # `judge` takes its own clock: everything but the age-dependent parts must be equal.
        assert (judged.flag, judged.sentiment, judged.hits, judged.public_draft,
                judged.private_draft, judged.private_channel, judged.draft_rule) == (
            alone.flag, alone.sentiment, alone.hits, alone.public_draft,
            alone.private_draft, alone.private_channel, alone.draft_rule)
    assert {j.flag for j in batch} >= {"complaint", "crisis", "question", "praise", "spam"}


def _render_in_full(template: str, fields: dict[str, str]) -> str:
    """The plain rendering, uncached: each empty field a gap, each value an opaque token,
    the gaps closed as the spec says, then the values put in."""
    values: list[str] = []

    def fill(m: re.Match[str]) -> str:
        value = fields.get(m.group(1), "")
        if not value:
            return "\x00"
        values.append(value)
        return f"\x01{len(values) - 1}\x01"

    text = re.sub(r"\{([a-z_]+)\}", fill, re.sub("[\x00\ue000-\uf8ff]", "", template))
    text = re.sub(r"\x00([ \t]*\x00)+", "\x00", text)
    text = re.sub(r"[ \t]*\(\x00\)", "", text)
    text = re.sub(r",?[ \t]*\x00[ \t]*([.!?])", r"\1", text)
    text = re.sub(r"[ \t]*\x00[ \t]*,", ",", text)
    text = re.sub(r"(?m)^[ \t]*\x00[ \t]*|[ \t]*\x00[ \t]*$", "", text)
    text = re.sub(r"[ \t]+\x00[ \t]+", " ", text).replace("\x00", "").strip()
    return re.sub(r"\x01(\d+)\x01", lambda m: values[int(m.group(1))], text)


_PIECES = st.sampled_from(["{author}", "{first_name}", "{brand}", "{nope}", " ", "\t", ",",
                           ".", "!", "?", "Hi", "{", "}", "%s", "\n", "\u00a0", "(", ")", "-"])
_VALUES = st.sampled_from(["", "a b", " ,", "\t.", "{brand}", "x  y", "Sam", "@u1",
                           "alice.bsky.social", ".a", "a.", "?x", "\ue000", "\u00a0x", "a\n",
                           "a,", "a,.b", "a,b", "a,,"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=14), st.fixed_dictionaries(
    {"author": _VALUES, "first_name": _VALUES, "brand": _VALUES}))
def test_drafts_tidied_once_per_shape_equal_drafts_rendered_in_full(
        pieces: list[str], fields: dict[str, str]) -> None:
    template = "".join(pieces)
    drafted = render(template, fields)
    assert drafted == _render_in_full(template, fields)
    # Values go in as they are, in order; nothing of the tidy-up's own is left behind.
    at = 0
    for value in (fields.get(n, "") for n in re.findall(r"\{([a-z_]+)\}", template)):
        if value.strip():
            at = drafted.index(value.strip(), at)
    assert "\x00" not in drafted


@pytest.mark.parametrize(("template", "fields", "expected"), [
    ("{author} Thank you!", {}, "Thank you!"),
    ("Hi {first_name}, thanks.", {}, "Hi, thanks."),
    ("Sorry, {author}.", {}, "Sorry."),
    ("Call us ({support_hours}) today", {}, "Call us today"),
    ("Dear {first_name} {author}, hello", {}, "Dear, hello"),
    # The team's own punctuation and spacing, and the values, are left as they are.
    ("Désolé pour la panne ! {author} Écrivez-nous en privé ?", {},
     "Désolé pour la panne ! Écrivez-nous en privé ?"),
    ("Merci ... à bientôt , {first_name}", {"first_name": "Léa"}, "Merci ... à bientôt , Léa"),
    ("Hours: {support_hours}.", {"support_hours": "9 - 5 ,  Mon-Fri"}, "Hours: 9 - 5 ,  Mon-Fri."),
])
def test_only_the_gaps_of_empty_fields_are_tidied(template: str, fields: dict[str, str],
                                                  expected: str) -> None:
    assert render(template, fields) == expected


def _stored_judgements(store: Store) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mention in store.list_mentions(limit=1000):
        detail = store.mention_detail(mention.id)
        assert detail is not None
        _, matches, draft = detail
        out[mention.external_id] = (
            mention.flag, pytest.approx(mention.priority, abs=1e-4), mention.sentiment,
            sorted((m.rule, m.flag, m.severity, m.alert, repr(m.explanation)) for m in matches),
            (draft.public_text, draft.private_text, draft.private_channel, draft.rule)
            if draft else None)
    return out


def _ingest_two_passes(store: Store, judge: Engine, repeat_an_id: bool) -> None:
    store.sync_sources([("feed", "rss", "h")])
    now = datetime.now(UTC)
    texts = _corpus()[:60]
    for part in range(2):  # the second pass sees the first one's complaints as history
        mentions = [
            MentionIn(external_id=f"{part}-{i}", text=text, url=f"https://x.test/{part}/{i}",
                      title="Re: my order" if i % 7 == 0 else None,
                      author=AuthorIn(f"user{i % 9}", display_name=f"Ann {i}" if i % 2 else None,
                                      followers=None if i % 5 == 0 else i * 900 + part,
                                      verified=i % 3 == 0),
                      created_at=now - timedelta(hours=i), likes=i * 11, reposts=i % 4,
                      is_reply_to_brand=i % 6 == 0)
            for i, text in enumerate(texts)
        ]
        if repeat_an_id:
            mentions.append(MentionIn(external_id=f"{part}-3", text="a second copy, down again",
                                      url=f"https://x.test/{part}/copy",
                                      author=AuthorIn("user3", followers=5)))
        store.store_batch("feed", Batch(mentions), judge=judge, platform="twitter")


@pytest.mark.parametrize("repeat_an_id", [False, True])
def test_judged_from_the_batch_in_memory_as_from_the_stored_rows(
        db_url: str, monkeypatch: pytest.MonkeyPatch, repeat_an_id: bool) -> None:
    """Ingest judges from the batch in memory; the stored rows read back (as rescore does)
    must give the same judgements, also when a batch repeats an external id (the database
    then says which copy was stored) and with authors' facts changing between passes."""
    config = make_config(db_url, [{"name": "feed", "kind": "rss", "url": "http://127.0.0.1:9/x"}])
    judge = load_judge(config)
    store = Store.open(db_url)
    try:
        _ingest_two_passes(store, judge, repeat_an_id)
        from_memory = _stored_judgements(store)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM mentions")
            conn.exec_driver_sql("DELETE FROM authors")
    finally:
        store.close()
    monkeypatch.setattr(Store, "_judge_written", lambda self, conn, judge, name, kind, written:
                        self._apply_judge(conn, judge, name, kind, written.ids))
    store = Store.open(db_url)
    try:
        _ingest_two_passes(store, judge, repeat_an_id)
        read_back = _stored_judgements(store)
    finally:
        store.close()
    assert len(from_memory) == 120
    assert sum(1 for flag, *_ in from_memory.values() if flag) > 60
    assert any("repeat-complainer" in repr(v[3]) for v in from_memory.values())
    assert from_memory == read_back
