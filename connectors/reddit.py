"""Reddit, through praw: a site-wide search for the brand (newest first) and watched
subreddits (their new submissions and new comments); replies in the thread and private
messages to the author.

praw/prawcore do the OAuth dance (script app with username + password, or a refresh token, or
read-only client credentials), send `raw_json=1`, and retry 5xx and connection errors twice.
Listings are read as Reddit's raw JSON (`Reddit.request`) so what is stored as `raw` is exactly
what Reddit sent. Posting goes through praw's models (`Comment.reply`, `Redditor.message`).

Every stream (one search query, one subreddit's submissions, one subreddit's comments) keeps
its own cursor: the newest `created_utc` seen and the fullnames seen at or after it (minus
`lookback_seconds`, for search results Reddit indexes late). A pass walks pages newest first
with `after=` until it reaches an item older than the cursor; the very first pass reads one
page. Nothing here sleeps for Reddit's rate limits: a 429, a RATELIMIT answer, or prawcore's
own limiter wanting to wait become `RateLimited(until)` and the scheduler skips the source.
Rate-limit headers that limiter could not parse are dropped before it reads them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar

import praw
import prawcore
from praw.exceptions import ClientException, PRAWException, RedditAPIException
from prawcore import exceptions as pce
from prawcore.sessions import RetryStrategy
from pydantic import Field, field_validator, model_validator
from requests import Response

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

#: Reddit's limits (characters, as Reddit counts them: code points).
COMMENT_LIMIT = 10_000
MESSAGE_LIMIT = 10_000
SUBJECT_LIMIT = 100
#: Markers Reddit leaves in place of deleted or removed content.
GONE = frozenset({"[deleted]", "[removed]"})
#: prawcore's limiter may ask to wait this long before we give up and report RateLimited.
MAX_LIMITER_WAIT = 5.0
#: The longest wait a reset header is taken at (Reddit's windows are 600 s).
MAX_RESET_WAIT = 3600.0
#: Fullnames remembered per stream at the cursor's edge.
MAX_SEEN = 1000

_RATELIMIT = re.compile(r"(\d+)\s*(millisecond|second|minute|hour)s?", re.I)
_SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")

#: The budget prawcore reads from every API answer, all three together.
RATE_LIMIT_HEADERS = ("x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset")

log = logging.getLogger(__name__)
T = TypeVar("T")


class _SendOnce(RetryStrategy):
    """prawcore's retry strategy for a posting call: no second try. Its default tries a 5xx,
    a read timeout or a dropped connection twice more, even for a POST, and a reply that
    reached Reddit before the error would be posted again; the outbox leaves such a send
    `unknown` for a person instead."""

    def _sleep_seconds(self) -> float | None:
        return None

    def consume_available_retry(self) -> RetryStrategy:
        return self

    def should_retry_on_failure(self) -> bool:
        return False


class _UnreadableBudget:
    """A response hook that drops Reddit's rate-limit headers when prawcore cannot read them.

    prawcore's limiter parses them with float() and int() once an answer is in, and raises
    ValueError on "soon" or "": every read pass would fail, and a comment Reddit had made
    would end `unknown`. They are advice: without them prawcore counts the call against the
    budget it last knew, as for any answer that has none. All three go, since prawcore reads
    them together. Warns once per connector."""

    def __init__(self) -> None:
        self.warned = False

    def __call__(self, response: Response, *args: Any, **kwargs: Any) -> None:
        headers = response.headers
        if "x-ratelimit-remaining" not in headers or _readable_budget(headers):
            return
        if not self.warned:
            self.warned = True
            sent = ", ".join(f"{name}: {headers[name][:40]!r}" for name in RATE_LIMIT_HEADERS
                             if name in headers)
            log.warning("Reddit sent rate-limit headers that cannot be read (%s); "
                        "going on without them", sent)
        for name in RATE_LIMIT_HEADERS:
            headers.pop(name, None)


class RedditSettings(ConnectorSettings):
    #: Reddit's site (the token endpoint and permalinks); point both URLs at a compatible
    #: endpoint to test.
    base_url: str = "https://www.reddit.com"
    #: The OAuth API host every authenticated call goes to.
    oauth_url: str = "https://oauth.reddit.com"
    #: Names of environment variables with the app's credentials (reddit.com/prefs/apps).
    client_id_env: str = Field(min_length=1)
    client_secret_env: str | None = None
    #: A script app's account: username + password; or a refresh token. With neither, the
    #: source reads only (client credentials) and cannot reply or message.
    username_env: str | None = None
    password_env: str | None = None
    refresh_token_env: str | None = None
    #: Reddit asks for a unique, descriptive one: "<platform>:<app id>:<version> (by /u/name)".
    user_agent: str | None = None
    #: Site-wide search queries; None builds one from the brand terms; [] turns search off.
    search: list[str] | None = None
    #: Where to search: "all", or one subreddit, or several joined with "+".
    search_subreddit: str = "all"
    search_syntax: Literal["lucene", "plain", "cloudsearch"] = "lucene"
    search_time_filter: Literal["hour", "day", "week", "month", "year", "all"] = "all"
    #: Re-read this far behind the newest search hit: Reddit's search index lags a little.
    lookback_seconds: int = Field(default=0, ge=0, le=7 * 86400)
    #: Subreddits (without "r/") whose new submissions and comments are read.
    subreddits: list[str] = []
    watch_submissions: bool = True
    watch_comments: bool = True
    page_size: int = Field(default=100, ge=1, le=100)
    max_pages: int = Field(default=5, ge=1, le=50)
    #: Subject of private messages; "{brand}" is replaced by the brand's name.
    message_subject: str = Field(default="About your post mentioning {brand}", min_length=1)
    #: Send private messages as this subreddit's modmail (needs the "mail" mod permission).
    message_from_subreddit: str | None = None

    _check_base = field_validator("base_url", "oauth_url")(validate_http_url)

    @field_validator("subreddits")
    @classmethod
    def _bare_names(cls, value: list[str]) -> list[str]:
        names = []
        for raw in value:
            name = raw.strip().removeprefix("/").removeprefix("r/")
            if not _SUBREDDIT.match(name):
                raise ValueError(f"{raw!r} is not a subreddit name (letters, digits, _)")
            names.append(name)
        return names

    @model_validator(mode="after")
    def _one_login(self) -> RedditSettings:
        if self.password_env and self.refresh_token_env:
            raise ValueError("set password_env or refresh_token_env, not both")
        if self.password_env and not self.username_env:
            raise ValueError("password_env needs username_env (a script app's account)")
        return self


class RedditConnector:
    """Brand search and watched subreddits on Reddit; replies and private messages."""

    kind: ClassVar[str] = "reddit"
    platform: ClassVar[str] = "reddit"
    Settings: ClassVar[type[ConnectorSettings]] = RedditSettings
    can_reply: ClassVar[bool] = True
    can_send_private: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = COMMENT_LIMIT
    #: A private message's body limit, in plain characters.
    private_limit: ClassVar[int | None] = MESSAGE_LIMIT
    default_interval: ClassVar[int] = 10 * 60
    # Watched subreddits return everything: the pipeline keeps what names the brand.
    prefiltered: ClassVar[bool] = False

    def __init__(self, settings: RedditSettings, context: ConnectorContext) -> None:
        """Raises AuthFailed when the client id (or the password's username) is not set."""
        self.settings = settings
        self.context = context
        env = context.environ
        client_id = read_secret(settings.client_id_env, env)
        if not client_id:
            raise AuthFailed(
                "Reddit: no client id.",
                hint=f"Set the environment variable ${settings.client_id_env} (setting "
                "client_id_env) to the app id from reddit.com/prefs/apps.",
            )
        self.username = read_secret(settings.username_env, env)
        password = read_secret(settings.password_env, env)
        refresh_token = read_secret(settings.refresh_token_env, env)
        if settings.password_env and not (self.username and password):
            missing = settings.username_env if not self.username else settings.password_env
            raise AuthFailed(
                "Reddit: the account's username or password is not set.",
                hint=f"Set the environment variable ${missing} (settings username_env and "
                "password_env).",
            )
        if settings.refresh_token_env and not refresh_token:
            raise AuthFailed(
                "Reddit: no refresh token.",
                hint=f"Set the environment variable ${settings.refresh_token_env} (setting "
                "refresh_token_env).",
            )
        self.can_write = bool(password or refresh_token)
        user_agent = settings.user_agent or context.poll.user_agent or "python:mentionwatch"
        session = bounded_session(context.poll.timeout.total_seconds() * BODY_DEADLINE_FACTOR)
        session.hooks["response"].append(_UnreadableBudget())
        # Every praw setting is passed explicitly: passed values win over praw.ini and
        # praw_* environment variables, so nothing outside the config changes the login.
        self.reddit = praw.Reddit(
            client_id=client_id,
            client_secret=read_secret(settings.client_secret_env, env),
            username=self.username if password else None,
            password=password,
            refresh_token=refresh_token,
            user_agent=user_agent,
            reddit_url=settings.base_url.rstrip("/"),
            oauth_url=settings.oauth_url.rstrip("/"),
            check_for_updates=False,
            check_for_async=False,
            timeout=max(1, round(context.poll.timeout.total_seconds())),
            requestor_kwargs={"session": session},
            # Never sleep on a RATELIMIT answer: raise, and let the outbox retry later.
            ratelimit_seconds=0,
        )

    # ------------------------------------------------------------------ reading

    def fetch(self, cursor: str | None) -> Batch:
        """Read new search hits and watched subreddits' new submissions and comments.

        Raises AuthFailed (credentials refused), RateLimited (429 or prawcore's limiter),
        Transient (5xx after prawcore's retries, timeouts, connection errors), BadResponse
        (not JSON / not a listing, unknown or private subreddit).
        """
        state = _load_cursor(cursor)
        next_state: dict[str, Any] = {}
        mentions: dict[str, MentionIn] = {}
        notes: list[str] = []
        requests = read = gone = 0
        own = self._own_names()
        unreadable = UnreadableItems(self.context.source.name)
        for key, path, params, lookback in self._streams():
            items, entry, calls, complete = self._walk(path, params, state.get(key), lookback)
            requests += calls
            next_state[key] = entry
            if not complete:
                notes.append(f"{key}: more than {self.settings.max_pages} pages of new items; "
                             "older ones in this gap were skipped")
            for item in items:
                read += 1
                data = item.get("data")
                if not isinstance(data, Mapping):
                    continue
                if _is_gone(data):
                    gone += 1
                    continue
                if str(data.get("author") or "").lower() in own:
                    continue  # the brand's own posts, including replies sent from here
                mention = unreadable.read(data.get("name"), functools.partial(
                    self._to_mention, str(item.get("kind")), data, own))
                if mention is not None:
                    mentions.setdefault(mention.external_id, mention)
        if gone:
            notes.append(f"{gone} deleted or removed item(s) skipped")
        notes += unreadable.notes()
        # Streams no longer configured keep their cursor (re-adding one resumes it).
        merged = state | next_state
        return Batch(list(mentions.values()), next_cursor=json.dumps(merged, sort_keys=True),
                     requests=max(requests, 1), notes=notes, items_read=read)

    def _streams(self) -> list[tuple[str, str, dict[str, str | int], int]]:
        """(cursor key, API path, parameters, lookback seconds) for every stream."""
        s = self.settings
        streams: list[tuple[str, str, dict[str, str | int], int]] = []
        queries = s.search if s.search is not None else _brand_queries(self.context.brand.terms)
        where = s.search_subreddit.strip().removeprefix("r/") or "all"
        for query in queries:
            params: dict[str, str | int] = {"q": query, "sort": "new", "syntax": s.search_syntax,
                                            "t": s.search_time_filter}
            if where.lower() != "all":
                params["restrict_sr"] = "on"
            streams.append((f"search:{query}", f"r/{where}/search/", params, s.lookback_seconds))
        for sub in s.subreddits:
            if s.watch_submissions:
                streams.append((f"new:{sub.lower()}", f"r/{sub}/new/", {}, 0))
            if s.watch_comments:
                streams.append((f"comments:{sub.lower()}", f"r/{sub}/comments/", {}, 0))
        return streams

    def _walk(self, path: str, params: dict[str, str | int], entry: Any, lookback: int
              ) -> tuple[list[Mapping[str, Any]], dict[str, Any], int, bool]:
        """Page newest-first from the top down to the cursor `entry`. Returns the new items,
        the stream's next cursor entry, the number of calls and whether the gap was read
        completely."""
        newest, seen = _parse_entry(entry)
        if newest is None and self.context.since is not None:
            floor: float | None = self.context.since.timestamp()
        else:
            floor = None if newest is None else newest - lookback
        found: list[Mapping[str, Any]] = []
        stamps: dict[str, float] = dict(seen)
        after: str | None = None
        calls = 0
        complete = True
        for page in range(self.settings.max_pages):
            query = dict(params, limit=self.settings.page_size)
            if after:
                query["after"] = after
            listing = self._listing(path, query)
            calls += 1
            children = listing["children"]
            reached = False
            for child in children:
                data = child.get("data") if isinstance(child, Mapping) else None
                if not isinstance(data, Mapping) or not data.get("name"):
                    continue
                name, created = str(data["name"]), _created(data)
                if floor is not None and created is not None and created < floor:
                    reached = True  # older than the cursor: everything below was read before
                    continue
                if name in seen:
                    continue
                found.append(child)
                stamps[name] = created or 0.0
            after = listing.get("after")
            # First pass without --since: the newest page is "now"; do not read the history.
            if reached or not after or not children or floor is None:
                break
            if page == self.settings.max_pages - 1:
                complete = False
        top = max([newest or 0.0, *stamps.values()]) or None
        keep = {n: t for n, t in stamps.items() if top is None or t >= top - lookback}
        if len(keep) > MAX_SEEN:
            keep = dict(sorted(keep.items(), key=lambda kv: kv[1])[-MAX_SEEN:])
        return found, {"t": top, "seen": keep}, calls, complete

    def _listing(self, path: str, params: dict[str, str | int]) -> Mapping[str, Any]:
        data = self._call(lambda: self.reddit.request(method="GET", path=path, params=params),
                          what=f"/{path}")
        body = data.get("data") if isinstance(data, Mapping) else None
        if (not isinstance(data, Mapping) or data.get("kind") != "Listing"
                or not isinstance(body, Mapping) or not isinstance(body.get("children"), list)):
            raise BadResponse(f"Reddit: /{path} did not return a listing.",
                              hint="Check that oauth_url points at Reddit's OAuth API.")
        return body

    def _to_mention(self, kind: str, data: Mapping[str, Any], own: set[str]
                    ) -> MentionIn | None:
        name = str(data["name"])
        author = str(data.get("author") or "")
        base = self.settings.base_url.rstrip("/")
        conversation: str | None
        parent: str | None
        if kind == "t3":
            body = data.get("selftext") or ("" if data.get("is_self") else data.get("url"))
            text = clean_text(markdown_to_text(str(body or "")), is_html=False)
            title = clean_text(str(data.get("title") or ""), is_html=False) or None
            conversation, parent, replies = name, None, _int(data.get("num_comments"))
            mention_kind = "submission"
            link_author = author
        elif kind == "t1":
            text = clean_text(markdown_to_text(str(data.get("body") or "")), is_html=False)
            title = clean_text(str(data.get("link_title") or ""), is_html=False) or None
            conversation = str(data.get("link_id") or "") or None
            parent = str(data.get("parent_id") or "") or None
            replies = 0  # listings do not carry a comment's reply count
            mention_kind = "comment"
            link_author = str(data.get("link_author") or "")
        else:
            return None  # other kinds (t4 messages, t5 subreddits) are not mentions
        return MentionIn(
            external_id=name,
            text=text,
            title=title,
            url=base + _permalink(kind, data),
            author=AuthorIn(
                handle=author,
                profile_url=f"{base}/user/{author}/",
                external_id=str(data["author_fullname"]) if data.get("author_fullname")
                else None,
            ),
            created_at=_when(data.get("created_utc")),
            likes=_int(data.get("score")) or 0,
            replies=replies or 0,
            conversation_id=conversation,
            in_reply_to_id=parent,
            # A top-level comment under a post by the brand answers the brand.
            is_reply_to_brand=bool(parent and parent == conversation
                                   and link_author.lower() in own and kind == "t1"),
            kind=mention_kind,
            raw=dict(data, kind=kind),
        )

    def _own_names(self) -> set[str]:
        own = set(self.context.brand.own_handles(self.platform))
        own = {h.removeprefix("u/").removeprefix("/u/") for h in own}
        if self.username:
            own.add(self.username.lower())
        return own

    # ------------------------------------------------------------------ writing

    def reply(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Reply to the submission or comment in its thread (POST /api/comment/).

        Raises SendError (empty or too long, read-only login, the thread is locked/archived or
        the item deleted), RateLimited (429 or RATELIMIT "try again in N minutes"),
        AuthFailed, Transient, BadResponse."""
        self._check_writable()
        _check_length("reply", text, COMMENT_LIMIT)
        fullname = _fullname(mention)
        model_cls = praw.models.Comment if fullname.startswith("t1_") else praw.models.Submission
        target = model_cls(self.reddit, id=fullname[3:])
        comment = self._call(lambda: target.reply(text), what="/api/comment/", sending=True)
        if comment is None:
            raise SendUnconfirmed("Reddit accepted the reply but did not return it (a "
                                  "subreddit filter may be holding it).",
                                  hint="Check the thread before sending again.")
        data = vars(comment)
        link_id = str(data.get("link_id") or mention.conversation_id or fullname)
        sub = data.get("subreddit")
        permalink = data.get("permalink") or (
            f"/r/{sub}/comments/{link_id.removeprefix('t3_')}/_/{comment.id}/" if sub else None)
        base = self.settings.base_url.rstrip("/")
        return PostResult(external_id=f"t1_{comment.id}",
                          url=base + str(permalink) if permalink else None)

    def send_private(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Send the author a private message (POST /api/compose/) with the configured
        subject. Raises SendError (no author, too long, user gone or not accepting messages),
        RateLimited, AuthFailed, Transient, BadResponse."""
        self._check_writable()
        author = (mention.author_handle or "").removeprefix("u/")
        if not author or author in GONE:
            raise SendError("This mention has no author to message (deleted account).")
        subject = self.subject()
        _check_length("subject", subject, SUBJECT_LIMIT)
        _check_length("private message", text, MESSAGE_LIMIT)
        redditor = self.reddit.redditor(author)
        from_sr = self.settings.message_from_subreddit
        self._call(lambda: redditor.message(subject=subject, message=text,
                                            from_subreddit=from_sr),
                   what="/api/compose/", sending=True)
        # /api/compose/ answers only {"errors": []}: find what was sent to learn its id.
        sent = self._sent_message(author, subject)
        base = self.settings.base_url.rstrip("/")
        if sent is None:
            return PostResult(external_id=f"message:{author}:{int(time.time())}", url=None)
        return PostResult(external_id=f"t4_{sent}", url=f"{base}/message/messages/{sent}")

    def subject(self) -> str:
        """The private-message subject with the brand's name filled in."""
        return self.settings.message_subject.replace("{brand}", self.context.brand.name)

    def _sent_message(self, author: str, subject: str) -> str | None:
        """The id of the newest sent message to `author` with `subject`, or None when the
        sent box does not show it (a failure here never undoes the send)."""
        try:
            data = self.reddit.request(method="GET", path="message/sent/",
                                       params={"limit": 10})
        except (PRAWException, prawcore.PrawcoreException):
            return None
        children = (data.get("data") or {}).get("children") if isinstance(data, Mapping) else None
        for child in children or []:
            msg = child.get("data") if isinstance(child, Mapping) else None
            if (isinstance(msg, Mapping) and str(msg.get("dest", "")).lower() == author.lower()
                    and msg.get("subject") == subject and msg.get("id")):
                return str(msg["id"])
        return None

    def _check_writable(self) -> None:
        if not self.can_write:
            raise SendError(
                "Reddit: this source reads with app-only credentials and cannot post.",
                hint="Set username_env + password_env (script app) or refresh_token_env.",
            )

    # ------------------------------------------------------------------ errors

    def _call(self, fn: Callable[[], T], *, what: str, sending: bool = False) -> T:
        self._refuse_long_wait()
        try:
            if sending:
                with self._sent_once():
                    return self._again_after_401(fn)
            return fn()
        except RedditAPIException as exc:
            raise self._api_error(exc, sending) from None
        except pce.PrawcoreException as exc:
            if sending and isinstance(exc, pce.BadJSON):  # a success status, unreadable
                raise SendUnconfirmed(f"Reddit: {what} answered with something that is not "
                                      "JSON; it may have been posted.",
                                      hint="Check the thread or the sent messages before "
                                      "sending again.") from None
            raise self._transport_error(exc, what) from None
        except KeyError as exc:
            # prawcore maps a 401/403 through its www-authenticate header and raises
            # KeyError(status) when a server leaves that header out.
            if exc.args and exc.args[0] in (401, 403):
                raise self._unauthorized(int(exc.args[0])) from None
            raise
        except ClientException as exc:
            error = SendError if sending else BadResponse
            raise error(f"Reddit: {exc}") from None

    @staticmethod
    def _again_after_401(fn: Callable[[], T]) -> T:
        """`fn()`, and once more if Reddit refused its token. A 401 means Reddit took
        nothing, and prawcore has dropped the token, so the second call fetches a new one (as
        prawcore's own retries did before posting calls were sent once). A 5xx or a timeout
        may have been taken: those are never tried again."""
        try:
            return fn()
        except (pce.ResponseException, KeyError) as exc:
            if not _token_refused(exc):
                raise
        return fn()

    @contextmanager
    def _sent_once(self) -> Iterator[None]:
        """Within the block, prawcore sends each request once (see `_SendOnce`)."""
        core = getattr(self.reddit, "_core", None)
        if core is None or not hasattr(core, "_retry_strategy_class"):
            yield
            return
        before = core._retry_strategy_class
        core._retry_strategy_class = _SendOnce
        try:
            yield
        finally:
            core._retry_strategy_class = before

    def _refuse_long_wait(self) -> None:
        """prawcore's limiter sleeps until Reddit's window resets when it is used up (up to
        ten minutes): report that as RateLimited instead of blocking a poll worker."""
        core = getattr(self.reddit, "_core", None)
        limiter = getattr(core, "_rate_limiter", None)
        due = getattr(limiter, "next_request_timestamp_ns", None)
        if due is None:
            return
        wait = (due - time.monotonic_ns()) / 1e9
        if wait > MAX_RESET_WAIT:
            # Reddit's windows are 10 minutes; a reset of days (1e14 s had overflowed the
            # date arithmetic: "internal error: OverflowError") is a broken header.
            raise RateLimited(f"Reddit: the request budget is used up, for {wait:.0f} s by "
                              f"its reset header; trying again in "
                              f"{MAX_RESET_WAIT / 60:.0f} minutes.",
                              until=datetime.now(UTC) + timedelta(seconds=MAX_RESET_WAIT))
        if wait > MAX_LIMITER_WAIT:
            raise RateLimited(f"Reddit: the request budget is used up for {wait:.0f} s.",
                              until=datetime.now(UTC) + timedelta(seconds=wait))

    def _api_error(self, exc: RedditAPIException, sending: bool) -> SourceError | SendError:
        for item in exc.items:
            if item.error_type == "RATELIMIT":
                wait = parse_ratelimit(item.message or "")
                until = datetime.now(UTC) + timedelta(seconds=wait or 60)
                return RateLimited(f"Reddit: {item.message}", until=until,
                                   hint="Nothing was posted; after that, `mentionwatch outbox "
                                   "retry` sends it again.")
        text = "; ".join(f"{i.error_type}: {i.message}" for i in exc.items) or str(exc)
        if sending:
            return SendError(f"Reddit refused the post ({clean_text(text, is_html=False)}).")
        return BadResponse(f"Reddit: {clean_text(text, is_html=False)}.")

    def _transport_error(self, exc: pce.PrawcoreException, what: str) -> SourceError:
        s = self.settings
        if isinstance(exc, pce.TooManyRequests):
            now = datetime.now(UTC)
            until = retry_after(exc.retry_after, now=now) or now + timedelta(seconds=60)
            wait = (until - now).total_seconds()
            return RateLimited(f"Reddit: too many requests (HTTP 429); retry after {wait:.0f} s.",
                               until=until)
        if isinstance(exc, pce.OAuthException):
            setting = ("refresh_token_env" if s.refresh_token_env
                       else "username_env / password_env")
            return AuthFailed(f"Reddit refused the login ({exc.error}).",
                              hint=f"Check the account credentials in the variables named by "
                              f"{setting}.")
        if isinstance(exc, pce.ResponseException):
            status = exc.response.status_code
            url = str(getattr(exc.response, "url", "") or "")
            if status == 401 and "/access_token" in url:
                return AuthFailed(
                    "Reddit refused the app credentials (HTTP 401 at the token endpoint).",
                    hint=f"Check ${s.client_id_env} and ${s.client_secret_env or '(none)'} "
                    "(settings client_id_env and client_secret_env).")
            if status == 401 or isinstance(exc, pce.InvalidToken):
                return self._unauthorized(status)
            if isinstance(exc, pce.InsufficientScope):
                return AuthFailed("Reddit: the login lacks a needed OAuth scope.",
                                  hint="Grant the read, submit and privatemessages scopes.")
            if isinstance(exc, pce.ServerError):
                return Transient(f"Reddit: server error {status} on {what}.")
            if isinstance(exc, pce.BadJSON):
                return BadResponse(f"Reddit: {what} did not answer with valid JSON.",
                                   hint="Check that oauth_url points at Reddit's OAuth API.")
            if isinstance(exc, pce.Redirect | pce.NotFound):
                return BadResponse(f"Reddit: {what} does not exist (HTTP {status}).",
                                   hint="Check the subreddit names in the source's settings.")
            if isinstance(exc, pce.Forbidden):
                return BadResponse(f"Reddit: {what} is private, banned or forbidden (HTTP 403).",
                                   hint="Remove it from the source's settings.")
            return BadResponse(f"Reddit: HTTP {status} on {what}.")
        if isinstance(exc, pce.RequestException):
            cause = type(exc.original_exception).__name__
            return Transient(f"Reddit: the request to {what} failed ({cause}).")
        return Transient(f"Reddit: {type(exc).__name__} on {what}.")

    def _unauthorized(self, status: int) -> AuthFailed:
        s = self.settings
        setting = ("refresh_token_env" if s.refresh_token_env
                   else "username_env / password_env" if s.password_env
                   else "client_id_env / client_secret_env")
        return AuthFailed(f"Reddit refused the access token (HTTP {status}).",
                          hint=f"Check the credentials named by {setting} and the app's "
                          "scopes (read, submit, privatemessages).")

    def close(self) -> None:
        for core in {id(c): c for c in (getattr(self.reddit, "_core", None),
                                         getattr(self.reddit, "_read_only_core", None))
                     if c is not None}.values():
            requestor = getattr(core, "_requestor", None)
            if requestor is not None:
                requestor.close()


# ---------------------------------------------------------------------- helpers


def _token_refused(exc: Exception) -> bool:
    """Whether an API call (not the token endpoint) was answered 401. prawcore raises
    InvalidToken, or KeyError(401) when the answer has no www-authenticate header."""
    if isinstance(exc, KeyError):
        return exc.args[:1] == (401,)
    response = getattr(exc, "response", None)
    return (isinstance(exc, pce.ResponseException) and response is not None
            and response.status_code == 401
            and "/access_token" not in str(getattr(response, "url", "") or ""))


def _readable_budget(headers: Mapping[str, str]) -> bool:
    """Whether prawcore can use the rate-limit headers: all three there, the requests left a
    number, those used and the seconds to the reset whole numbers, none of them negative
    (prawcore divides by left + used)."""
    try:
        left = float(headers["x-ratelimit-remaining"])
        used, reset = int(headers["x-ratelimit-used"]), int(headers["x-ratelimit-reset"])
    except (KeyError, ValueError):
        return False
    return math.isfinite(left) and min(left, used, reset) >= 0


def parse_ratelimit(message: str) -> int | None:
    """Seconds to wait from Reddit's "try again in 9 minutes." (None when not stated)."""
    match = _RATELIMIT.search(message)
    if not match:
        return None
    amount, unit = int(match.group(1)), match.group(2).lower()
    # Milliseconds round up to a second: waiting less cannot help.
    return {"millisecond": 1, "second": amount, "minute": amount * 60,
            "hour": amount * 3600}[unit]


_FENCE = re.compile(r"^\s*(```|~~~).*$", re.M)
_IMAGE_OR_LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADER = re.compile(r"^\s{0,3}#{1,6}\s*", re.M)
_QUOTE = re.compile(r"^\s*(?:>\s?)+(?!!)", re.M)
_BULLET = re.compile(r"^(\s*)[*+]\s+", re.M)
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.M)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.S)
_EMPH = re.compile(r"(?<![\w*\\])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])", re.S)
_STRIKE = re.compile(r"~~(.+?)~~", re.S)
_SPOILER = re.compile(r">!(.+?)!<", re.S)
_SUPER = re.compile(r"\^\(([^)]*)\)|\^(?=\S)")
_CODE = re.compile(r"`([^`]*)`")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>~^|])")


