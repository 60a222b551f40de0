"""Find many terms in a text in one pass.

All of a pack's terms are compiled into ONE regular expression shaped as a trie
(`acme(?: fiber| fibre)?|ac(?:count|cess)...`), so the cost per text grows with the text and
the depth of the trie, not with the number of terms: 1,000 terms cost about what 10 do (see
benchmarks/rules_speed.py). Matching is case-insensitive, by whole word (a term is not found
inside a longer word), and overlapping terms are all found ("not working" and "working").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def normalise_for_matching(text: str) -> str:
    """Lower-case, with curly apostrophes made straight (phones type "don’t")."""
    text = text.lower()
    # str.translate looks every character up; most texts have no curly apostrophe at all.
    if "\u2019" in text or "\u2018" in text or "\u02bc" in text:
        text = text.translate(_APOSTROPHES)
    return text


def normalise_term(term: str) -> str:
    return " ".join(normalise_for_matching(term).split())


def _trie_pattern(terms: Iterable[str]) -> str:
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for term in terms:
        node = trie
        for char in term:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict) -> str:  # type: ignore[type-arg]
        ends = "" in node
        branches = []
        for char in sorted(k for k in node if k):
            piece = r"\s+" if char == " " else re.escape(char)
            branches.append(piece + build(node[char]))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            return "(?:" + body + ")?"
        return body

    return build(trie)


class TermMatcher:
    """Which of a fixed set of terms and phrases occur in a text."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms = frozenset(t for t in (normalise_term(t) for t in terms) if t)
        if not self.terms:
            self._pattern: re.Pattern[str] | None = None
            return
        # A zero-width lookahead at every word start: overlapping terms are all found, and
        # the trie prefers the longest term that starts at a position.
        body = _trie_pattern(self.terms)
        self._pattern = re.compile(r"(?<![\w])(?=(" + body + r")(?!\w))")
        self._prefixes = self._all_prefix_terms()
        self._prefix_keys = frozenset(self._prefixes)

    def _all_prefix_terms(self) -> dict[str, tuple[str, ...]]:
        # A longest match "not working at all" also contains the shorter terms that start at
        # the same position and end on a word boundary ("not working").
        out: dict[str, tuple[str, ...]] = {}
        for term in self.terms:
            shorter = tuple(
                term[:i] for i in range(1, len(term))
                if not (term[i].isalnum() or term[i] == "_") and term[:i] in self.terms
            )
            if shorter:
                out[term] = shorter
        return out

    def find(self, text: str) -> set[str]:
        """The terms (normalised) that occur in `text` as whole words."""
        if self._pattern is None or not text:
            return set()
        found = set(self._pattern.findall(normalise_for_matching(text)))
        if not found <= self.terms:  # a phrase spread over several spaces or lines
            found = {" ".join(term.split()) for term in found}
        for term in self._prefix_keys.intersection(found):
            found.update(self._prefixes[term])
        return found
