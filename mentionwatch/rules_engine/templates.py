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
from collections.abc import Mapping

_FIELD = re.compile(r"\{([a-z_]+)\}")
OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.S)
# A lookahead, not a group and "\1": a replacement with a group reference is expanded in
# Python for every match.
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+(?=[,.!?])")
_RUN_OF_SPACES = re.compile(r"[ \t]{2,}")
# A comma left in front of other punctuation ("Sorry, {author}." -> "Sorry,.").
_STRAY_COMMA = re.compile(r",+(?=[,.!?])")
# One of the tidy-ups could change the text (checked first: most drafts need none).
_UNTIDY = re.compile(r"[ \t](?:[ \t]|[,.!?])|,[,.!?]")


@functools.lru_cache(maxsize=4096)
def _pieces(template: str) -> tuple[str, ...]:
    """The template split once: literal, field name, literal, field name, ..., literal."""
    return tuple(_FIELD.split(template))


# A value without whitespace that does not start with , . ! ? and whose commas are each
# followed by a letter or digit ("@sam", "alice.bsky.social", a case reference) is never
# touched by the tidy-up and does not change what it does around it: drafts are tidied once
# per template and shape of the values, then filled.
_PLAIN = re.compile(r"[^\s,.!?\ue000-\uf8ff](?:[^\s,\ue000-\uf8ff]|,(?=[^\s,.!?\ue000-\uf8ff]))*")
_SLOT = re.compile(r"([\ue000-\uf8ff])")


@functools.lru_cache(maxsize=4096)
def _tidied(template: str, shape: tuple[str | None, ...]) -> tuple[str | int, ...] | None:
    """The rendered template with each plain value (None in `shape`) left as a slot:
    literal text and slot numbers. None when the text itself uses the slot characters."""
    pieces = _pieces(template)
    if _SLOT.search(template) or any(v is not None and _SLOT.search(v) for v in shape):
        return None
    parts = [pieces[0]]
    for index in range(1, len(pieces), 2):
        value = shape[index // 2]
        parts.append(chr(0xE000 + index // 2) if value is None else value)
        parts.append(pieces[index + 1])
    text = _tidy("".join(parts))
    return tuple(ord(p) - 0xE000 if i % 2 else p for i, p in enumerate(_SLOT.split(text)))


def _tidy(text: str) -> str:
    if _UNTIDY.search(text):
        # Tidy what an empty field leaves behind ("Hi ," -> "Hi,", "Sorry, ." -> "Sorry.").
        text = _STRAY_COMMA.sub("", _RUN_OF_SPACES.sub(" ", _SPACE_BEFORE_PUNCT.sub("", text)))
    return text.strip()


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
    """Fill `{field}` placeholders once; unknown or empty fields become empty text, and an
    optional `[[ ... ]]` part with an empty field in it is left out."""
    if "[[" in template:
        template = _kept(template, tuple(all(fields.get(name) for name in names)
                                         for names in _optional_fields(template)))
    pieces = _pieces(template)
    values = [fields.get(name, "") for name in pieces[1::2]]
    tidied = _tidied(template, tuple(None if _PLAIN.fullmatch(v) else v for v in values))
    if tidied is not None:
        return "".join([p if isinstance(p, str) else values[p] for p in tidied])
    parts = [pieces[0]]
    for index in range(1, len(pieces), 2):
        parts.append(values[index // 2])
        parts.append(pieces[index + 1])
    return _tidy("".join(parts))


def fit(text: str, limit: int | None) -> str:
    """Shorten a draft to the source's limit at a sentence or word boundary.

    Drafts are suggestions a person edits; a cut draft is marked with an ellipsis so the
    person sees it was shortened."""
    if limit is None or len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    sentence = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if sentence >= limit // 2:
        return cut[: sentence + 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def first_name(display_name: str | None) -> str:
    """A first name only when the display name looks like a person's name."""
    if not display_name:
        return ""
    word = display_name.strip().split()[0] if display_name.strip() else ""
    if word.isalpha() and word[:1].isupper() and 1 < len(word) <= 20:
        return word
    return ""
