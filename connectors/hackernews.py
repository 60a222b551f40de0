"""Hacker News, read-only, through the public Algolia search API (hn.algolia.com/api).

`search_by_date` returns stories and comments newest first, 0-based `page`s of `hitsPerPage`
hits. Each configured query keeps its own cursor: the newest `created_at_i` seen plus the ids
seen at that very second, so the next pass asks for `created_at_i>=N` and skips those ids
(a strict `>` would lose a second post made in the same second on a later page).
Nothing can be posted: the TUI offers "open link" and "mark replied elsewhere".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import Field, field_validator

from mentionwatch.config import config_duration, validate_http_url
from mentionwatch.connector import (
    AuthorIn,
    Batch,
    ConnectorContext,
    ConnectorSettings,
    MentionIn,
    PostResult,
    StoredMentionRef,
    UnreadableItems,
    retry_after,
)
from mentionwatch.durations import parse_duration
from mentionwatch.errors import AuthFailed, BadResponse, RateLimited, SendError, Transient
from mentionwatch.text import clean_text

ITEM_URL = "https://news.ycombinator.com/item?id={id}"
USER_URL = "https://news.ycombinator.com/user?id={id}"


class HackerNewsSettings(ConnectorSettings):
    """`queries` default to the brand terms (without '@'/'#'); `tags` is Algolia's filter."""

    queries: list[str] = []
    tags: str = "(story,comment)"
    hits_per_page: int = Field(default=100, ge=1, le=1000)
    #: Pages read per query per pass; more waits for the next pass (the cursor keeps up).
    max_pages: int = Field(default=5, ge=1, le=50)
    #: How far back the very first pass reads when there is no cursor yet.
    first_lookback: str = "1d"
    api_url: str = "https://hn.algolia.com/api/v1"

    _check_url = field_validator("api_url")(validate_http_url)

    @field_validator("first_lookback", mode="before")
    @classmethod
    def _duration_ok(cls, value: object) -> object:
        config_duration(value)  # with its unit, as every duration in the config
        return value


