"""Does a text name the brand? Word-boundary aware, with exclusions for homonyms. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable


def _term_pattern(term: str) -> str:
    # A term matches as a whole word: "acme" finds "Acme's", "@acme" and "#acme" but not
    # "acmeville"; a term that starts with @ or # keeps that character.
    return r"(?<![\w])" + re.escape(term.strip()) + r"(?!\w)"


def compile_terms(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive alternation for all terms, longest first; None if no terms."""
    unique = sorted({t.strip().lower() for t in terms if t.strip()}, key=len, reverse=True)
    if not unique:
        return None
    return re.compile("|".join(_term_pattern(t) for t in unique), re.IGNORECASE)


class BrandMatcher:
    """Finds brand terms in text; excluded phrases ("acme anvil") are masked out first."""

    def __init__(self, terms: Iterable[str], exclude: Iterable[str] = ()) -> None:
        self._terms = compile_terms(terms)
        self._exclude = compile_terms(exclude)

    def find(self, text: str) -> list[str]:
        """The distinct terms (lower-cased, in order of appearance) that the text mentions."""
        if self._terms is None or not text:
            return []
        if self._exclude is not None:
            text = self._exclude.sub(lambda m: " " * len(m.group(0)), text)
        found = self._terms.findall(text)
        if not found:
            return []
        return list(dict.fromkeys(term.lower() for term in found))

    def mentions(self, text: str) -> bool:
        return bool(self.find(text))
