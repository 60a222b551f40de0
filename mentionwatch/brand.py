"""Does a text name the brand? Found as the rule packs' terms are found (`terms.TermMatcher`:
whole words, case-folded, emoji and unspaced scripts), with exclusions for homonyms. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from mentionwatch.terms import TermMatcher, normalise_for_matching, normalise_term


class BrandMatcher:
    """Finds brand terms in text; a term inside an excluded phrase ("acme anvil") is not
    counted. A name written with @ or # keeps that character ("@acme" is not found in
    "help@acme.com")."""

    def __init__(self, terms: Iterable[str], exclude: Iterable[str] = ()) -> None:
        terms = list(terms)
        self._terms = TermMatcher(terms)
        # Reported as configured, lower-cased ("straße", not the matcher's "strasse").
        self._names = {normalise_term(t): " ".join(t.lower().split()) for t in terms}
        self._exclude = TermMatcher(exclude)

    def find(self, text: str) -> list[str]:
        """The distinct terms (lower-cased, in order of appearance) that the text mentions.
        Where names overlap, the longest one found at a place counts ("acme fiber", not
        also "acme" or "fiber")."""
        if not self._terms.terms or not text:
            return []
        text = normalise_for_matching(text)
        found = self._terms.spans(text)
        if not found:
            return []
        hidden = self._exclude.spans(text)
        terms: dict[str, None] = {}
        covered = 0
        for start, end, term in found:
            if start < covered:  # inside a longer name found before
                continue
            if any(start < h_end and h_start < end for h_start, h_end, _ in hidden):
                continue
            terms.setdefault(self._names.get(term, term))
            covered = end
        return list(terms)

    def mentions(self, text: str) -> bool:
        return bool(self.find(text))
