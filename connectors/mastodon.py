"""Mastodon, through Mastodon.py: the brand account's mention notifications plus hashtag and
full-text search timelines on one instance (one source per instance; configure several
sources for several instances).

Every stream keeps its own newest id in the cursor. A pass asks for `since_id=<cursor>` newest
first and walks back with `max_id` until a short page, so no post between two passes is
skipped (a plain `since_id` request returns only the newest page). Search has no `since_id`;
`min_id` is its lower bound. The very first pass reads one page per stream, not the history.

Writing: a public reply (`in_reply_to_id`, the configured visibility, the author @-mentioned
so they are notified) and a private follow-up, a `direct` post that mentions only the author.
Both carry an `Idempotency-Key`, so a retried call cannot post twice. Length is checked against
the instance's own `max_characters`, counted as Mastodon counts (URLs as 23 characters,
remote mentions by their local part).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import requests
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)
from pydantic import Field, field_validator

from mentionwatch.config import read_secret, validate_http_url
from mentionwatch.connector import (
    AuthorIn,
    Batch,
    ConnectorContext,
    ConnectorSettings,
    MentionIn,
    PostResult,
    StoredMentionRef,
)
from mentionwatch.deadlines import BODY_DEADLINE_FACTOR, bounded_session
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

log = logging.getLogger(__name__)

#: Mastodon's default when the instance does not say (mainline since 1.0).
DEFAULT_MAX_CHARACTERS = 500
#: Mastodon counts every URL as this many characters, whatever its length.
URL_LENGTH = 23
#: Where the instance's limit is kept in the source's state, when it was read, and how
#: long it is trusted.
LIMIT_KEY = "max_characters"
LIMIT_READ_AT_KEY = "max_characters_read_at"
LIMIT_MAX_AGE = timedelta(days=1)
_URL = re.compile(r"https?://\S+")
_MENTION = re.compile(r"(?<![\w/])@([A-Za-z0-9_]+)(?:@([\w-]+(?:\.[\w-]+)*(?::\d+)?))?")


class MastodonSettings(ConnectorSettings):
    api_base_url: str
    #: Names the environment variable holding the access token (scopes: read, write:statuses).
    access_token_env: str = Field(min_length=1)
    #: Read the brand account's mention notifications.
    notifications: bool = True
    #: Hashtag timelines to read, without '#'.
    hashtags: list[str] = []
    #: Full-text status searches (only finds posts the instance indexes for search).
    search: list[str] = []
    #: Visibility of public replies.
    visibility: Literal["public", "unlisted", "private"] = "public"
    page_size: int = Field(default=40, ge=1, le=40)
    max_pages: int = Field(default=5, ge=1, le=50)

    _check_url = field_validator("api_base_url")(validate_http_url)

    @field_validator("hashtags")
    @classmethod
    def _bare_tags(cls, value: list[str]) -> list[str]:
        return [tag.strip().lstrip("#") for tag in value if tag.strip().lstrip("#")]


class MastodonConnector:
    """Mentions of the brand account, hashtags and searches on one Mastodon instance."""

    kind: ClassVar[str] = "mastodon"
    platform: ClassVar[str] = "mastodon"
    Settings: ClassVar[type[ConnectorSettings]] = MastodonSettings
    can_reply: ClassVar[bool] = True
    can_send_private: ClassVar[bool] = True
    #: Mainline default; the instance's own limit is read at the first pass of a day and
    #: stored with the source (`reply_limit_for`), and read again before posting.
    reply_limit: ClassVar[int | None] = DEFAULT_MAX_CHARACTERS

    @staticmethod
    def reply_length(text: str) -> int:
        """A reply's length as Mastodon counts it against the limit (links as 23)."""
        return status_length(text)

    @staticmethod
    def reply_as_posted(text: str, mention: StoredMentionRef) -> str:
        """The public reply as `reply` posts it: `@author ` in front unless the text names
        the author already."""
        return _as_posted(text, _raw_acct(mention) or mention.author_handle or "",
                          mention.author_handle)

    @staticmethod
    def reply_limit_for(state: Mapping[str, Any] | None) -> int | None:
        """The instance's limit as the source's last pass stored it, else Mastodon's 500."""
        limit = (state or {}).get(LIMIT_KEY)
        return limit if isinstance(limit, int) and limit > 0 else DEFAULT_MAX_CHARACTERS

    # A private follow-up is a direct post: counted, prefixed and limited as a reply.
    private_limit: ClassVar[int | None] = DEFAULT_MAX_CHARACTERS
    private_length = reply_length
    private_as_posted = reply_as_posted
    private_limit_for = reply_limit_for
    default_interval: ClassVar[int] = 5 * 60
    # Everything read is aimed at the brand: its notifications, its tags, its searches.
    prefiltered: ClassVar[bool] = True

    def __init__(self, settings: MastodonSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context
        self.host = urlsplit(settings.api_base_url).netloc
        token = read_secret(settings.access_token_env, context.environ)
        if not token:
            raise AuthFailed(
                f"Mastodon ({self.host}): no access token.",
                hint=f"Set the environment variable named by access_token_env "
                f"(${settings.access_token_env}).",
            )
        #: The last answer the server gave, whatever Mastodon.py made of it (see `_post`).
        self._answer: requests.Response | None = None
        timeout = context.poll.timeout.total_seconds()
        session = bounded_session(timeout * BODY_DEADLINE_FACTOR)
        session.hooks["response"].append(self._remember)
        session.hooks["response"].append(_UnreadableReset(self.host))
        self.api = Mastodon(
            access_token=token,
            api_base_url=settings.api_base_url.rstrip("/"),
            # Never sleep inside a poll worker: raise, and let the scheduler skip the source.
            ratelimit_method="throw",
            request_timeout=timeout,
            version_check_mode="none",
            user_agent=context.poll.user_agent or "mentionwatch",
            session=session,
        )
        self._me: Mapping[str, Any] | None = None
        #: The instance's limit once read, and why it could not be when it could not.
        self._max_characters: int | None = None
        self._limit_unread: str | None = None

    # ------------------------------------------------------------------ reading

    def fetch(self, cursor: str | None) -> Batch:
        """Read new mentions, hashtag posts and search hits.

        Raises AuthFailed (token refused), RateLimited, Transient, BadResponse.
        """
        state = _load_cursor(cursor)
        me = self._account()
        requests = 1
        found: dict[str, MentionIn] = {}
        notes: list[str] = []
        next_state: dict[str, str] = {}
        size = self.settings.page_size
        streams: list[tuple[str, str, Callable[..., Any]]] = []
        if self.settings.notifications:
            streams.append(("notifications", "mention", lambda since, max_id: self.api
                            .notifications(types=["mention"], since_id=since, max_id=max_id,
                                           limit=size)))
        for tag in self.settings.hashtags:
            streams.append((f"tag:{tag.lower()}", "post", lambda since, max_id, tag=tag: self.api
                            .timeline_hashtag(tag, since_id=since, max_id=max_id, limit=size)))
        for query in self.settings.search:
            streams.append((f"search:{query}", "post", lambda since, max_id, q=query: self.api
                            .search_v2(q, resolve=False, result_type="statuses", min_id=since,
                                       max_id=max_id, exclude_unreviewed=False, limit=size)))
        for key, kind, call in streams:
            since = state.get(key)
            items, newest, calls, complete = self._walk(call, since)
            requests += calls
            if not complete:
                notes.append(f"{key}: more than {self.settings.max_pages} pages of new posts; "
                             "older ones in this gap were skipped")
            if newest is not None:
                next_state[key] = newest
            for item in items:
                status = item.get("status") if kind == "mention" else item
                if not isinstance(status, Mapping) or status.get("reblog"):
                    continue  # a boost repeats a post; the original is what matters
                mention = self._to_mention(status, kind, me)
                if mention is not None:
                    found.setdefault(mention.external_id, mention)
        # Keep cursors of streams that were removed from or found nothing this pass.
        merged = {k: v for k, v in state.items() if isinstance(v, str)} | next_state
        learned, calls = self._learn_limit(notes)
        return Batch(list(found.values()), next_cursor=json.dumps(merged, sort_keys=True),
                     requests=requests + calls, notes=notes, state=learned)

    def _learn_limit(self, notes: list[str]) -> tuple[dict[str, Any] | None, int]:
        """The instance's length limit for the source's state, read once a day (approval and
        the TUI check replies against it); None when the stored one is recent. A limit
        that cannot be read is noted and the stored one kept."""
        stored = dict(self.context.state or {})
        read_at = _when(stored.get(LIMIT_READ_AT_KEY))
        now = datetime.now(UTC)
        if isinstance(stored.get(LIMIT_KEY), int) and read_at and now - read_at < LIMIT_MAX_AGE:
            return None, 0
        limit = self.max_characters()
        if self._limit_unread is not None:
            kept = self.reply_limit_for(stored)
            notes.append(f"the instance's length limit could not be read "
                         f"({self._limit_unread}); replies are checked against {kept}")
            return None, 1
        return stored | {LIMIT_KEY: limit, LIMIT_READ_AT_KEY: now.isoformat()}, 1

    def _walk(self, call: Callable[..., Any], since: str | None
              ) -> tuple[list[Mapping[str, Any]], str | None, int, bool]:
        """Page newest-first from the top down to `since`. Returns items, the newest id seen
        (or `since`), the number of calls, and whether the gap was read completely."""
        items: list[Mapping[str, Any]] = []
        max_id: str | None = None
        newest = since
        for page in range(self.settings.max_pages):
            result = self._call(call, since, max_id)
            if isinstance(result, Mapping) and "statuses" in result:
                result = result["statuses"]
            if not isinstance(result, list) or not all(isinstance(i, Mapping) for i in result):
                raise BadResponse(f"Mastodon ({self.host}): expected a list of posts, got "
                                  f"{type(result).__name__}.",
                                  hint="Check that api_base_url points at a Mastodon server.")
            ids = [str(i["id"]) for i in result if i.get("id") is not None]
            items.extend(result)
            for ident in ids:
                if newest is None or _id_key(ident) > _id_key(newest):
                    newest = ident
            # First pass (no cursor): one page is "now"; do not read the history.
            if len(result) < self.settings.page_size or since is None or not ids:
                return items, newest, page + 1, True
            max_id = min(ids, key=_id_key)
        return items, newest, self.settings.max_pages, False

    def _account(self) -> Mapping[str, Any]:
        if self._me is None:
            me = self._call(lambda: self.api.account_verify_credentials())
            if not isinstance(me, Mapping) or "id" not in me:
                raise BadResponse(f"Mastodon ({self.host}): verify_credentials returned no "
                                  "account.")
            self._me = me
        return self._me

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._answer = response

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._answer = None
        try:
            return fn(*args)
        except MastodonError as exc:
            if isinstance(exc, MastodonRatelimitError) and self._accepted():
                # Mastodon.py reads the rate-limit headers of every answer and raises this
                # when it cannot (X-RateLimit-Reset: "soon"): not a 429, so not a wait.
                raise BadResponse(f"Mastodon ({self.host}) answered with rate-limit headers "
                                  f"that cannot be read ({_api_message(exc)}).",
                                  hint="The server or a proxy in front of it sends them; "
                                  "mentionwatch tries again at the next pass.") from None
            raise self._source_error(exc) from None

    def _accepted(self) -> bool:
        """Whether the last answer had a success status (2xx)."""
        return self._answer is not None and 200 <= self._answer.status_code < 300

    def _source_error(self, exc: MastodonError) -> SourceError:
        where = f"Mastodon ({self.host})"
        if isinstance(exc, MastodonRatelimitError):
            return RateLimited(f"{where}: rate limited.", until=self._reset_time())
        if isinstance(exc, MastodonUnauthorizedError) or _status(exc) == 403:
            return AuthFailed(
                f"{where}: the access token was refused ({_status(exc)}: {_api_message(exc)}).",
                hint=f"Check the token in ${self.settings.access_token_env} (setting "
                "access_token_env) and that it has the read and write:statuses scopes.",
            )
        if isinstance(exc, MastodonServerError):
            return Transient(f"{where}: server error {_status(exc)}.")
        if isinstance(exc, MastodonNetworkError):
            return Transient(f"{where}: connection failed.")
        if isinstance(exc, MastodonAPIError) and _status(exc) is None:
            return BadResponse(f"{where}: the answer was not valid JSON.",
                               hint="Check that api_base_url points at a Mastodon server.")
        return BadResponse(f"{where}: {_status(exc) or ''} {_api_message(exc)}".strip() + ".",
                           hint="Check the hashtags and search settings.")

    def _reset_time(self) -> datetime | None:
        """When the rate limit resets (X-RateLimit-Reset, as Mastodon.py read it); None when
        absent or beyond the calendar ("999999999999"): the pipeline then waits an interval."""
        reset = getattr(self.api, "ratelimit_reset", None)
        try:
            return datetime.fromtimestamp(reset, UTC) if reset else None
        except (OverflowError, OSError, ValueError):
            return None

    def _to_mention(self, status: Mapping[str, Any], kind: str,
                    me: Mapping[str, Any]) -> MentionIn | None:
        account = status.get("account") or {}
        if not status.get("id") or not isinstance(account, Mapping):
            return None
        if str(account.get("id")) == str(me.get("id")):
            return None  # our own posts, including replies sent from mentionwatch
        handle = self._full_acct(str(account.get("acct") or account.get("username") or ""))
        if handle.lower() in self._own_handles():
            return None
        spoiler = clean_text(status.get("spoiler_text"), is_html=False)
        return MentionIn(
            external_id=str(status["id"]),
            text=clean_text(status.get("content")),
            title=spoiler or None,
            url=status.get("url") or status.get("uri"),
            author=AuthorIn(
                handle=handle,
                display_name=clean_text(account.get("display_name"), is_html=False) or None,
                followers=_int(account.get("followers_count")),
                profile_url=account.get("url"),
                external_id=str(account.get("id")) if account.get("id") else None,
            ),
            created_at=_when(status.get("created_at")),
            language=status.get("language"),
            likes=_int(status.get("favourites_count")) or 0,
            reposts=_int(status.get("reblogs_count")) or 0,
            replies=_int(status.get("replies_count")) or 0,
            conversation_id=str(status.get("conversation_id") or status["id"]),
            in_reply_to_id=str(status["in_reply_to_id"]) if status.get("in_reply_to_id")
            else None,
            is_reply_to_brand=str(status.get("in_reply_to_account_id")) == str(me.get("id")),
            kind=kind,
            raw=_jsonable(status),
        )

    def _full_acct(self, acct: str) -> str:
        """`user` (local) becomes `user@this-instance`, so handles are unique across sources."""
        return acct if "@" in acct else f"{acct}@{self.host}"

    def _own_handles(self) -> set[str]:
        own = self.context.brand.own_handles(self.platform)
        return own | {self._full_acct(h) for h in own}

    # ------------------------------------------------------------------ writing

    def reply(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Post a public reply to `mention`, @-mentioning its author.

        Raises SendError (too long, post gone, refused) or AuthFailed/RateLimited/Transient."""
        body = _as_posted(text, self._author_acct(mention), mention.author_handle)
        self._check_length(body)
        status = self._post(body, in_reply_to_id=mention.external_id,
                            visibility=self.settings.visibility,
                            idempotency_key=f"mentionwatch-reply-{mention.external_id}")
        return PostResult(external_id=str(status["id"]), url=status.get("url"))

    def send_private(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Send a `direct` post that mentions only the author (a direct post reaches
        everyone it mentions, so any other @handle in the text is refused)."""
        acct = self._author_acct(mention)
        others = sorted({m for m in _mentioned(text) if not _same_acct(m, acct, self.host)})
        if others:
            raise SendError(
                "The private follow-up mentions " + ", ".join("@" + o for o in others)
                + "; a direct post is delivered to everyone it mentions.",
                hint="Remove the other handles so only the author receives it.",
            )
        body = _as_posted(text, acct, mention.author_handle)
        self._check_length(body)
        status = self._post(body, visibility="direct",
                            idempotency_key=f"mentionwatch-private-{mention.external_id}")
        return PostResult(external_id=str(status["id"]), url=status.get("url"))

    def max_characters(self) -> int:
        """The instance's status length limit: v2 instance, then v1, then Mastodon's 500.
        Never raises: when the instance cannot be asked, 500, and `_limit_unread` says why."""
        if self._max_characters is None:
            limit: Any = None
            for fetch in (self.api.instance_v2, self.api.instance_v1):
                try:
                    info = fetch()
                except MastodonNotFoundError:
                    continue  # an older server: no v2
                except MastodonError as exc:
                    self._limit_unread = self._source_error(exc).message
                    return DEFAULT_MAX_CHARACTERS
                limit = _instance_limit(info)
                if limit:
                    break
            self._max_characters = limit or DEFAULT_MAX_CHARACTERS
        return self._max_characters

    def _check_length(self, body: str) -> None:
        limit = self.max_characters()
        length = status_length(body)
        if self._limit_unread is not None:
            # Not known here: the instance itself refuses a post over its limit (422), and
            # a refused post was not posted. Refusing at 500 could stop a post it allows.
            log.warning("Mastodon (%s): the length limit could not be read (%s); the "
                        "instance checks the post itself", self.host, self._limit_unread)
            return
        if length > limit:
            raise SendError(f"The text is {length} characters; {self.host} allows {limit}.",
                            hint="Shorten the draft (links count as 23 characters).")

    def _author_acct(self, mention: StoredMentionRef) -> str:
        acct = _raw_acct(mention) or mention.author_handle
        if not acct:
            raise SendError("This mention has no author to answer.")
        # Stored handles carry our instance's domain; the API wants local accounts bare.
        return str(acct).removesuffix(f"@{self.host}")

    def _post(self, body: str, **kwargs: Any) -> Mapping[str, Any]:
        self._answer = None
        try:
            status = self.api.status_post(body, **kwargs)
        except MastodonError as exc:
            if not self._accepted() or isinstance(exc, MastodonNetworkError):
                raise self._post_error(exc) from None
            # The server took the post (2xx), and Mastodon.py failed on the rest of its answer
            # (its rate-limit headers, its JSON): never "failed", which `outbox retry` would
            # post a second time. The body says whether, and as what, it was posted.
            status = self._posted_status(exc)
        # (Mastodon.py fills every field of a Status it casts, a missing id as None.)
        if not isinstance(status, Mapping) or not status.get("id"):
            raise SendUnconfirmed(f"Mastodon ({self.host}) did not say which post it created; "
                                  "check the account before sending again.")
        return status

    def _posted_status(self, exc: MastodonError) -> Mapping[str, Any]:
        """The status in an accepted answer Mastodon.py could not finish reading; raises
        SendUnconfirmed when the body does not show one."""
        assert self._answer is not None
        try:
            status = self._answer.json()
        except ValueError:
            status = None
        if isinstance(status, Mapping) and status.get("id"):
            log.warning("Mastodon (%s): the post was accepted; its answer could not be read "
                        "in full (%s)", self.host, type(exc).__name__)
            return status
        raise SendUnconfirmed(f"Mastodon ({self.host}) answered the post with something "
                              "that does not show the post; it may have gone out: check the "
                              "account before sending again.")

    def _post_error(self, exc: MastodonError) -> SourceError | SendError:
        """What a post the server did not accept (no 2xx), or a broken connection, means."""
        if isinstance(exc, MastodonRatelimitError | MastodonUnauthorizedError
                      | MastodonServerError | MastodonNetworkError) or _status(exc) == 403:
            return self._source_error(exc)
        if isinstance(exc, MastodonNotFoundError):
            return SendError(f"Mastodon ({self.host}): the post being answered no longer "
                             "exists.")
        if isinstance(exc, MastodonAPIError) and _status(exc) is None:
            # Mastodon.py gives no status only for a success status it could not read.
            return SendUnconfirmed(f"Mastodon ({self.host}) answered the post with something "
                                   "that is not JSON; it may have gone out: check the account "
                                   "before sending again.")
        return SendError(f"Mastodon ({self.host}) refused the post: {_api_message(exc)}.")

    def close(self) -> None:
        session = getattr(self.api, "session", None)
        if session is not None:
            session.close()


def status_length(text: str) -> int:
    """Length as Mastodon counts it: each URL is 23, `@user@domain` counts as `@user`."""
    text = _URL.sub("x" * URL_LENGTH, text)
    text = _MENTION.sub(lambda m: "@" + m.group(1), text)
    return len(text)


def _mentioned(text: str) -> list[str]:
    stripped = _URL.sub(" ", text)
    return [m.group(1) + (f"@{m.group(2)}" if m.group(2) else "")
            for m in _MENTION.finditer(stripped)]


def _same_acct(mentioned: str, acct: str, host: str) -> bool:
    a, b = mentioned.lower(), acct.lower()
    return a == b or a == f"{b}@{host.lower()}" or b == f"{a}@{host.lower()}"


def _as_posted(text: str, acct: str, handle: str | None) -> str:
    """Mastodon notifies only accounts named in the text: make sure the author is. `acct`
    is how the API names them (bare for our instance's own users), `handle` as stored
    (`user@our-instance`); a text naming either names them ("@alice@social.example sorry"
    had become "@alice @alice@social.example sorry")."""
    names = {acct.lower(), (handle or acct).lower()}
    if any(m.lower() in names for m in _mentioned(text)):
        return text
    return f"@{acct} {text}"


def _raw_acct(mention: StoredMentionRef) -> str | None:
    """The author's `acct` in a stored status (bare for our instance's own users)."""
    account = mention.raw.get("account") if mention.raw else None
    acct = account.get("acct") if isinstance(account, Mapping) else None
    return str(acct) if acct else None


def _instance_limit(info: Any) -> int | None:
    """`configuration.statuses.max_characters` (v2, and v1 since 4.0) or v1's
    `max_toot_chars` (Pleroma, glitch): a positive number, else None."""
    info = info if isinstance(info, Mapping) else {}
    config = info.get("configuration")
    statuses = config.get("statuses") if isinstance(config, Mapping) else None
    statuses = statuses if isinstance(statuses, Mapping) else {}
    for limit in (statuses.get("max_characters"), info.get("max_toot_chars")):
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            return limit
    return None


def _status(exc: MastodonError) -> int | None:
    args = exc.args
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


def _api_message(exc: MastodonError) -> str:
    args = exc.args
    if len(args) > 3 and args[3]:
        return clean_text(str(args[3]), is_html=False)[:300]
    if len(args) > 2 and args[2]:
        return str(args[2])
    return type(exc).__name__


def _id_key(ident: str) -> tuple[int, str]:
    # Mastodon ids are numeric strings of varying length: compare by length, then value.
    return (len(ident), ident)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _UnreadableReset:
    """A response hook that drops an X-RateLimit-Reset Mastodon.py cannot read ("soon", or a
    Date header it cannot parse to adjust it by), before Mastodon.py reads it.

    Mastodon.py raised its rate-limit error for such an answer, whatever its status: a read
    pass failed every time, so the source stalled for good, and a post the server had made
    needed `_call`'s check of the status to be told from a refusal. The reset is advice:
    without it a real 429 is still a rate limit, waited out by the scheduler's back-off. Warns
    once per connector."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.warned = False

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        headers = response.headers
        reset = headers.get("X-RateLimit-Reset")
        if reset is None or _readable_reset(reset, headers.get("Date")):
            return
        if not self.warned:
            self.warned = True
            log.warning("Mastodon (%s) sent a rate-limit reset that cannot be read "
                        "(X-RateLimit-Reset: %r, Date: %r); going on without it", self.host,
                        reset[:40], (headers.get("Date") or "")[:40])
        del headers["X-RateLimit-Reset"]


def _readable_reset(reset: str, date_header: str | None) -> bool:
    """Whether Mastodon.py can read the reset as it does: a whole number, or a date; and the
    server's Date, when there is one, as a date."""
    import dateutil.parser

    try:
        whole = str(int(reset)) == reset
    except ValueError:
        whole = False
    try:
        if not whole:
            dateutil.parser.parse(reset)
        if date_header is not None:
            dateutil.parser.parse(date_header)
    except (ValueError, OverflowError):
        return False
    return True
