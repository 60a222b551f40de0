"""Find many terms in a text in one pass: the rule packs' terms and the brand's names.

All of a pack's terms are compiled into ONE regular expression shaped as a trie
(`acme(?: fiber| fibre)?|ac(?:count|cess)...`), so the cost per text grows with the text and
the depth of the trie, not with the number of terms: 1,000 terms cost about what 10 do (see
benchmarks/rules_speed.py). Matching is case-insensitive and overlapping terms are all found
("not working" and "working").

Whole words: a term that starts (ends) with a letter or digit is not found with another one
just before (after) it, so "acme" is not in "acmeville" and "can" is not in "can't" ("acme"
is in "acme's"). A term's other ends need no boundary: an emoji or a symbol is found touching
a word ("so angry😡"), and so is a term in a script written without spaces between words
(Chinese, Japanese, Thai: "最悪" in "本当に最悪です"). Such a script's characters do not count
as "another letter" next to a Latin term either ("acme" is in "Acmeのルーター").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'",
                              "\ufe0f": None})  # and the emoji presentation selector (❤️ = ❤)

#: Scripts written without spaces between words (and Korean, whose particles attach to the
#: word before them): a term in them is found inside a run of them.
_UNSPACED = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x3040, 0x30FF),
             (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF),
             (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x3134F))


def normalise_for_matching(text: str) -> str:
    """Lower-case, with curly apostrophes made straight (phones type "don’t"); beyond ASCII
    also composed (NFC: "café" typed as e + accent) and case-folded ("straße" = "STRASSE")."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFC", text).casefold()
    return text.translate(_APOSTROPHES)


def _needs_boundary(char: str) -> bool:
    """Whether a term ending (or starting) with `char` must not run on into a word."""
    if not (char.isalnum() or char == "_"):
        return False
    code = ord(char)
    return not any(low <= code <= high for low, high in _UNSPACED)


def normalise_term(term: str) -> str:
    return " ".join(normalise_for_matching(term).split())


#: A letter or digit of a script written with spaces: what a term that starts or ends with
#: a letter or digit must not run on into. A character of an unspaced script may touch it
#: ("Acmeのルーター", "我的Acme路由器").
_SPACED_WORD = "[^\\W" + "".join(
    f"{chr(low)}-{chr(high)}" for low, high in _UNSPACED) + "]"
# After a term ending in a letter or digit (the character before is one): no such letter or
# digit, and not the "'t" of a contraction ("can" is not in "can't"; "acme" is in "acme's").
# One check after the whole trie, not one at each term's end: the regex backtracks into the
# trie when it fails, so the same term wins, and the character class, whose compiling walks
# each of its 200,000 characters, is compiled twice instead of once per term (4,000 terms
# took 2 s to compile at every start).
_END = rf"(?!(?<={_SPACED_WORD})(?:{_SPACED_WORD}|'t\b))"


def _starts_anywhere(char: str) -> bool:
    """Whether a term starting with `char` may start right after a letter or digit: not
    one starting with a letter, a digit, @ or # ("@acme" is not in "help@acme.com")."""
    return not (_needs_boundary(char) or char in "@#")


def _trie_pattern(terms: Iterable[str]) -> str:
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for term in terms:
        node = trie
        for char in term:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict) -> str:  # type: ignore[type-arg]
        branches = []
        for char in sorted(k for k in node if k):
            piece = r"\s+" if char == " " else re.escape(char)
            branches.append(piece + build(node[char]))
        body = "" if not branches else branches[0] if len(branches) == 1 else (
            "(?:" + "|".join(branches) + ")")
        if "" not in node or not body:
            return body
        return f"(?:{body})?"  # the longer terms first, then the one that ends here

    return build(trie) + _END


class TermMatcher:
    """Which of a fixed set of terms and phrases occur in a text."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms = frozenset(t for t in (normalise_term(t) for t in terms) if t)
        # A zero-width lookahead at every word start: overlapping terms are all found, and
        # the trie prefers the longest term that starts at a position that ends well (_END).
        # Two patterns. Terms starting with a letter, digit, @ or # are looked for at word
        # starts only: positions inside a word are passed over at once (entering the trie
        # at every position costs eight times as much). Terms that may start anywhere (an
        # emoji, a symbol, a Chinese character) are looked for where their first characters
        # are, and not at all in a text that cannot hold one (most texts are ASCII).
        words = {t for t in self.terms if not _starts_anywhere(t[0])}
        anywhere = self.terms - words
        self._pattern = (re.compile(f"(?<!{_SPACED_WORD})(?=(" + _trie_pattern(words) + "))")
                         if words else None)
        firsts = sorted({t[0] for t in anywhere})
        self._anywhere = (re.compile("(?=[" + "".join(map(re.escape, firsts)) + "])(?=("
                                     + _trie_pattern(anywhere) + "))") if anywhere else None)
        self._anywhere_in_ascii = any(c.isascii() for c in firsts)
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

    def spans(self, normalised: str) -> list[tuple[int, int, str]]:
        """Where terms occur in a text already passed through `normalise_for_matching`:
        (start, end, term) in order of start, the longest term first at a position. Unlike
        `find`, a shorter term inside a longer one found at the same place is not given."""
        if not normalised or not self.terms:
            return []
        out = []
        for pattern, wanted in ((self._pattern, True),
                                (self._anywhere, self._anywhere_in_ascii
                                 or not normalised.isascii())):
            if pattern is not None and wanted:
                out += [(m.start(1), m.end(1), " ".join(m.group(1).split()))
                        for m in pattern.finditer(normalised)]
        out.sort(key=lambda span: (span[0], -span[1]))
        return out

    def find(self, text: str) -> set[str]:
        """The terms (normalised) that occur in `text` as whole words."""
        if not text or not self.terms:
            return set()
        text = normalise_for_matching(text)
        found = set(self._pattern.findall(text)) if self._pattern is not None else set()
        if self._anywhere is not None and (self._anywhere_in_ascii or not text.isascii()):
            found.update(self._anywhere.findall(text))
        if not found <= self.terms:  # a phrase spread over several spaces or lines
            found = {" ".join(term.split()) for term in found}
        for term in self._prefix_keys.intersection(found):
            found.update(self._prefixes[term])
        return found
