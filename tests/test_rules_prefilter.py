"""The words-needed test run before each regex search (mentionwatch.rules_engine.prefilter)."""

from __future__ import annotations

import csv

import pytest
import regex

from mentionwatch.resources import rules_dir
from mentionwatch.rules_engine import load_packs
from mentionwatch.rules_engine.engine import _alternation
from mentionwatch.rules_engine.prefilter import may_match, required
from tests.conftest import FIXTURES


@pytest.mark.parametrize(("pattern", "need"), [
    # The longest of the strings every match holds ("package|parcel" is parsed as "pa" and
    # then "ckage|rcel": 4 characters against 5).
    (r"\bstole\s+my\s+(?:package|parcel)\b", {"stole"}),
    (r"\bdo better\b", {"do better"}),
    (r"(?s)\bthanks\b.*\bfor (?:fixing|sorting)", {"thanks"}),
    (r"(?:\bfixed\b)|(?:\bsorted now\b)", {"fixed", "sorted now"}),
    (r"Order #\d+", {"order #"}),  # case-folded
    (r"(?:ab)+cdef", {"cdef"}),
])
def test_the_words_a_pattern_needs(pattern: str, need: set[str]) -> None:
    assert required(pattern) == need


@pytest.mark.parametrize("pattern", [
    r"\?\s*$",                      # nothing long enough
    r"(?:acme)?\s+down",            # an optional word is not needed; "down" is 4: kept below
    r"foo[[:alpha:]]bar",           # a POSIX class: the standard library reads "[" and "]"
    r"(?:acme){e<=1} is down",      # fuzzy matching: a literal "{e<=1}" to the standard library
    r"\p{L}+ outage",               # regex-only syntax
    r"(?:x|acme) down",             # one branch needs too little
])
def test_no_prefilter_where_the_reading_could_differ_or_nothing_is_needed(
        pattern: str) -> None:
    need = required(pattern)
    if pattern == r"(?:acme)?\s+down":
        assert need == {"down"}
    elif pattern == r"(?:x|acme) down":
        assert need == {" down"}
    else:
        assert need is None


def test_the_prefilter_never_hides_a_match_of_the_default_packs() -> None:
    # Every pattern as the engine searches it (joined per rule), over the shipped training and
    # written posts: wherever the search finds something, the prefilter let the post through.
    patterns: list[str] = []
    for pack in load_packs([rules_dir()]):
        for rule in pack.rules:
            for part in rule.when.parts():
                if part.regex:
                    joined = _alternation(part.regex)
                    patterns += [joined] if joined else part.regex
    texts = []
    for path in (rules_dir() / "training" / "complaints.csv",
                 FIXTURES / "rules" / "written_posts.csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)]
    texts += ["ACME STOLE MY PARCEL", "K\u212aelvin do better", "ſtole my package"]
    filtered = 0
    for pattern in patterns:
        need = required(pattern)
        search = regex.compile(pattern, regex.IGNORECASE).search
        for text in texts:
            passes = need is None or may_match(need, text)
            assert passes or not search(text), (pattern, text)
            filtered += not passes
    assert filtered > len(texts) * len(patterns) // 2  # and it does spare most searches
