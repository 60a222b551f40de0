"""Bluesky, through the `atproto` SDK: `app.bsky.feed.searchPosts` for the brand terms (sort
latest, `since`, cursor paging) and the brand account's notifications (mentions, replies,
quotes). Authors' follower counts come from one batched `getProfiles` call per 25 authors,
cached for the connector's life.

The cursor keeps, per search, the newest `sortAt` seen (the earlier of a post's `createdAt`
and `indexedAt`: what searchPosts sorts and filters `since` on) and, for notifications, the
newest `indexedAt`. A search passes its cursor less `lookback_seconds` as `since` (inclusive:
posts come back a few times and the store's dedup absorbs them), because the search index
takes posts in late; notification paging stops at the first notification not newer than it.

Writing: a reply record with `root` and `parent` strong refs (uri + cid; the root is the
thread's root when the mention is itself a reply), within 300 graphemes; a private follow-up
through chat.bsky (the app password must allow DMs; an author who does not accept messages
from us gets a clear SendError).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import platformdirs
import regex
from atproto import Client
from atproto_client import exceptions as atx
from atproto_client.request import Request
from atproto_core.exceptions import AtProtocolError
from pydantic import BaseModel, Field, field_validator

from mentionwatch.config import read_secret, validate_http_url
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
from mentionwatch.deadlines import BODY_DEADLINE_FACTOR, body_deadline
from mentionwatch.errors import (
    AuthFailed,
    BadResponse,
    RateLimited,
    SendError,
    SendUnconfirmed,
    SourceError,
    Transient,
)
from mentionwatch.text import clean_text

#: Bluesky's post limit, in graphemes.
MAX_GRAPHEMES = 300
#: A chat message's limit (chat.bsky.convo.defs#messageInput: 1,000 graphemes).
DM_GRAPHEMES = 1000
NOTIFICATION_REASONS = ("mention", "reply", "quote")
T = TypeVar("T")


_GRAPHEME = regex.compile(r"\X")
log = logging.getLogger(__name__)


class BlueskySettings(ConnectorSettings):
    #: The brand account's handle (or DID).
    handle: str = Field(min_length=1)
    #: Names the environment variable holding an app password (not the account password).
    app_password_env: str = Field(min_length=1)
    #: The account's PDS (entryway); other PDSes and tests set their own.
    service_url: str = "https://bsky.social"
    #: Search queries; default: the brand terms.
    queries: list[str] = []
    notifications: bool = True
    page_size: int = Field(default=100, ge=1, le=100)
    max_pages: int = Field(default=5, ge=1, le=50)
    #: Fetch authors' profiles (followers) with getProfiles.
    fetch_profiles: bool = True
    #: Search again this far behind the newest post seen: a post made just before it can
    #: reach the search index after the pass, and would be older than `since` then.
    lookback_seconds: int = Field(default=300, ge=0, le=86400)

    _check_url = field_validator("service_url")(validate_http_url)


class BlueskyConnector:
    """Search hits and notifications for one Bluesky account."""

    kind: ClassVar[str] = "bluesky"
    platform: ClassVar[str] = "bluesky"
    Settings: ClassVar[type[ConnectorSettings]] = BlueskySettings
    can_reply: ClassVar[bool] = True
    can_send_private: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = MAX_GRAPHEMES

    @staticmethod
    def reply_length(text: str) -> int:
        """A reply's length as Bluesky counts it against `reply_limit`."""
        return grapheme_count(text)

    #: A private follow-up is a chat message, counted in graphemes as a reply is.
    private_limit: ClassVar[int | None] = DM_GRAPHEMES
    private_length = reply_length
    default_interval: ClassVar[int] = 5 * 60
    # Search terms and notifications are aimed at the brand already.
    prefiltered: ClassVar[bool] = True

    def __init__(self, settings: BlueskySettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context
        # [poll] timeout, as for every other source (atproto's own default is 5 s), and the
        # same deadline on each whole answer.
        timeout = context.poll.timeout.total_seconds()
        self.client = Client(base_url=settings.service_url.rstrip("/") + "/xrpc",
                             request=Request(timeout=httpx.Timeout(
                                 timeout, connect=min(timeout, 10.0)), event_hooks={
                                 "response": [body_deadline(timeout * BODY_DEADLINE_FACTOR)]}))
        self._password = read_secret(settings.app_password_env, context.environ)
        if not self._password:
            raise AuthFailed("Bluesky: no app password.",
                             hint="Set the environment variable named by app_password_env "
                             f"(${settings.app_password_env}).")
        self._did: str | None = None
        self._from_cache = False
        self._profiles: dict[str, dict[str, Any]] = {}
        # Tokens refreshed during calls are saved for the next pass or process.
        self.client.on_session_change(self._save_session)

    def __repr__(self) -> str:  # never show the password
        return f"BlueskyConnector(handle={self.settings.handle!r})"

    # ------------------------------------------------------------------ session

    def _login(self) -> str:
        """Sign in once per connector, reusing a saved session when there is one.

        Bluesky rate-limits createSession hard (about 30 per 5 minutes, 300 a day), so a
        poller that signed in on every pass would lock itself out: the session (access and
        refresh tokens) is kept in a 0600 file in the user cache dir, never in the database
        or logs, and refreshed sessions are saved again."""
        if self._did is not None:
            return self._did
        cached = session_cache_read(self.settings.service_url, self.settings.handle)
        if cached:
            try:
                self.client.login(session_string=cached, fetch_bsky_profile=False)
                self._from_cache = True
            except (AtProtocolError, ValueError):
                cached = None
        if not cached:
            self._password_login()
        session = self.client._session
        self._did = str(session.did) if session is not None else self.settings.handle
        return self._did

    def _password_login(self) -> None:
        try:
            self.client.login(self.settings.handle, self._password, fetch_bsky_profile=False)
        except atx.UnauthorizedError as exc:
            raise AuthFailed(
                f"Bluesky refused the login for {self.settings.handle} ({_detail(exc)}).",
                hint=f"Check the app password in ${self.settings.app_password_env} "
                "(setting app_password_env) and the handle.",
            ) from None
        except (AtProtocolError, ValueError) as exc:
            raise self._source_error(exc) from None
        self._from_cache = False
        self._save_session()

    def _save_session(self, *_event: Any) -> None:
        try:
            session_cache_write(self.settings.service_url, self.settings.handle,
                                self.client.export_session_string())
        except (OSError, ValueError, AttributeError):
            # Only a cache: without it we sign in again next time.
            log.debug("could not save the Bluesky session", exc_info=False)

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (atx.UnauthorizedError, atx.BadRequestError) as exc:
            if not self._from_cache or not _is_expired_session(exc):
                raise self._source_error(exc) from None
        except (AtProtocolError, ValueError) as exc:
            raise self._source_error(exc) from None
        # The saved session ran out (refresh token expired or revoked): sign in once more.
        session_cache_forget(self.settings.service_url, self.settings.handle)
        self._password_login()
        try:
            return fn()
        except (AtProtocolError, ValueError) as exc:
            raise self._source_error(exc) from None

    def _source_error(self, exc: Exception) -> SourceError:
        if isinstance(exc, atx.RateLimitExceededError):
            try:
                until = exc.reset_at
            except (OverflowError, ValueError, OSError):  # beyond the calendar: as if not sent
                until = None
            if until is None:
                until = retry_after(exc.retry_after)
            return RateLimited("Bluesky: rate limited (429).", until=until)
        if isinstance(exc, atx.UnauthorizedError):
            return AuthFailed(f"Bluesky refused the request ({_detail(exc)}).",
                              hint=f"Check the app password in ${self.settings.app_password_env}"
                              " (setting app_password_env).")
        if isinstance(exc, atx.NetworkError):
            return Transient(f"Bluesky: connection failed or busy ({_detail(exc)}).")
        if isinstance(exc, atx.RequestException):
            response = exc.response
            if response is not None and response.status_code >= 500:
                return Transient(f"Bluesky: server error {response.status_code}.")
            return BadResponse(f"Bluesky answered {_detail(exc)}.")
        if isinstance(exc, atx.BadRequestError):
            return BadResponse(f"Bluesky rejected the request ({_detail(exc)}).",
                               hint="Check the queries and service_url settings.")
        return BadResponse(f"Bluesky: unreadable answer ({type(exc).__name__}).",
                           hint="Check that service_url points at a Bluesky PDS.")

    # ------------------------------------------------------------------ reading

    def queries(self) -> list[str]:
        return list(dict.fromkeys(self.settings.queries or self.context.brand.terms))

    def fetch(self, cursor: str | None) -> Batch:
        """Read new search hits and notifications.

        Raises AuthFailed, RateLimited, Transient, BadResponse; the cursor is not advanced."""
        state = _load_cursor(cursor)
        me = self._login()
        requests = 1
        posts: dict[str, tuple[dict[str, Any], str]] = {}
        notes: list[str] = []
        next_state = {k: v for k, v in state.items() if isinstance(v, str)}
        for query in self.queries():
            key = f"search:{query}"
            hits, newest, calls, complete = self._search(query, state.get(key))
            requests += calls
            for post in hits:
                posts.setdefault(post["uri"], (post, "post"))
            if newest:
                next_state[key] = newest
            if not complete:
                notes.append(f"{key}: more than {self.settings.max_pages} pages; older posts in "
                             "this gap were skipped")
        if self.settings.notifications:
            notified, newest, calls, complete = self._notifications(state.get("notifications"))
            requests += calls
            for post, reason in notified:
                posts[post["uri"]] = (post, reason)
            if newest:
                next_state["notifications"] = newest
            if not complete:
                notes.append("notifications: more pages than max_pages; older ones skipped")
        own = self.context.brand.own_handles(self.platform)
        kept = [(p, k) for p, k in posts.values()
                if p.get("author", {}).get("did") != me
                and str(p.get("author", {}).get("handle", "")).lower() not in own]
        if self.settings.fetch_profiles:
            requests += self._load_profiles(p["author"]["did"] for p, _ in kept)
        unreadable = UnreadableItems(self.context.source.name)
        mentions = [m for p, k in kept
                    if (m := unreadable.read(p.get("uri"),
                                             functools.partial(self._to_mention, p, k, me)))]
        return Batch(mentions, next_cursor=json.dumps(next_state, sort_keys=True),
                     requests=requests, notes=notes + unreadable.notes())

    def _search(self, query: str, since: str | None
                ) -> tuple[list[dict[str, Any]], str | None, int, bool]:
        found: list[dict[str, Any]] = []
        newest = since
        page_cursor: str | None = None
        for page in range(self.settings.max_pages):
            params: dict[str, Any] = {"q": query, "sort": "latest",
                                      "limit": self.settings.page_size}
            if since:
                params["since"] = _behind(since, self.settings.lookback_seconds)
            if page_cursor:
                params["cursor"] = page_cursor
            response: Any = self._call(
                lambda p=params: self.client.app.bsky.feed.search_posts(p))  # type: ignore[misc]
            data = _as_dict(response)
            batch = data.get("posts")
            if not isinstance(batch, list):
                raise BadResponse("Bluesky searchPosts answered without 'posts'.")
            found.extend(batch)
            newest = _max_time(newest, map(_sort_at, batch))
            page_cursor = data.get("cursor")
            # First pass: one page is "now"; do not read the whole history.
            if not page_cursor or not batch or since is None:
                return found, newest, page + 1, True
        return found, newest, self.settings.max_pages, False

    def _notifications(self, since: str | None
                       ) -> tuple[list[tuple[dict[str, Any], str]], str | None, int, bool]:
        found: list[tuple[dict[str, Any], str]] = []
        newest = since
        page_cursor: str | None = None
        for page in range(self.settings.max_pages):
            params: dict[str, Any] = {"limit": self.settings.page_size,
                                      "reasons": list(NOTIFICATION_REASONS)}
            if page_cursor:
                params["cursor"] = page_cursor
            response: Any = self._call(
                lambda p=params: self.client.app.bsky.notification  # type: ignore[misc]
                .list_notifications(p))
            data = _as_dict(response)
            batch = data.get("notifications")
            if not isinstance(batch, list):
                raise BadResponse("Bluesky listNotifications answered without 'notifications'.")
            reached_old = False
            for item in batch:
                when = item.get("indexedAt")
                if since and when and _time(when) <= _time(since):
                    reached_old = True
                    continue
                if item.get("reason") in NOTIFICATION_REASONS and item.get("cid"):
                    found.append((_notification_as_post(item), "mention"))
                newest = _max_time(newest, [when])
            page_cursor = data.get("cursor")
            if reached_old or not page_cursor or not batch or since is None:
                return found, newest, page + 1, True
        return found, newest, self.settings.max_pages, False

    def _load_profiles(self, dids: Iterable[str]) -> int:
        missing = [d for d in dict.fromkeys(dids) if d not in self._profiles]
        calls = 0
        for start in range(0, len(missing), 25):
            chunk = missing[start:start + 25]
            response: Any = self._call(
                lambda c=chunk: self.client.app.bsky.actor  # type: ignore[misc]
                .get_profiles({"actors": c}))
            calls += 1
            for profile in _as_dict(response).get("profiles") or []:
                self._profiles[profile.get("did")] = profile
        return calls

    def _to_mention(self, post: Mapping[str, Any], kind: str, me: str) -> MentionIn:
        author = post.get("author") or {}
        record = post.get("record") or {}
        handle = str(author.get("handle") or author.get("did"))
        profile = self._profiles.get(str(author.get("did")), {})
        reply = record.get("reply") or {}
        root = (reply.get("root") or {}).get("uri")
        parent = (reply.get("parent") or {}).get("uri")
        langs = record.get("langs") or []
        return MentionIn(
            external_id=str(post["uri"]),
            text=clean_text(record.get("text"), is_html=False),
            url=post_url(handle, str(post["uri"])),
            author=AuthorIn(
                handle=handle,
                display_name=clean_text(author.get("displayName"), is_html=False) or None,
                followers=profile.get("followersCount"),
                profile_url=f"https://bsky.app/profile/{handle}",
                external_id=author.get("did"),
            ),
            created_at=_time(record.get("createdAt") or post.get("indexedAt")),
            language=langs[0] if langs else None,
            likes=int(post.get("likeCount") or 0),
            reposts=int(post.get("repostCount") or 0) + int(post.get("quoteCount") or 0),
            replies=int(post.get("replyCount") or 0),
            conversation_id=root or str(post["uri"]),
            in_reply_to_id=parent,
            is_reply_to_brand=bool(parent and parent.startswith(f"at://{me}/")),
            kind=kind,
            raw=dict(post),
        )

    # ------------------------------------------------------------------ writing

    def reply(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Create a reply record with root/parent strong refs. Raises SendError when the
        text is over 300 graphemes or the post cannot be answered."""
        check_length(text)
        raw = mention.raw or {}
        uri, cid = raw.get("uri"), raw.get("cid")
        if not uri or not cid:
            raise SendError("This Bluesky mention has no uri/cid to reply to; open it in the "
                            "app instead.")
        parent = {"uri": uri, "cid": cid}
        existing = ((raw.get("record") or {}).get("reply") or {}).get("root") or {}
        root = ({"uri": existing["uri"], "cid": existing["cid"]}
                if existing.get("uri") and existing.get("cid") else parent)
        me = self._login()
        record = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "reply": {"root": root, "parent": parent},
        }
        try:
            created = self.client.com.atproto.repo.create_record(
                {"repo": me, "collection": "app.bsky.feed.post", "record": record})
        except atx.BadRequestError as exc:
            raise SendError(f"Bluesky refused the reply ({_detail(exc)}).") from None
        except (AtProtocolError, ValueError) as exc:
            raise self._sending_error(exc, "the reply") from None
        data = _as_dict(created)
        return PostResult(external_id=str(data["uri"]),
                          url=post_url(self.settings.handle, str(data["uri"])))

    def send_private(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Send a chat.bsky message to the author. Raises SendError when the author does
        not accept messages from us or the app password lacks DM access."""
        did = mention.author_external_id or (mention.raw.get("author") or {}).get("did")
        if not did:
            raise SendError("This Bluesky mention has no author DID to message.")
        if (graphemes := grapheme_count(text)) > DM_GRAPHEMES:
            raise SendError(f"The message is {graphemes} characters; Bluesky allows "
                            f"{DM_GRAPHEMES}.")
        self._login()
        self._load_profiles([did])
        allow = ((self._profiles.get(did, {}).get("associated") or {}).get("chat") or {}) \
            .get("allowIncoming")
        handle = mention.author_handle or did
        if allow == "none":
            raise SendError(f"@{handle} does not accept direct messages on Bluesky.",
                            hint="Reply publicly and ask them to write to the support email.")
        chat = self.client.with_bsky_chat_proxy()
        sending = False
        try:
            convo = _as_dict(chat.chat.bsky.convo.get_convo_for_members({"members": [did]}))
            convo_id = (convo.get("convo") or {}).get("id")
            if not convo_id:
                raise SendError("Bluesky did not return a conversation for this author.")
            sending = True
            sent = _as_dict(chat.chat.bsky.convo.send_message(
                {"convoId": convo_id, "message": {"text": text}}))
        except atx.BadRequestError as exc:
            raise SendError(
                f"Bluesky would not open a conversation with @{handle} ({_detail(exc)}).",
                hint="They may accept messages only from accounts they follow.") from None
        except atx.UnauthorizedError as exc:
            raise SendError(
                f"Bluesky refused direct messages for this account ({_detail(exc)}).",
                hint="Create an app password with 'Allow access to your direct messages' "
                f"ticked and put it in ${self.settings.app_password_env}.") from None
        except (AtProtocolError, ValueError) as exc:
            if not sending:
                raise self._source_error(exc) from None
            raise self._sending_error(exc, "the message") from None
        return PostResult(external_id=str(sent.get("id")), url=None)

    def _sending_error(self, exc: Exception, what: str) -> SourceError | SendError:
        """A posting call that failed: an error status or a lost connection is a source
        error as usual; anything else came from reading a success answer, so it may have
        been posted."""
        if isinstance(exc, atx.RequestErrorBase):
            return self._source_error(exc)
        return SendUnconfirmed(f"Bluesky took {what} but its answer cannot be read "
                               f"({type(exc).__name__}); it may have gone out.",
                               hint="Check the account before sending again.")

    def close(self) -> None:
        http = getattr(self.client.request, "_client", None)
        if http is not None:
            http.close()


def _session_file(service_url: str, handle: str) -> Path:
    key = hashlib.sha256(f"{service_url.rstrip('/')}|{handle.lower()}".encode()).hexdigest()
    return Path(platformdirs.user_cache_dir("mentionwatch")) / "bluesky" / f"{key[:24]}.session"


def session_cache_read(service_url: str, handle: str) -> str | None:
    path = _session_file(service_url, handle)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def session_cache_write(service_url: str, handle: str, session: str) -> None:
    """Save a session string readable by this user only (0600, folder 0700)."""
    path = _session_file(service_url, handle)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle_:
        handle_.write(session)
    os.replace(tmp, path)


def session_cache_forget(service_url: str, handle: str) -> None:
    _session_file(service_url, handle).unlink(missing_ok=True)


def _is_expired_session(exc: Exception) -> bool:
    text = _detail(exc).lower()
    return isinstance(exc, atx.UnauthorizedError) or "expired" in text or "token" in text


def grapheme_count(text: str) -> int:
    """User-perceived characters as Bluesky counts them: Unicode extended grapheme clusters
    (UAX #29), so a family emoji, a flag or "e" plus a combining accent is one. In ASCII
    every character is one but CR LF, which is one together (the search for clusters costs
    about ten times as much, and every Bluesky draft is counted)."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME.findall(text))


def check_length(text: str) -> None:
    graphemes = grapheme_count(text)
    if graphemes > MAX_GRAPHEMES:
        raise SendError(f"The reply is {graphemes} characters; Bluesky allows {MAX_GRAPHEMES}.",
                        hint="Shorten the draft.")
    if len(text.encode("utf-8")) > 3000:
        raise SendError("The reply is over Bluesky's 3000-byte limit.")


def post_url(handle: str, uri: str) -> str:
    """`at://did/app.bsky.feed.post/rkey` -> `https://bsky.app/profile/<handle>/post/<rkey>`."""
    rkey = uri.rstrip("/").rsplit("/", 1)[-1]
    return f"https://bsky.app/profile/{handle}/post/{rkey}"


def _notification_as_post(item: Mapping[str, Any]) -> dict[str, Any]:
    """A notification carries the post's uri, cid, author and record, but no counts."""
    return {k: item[k] for k in ("uri", "cid", "author", "record", "indexedAt", "labels")
            if k in item} | {"reason": item.get("reason")}


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, dict):
        return value
    raise BadResponse(f"Bluesky: unexpected answer ({type(value).__name__}).")


def _detail(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return clean_text(text, is_html=False)[:200]


def _time(value: Any) -> datetime:
    return _parse_time(value) or datetime.now(UTC)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    """A time as Bluesky writes them: UTC, milliseconds, Z."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sort_at(post: Any) -> str | None:
    """The time searchPosts sorts by and compares `since` with: the earlier of when the post
    says it was made and when it was indexed (a clock ahead cannot push it forward)."""
    if not isinstance(post, Mapping):
        return None
    record = post.get("record")
    created = record.get("createdAt") if isinstance(record, Mapping) else None
    times = [t for t in (_parse_time(post.get("indexedAt")), _parse_time(created)) if t]
    return _iso(min(times)) if times else None


def _behind(since: str, seconds: int) -> str:
    """`since` moved back `seconds` (a value that is not a time is passed on as it is)."""
    when = _parse_time(since)
    try:
        return _iso(when - timedelta(seconds=seconds)) if when else since
    except OverflowError:
        return since


def _max_time(current: str | None, values: Iterable[Any]) -> str | None:
    for value in values:
        if isinstance(value, str) and (current is None or _time(value) > _time(current)):
            current = value
    return current


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
