"""VADER's compound score, the same number as vaderSentiment's, in a fraction of its time.

`vaderSentiment.SentimentIntensityAnalyzer.polarity_scores` is the largest single cost of
judging a mention (about 55 µs for a 95-character post here, more than the whole rest of the
rules engine), and most of that is spent lowering the post's whole word list again for every
sentiment word it holds, and building the text again character by character to replace emoji
that ASCII text cannot hold. `Sentiment.compound` follows the same rules in the same order
over the same lexicon, constants and helpers, imported from vaderSentiment (nothing of them
is copied here), but lowers each word once, skips the emoji pass when the text holds none, and
leaves out the pos/neu/neg proportions that nothing here reads. The contrastive "but" rule,
whose library version has its own ways with repeated values, is the library's own function.

The score is the library's to the last bit: `tests/test_sentiment.py` compares the two on
every training and written post and on generated texts built to reach each rule (negations,
boosters in capitals, "no", "least", idioms, "but", emoji, punctuation). A vaderSentiment
release that changed its rules would show there.
"""

from __future__ import annotations

import string

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    normalize,
)

_NEGATE = frozenset(NEGATE)
_PUNCT = string.punctuation
_but_check = SentimentIntensityAnalyzer._but_check
#: The two-word boosters ("kind of", "sort of"), the only ones `_idioms` can meet.
_BOOSTER_PAIRS = {k: v for k, v in BOOSTER_DICT.items() if " " in k}
#: Every word of an idiom or a two-word booster: the idiom check can change nothing unless
#: one of the words around a sentiment word is one of these.
_IDIOM_WORDS = frozenset(w for k in (*SPECIAL_CASES, *_BOOSTER_PAIRS) for w in k.split())


def _negated(word: str) -> bool:
    """The library's `negated` for one lower-cased word."""
    return word in _NEGATE or "n't" in word


def _negation(valence: float, low: list[str], start_i: int, i: int) -> float:
    """The library's `_negation_check`, over the words lowered once."""
    if start_i == 0:
        if _negated(low[i - 1]):
            valence = valence * N_SCALAR
    elif start_i == 1:
        if low[i - 2] == "never" and (low[i - 1] == "so" or low[i - 1] == "this"):
            valence = valence * 1.25
        elif low[i - 2] == "without" and low[i - 1] == "doubt":
            pass
        elif _negated(low[i - 2]):
            valence = valence * N_SCALAR
    else:
        # As the library groups it: "so" or "this" just before the word boosts it too.
        if ((low[i - 3] == "never" and (low[i - 2] == "so" or low[i - 2] == "this"))
                or (low[i - 1] == "so" or low[i - 1] == "this")):
            valence = valence * 1.25
        elif low[i - 3] == "without" and (low[i - 2] == "doubt" or low[i - 1] == "doubt"):
            pass
        elif _negated(low[i - 3]):
            valence = valence * N_SCALAR
    return valence


def _idioms(valence: float, low: list[str], i: int) -> float:
    """The library's `_special_idioms_check` (only called with i >= 3)."""
    n = len(low)
    if not any(w in _IDIOM_WORDS for w in low[i - 3:i + 3]):
        return valence
    w3, w2, w1, w0 = low[i - 3], low[i - 2], low[i - 1], low[i]
    for seq in (f"{w1} {w0}", f"{w2} {w1} {w0}", f"{w2} {w1}", f"{w3} {w2} {w1}",
                f"{w3} {w2}"):
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            break
    if n - 1 > i:
        zeroone = f"{w0} {low[i + 1]}"
        if zeroone in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroone]
    if n - 1 > i + 1:
        zeroonetwo = f"{w0} {low[i + 1]} {low[i + 2]}"
        if zeroonetwo in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroonetwo]
    for n_gram in (f"{w3} {w2} {w1}", f"{w3} {w2}", f"{w2} {w1}"):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
    return valence


