"""Drafted replies from rule templates. Pure.

Templates are written by the team; mention text is never part of one. Fields are filled in
one pass (`{author}` -> "@sam"), so a value that itself looks like a template (`{brand}`,
`{{ x }}`, `%s`) is inserted literally and never expanded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_FIELD = re.compile(r"\{([a-z_]+)\}")


def render(template: str, fields: Mapping[str, str]) -> str:
    """Fill `{field}` placeholders once; unknown or empty fields become empty text."""
    text = _FIELD.sub(lambda m: fields.get(m.group(1), ""), template)
    # Tidy what an empty field leaves behind ("Hi ," -> "Hi,").
    text = re.sub(r"[ \t]+([,.!?])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


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
