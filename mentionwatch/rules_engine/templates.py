"""Drafted replies from rule templates. Pure.

Templates are written by the team; mention text is never part of one. Fields are filled in
one pass (`{author}` -> "@sam"), so a value that itself looks like a template (`{brand}`,
`{{ x }}`, `%s`) is inserted literally and never expanded.

A part of a template written `[[ ... ]]` is optional: it is left out when a field in it is
empty, so `Reference {case_ref}.[[ Or call us on {support_phone}.]]` reads well for a brand
with no phone line. Optional parts do not nest.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

_FIELD = re.compile(r"\{([a-z_]+)\}")
OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.S)
# Only the gap an empty field leaves is tidied, never the team's own text around it (French
# "la panne !" keeps its space) nor a value. The gap is marked while tidying; values are
# slots the tidy-up cannot see into, so a template is tidied once per set of empty fields.
_GAP = "\x00"
_SLOT0 = 0xE000  # values: private-use characters, which templates may not contain
_SLOT = re.compile(r"([\ue000-\uf8ff])")
RESERVED = "\x00\ue000-\uf8ff"
_RESERVED = re.compile(f"[{RESERVED}]")
_GAPS = re.compile(r"\x00(?:[ \t]*\x00)+")                 # "{a} {b}" both empty: one gap
_GAP_IN_BRACKETS = re.compile(r"[ \t]*\(\x00\)")          # "at 9 ({hours})" -> "at 9"
_GAP_BEFORE_STOP = re.compile(r",?[ \t]*\x00[ \t]*(?=[.!?])")  # "Sorry, {author}." -> "Sorry."
_GAP_BEFORE_COMMA = re.compile(r"[ \t]*\x00[ \t]*(?=,)")   # "Hi {first_name}, " -> "Hi, "
_GAP_AT_EDGE = re.compile(r"^[ \t]*\x00[ \t]*|[ \t]*\x00[ \t]*$", re.M)  # "{author} Hi" -> "Hi"
_GAP_BETWEEN = re.compile(r"[ \t]+\x00[ \t]+")             # "thanks {x} for" -> "thanks for"


def _close_gaps(text: str) -> str:
    for pattern, replacement in ((_GAPS, _GAP), (_GAP_IN_BRACKETS, ""), (_GAP_BEFORE_STOP, ""),
                                 (_GAP_BEFORE_COMMA, ""), (_GAP_AT_EDGE, ""),
                                 (_GAP_BETWEEN, " ")):
        text = pattern.sub(replacement, text)
    return text.replace(_GAP, "")


def fields_in(template: str) -> set[str]:
    """The names of the fields a template uses."""
    return set(_FIELD.findall(template))


@functools.lru_cache(maxsize=4096)
def _pieces(template: str) -> tuple[str, ...]:
    """The template split once: literal, field name, literal, field name, ..., literal."""
    return tuple(_FIELD.split(template))


@functools.lru_cache(maxsize=4096)
def _shaped(template: str, empty: tuple[bool, ...]) -> tuple[str | int, ...]:
    """The template with its empty fields' gaps closed: literal text, and the numbers of
    the fields whose values go between."""
    # (Rule packs refuse templates with these characters; dropped here all the same.)
    pieces = [_RESERVED.sub("", p) if i % 2 == 0 else p for i, p in enumerate(_pieces(template))]
    parts = [pieces[0]]
    for index in range(1, len(pieces), 2):
        parts.append(_GAP if empty[index // 2] else chr(_SLOT0 + index // 2))
        parts.append(pieces[index + 1])
    text = "".join(parts)
    text = (_close_gaps(text) if _GAP in text else text).strip()
    return tuple(ord(p) - _SLOT0 if i % 2 else p for i, p in enumerate(_SLOT.split(text)))


@functools.lru_cache(maxsize=4096)
def _optional_fields(template: str) -> tuple[tuple[str, ...], ...]:
    """The fields of each optional part, in order."""
    return tuple(tuple(_FIELD.findall(part)) for part in OPTIONAL.findall(template))


@functools.lru_cache(maxsize=4096)
def _kept(template: str, keep: tuple[bool, ...]) -> str:
    """The template with each optional part kept (brackets dropped) or left out."""
    parts = iter(keep)
    return OPTIONAL.sub(lambda m: m.group(1) if next(parts) else "", template)


def render(template: str, fields: Mapping[str, str]) -> str:
    """Fill `{field}` placeholders once; unknown or empty fields become empty text (and the
    space or comma they leave behind goes), and an optional `[[ ... ]]` part with an empty
    field in it is left out. Values are inserted as they are."""
    if "[[" in template:
        template = _kept(template, tuple(all(fields.get(name) for name in names)
                                         for names in _optional_fields(template)))
    values = [fields.get(name, "") for name in _pieces(template)[1::2]]
    shaped = _shaped(template, tuple(not v for v in values))
    return "".join([p if isinstance(p, str) else values[p] for p in shaped])


def fit(text: str, limit: int | None, length: Callable[[str], int] = len) -> str:
    """Shorten a draft to the source's limit, as the source counts (`length`: X counts
    Chinese characters and emoji twice): at the end of a sentence, or else at a word, marked
    with an ellipsis. Drafts are suggestions a person edits; `rules check` warns about a
    template too long for its source."""
    if limit is None or length(text) <= limit:
        return text
    budget = limit
    while budget > 0:
        cut = _cut(text, budget)
        over = length(cut) - limit
        if over <= 0:
            return cut
        budget -= max(1, over // 2)
    return ""


def _cut(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters."""
    cut = text[: max(0, limit - 1)]
    sentence = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "), cut.rfind("。"))
    if sentence >= limit // 2:
        return cut[: sentence + 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def first_name(display_name: str | None) -> str:
    """A first name only when the display name looks like a person's name: its first word,
    letters (with a hyphen or apostrophe inside: "Jean-Luc", "O'Brien"), starting with a
    capital, or in a script without capitals ("李华")."""
    if not display_name or not display_name.strip():
        return ""
    word = display_name.split()[0]
    letters = word.replace("-", "").replace("'", "").replace("\u2019", "")
    if not (letters.isalpha() and 1 < len(word) <= 20) or word[-1] in "-'\u2019":
        return ""
    if letters.isupper():  # "ACME Support", "SALE": a shout, not a name
        return ""
    initial = word[0]
    return word if initial.isupper() or (initial.isalpha() and not initial.islower()) else ""
