"""Export stored mentions for spreadsheets and other tools: CSV or JSON Lines.

Column names are part of the interface (people build sheets on them): add new columns at the
end, never rename or reorder. Times are ISO 8601 in UTC; missing values are empty cells in CSV
and null in JSON Lines.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path
from typing import IO, Any, TypeVar

import regex
from sqlalchemy import Select, func, select
from sqlalchemy.orm import lazyload

from mentionwatch.errors import MentionwatchError
from mentionwatch.models import Author, Mention, Source
from mentionwatch.store import Store

T = TypeVar("T")
S = TypeVar("S", bound="Select[*tuple[Any, ...]]")

#: The stable column order of `mentionwatch export mentions`.
EXPORT_COLUMNS: tuple[str, ...] = (
    "id", "source", "source_kind", "external_id", "kind", "url", "canonical_url",
    "created_at", "fetched_at", "author_handle", "author_name", "author_followers",
    "author_verified", "author_profile_url", "title", "text", "language", "likes", "reposts",
    "replies", "conversation_id", "in_reply_to_id", "is_reply_to_brand", "matched_terms",
    "flag", "priority", "sentiment", "status", "assigned_to", "snoozed_until",
    "first_response_at",
)
#: Columns holding text a stranger (a feed, a post, its author) or a person can set:
#: guarded against spreadsheet formulas. A feed's <guid> is the external_id, its
#: <language> the language. Only numbers, flags, known words and our own times are not.
USER_TEXT_COLUMNS = frozenset({"source", "external_id", "kind", "url", "canonical_url",
                               "author_handle", "author_name", "author_profile_url", "title",
                               "text", "language", "conversation_id", "in_reply_to_id",
                               "matched_terms", "assigned_to"})
# A cell starting with one of these is run as a formula by Excel/LibreOffice/Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Rows fetched per round trip while streaming a large export.
_BATCH = 1000
#: The most text an Excel cell holds, counted as Excel counts: UTF-16 code units, so an emoji
#: is 2. Excel cuts a longer cell or spills it into the next rows.
EXCEL_CELL_LIMIT = 32_767
_GRAPHEME = regex.compile(r"\X")
#: The most rows an Excel sheet holds, its header row included. Excel opens a longer CSV
#: with "File not loaded completely" and leaves the rest out.
EXCEL_SHEET_ROWS = 1_048_576


class TooManyRowsForExcel(MentionwatchError):
    """More rows than one Excel sheet holds, for output that cannot be split into files."""

    def __init__(self, rows: int, what: str, *, hint: str) -> None:
        super().__init__(f"{rows:,} {what} are more than an Excel sheet holds "
                         f"({excel_rows():,} under its header row).", hint=hint)


def excel_rows() -> int:
    """How many rows under a header one Excel sheet holds (EXCEL_SHEET_ROWS, less one)."""
    return EXCEL_SHEET_ROWS - 1


def in_parts(items: Iterator[T], size: int) -> Iterator[Iterator[T]]:
    """`items` in runs of at most `size`, streamed: each run must be read to its end before
    the next is taken. Nothing at all for no items."""
    for first in items:
        yield chain([first], islice(items, size - 1))


def part_path(path: Path, part: int) -> Path:
    """The file of part `part` (from 1) of an export split at `path`: the path itself, then
    mentions-2.csv, mentions-3.csv, ... beside it."""
    return path if part == 1 else path.with_name(f"{path.stem}-{part}{path.suffix}")


#: How a part of an Excel export begins: the byte-order mark and the header's first columns.
#: A file named like a part that does not begin so was not written by the export.
_PART_START = ("\ufeff" + ",".join(EXPORT_COLUMNS[:4]) + ",").encode()


def stale_parts(path: Path, parts: int) -> list[Path]:
    """The parts past the first `parts` of an earlier export split at `path`, still beside
    it: regular files named as `part_path` names them (FILE-N with N > `parts`) that begin
    as an Excel part does. Someone's own file of the same name pattern is not one of them."""
    pattern = re.compile(re.escape(path.stem) + "-([1-9][0-9]*)" + re.escape(path.suffix))
    try:
        beside = list(path.parent.iterdir())
    except OSError:  # the export itself wrote there: a folder we may not list has no parts
        return []
    numbered = [(int(m[1]), p) for p in beside if (m := pattern.fullmatch(p.name))]
    return [p for n, p in sorted(numbered) if n > parts and _is_export_part(p)]