def markdown_to_text(value: str) -> str:
    """A light strip of Reddit markdown to readable plain text: links become
    "text (url)", emphasis/headers/quotes/spoilers lose their markers. Not a renderer:
    `clean_text` runs afterwards and the result is only ever shown as inert text."""
    text = _FENCE.sub("", value)
    text = _CODE.sub(r"\1", text)
    text = _IMAGE_OR_LINK.sub(_link_text, text)
    text = _SPOILER.sub(r"\1", text)
    text = _RULE.sub("", text)
    text = _HEADER.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub(r"\1- ", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPH.sub(r"\2", text)
    text = _STRIKE.sub(r"\1", text)
    text = _SUPER.sub(lambda m: m.group(1) or "", text)
    return _ESCAPE.sub(r"\1", text)


def _link_text(match: re.Match[str]) -> str:
    label, url = match.group(1).strip(), match.group(2).strip()
    if not url.startswith(("http://", "https://")):
        return label  # "[](#emote)" styling and relative links carry no readable URL
    if not label or label == url:
        return url
    return f"{label} ({url})"


def _is_gone(data: Mapping[str, Any]) -> bool:
    """Deleted by its author or removed by moderators/Reddit."""
    if str(data.get("author") or "") in GONE:
        return True
    body = data.get("body") if "body" in data else data.get("selftext")
    if isinstance(body, str) and body.strip() in GONE:
        return True
    return bool(data.get("removed_by_category"))


def _permalink(kind: str, data: Mapping[str, Any]) -> str:
    link = data.get("permalink")
    if isinstance(link, str) and link.startswith("/"):
        return link
    sub = data.get("subreddit") or "all"
    if kind == "t1":
        link_id = str(data.get("link_id") or "").removeprefix("t3_")
        return f"/r/{sub}/comments/{link_id}/_/{data.get('id')}/"
    return f"/r/{sub}/comments/{data.get('id')}/"


def _fullname(mention: StoredMentionRef) -> str:
    for candidate in (mention.external_id, (mention.raw or {}).get("name")):
        if isinstance(candidate, str) and re.match(r"^t[13]_[a-z0-9]+$", candidate):
            return candidate
    raise SendError(f"Reddit: {mention.external_id!r} is not a submission or comment id.")


def _check_length(what: str, text: str, limit: int) -> None:
    if not text.strip():
        raise SendError(f"The {what} is empty.")
    if len(text) > limit:
        raise SendError(f"The {what} is {len(text)} characters; Reddit allows {limit}.",
                        hint="Shorten the draft.")


def _brand_queries(terms: list[str]) -> list[str]:
    """One search for all brand terms: '"acme" OR "acme fiber"' (Reddit search ignores
    '@' and '#', so those terms are searched as words)."""
    words: list[str] = []
    for term in terms:
        word = term.strip().lstrip("@#").replace('"', "")
        if word and word.lower() not in {w.lower() for w in words}:
            words.append(word)
    return [" OR ".join(f'"{w}"' for w in words)] if words else []


def _parse_entry(entry: Any) -> tuple[float | None, dict[str, float]]:
    if not isinstance(entry, Mapping):
        return None, {}
    seen = entry.get("seen")
    seen = {str(k): float(v) for k, v in seen.items() if _float(v) is not None} \
        if isinstance(seen, Mapping) else {}
    return _float(entry.get("t")), seen


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _float(value: Any) -> float | None:
    """A number, or None (also for NaN and infinities, which would poison a cursor)."""
    try:
        number = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def _created(data: Mapping[str, Any]) -> float | None:
    """An item's `created_utc` for the cursor; None for a time over a day ahead, which would
    otherwise hold the cursor there and hide every later item as older."""
    created = _float(data.get("created_utc"))
    return None if created is not None and created > time.time() + 86400 else created


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


def _when(value: Any) -> datetime | None:
    stamp = _float(value)
    return datetime.fromtimestamp(stamp, UTC) if stamp is not None else None

