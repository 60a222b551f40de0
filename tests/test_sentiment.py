"""The engine's sentiment is vaderSentiment's compound score to the last bit, only faster."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest
from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SPECIAL_CASES

from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import sentiment as fast
from mentionwatch.rules_engine.classifier import read_training
from mentionwatch.rules_engine.sentiment import Sentiment
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def library() -> Callable[[str], float]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    polarity = SentimentIntensityAnalyzer().polarity_scores
    return lambda text: polarity(text)["compound"]


@pytest.fixture(scope="module")
def ours() -> Sentiment:
    return Sentiment()


def _posts() -> list[str]:
    """The training posts and the written test posts."""
    return [text for path in (rules_dir() / "training" / "complaints.csv",
                              FIXTURES / "rules" / "written_posts.csv")
            for text, _ in read_training(path)]


def _generated(count: int, seed: int = 7) -> list[str]:
    """Texts made to reach every rule: lexicon words next to boosters (some in capitals),
    negations, "no", "least", idioms, "kind of", "but", emoji, emoticons, punctuation."""
    rnd = random.Random(seed)
    sentimental = ["good", "bad", "love", "hate", "awful", "great", "happy", "sad", "fine",
                   "terrible", "nice", "worst", "best", "ok", "like", "shit", "bomb", "die",
                   "death", "kiss", "heart", "ass", "no", "yes", "doubt", "fun", "fail"]
    glue = ["the", "a", "it", "was", "is", "so", "this", "never", "without", "at", "very",
            "least", "or", "nor", "of", "kind", "sort", "just", "enough", "to", "for", "but",
            "yeah", "right", "bus", "stop", "beating", "cut", "mustard", "my", "order", "Acme"]
    extras = [":)", ":(", ":-D", ":D", "<3", "😁", "💘", "😡", "👍🏽", "🙂", "İİ.", "Straße", "ǅ",
              "?", "!", "??", "!!!", "(bad)", "good!!", "'great'", "...", "--", "n't",
              "didn't", "CANNOT", "NOT", "BUT", "But"]
    vocab = sentimental + glue + list(BOOSTER_DICT) + NEGATE[:20] + extras
    vocab += [w for case in SPECIAL_CASES for w in case.split()]
    texts = []
    for _ in range(count):
        words = [rnd.choice(vocab) for _ in range(rnd.randint(1, 18))]
        words = [w.upper() if rnd.random() < 0.15 else w for w in words]
        joiners = [rnd.choice([" ", " ", " ", "  ", "", "\n", ", ", "! ", "? "])
                   for _ in words]
        texts.append("".join(w + j for w, j in zip(words, joiners, strict=True)))
    texts += list(SPECIAL_CASES) + [f"it was {case} but {case}" for case in SPECIAL_CASES]
    texts += ["", " ", "\n\t", "!!!", "??", "😁", "😁😁😁", "bad😡worse", "a 💘 b", "KIND OF good"]
    return texts


def _mismatches(ours: Sentiment, library: Callable[[str], float],
                texts: list[str]) -> Iterator[tuple[str, float, float]]:
    for text in texts:
        mine, theirs = ours.compound(text), library(text)
        if mine != theirs:
            yield text, mine, theirs


def test_the_score_is_the_library_s_on_every_training_and_written_post(
        ours: Sentiment, library: Callable[[str], float]) -> None:
    posts = _posts()
    assert len(posts) > 20_000
    assert list(_mismatches(ours, library, posts))[:5] == []


def test_the_score_is_the_library_s_on_texts_made_to_reach_every_rule(
        ours: Sentiment, library: Callable[[str], float]) -> None:
    texts = _generated(12_000)
    assert list(_mismatches(ours, library, texts))[:5] == []
    # The texts do reach the rules: some are neither 0 nor only their words' lexicon sum.
    assert sum(1 for t in texts if ours.compound(t) != 0.0) > len(texts) // 2


@pytest.mark.parametrize("part", ["_negation", "_idioms", "_but_check", "_emphasis"])
def test_the_generated_texts_would_catch_a_rule_left_out(
        part: str, library: Callable[[str], float], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each rule, replaced by one that changes nothing, gives other scores on the generated
    texts: the parity test above covers it."""
    if part == "_emphasis":
        monkeypatch.setattr(fast, part, lambda text: 0.0)
    elif part == "_but_check":
        monkeypatch.setattr(fast, part, lambda words, sentiments: sentiments)
    elif part == "_negation":
        monkeypatch.setattr(fast, part, lambda valence, low, start_i, i: valence)
    else:
        monkeypatch.setattr(fast, part, lambda valence, low, i: valence)
    broken = Sentiment()
    assert next(_mismatches(broken, library, _generated(3_000)), None) is not None


def test_library_examples(ours: Sentiment, library: Callable[[str], float]) -> None:
    examples = {
        "VADER is smart, handsome, and funny.": 0.8316,
        "VADER is VERY SMART, handsome, and FUNNY!!!": 0.9342,
        "VADER is not smart, handsome, nor funny.": -0.7424,
        "At least it isn't a horrible book.": 0.431,
        "The book was only kind of good.": 0.3832,
        "The plot was good, but the characters are uncompelling and the dialog is not great.":
            -0.7042,
        "Today only kinda sux! But I'll get by, lol": 0.5249,
        "Catch utf-8 emoji such as 💘 and 💋 and 😁": 0.875,
        "Not bad at all": 0.431,
    }
    for text, score in examples.items():
        assert ours.compound(text) == library(text) == score, text


def test_the_engine_s_sentiment_is_this_score(ours: Sentiment) -> None:
    from mentionwatch.resources import rules_dir
    from mentionwatch.rules_engine import BrandFacts, Engine, load_packs
    from tests.test_rules_engine import facts

    engine = Engine(load_packs([rules_dir()]), BrandFacts("Acme"), {})
    for text in ["@acme router down AGAIN!!! worst service ever", "love it 😁 thanks acme"]:
        assert engine.judge_one(facts(text)).sentiment == ours.compound(text) != 0.0


def test_an_ascii_character_in_the_emoji_lexicon_would_still_be_replaced() -> None:
    """The shortcut for ASCII text holds only while no ASCII character is an emoji entry."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    theirs = SentimentIntensityAnalyzer()
    theirs.emojis = {**theirs.emojis, "#": "sad"}
    ours = Sentiment()
    ours._emojis = theirs.emojis
    ours._emoji_chars = ours._emoji_chars | {"#"}
    ours._ascii_has_none = False
    for text in ["my order # fail", "my order #fail", "# awful", "good#"]:
        assert ours.compound(text) == theirs.polarity_scores(text)["compound"], text
    assert ours.compound("my order # fail") == Sentiment().compound("my order sad fail") < 0
