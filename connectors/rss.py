"""RSS and Atom feeds: fetched with httpx (conditional GET, timeouts, size cap), parsed with
feedparser from bytes (never from a URL: feedparser would fetch without a timeout)."""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx
from pydantic import field_validator

from mentionwatch.config import validate_http_url
from mentionwatch.connector import (
    AuthorIn,
    Batch,
    ConnectorContext,
    ConnectorSettings,
    MentionIn,
    PostResult,
    StoredMentionRef,
    retry_after,
)
from mentionwatch.errors import AuthFailed, BadResponse, RateLimited, SendError, Transient
from mentionwatch.text import clean_text
from mentionwatch.urls import unwrap_redirect

#: Refuse bodies larger than this: a feed is not a download.
MAX_FEED_BYTES = 10 * 1024 * 1024


class FeedSettings(ConnectorSettings):
    url: str

    _check_url = field_validator("url")(validate_http_url)


class RssConnector:
    """Reads one RSS/Atom feed; keeps entries that name the brand (the pipeline filters)."""

    kind: ClassVar[str] = "rss"
    platform: ClassVar[str] = "web"
    Settings: ClassVar[type[ConnectorSettings]] = FeedSettings
    can_reply: ClassVar[bool] = False
    can_send_private: ClassVar[bool] = False
    reply_limit: ClassVar[int | None] = None
    default_interval: ClassVar[int] = 15 * 60
    prefiltered: ClassVar[bool] = False

    def __init__(self, settings: FeedSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context
        self._own_client = context.http is None
        self._base_url = settings.url
        self.http = context.http or httpx.Client(
            timeout=context.poll.timeout.total_seconds(), follow_redirects=True
        )

    # ------------------------------------------------------------------ reading

    def fetch(self, cursor: str | None) -> Batch:
        state = _load_cursor(cursor)
        headers = {"Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, "
                             "text/xml;q=0.8, */*;q=0.5"}
        if state.get("etag"):
            headers["If-None-Match"] = state["etag"]
        if state.get("last_modified"):
            headers["If-Modified-Since"] = state["last_modified"]
        url = self.settings.url
        body, response = self._get(url, headers)
        if response.status_code == 304:
            return Batch([], not_modified=True)
        if not body.strip():
            # feedparser reads nothing as an empty, healthy feed: a feed that starts serving
            # nothing must show as failing, not as a quiet "ok".
            raise BadResponse(f"{host_of(url)}: the feed answered {response.status_code} with "
                              "an empty body.", hint=f"Check that {url} still serves the feed.")
        parsed = feedparser.parse(
            io.BytesIO(body),
            # No content-location: feedparser would also turn a bare <guid>g1</guid> into
            # a URL on our host, and a moved feed would then re-store every entry.
            response_headers={
                "content-type": response.headers.get("content-type", "application/xml"),
            },
        )
        self._base_url = str(response.url)
        entries = parsed.get("entries") or []
        notes: list[str] = []
        if parsed.get("bozo"):
            problem = _describe_bozo(parsed.get("bozo_exception"))
            if not entries and not parsed.get("version"):
                raise BadResponse(f"{host_of(url)}: not a feed ({problem}).",
                                  hint=f"Check that {url} is an RSS or Atom feed URL.")
            if entries:
                notes.append(f"feed is malformed ({problem}); {len(entries)} entries read anyway")
        mentions = [self._to_mention(entry, parsed.get("feed", {})) for entry in entries]
        next_state = {
            "etag": response.headers.get("etag"),
            "last_modified": response.headers.get("last-modified"),
        }
        return Batch(mentions, next_cursor=json.dumps(next_state, sort_keys=True), notes=notes)

    def _get(self, url: str, headers: dict[str, str]) -> tuple[bytes, httpx.Response]:
        host = host_of(url)
        try:
            with self.http.stream("GET", url, headers=headers) as response:
                if response.status_code == 304:
                    return b"", response
                _raise_for_status(response, url)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_FEED_BYTES:
                        raise BadResponse(
                            f"{host}: feed is larger than {MAX_FEED_BYTES // 1024 // 1024} MB; "
                            "refusing to read it."
                        )
                    chunks.append(chunk)
                return b"".join(chunks), response
        except httpx.TimeoutException as exc:
            raise Transient(f"{_failed_host(exc, host)}: timed out fetching the feed.") from None
        except httpx.TooManyRedirects:
            raise BadResponse(f"{host}: too many redirects.") from None
        except httpx.DecodingError as exc:
            raise BadResponse(f"{host}: could not decode the response ({exc}).") from None
        except httpx.TransportError as exc:
            raise Transient(f"{_failed_host(exc, host)}: connection failed "
                            f"({type(exc).__name__}: {exc}).") from None
        except httpx.StreamError as exc:
            raise Transient(f"{host}: connection failed ({type(exc).__name__}: {exc}).") from None
        except httpx.InvalidURL as exc:
            raise BadResponse(f"{url!r} is not a valid URL ({exc}).") from None

    def _to_mention(self, entry: Mapping[str, Any], feed: Mapping[str, Any]) -> MentionIn:
        link = self._entry_link(entry)
        title = clean_text(entry.get("title"))
        summary = _entry_body(entry)
        text = clean_text(summary) or title
        detail = entry.get("author_detail") or {}
        # "jo@example.net (Jo)" in RSS: the name is what a person recognises. An item without
        # an author has none: the feed's title or site is not who wrote it, and as one author
        # for every item it made each complaint in the feed a "repeat complainer".
        author = clean_text(detail.get("name")) or clean_text(entry.get("author"))
        return MentionIn(
            external_id=_entry_id(entry, link, title),
            text=text,
            title=title or None,
            url=link,
            author=AuthorIn(handle=author[:300]) if author else None,
            created_at=_entry_time(entry),
            language=(feed.get("language") or None),
            kind="article",
            raw=_jsonable(dict(entry)),
        )

    def _entry_link(self, entry: Mapping[str, Any]) -> str | None:
        link = entry.get("link")
        if not link:
            return None
        # Relative links are resolved against the URL the feed was served from.
        try:
            return unwrap_redirect(urljoin(self._base_url, str(link)))
        except ValueError:  # a malformed link is kept as the feed wrote it
            return str(link)

    # ------------------------------------------------------------------ writing

    def reply(self, mention: StoredMentionRef, text: str) -> PostResult:
        raise SendError("Feeds cannot be answered from mentionwatch; open the link and reply "
                        "there, then mark it replied elsewhere.")

    def send_private(self, mention: StoredMentionRef, text: str) -> PostResult:
        return self.reply(mention, text)

    def close(self) -> None:
        if self._own_client:
            self.http.close()


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    host = host_of(url)
    reason = response.reason_phrase or ""
    if status in (401, 403):
        raise AuthFailed(f"{host}: the feed answered {status} {reason}.",
                         hint=f"Check that {url} is public or that the URL is right.")
    if status == 429:
        raise RateLimited(f"{host}: rate limited (429).",
                          until=retry_after(response.headers.get("retry-after")))
    # A 503 with Retry-After says when the server is back: wait for it, like a 429.
    if status == 503 and (until := retry_after(response.headers.get("retry-after"))):
        raise RateLimited(f"{host}: server unavailable (503), asked to wait.", until=until)
    if status >= 500:
        raise Transient(f"{host}: server error {status} {reason}.")
    raise BadResponse(f"{host}: the feed answered {status} {reason}.",
                      hint=f"Check the url setting ({url}).")


def _failed_host(exc: httpx.RequestError, host: str) -> str:
    """The host whose request failed: after a redirect, not the one in the url setting."""
    try:
        failed = host_of(str(exc.request.url))
    except RuntimeError:  # no request attached
        return host
    return failed if failed == host else f"{failed} (redirected from {host})"


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


def _describe_bozo(exc: Any) -> str:
    if exc is None:
        return "unknown problem"
    text = str(exc).strip() or type(exc).__name__
    return clean_text(text, is_html=False)[:200]


def _entry_body(entry: Mapping[str, Any]) -> str:
    for content in entry.get("content") or []:
        value = content.get("value")
        if value:
            return str(value)
    return str(entry.get("summary") or "")


def _entry_id(entry: Mapping[str, Any], link: str | None, title: str) -> str:
    ident = entry.get("id") or entry.get("guid") or link
    if ident:
        return str(ident)[:300]
    # No id and no link: the entry's content is all that identifies it.
    digest = hashlib.sha256(f"{title}\n{entry.get('summary', '')}".encode()).hexdigest()
    return f"sha256:{digest}"


def _entry_time(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                when = datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
            return when
    return None


def _jsonable(value: Any) -> Any:
    """feedparser's result as plain JSON data (struct_time becomes an ISO string)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not isinstance(value, time.struct_time):
        return [_jsonable(v) for v in value]
    if isinstance(value, time.struct_time):
        return datetime.fromtimestamp(calendar.timegm(value), UTC).isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