class HackerNewsConnector:
    """Stories and comments that name the brand, found with Algolia's HN search."""

    kind: ClassVar[str] = "hackernews"
    platform: ClassVar[str] = "hackernews"
    Settings: ClassVar[type[ConnectorSettings]] = HackerNewsSettings
    can_reply: ClassVar[bool] = False
    can_send_private: ClassVar[bool] = False
    reply_limit: ClassVar[int | None] = None
    default_interval: ClassVar[int] = 10 * 60
    # Algolia matches words anywhere (URL, author); the brand matcher still checks the text.
    prefiltered: ClassVar[bool] = False

    def __init__(self, settings: HackerNewsSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context
        self._own_client = context.http is None
        self.http = context.http or httpx.Client(timeout=context.poll.timeout.total_seconds())

    def queries(self) -> list[str]:
        if self.settings.queries:
            return list(dict.fromkeys(self.settings.queries))
        terms = (t.strip().lstrip("@#").strip() for t in self.context.brand.terms)
        return list(dict.fromkeys(t for t in terms if t))

    # ------------------------------------------------------------------ reading

    def fetch(self, cursor: str | None) -> Batch:
        """Read every query's new hits. Raises RateLimited, Transient, BadResponse."""
        state = _load_cursor(cursor)
        mentions: dict[str, MentionIn] = {}
        notes: list[str] = []
        requests = 0
        next_state: dict[str, Any] = {}
        unreadable = UnreadableItems(self.context.source.name)

        def to_mention(hit: Mapping[str, Any]) -> MentionIn | None:
            return unreadable.read(hit.get("objectID"), lambda: self._to_mention(hit))

        for query in self.queries():
            saved = state.get(query)
            since, seen = self._start(saved)
            budget = self.settings.max_pages
            # 1. What is new since the cursor, newest first.
            page_hits, exhausted, oldest, used = self._read(query, since, None, budget)
            requests += used
            budget -= used
            newest, newest_ids = since, set(seen)
            for hit in page_hits:
                mention = to_mention(hit)
                if mention is None or (hit.get("created_at_i") == since
                                       and mention.external_id in seen):
                    continue
                mentions.setdefault(mention.external_id, mention)
                created = int(hit["created_at_i"])
                if created > newest:
                    newest, newest_ids = created, {mention.external_id}
                elif created == newest:
                    newest_ids.add(mention.external_id)
            # A backlog longer than the page budget leaves a gap [since, oldest read]: it is
            # remembered and read in later passes, never skipped.
            gaps: list[list[int]] = []
            if not exhausted and oldest is not None:
                gaps.extend(_split_gap(since, oldest))
            old_gaps = saved.get("gaps", []) if isinstance(saved, Mapping) else []
            for gap in old_gaps:
                lower, upper = gap[0], gap[1]
                first = gap[2] if len(gap) > 2 else 0
                if budget <= 0:
                    gaps.append(list(gap))
                    continue
                gap_hits, done, gap_oldest, used = self._read(query, lower, upper, budget,
                                                              first_page=first)
                requests += used
                budget -= used
                for hit in gap_hits:
                    mention = to_mention(hit)
                    if mention is not None:
                        mentions.setdefault(mention.external_id, mention)
                if not done and gap_oldest is not None:
                    if gap_oldest > lower:
                        gaps.extend(_split_gap(lower, gap_oldest))
                    else:  # one second with more hits than a pass reads: page on
                        gaps.append([lower, upper, first + used])
            if gaps:
                notes.append(f"{query!r}: backlog longer than {self.settings.max_pages} pages; "
                             "the rest is read in the next passes")
            next_state[query] = {"created_at_i": newest, "ids": sorted(newest_ids)}
            if gaps:
                next_state[query]["gaps"] = gaps
        notes += unreadable.notes()
        return Batch(list(mentions.values()), next_cursor=json.dumps(next_state, sort_keys=True),
                     requests=requests, notes=notes)

    def _start(self, saved: Any) -> tuple[int, list[str]]:
        if self.context.since is not None:
            return int(self.context.since.timestamp()), []
        if isinstance(saved, Mapping) and isinstance(saved.get("created_at_i"), int):
            ids = saved.get("ids") or []
            return saved["created_at_i"], [str(i) for i in ids]
        start = datetime.now(UTC) - parse_duration(self.settings.first_lookback)
        return max(0, int(start.timestamp())), []

    def _read(self, query: str, lower: int, upper: int | None, budget: int,
              first_page: int = 0) -> tuple[list[dict[str, Any]], bool, int | None, int]:
        """Hits with lower <= created_at_i (< upper), newest first, up to `budget` pages.
        Returns the hits, whether the range was read to its end, the oldest time read, and
        the number of requests made."""
        hits: list[dict[str, Any]] = []
        oldest: int | None = None
        for used, page in enumerate(range(first_page, first_page + budget), start=1):
            data = self._search(query, lower, page, upper)
            page_hits = [h for h in data["hits"] if isinstance(h, dict)]
            hits.extend(page_hits)
            times = [h["created_at_i"] for h in page_hits
                     if isinstance(h.get("created_at_i"), int)]
            if times:
                oldest = min(times) if oldest is None else min(oldest, *times)
            if page + 1 >= int(data.get("nbPages") or 0) or not page_hits:
                return hits, True, oldest, used
        return hits, False, oldest, budget

    def _search(self, query: str, since: int, page: int, before: int | None = None
                ) -> dict[str, Any]:
        url = self.settings.api_url.rstrip("/") + "/search_by_date"
        numeric = f"created_at_i>={since}" + (f",created_at_i<{before}" if before else "")
        params = {
            "query": query,
            "tags": self.settings.tags,
            "numericFilters": numeric,
            "hitsPerPage": str(self.settings.hits_per_page),
            "page": str(page),
        }
        try:
            response = self.http.get(url, params=params)
        except httpx.TimeoutException:
            raise Transient("Hacker News search timed out.") from None
        except httpx.TransportError as exc:
            raise Transient(f"Hacker News search: connection failed ({exc}).") from None
        _raise_for_status(response)
        try:
            data = response.json()
        except ValueError:
            raise BadResponse("Hacker News search answered with invalid JSON.",
                              hint="Check the api_url setting; retrying later may help.") from None
        if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
            raise BadResponse("Hacker News search answered without a 'hits' list.",
                              hint="Check the api_url setting.")
        return data

    def _to_mention(self, hit: Mapping[str, Any]) -> MentionIn | None:
        object_id = hit.get("objectID")
        created_i = hit.get("created_at_i")
        if not object_id or not isinstance(created_i, int):
            return None
        tags = hit.get("_tags") or []
        is_comment = "comment" in tags or hit.get("comment_text") is not None
        author = hit.get("author")
        if is_comment:
            story_title = clean_text(hit.get("story_title"), is_html=False)
            title = f"Re: {story_title}" if story_title else None
            text = clean_text(hit.get("comment_text"))
        else:
            title = clean_text(hit.get("title"), is_html=False) or None
            text = clean_text(hit.get("story_text")) or (title or "")
        story_id = hit.get("story_id")
        parent_id = hit.get("parent_id")
        return MentionIn(
            external_id=str(object_id),
            text=text,
            title=title,
            url=ITEM_URL.format(id=object_id),
            author=AuthorIn(handle=str(author), profile_url=USER_URL.format(id=author))
            if author else None,
            created_at=datetime.fromtimestamp(created_i, UTC),
            likes=int(hit.get("points") or 0),
            replies=int(hit.get("num_comments") or 0),
            conversation_id=str(story_id) if story_id else str(object_id),
            in_reply_to_id=str(parent_id) if parent_id else None,
            kind="comment" if is_comment else "story",
            raw={k: v for k, v in hit.items() if k != "_highlightResult"},
        )

    # ------------------------------------------------------------------ writing

    def reply(self, mention: StoredMentionRef, text: str) -> PostResult:
        raise SendError("Hacker News has no posting API; open the link, reply on "
                        "news.ycombinator.com, then mark the mention replied elsewhere.")

    def send_private(self, mention: StoredMentionRef, text: str) -> PostResult:
        raise SendError("Hacker News has no private messages; contact the author another way "
                        "and mark the mention replied elsewhere.")

    def close(self) -> None:
        if self._own_client:
            self.http.close()


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        raise RateLimited("Hacker News search: rate limited (429).",
                          until=retry_after(response.headers.get("retry-after")),
                          hint="Algolia allows 10,000 requests an hour per IP; poll less often.")
    # A 503 with Retry-After says when the service is back: wait for it, like a 429.
    if status == 503 and (until := retry_after(response.headers.get("retry-after"))):
        raise RateLimited("Hacker News search: unavailable (503), asked to wait.", until=until)
    if status in (401, 403):
        raise AuthFailed(f"Hacker News search refused the request ({status}).",
                         hint="Check the api_url setting; the public API needs no key.")
    if status >= 500:
        raise Transient(f"Hacker News search: server error {status}.")
    raise BadResponse(f"Hacker News search answered {status} {response.reason_phrase}.",
                      hint="Check the queries and tags settings.")


def _split_gap(lower: int, oldest: int) -> list[list[int]]:
    """What is left after reading a range newest-first down to second `oldest`: everything
    before that second, and that second itself (a page may have ended inside it)."""
    rest = [[lower, oldest]] if lower < oldest else []
    return [*rest, [oldest, oldest + 1]]


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
