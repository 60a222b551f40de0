"""Turn whatever a source sends (HTML, entities, escapes) into inert plain text.

Pure functions. Stored and displayed text is plain: HTML stripped, entities decoded (twice
where a feed double-escapes), terminal escape sequences and control characters removed.
Fields shown on one line (titles, author handles and names) are also flattened to one line.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

# ESC-based sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL/ST), DCS/SOS/PM/APC strings,
# and two-character escapes. Also the 8-bit C1 forms of CSI (0x9b) and OSC (0x9d).
_ANSI = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]            # CSI ... final byte
  | (?:\x1b\]|\x9d).*?(?:\x07|\x1b\\|\x9c)       # OSC ... BEL or ST
  | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f]).*?(?:\x1b\\|\x9c)  # DCS, SOS, PM, APC strings
  | \x1b[@-Z\\-_]                               # other two-byte escapes
  | \x1b.?                                      # a lone ESC and what follows
    """,
    re.VERBOSE | re.DOTALL,
)
# C0 controls except tab and newline, DEL, C1 controls, bidirectional overrides that can
# make text display in a different order than it is stored, and the invisible characters
# that split a word without showing (zero-width space, word joiner, byte-order mark, soft
# hyphen: "d\u200bown" would hide "down" from the rules). Not the zero-width (non-)joiners,
# which emoji sequences and several scripts need.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f"
    r"\u200b\u2060\ufeff\u00ad]")
#: A lone surrogate: a byte that was not UTF-8 (as Python reads such a command-line argument
#: or file), or half an emoji cut by a source. It cannot be stored or encoded.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_BLOCK_TAGS = frozenset(
    ("p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
     "blockquote", "pre", "section", "article", "hr")
)
_TAG_HINT = re.compile(r"<[A-Za-z/!]")
_ANY_TAG = re.compile(r"<[^<>]*>")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(value: str) -> str:
    """Remove tags and decode entities; block elements become line breaks."""
    if not _TAG_HINT.search(value):
        return html.unescape(value)
    parser = _TextExtractor()
    try:
        parser.feed(value)
        parser.close()
    except (AssertionError, ValueError):
        # The stdlib parser gives up on some malformed declarations ("<![0"); hostile input
        # must not stop ingestion, so fall back to dropping anything tag-shaped.
        return html.unescape(_ANY_TAG.sub(" ", value))
    return "".join(parser.parts)


def strip_terminal_escapes(value: str) -> str:
    """Remove ANSI/VT escape sequences and control characters (tab and newline stay); a lone
    surrogate becomes U+FFFD, the replacement character."""
    value = _CONTROL.sub("", _ANSI.sub("", value))
    return _SURROGATE.sub("\ufffd", value) if not value.isascii() else value


def normalise_whitespace(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    value = value.replace("\u00a0", " ")
    lines = [re.sub(r" {2,}", " ", line).strip() for line in value.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def clean_text(value: str | None, *, is_html: bool = True) -> str:
    """The plain, inert form of `value` that is stored and shown.

    HTML is stripped and entities decoded; a second round of decoding catches feeds that
    escape twice (Google Alerts sends `&amp;#39;`). Escapes and control characters go last so
    none can be smuggled in through an entity.
    """
    if not value:
        return ""
    text = strip_html(value) if is_html else value
    if "&" in text:
        text = html.unescape(text)
    return normalise_whitespace(strip_terminal_escapes(text))


def one_line(value: str | None) -> str:
    """`value` as one line: line breaks, tabs and every other run of whitespace (Unicode
    line and paragraph separators too) become a single space, escapes and controls removed.

    For fields shown on one line (a title, an author's handle or name): a line break there
    could make a feed's text look like a line of our own, such as an alert email's `Link:`.
    """
    if not value:
        return ""
    return " ".join(strip_terminal_escapes(value).split())


def first_line(value: str, width: int = 120) -> str:
    line = value.strip().split("\n", 1)[0]
    return line if len(line) <= width else line[: width - 1] + "…"