def _is_export_part(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with path.open("rb") as file:
            return file.read(len(_PART_START)) == _PART_START
    except OSError:
        return False


def remove_stale_parts(path: Path, parts: int) -> list[Path]:
    """Remove `stale_parts(path, parts)`, which a reader would take for the rest of this
    export; returns them. Raises MentionwatchError naming one that could not be removed."""
    removed: list[Path] = []
    for part in stale_parts(path, parts):
        try:
            part.unlink()
        except FileNotFoundError:  # someone else removed it
            continue
        except OSError as exc:
            raise MentionwatchError(
                f"Cannot remove {part}, a part of an earlier export to {path} that is not "
                f"part of this one: {exc.strerror}.",
                hint="Remove it by hand, or a reader may take it for the rest of this "
                "export.") from None
        removed.append(part)
    return removed


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _terms(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def iter_mention_records(
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    sources: Sequence[str] = (),
) -> Iterator[dict[str, Any]]:
    """Yield one dict per mention (keys = EXPORT_COLUMNS), oldest first, streamed.

    Raises StoreError if the database cannot be read.
    """
    query = _chosen(
        select(Mention, Source.name, Source.kind, Author.display_name, Author.followers,
               Author.verified, Author.profile_url)
        .join(Source, Source.id == Mention.source_id)
        .outerjoin(Author, Author.id == Mention.author_id)
        # The author and source come from the explicit join; skip the model's eager joins.
        .options(lazyload(Mention.source), lazyload(Mention.author))
        .order_by(Mention.created_at, Mention.id)
        .execution_options(yield_per=_BATCH), since, until, sources)
    with store.session(readonly=True) as session:
        for m, source, kind, name, followers, verified, profile in session.execute(query):
            yield {
                "id": m.id, "source": source, "source_kind": kind,
                "external_id": m.external_id, "kind": m.kind, "url": m.url,
                "canonical_url": m.canonical_url, "created_at": _iso(m.created_at),
                "fetched_at": _iso(m.fetched_at), "author_handle": m.author_handle,
                "author_name": name, "author_followers": followers,
                "author_verified": verified, "author_profile_url": profile,
                "title": m.title, "text": m.text, "language": m.language, "likes": m.likes,
                "reposts": m.reposts, "replies": m.replies,
                "conversation_id": m.conversation_id, "in_reply_to_id": m.in_reply_to_id,
                "is_reply_to_brand": m.is_reply_to_brand,
                "matched_terms": _terms(m.matched_terms), "flag": m.flag,
                "priority": m.priority, "sentiment": m.sentiment, "status": m.status,
                "assigned_to": m.assigned_to, "snoozed_until": _iso(m.snoozed_until),
                "first_response_at": _iso(m.first_response_at),
            }
            session.expunge(m)


def count_mention_records(store: Store, *, since: datetime | None = None,
                          until: datetime | None = None, sources: Sequence[str] = ()) -> int:
    """How many mentions `iter_mention_records` yields for the same choice, now."""
    query = _chosen(select(func.count()).select_from(Mention)
                    .join(Source, Source.id == Mention.source_id), since, until, sources)
    with store.session(readonly=True) as session:
        return int(session.scalar(query) or 0)


def _chosen(query: S, since: datetime | None, until: datetime | None,
            sources: Sequence[str]) -> S:
    """`query` narrowed to mentions created in [since, until] on `sources` (all if empty)."""
    if since is not None:
        query = query.where(Mention.created_at >= since)
    if until is not None:
        query = query.where(Mention.created_at <= until)
    if sources:
        query = query.where(Source.name.in_(list(sources)))
    return query


def csv_cell(column: str, value: Any, *, formula_guard: bool = True,
             excel: bool = False) -> str:
    """The CSV text of one value: lists joined by "; ", booleans true/false, None empty.

    With `formula_guard`, user text starting like a formula gets a leading apostrophe so a
    spreadsheet shows it instead of running it (CSV injection). With `excel`, text longer
    than an Excel cell holds is cut to fit (`fit_excel_cell`), the apostrophe counted.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = "; ".join(value)
    text = str(value)
    if formula_guard and column in USER_TEXT_COLUMNS and text.startswith(_FORMULA_START):
        text = "'" + text
    return fit_excel_cell(text) if excel else text


def fit_excel_cell(text: str) -> str:
    """`text` if an Excel cell holds it, else its start and a note that it was cut, together
    EXCEL_CELL_LIMIT UTF-16 code units at most. The cut never splits a character, nor a
    grapheme (an emoji sequence, a letter and its accent)."""
    if len(text) <= EXCEL_CELL_LIMIT // 2:  # fits even if every character took two units
        return text
    units = utf16_units(text)
    if units <= EXCEL_CELL_LIMIT:
        return text
    note = (f"… [cut to fit an Excel cell ({EXCEL_CELL_LIMIT:,} characters); the text has "
            f"{units:,}: export without --excel for all of it]")
    head = _utf16_prefix(text, EXCEL_CELL_LIMIT - utf16_units(note))
    last = regex.search(r"\X\Z", head)
    if last is not None:
        whole = _GRAPHEME.match(text, last.start())
        if whole is not None and whole.end() > len(head):  # the cut falls inside it
            head = head[: last.start()]
    return head + note


def utf16_units(text: str) -> int:
    """The length of `text` as Excel (and JavaScript) count it: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _utf16_prefix(text: str, units: int) -> str:
    """The longest start of `text` that is at most `units` UTF-16 code units."""
    low, high = 0, min(len(text), units)
    while low < high:
        middle = (low + high + 1) // 2
        if utf16_units(text[:middle]) <= units:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def write_csv(records: Iterator[dict[str, Any]], out: IO[str], *,
              formula_guard: bool = True, excel: bool = False) -> int:
    """Write a header and one row per record; returns the number of rows.

    `excel` writes the flavour Excel reads right: a byte-order mark first, so it reads the
    file as UTF-8 (accents, emoji), and cells cut to what an Excel cell holds.
    """
    if excel:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for record in records:
        writer.writerow([csv_cell(c, record[c], formula_guard=formula_guard, excel=excel)
                         for c in EXPORT_COLUMNS])
        n += 1
    return n


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[str]) -> int:
    """Write one JSON object per line (keys in EXPORT_COLUMNS order); returns the count."""
    n = 0
    for record in records:
        out.write(json.dumps({c: record[c] for c in EXPORT_COLUMNS}, ensure_ascii=False))
        out.write("\n")
        n += 1
    return n