class Sentiment:
    """VADER's compound score (-1..1, four decimals), exactly as `polarity_scores` gives it."""

    def __init__(self) -> None:
        analyzer = SentimentIntensityAnalyzer()
        self.lexicon: dict[str, float] = analyzer.lexicon
        self._emojis: dict[str, str] = analyzer.emojis
        # The library looks each character up, so only one-character entries can match.
        self._emoji_chars = frozenset(k for k in self._emojis if len(k) == 1)
        # ASCII text holds no emoji, unless a later lexicon counts an ASCII character as one.
        self._ascii_has_none = not any(c.isascii() for c in self._emoji_chars)

    def _no_emoji(self, text: str) -> str:
        """The text with each emoji replaced by its description, spaced as the library does."""
        if (self._ascii_has_none and text.isascii()) or self._emoji_chars.isdisjoint(text):
            return text
        emojis = self._emojis
        parts: list[str] = []
        prev_space = True
        for ch in text:
            description = emojis.get(ch)
            if description is not None:
                if not prev_space:
                    parts.append(" ")
                parts.append(description)
                prev_space = False
            else:
                parts.append(ch)
                prev_space = ch == " "
        return "".join(parts)

    def compound(self, text: str) -> float:
        """The compound score of `text`: `polarity_scores(text)["compound"]`."""
        text = self._no_emoji(text).strip()
        # Each word without its leading and trailing punctuation, unless that leaves two
        # characters or fewer (an emoticon such as ":)" stays whole): the library's rule.
        words = [t if len(w := t.strip(_PUNCT)) <= 2 else w for t in text.split()]
        if not words:
            return 0.0
        low = [w.lower() for w in words]
        n = len(words)
        caps = sum(map(str.isupper, words))
        is_cap_diff = 0 < n - caps < n
        lexicon = self.lexicon
        # A word outside the lexicon, a booster, or "kind" of "kind of" counts 0 (an int, as
        # in the library: its sum is the same to the last bit).
        sentiments: list[float] = [0] * n
        for i in [i for i, lw in enumerate(low) if lw in lexicon]:
            lw = low[i]
            if lw in BOOSTER_DICT or (lw == "kind" and i < n - 1 and low[i + 1] == "of"):
                continue
            sentiments[i] = self._valence(words, low, i, is_cap_diff)
        if "but" in low:
            sentiments = _but_check(words, sentiments)
        total = float(sum(sentiments))
        if total:
            emphasis = _emphasis(text)
            total = total + emphasis if total > 0 else total - emphasis
        return round(float(normalize(total)), 4)

    def _valence(self, words: list[str], low: list[str], i: int, is_cap_diff: bool) -> float:
        """The library's `sentiment_valence` for the lexicon word at `i`."""
        lexicon = self.lexicon
        lw = low[i]
        n = len(low)
        valence = lexicon[lw]
        if lw == "no" and i != n - 1 and low[i + 1] in lexicon:
            valence = 0.0
        if ((i > 0 and low[i - 1] == "no") or (i > 1 and low[i - 2] == "no")
                or (i > 2 and low[i - 3] == "no" and low[i - 1] in ("or", "nor"))):
            valence = lexicon[lw] * N_SCALAR
        if is_cap_diff and words[i].isupper():
            valence = valence + C_INCR if valence > 0 else valence - C_INCR
        for start_i in range(3):
            j = i - start_i - 1
            if j < 0:
                break
            before = low[j]
            if before in lexicon:
                continue
            scalar = 0.0
            if before in BOOSTER_DICT:
                scalar = BOOSTER_DICT[before]
                if valence < 0:
                    scalar *= -1
                if is_cap_diff and words[j].isupper():
                    scalar = scalar + C_INCR if valence > 0 else scalar - C_INCR
                if start_i == 1:
                    scalar = scalar * 0.95
                elif start_i == 2:
                    scalar = scalar * 0.9
            valence = valence + scalar
            valence = _negation(valence, low, start_i, i)
            if start_i == 2:
                valence = _idioms(valence, low, i)
        if i > 1 and low[i - 1] == "least" and "least" not in lexicon:
            if low[i - 2] != "at" and low[i - 2] != "very":
                valence = valence * N_SCALAR
        elif i > 0 and low[i - 1] == "least" and "least" not in lexicon:
            valence = valence * N_SCALAR
        return valence


def _emphasis(text: str) -> float:
    """The library's `_punctuation_emphasis`: up to four "!" and two or more "?"."""
    ep = min(text.count("!"), 4) * 0.292
    qm_count = text.count("?")
    qm = 0.0
    if qm_count > 1:
        qm = qm_count * 0.18 if qm_count <= 3 else 0.96
    return ep + qm
