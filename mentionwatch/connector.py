"""The contract between the core and every source connector.

A connector knows its source's API and nothing of rules or storage. It takes a cursor and
returns a `Batch` of normalised `MentionIn` records plus the next cursor; it takes approved
text and posts it. It raises the typed `SourceError`s from `mentionwatch.errors`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict

from mentionwatch.config import BrandConfig, PollConfig, SourceConfig

log = logging.getLogger(__name__)
R = TypeVar("R")

#: What normalising one item of an unexpected shape raises: a list where a number belongs, a
#: time beyond the calendar, a missing key.
UNREADABLE = (AttributeError, IndexError, KeyError, OverflowError, TypeError, ValueError)


class ConnectorSettings(BaseModel):
    """Base for a connector's own settings in its `[[sources]]` entry: unknown keys rejected,
    values not coerced ("5" is not a page count, "yes" not a boolean), as in the rest of the
    config (see `mentionwatch.config.StrictModel`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True, slots=True)
class AuthorIn:
    """An author as the source describes them."""

    handle: str
    display_name: str | None = None
    followers: int | None = None
    verified: bool | None = None
    profile_url: str | None = None
    external_id: str | None = None


@dataclass(slots=True)
class MentionIn:
    """One normalised post from a source, before storage.

    `text` must already be plain (see `mentionwatch.text.clean_text`); `raw` is the source's
    payload as JSON-able data.
    """

    external_id: str
    text: str
    url: str | None = None
    title: str | None = None
    author: AuthorIn | None = None
    created_at: datetime | None = None
    language: str | None = None
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    conversation_id: str | None = None
    in_reply_to_id: str | None = None
    is_reply_to_brand: bool = False
    kind: str = "post"
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: Brand terms found in the text; filled by the pipeline.
    matched_terms: tuple[str, ...] = ()


@dataclass(slots=True)
class Batch:
    """What one fetch returns: new mentions and the cursor to store with them.

    `next_cursor` is None when the cursor should stay as it was. `not_modified` is True when
    the source said nothing changed (HTTP 304). `requests` counts calls made, for budgets.
    """

    mentions: list[MentionIn]
    next_cursor: str | None = None
    not_modified: bool = False
    requests: int = 1
    notes: list[str] = field(default_factory=list)
    #: Items the source charged for (paid read budgets); None means `len(mentions)`. Set it
    #: when the connector drops items it read (retweets, the brand's own posts).
    items_read: int | None = None
    #: Connector state to store with the batch (`sources.state`: what it learned of the
    #: source, such as an instance's length limit); None keeps the stored state.
    state: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PostResult:
    """What a successful reply or private message created at the source."""

    external_id: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """Everything a connector may use besides its own settings."""

    source: SourceConfig
    brand: BrandConfig
    poll: PollConfig
    environ: Mapping[str, str]
    http: httpx.Client | None = None
    since: datetime | None = None
    #: The connector state stored with the source's last batch (see `Batch.state`).
    state: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StoredMentionRef:
    """What a connector needs to answer a stored mention."""

    external_id: str
    url: str | None
    author_handle: str | None
    author_external_id: str | None
    conversation_id: str | None
    kind: str
    raw: Mapping[str, Any]


@runtime_checkable
class Connector(Protocol):
    """Implemented by every module under `connectors/` and registered as an entry point."""

    kind: ClassVar[str]
    Settings: ClassVar[type[ConnectorSettings]]
    #: Whether `reply` / `send_private` work for this kind (feeds: no).
    can_reply: ClassVar[bool]
    can_send_private: ClassVar[bool]
    #: Public reply length limit, in the source's own counting; None when not applicable.
    #: A connector whose source counts otherwise than by characters also has a static
    #: `reply_length(text) -> int` (X: weighted; Bluesky: graphemes; Mastodon: links as 23).
    #: One that posts more than the approved text has a static
    #: `reply_as_posted(text, mention) -> str` (Mastodon: the `@author ` it adds), and one
    #: whose limit differs per source a static `reply_limit_for(state) -> int | None` (the
    #: limit its last batch stored, see `Batch.state`). `rules_engine.measure_reply` uses all
    #: three, so approval, the TUI and `rules check` count as the source will.
    reply_limit: ClassVar[int | None]
    #: Default poll interval in seconds when the source gives none.
    default_interval: ClassVar[int]

    def __init__(self, settings: Any, context: ConnectorContext) -> None: ...

    def fetch(self, cursor: str | None) -> Batch:
        """Read what is new since `cursor`. Raises SourceError subclasses on failure."""
        ...

    def reply(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Post a public reply. Raises SendError / SourceError."""
        ...

    def send_private(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Send a private follow-up to the author. Raises SendError / SourceError."""
        ...

    def close(self) -> None: ...


class UnreadableItems:
    """The items of one pass that could not be normalised. One odd item costs only itself:
    it is skipped with a warning and a note, the others are stored and the cursor moves on
    (failing the pass instead would fail every later pass on the same item)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.count = 0

    def read(self, item_id: object, convert: Callable[[], R]) -> R | None:
        """`convert()`, or None (counted and logged) when the item is not in a readable shape."""
        try:
            return convert()
        except UNREADABLE as exc:
            self.count += 1
            # ascii(): the id comes from the source and must not carry escapes into a log.
            log.warning("source %s: skipped item %s: not in a shape mentionwatch can read "
                        "(%s)", self.source, ascii(str(item_id))[:100], type(exc).__name__)
            return None

    def notes(self) -> list[str]:
        if not self.count:
            return []
        return [f"{self.count} item(s) in a shape mentionwatch cannot read skipped"]


def retry_after(value: str | float | None, *, now: datetime | None = None) -> datetime | None:
    """When a Retry-After value says to try again, in UTC: a number of seconds (the header, or
    a library's reading of it) or an HTTP date.

    None when absent or unreadable, negative, or beyond the calendar (`999999999999`): such a
    header is treated as not sent. A far but valid time is returned as it is; the pipeline
    caps how long a source is skipped (`health.MAX_RATE_LIMIT_WAIT`)."""
    if value is None or isinstance(value, bool):
        return None
    now = now or datetime.now(UTC)
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    try:
        return now + timedelta(seconds=seconds)
    except OverflowError:
        return None
