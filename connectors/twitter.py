"""X (Twitter) through tweepy's API v2 `Client`: recent search and the brand account's
mentions timeline in; public replies and direct messages out (only after a person approved).

Reading uses the app-only bearer token; posting uses OAuth 1.0a user context (or an OAuth 2.0
user token). Every secret comes from an environment variable named in the config.

The cursor is JSON: per query a `since_id` (and, while a long backlog is being read across
passes, the `next_token` to continue from), plus this month's read count for the read budget.
It advances only through the returned `Batch`, which the store commits with the rows.
"""

from __future__ import annotations

import calendar
import functools
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import requests
import tweepy
from pydantic import Field, field_validator, model_validator

from mentionwatch.config import config_duration, read_secret, validate_http_url
from mentionwatch.connector import (
    AuthorIn,
    Batch,
    ConnectorContext,
    ConnectorSettings,
    MentionIn,
    PostResult,
    StoredMentionRef,
    UnreadableItems,
)
from mentionwatch.deadlines import BODY_DEADLINE_FACTOR, DeadlineAdapter
from mentionwatch.errors import (
    AuthFailed,
    BadResponse,
    RateLimited,
    SendError,
    SendUnconfirmed,
    SourceError,
    Transient,
)
from mentionwatch.models import utcnow
from mentionwatch.text import clean_text

log = logging.getLogger(__name__)

PUBLIC_API = "https://api.twitter.com"
#: Recent search only reaches back 7 days; stay a little inside so the API never says 400.
SEARCH_HORIZON = timedelta(days=7) - timedelta(minutes=5)
#: The wait after a 429 with no reset time that can be read: X's rate-limit windows are
#: 15 minutes long.
RATE_LIMIT_WINDOW = timedelta(minutes=15)
MAX_QUERY_LENGTH = 512
REPLY_LIMIT = 280
DM_LIMIT = 10_000
URL_WEIGHT = 23

TWEET_FIELDS = [
    "author_id", "conversation_id", "created_at", "entities", "in_reply_to_user_id", "lang",
    "note_tweet", "public_metrics", "referenced_tweets",
]
USER_FIELDS = ["name", "username", "public_metrics", "verified", "verified_type"]
EXPANSIONS = ["author_id"]


class _DropCredentialDumps(logging.Filter):
    """tweepy logs every request's headers (the bearer token) and oauthlib its signing input
    (consumer key, access token) at DEBUG; those records must never reach a log, whatever
    level a person picks (`-vvv` turns the `tweepy` logger up to DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


# Levels on the loggers (children inherit them: oauthlib logs from oauthlib.oauth1.rfc5849...)
# plus a filter on the one that formats headers, in case someone lowers its level again.
for _name in ("tweepy.client", "oauthlib", "requests_oauthlib"):
    logging.getLogger(_name).setLevel(logging.INFO)
logging.getLogger("tweepy.client").addFilter(_DropCredentialDumps())


# ------------------------------------------------------------------------------ settings


class TwitterSettings(ConnectorSettings):
    """The `[[sources]]` keys of a `kind = "twitter"` source."""

    base_url: str = PUBLIC_API
    #: App-only bearer token, for reading.
    bearer_token_env: str = "X_BEARER_TOKEN"
    #: OAuth 1.0a user context of the brand account, for replies and direct messages.
    consumer_key_env: str | None = None
    consumer_secret_env: str | None = None
    access_token_env: str | None = None
    access_token_secret_env: str | None = None
    #: Alternatively an OAuth 2.0 user access token (tweet.write, dm.write scopes).
    oauth2_user_token_env: str | None = None
    #: The brand account: its handle (without @) and numeric user id. The mentions timeline
    #: needs the id; given only the handle, it is looked up once (one request).
    account: str | None = None
    account_user_id: str | None = Field(default=None, pattern=r"^\d+$")
    search: bool = True
    mentions: bool = True
    #: A full X search query; by default one is built from the brand terms and exclusions.
    query: str | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}$")
    include_retweets: bool = False
    lookback: timedelta = timedelta(hours=24)
    monthly_read_cap: int | None = Field(default=None, ge=1)
    max_pages: int = Field(default=10, ge=1, le=100)
    page_size: int = Field(default=100, ge=10, le=100)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return validate_http_url(value).rstrip("/")

    @field_validator("lookback", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return config_duration(value)

    @field_validator("lookback")
    @classmethod
    def _within_recent_search(cls, value: timedelta) -> timedelta:
        if value > timedelta(days=7):
            raise ValueError("recent search reaches back at most 7 days; use '7d' or less")
        return value

    @field_validator("account")
    @classmethod
    def _handle(cls, value: str | None) -> str | None:
        if value is None:
            return None
        handle = value.strip().lstrip("@")
        if not re.fullmatch(r"\w{1,15}", handle):
            raise ValueError(f"expected an X handle such as 'acme', got {value!r}")
        return handle

    @model_validator(mode="after")
    def _consistent(self) -> TwitterSettings:
        if not (self.search or self.mentions):
            raise ValueError("search and mentions are both off: nothing to read")
        if self.mentions and not (self.account or self.account_user_id):
            raise ValueError(
                "the mentions timeline needs `account` (the brand's handle) or "
                "`account_user_id`; set one, or mentions = false"
            )
        oauth1 = [self.consumer_key_env, self.consumer_secret_env, self.access_token_env,
                  self.access_token_secret_env]
        if any(oauth1) and not all(oauth1):
            raise ValueError(
                "posting with OAuth 1.0a needs all four of consumer_key_env, "
                "consumer_secret_env, access_token_env and access_token_secret_env"
            )
        return self


# ------------------------------------------------------------------------ weighted length

# twitter-text v3 configuration: these code point ranges weigh 1, everything else 2.
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
_TLDS = ("com|net|org|io|co|de|uk|fr|es|it|nl|ly|me|info|biz|app|dev|ai|tv|us|eu|ca|au|jp|cn"
         "|ru|br|in")
_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"]+"
    rf"|\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_TLDS})\b(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)
#: What every URL `_URL` finds contains: a quick look that spares most texts its search.
_URL_HINT = re.compile(rf"://|www\.|\.(?:{_TLDS})\b", re.IGNORECASE)
#: What weighs nothing: a code point that belongs to the emoji before it (a variation
#: selector, the keycap mark, a skin-tone modifier, a tag), and a zero-width joiner with
#: whatever follows it (the next emoji of a ZWJ sequence: "👨‍👩‍👧" is one emoji).
_WEIGHTLESS = re.compile("\u200d.?|[\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff"
                         "\U000e0020-\U000e007f]", re.DOTALL)
#: A code point outside the light ranges, which weighs 2.
_HEAVY = re.compile("[^" + "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in _LIGHT_RANGES)
                    + "]")


def weighted_length(text: str) -> int:
    """The length X counts for a post: URLs count 23, CJK and most non-Latin scripts 2, an
    emoji (even a ZWJ family sequence) 2, everything in the Latin/Greek/Cyrillic/... ranges 1.

    Follows twitter-text's v3 configuration after NFC normalisation. URL detection is a close
    approximation of twitter-text's (scheme URLs, www., and bare domains on common TLDs).
    """
    text = unicodedata.normalize("NFC", text)
    if not _URL_HINT.search(text):
        return _weigh(text)
    total = 0
    pos = 0
    for match in _URL.finditer(text):
        total += _weigh(text[pos:match.start()]) + URL_WEIGHT
        pos = match.end()
    return total + _weigh(text[pos:])


def _weigh(text: str) -> int:
    """The weight of text without URLs: 1 a light code point, 2 any other, 0 the weightless.
    Whole-string operations: an X reply's draft is weighed for every post judged, and a loop
    over its characters cost more than VADER does."""
    if text.isascii():
        return len(text)
    text = _WEIGHTLESS.sub("", text)
    return len(text) + len(_HEAVY.findall(text))


def check_reply_length(text: str, limit: int = REPLY_LIMIT) -> int:
    """Raise SendError when `text` is over X's limit; return its weighted length."""
    length = weighted_length(text)
    if not text.strip():
        raise SendError("The reply is empty; write something before sending.")
    if length > limit:
        raise SendError(
            f"The reply is {length} characters by X's counting; the limit is {limit}.",
            hint=f"Shorten it by {length - limit} (links count as {URL_WEIGHT}, CJK characters "
            "and emoji as 2). Nothing was sent.",
        )
    return length


# ---------------------------------------------------------------------------- read budget


def _month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(now.year, now.month)[1]
    return start, start + timedelta(days=days)


def read_allowance(cap: int, read: int, now: datetime) -> int:
    """How many posts may be read now without running dry before the month ends.

    The cap is spread evenly over the month, one day's share ahead (so the first pass of a
    month and bursts within a day are not starved). Pure: `now` is UTC.
    """
    start, end = _month_bounds(now)
    share = min(1.0, (now - start + timedelta(days=1)) / (end - start))
    return max(0, int(cap * share) - read)


def next_read_at(cap: int, read: int, now: datetime, want: int = 10) -> datetime:
    """When `read_allowance` will allow `want` more posts (the next month if the cap is spent)."""
    start, end = _month_bounds(now)
    if read + want > cap:
        return end
    at = start + (end - start) * ((read + want) / cap) - timedelta(days=1)
    return max(at, now)


# -------------------------------------------------------------------------------- cursor


@dataclass(slots=True)
class QueryCursor:
    """Where one query (search or mentions) stands."""

    since_id: str | None = None
    #: A backlog not finished last pass: continue with this token, same since/start time.
    next_token: str | None = None
    newest_id: str | None = None
    start_time: str | None = None

    def as_json(self) -> dict[str, str]:
        return {k: v for k, v in (
            ("since_id", self.since_id), ("next_token", self.next_token),
            ("newest_id", self.newest_id), ("start_time", self.start_time),
        ) if v}


@dataclass(slots=True)
class TwitterCursor:
    queries: dict[str, QueryCursor] = field(default_factory=dict)
    user_id: str | None = None
    period: str | None = None
    read: int = 0

    @classmethod
    def parse(cls, cursor: str | None) -> TwitterCursor:
        """A cursor from the store; an unreadable one starts afresh (dedup absorbs re-reads)."""
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            queries = {
                name: QueryCursor(**{k: str(v) for k, v in q.items() if k in
                                     ("since_id", "next_token", "newest_id", "start_time")})
                for name, q in dict(data.get("queries") or {}).items()
            }
            usage = data.get("usage") or {}
            return cls(queries=queries, user_id=data.get("user_id"),
                       period=usage.get("period"), read=int(usage.get("read") or 0))
        except (ValueError, TypeError, AttributeError):
            log.warning("ignoring an unreadable X cursor; reading from the lookback window")
            return cls()

    def dumps(self) -> str:
        data: dict[str, Any] = {
            "v": 1, "queries": {n: q.as_json() for n, q in self.queries.items()},
        }
        if self.user_id:
            data["user_id"] = self.user_id
        if self.period:
            data["usage"] = {"period": self.period, "read": self.read}
        return json.dumps(data, sort_keys=True)


# ----------------------------------------------------------------------------- transport


class _BaseUrlAdapter(DeadlineAdapter):
    """tweepy hard-codes https://api.twitter.com: send its requests to `base_url` instead,
    and give every request a timeout (tweepy sets none) and its body a deadline. Counts
    requests for the budget."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout * BODY_DEADLINE_FACTOR)
        self.base_url = base_url
        self.timeout = timeout
        self.sent = 0
        self.warned = False

    def send(
        self, request: requests.PreparedRequest, stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True, cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        if url.startswith(PUBLIC_API):
            request.url = self.base_url + url[len(PUBLIC_API):]
        self.sent += 1
        response = super().send(request, stream=stream, timeout=timeout or self.timeout,
                                verify=verify, cert=cert, proxies=proxies)
        self._drop_unreadable_reset(response)
        return response

    def _drop_unreadable_reset(self, response: requests.Response) -> None:
        """tweepy reads a 429's x-rate-limit-reset with int() and raised ValueError on any
        other value ("soon", "1.5e"), in place of TooManyRequests: a post X had refused was
        left `unknown`, and a read failed as invalid JSON. Such a header is dropped, so the
        429 is one without a reset time (warned of once per client)."""
        value = response.headers.get("x-rate-limit-reset")
        if response.status_code != 429 or value is None or _is_whole_number(value):
            return
        if not self.warned:
            self.warned = True
            log.warning("X sent a rate-limit reset that is not a time (x-rate-limit-reset: "
                        "%r); assuming one %d-minute window", value[:40],
                        RATE_LIMIT_WINDOW // timedelta(minutes=1))
        del response.headers["x-rate-limit-reset"]


def _is_whole_number(value: str) -> bool:
    """Whether int() reads `value`, as tweepy does."""
    try:
        int(value)
    except ValueError:
        return False
    return True


def _api_detail(exc: tweepy.HTTPException) -> str:
    """The API's own explanation (problem `detail`/`title`, or `errors[].message`)."""
    try:
        body = exc.response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    for key in ("detail", "title", "reason"):
        if isinstance(body.get(key), str):
            parts.append(body[key])
            break
    for error in body.get("errors") or []:
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            parts.append(error["message"])
    # Without its closing full stop: our messages put their own after it.
    return clean_text("; ".join(p.rstrip(". ") for p in parts)[:300], is_html=False)


def _refused_parameters(exc: tweepy.HTTPException) -> set[str]:
    """The request parameters a 400 names (`errors[].parameters`, e.g. a since_id that is
    older than recent search reaches)."""
    try:
        body = exc.response.json()
    except ValueError:
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    return {str(name) for error in errors or [] if isinstance(error, dict)
            and isinstance(error.get("parameters"), dict) for name in error["parameters"]}


class _BeyondRecentSearch(BadResponse):
    """X refused a since_id or start_time: older than the 7 days recent search reaches."""


class _RefusedToken(BadResponse):
    """X refused a page token (next_token, pagination_token) as not valid."""


def _reset_time(exc: tweepy.TooManyRequests) -> datetime | None:
    if exc.reset_time is None:
        return None
    try:
        return datetime.fromtimestamp(int(exc.reset_time), UTC)
    except (ValueError, OverflowError, OSError):
        return None


_PERMISSION = re.compile(
    r"\b(permissions?|enrolled|access level|scopes?|oauth\w*|app|project|"
    r"unsupported authentication)\b", re.IGNORECASE)


def _is_permission_problem(detail: str) -> bool:
    """Whether a 403 is about the app's credentials rather than the other person's choice."""
    return bool(_PERMISSION.search(detail))


# ----------------------------------------------------------------------------- connector


class TwitterConnector:
    """Recent search and the mentions timeline in; replies and DMs out."""

    kind: ClassVar[str] = "twitter"
    platform: ClassVar[str] = "twitter"
    Settings: ClassVar[type[TwitterSettings]] = TwitterSettings
    can_reply: ClassVar[bool] = True
    can_send_private: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = REPLY_LIMIT
    #: A direct message's limit, in plain characters.
    private_limit: ClassVar[int | None] = DM_LIMIT

    @staticmethod
    def reply_length(text: str) -> int:
        """A reply's length as X counts it against `reply_limit`."""
        return weighted_length(text)
    default_interval: ClassVar[int] = 300
    # Both queries are built from the brand terms (or are the brand's mentions): keep what X
    # matched even when the text alone does not spell a term (a match in a link or a handle).
    prefiltered: ClassVar[bool] = True

    def __init__(self, settings: TwitterSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context
        self.name = context.source.name
        #: Injectable clock, so the budget can be tested at a chosen moment.
        self.clock: Callable[[], datetime] = utcnow
        self._timeout = context.poll.timeout.total_seconds()
        self._reader: tweepy.Client | None = None
        self._writer: tweepy.Client | None = None
        self._adapters: list[_BaseUrlAdapter] = []

    # ------------------------------------------------------------------ clients

    def _client(self, **credentials: str | None) -> tweepy.Client:
        # wait_on_rate_limit stays off: it sleeps inside the worker or recurses without a
        # reset header. A 429 becomes RateLimited and the source is skipped until the reset.
        client = tweepy.Client(**credentials, return_type=dict, wait_on_rate_limit=False)
        adapter = _BaseUrlAdapter(self.settings.base_url, self._timeout)
        client.session.mount(PUBLIC_API, adapter)
        # A base_url on another host may be plain http; its own prefix goes through the
        # adapter too so the timeout applies.
        client.session.mount(self.settings.base_url, adapter)
        self._adapters.append(adapter)
        return client

    def _secret(self, setting: str) -> str | None:
        return read_secret(getattr(self.settings, setting), self.context.environ)

    @property
    def reader(self) -> tweepy.Client:
        if self._reader is None:
            token = self._secret("bearer_token_env")
            if not token:
                raise AuthFailed(
                    f"Source {self.name}: no bearer token: environment variable "
                    f"${self.settings.bearer_token_env} is empty.",
                    hint="Set it to the app's bearer token (setting bearer_token_env).",
                )
            self._reader = self._client(bearer_token=token)
        return self._reader

    def _posting_client(self) -> tuple[tweepy.Client, bool]:
        """The client that posts as the brand account, and whether it uses OAuth 1.0a."""
        if self._writer is not None:
            return self._writer, self._writer.consumer_key is not None
        s = self.settings
        if s.consumer_key_env:
            keys = {name: self._secret(f"{name}_env") for name in
                    ("consumer_key", "consumer_secret", "access_token", "access_token_secret")}
            missing = [f"${getattr(s, f'{n}_env')}" for n, v in keys.items() if not v]
            if missing:
                raise AuthFailed(f"Source {self.name}: cannot post to X: "
                                 f"{', '.join(missing)} not set.",
                                 hint="Export the brand account's OAuth 1.0a keys.")
            self._writer = self._client(**keys)
            return self._writer, True
        if s.oauth2_user_token_env:
            token = self._secret("oauth2_user_token_env")
            if not token:
                raise AuthFailed(f"Source {self.name}: cannot post to X: "
                                 f"${s.oauth2_user_token_env} is not set.")
            self._writer = self._client(bearer_token=token)
            return self._writer, False
        raise AuthFailed(
            f"Source {self.name}: posting to X is not configured.",
            hint="Set consumer_key_env, consumer_secret_env, access_token_env and "
            "access_token_secret_env (OAuth 1.0a), or oauth2_user_token_env, on this source.",
        )

    def close(self) -> None:
        for client in (self._reader, self._writer):
            if client is not None:
                client.session.close()

    @property
    def requests_sent(self) -> int:
        return sum(a.sent for a in self._adapters)

    # ------------------------------------------------------------------ reading

    def build_query(self) -> str:
        """The recent-search query: brand terms OR-ed, exclusions and own accounts negated.

        Raises SourceError when it is longer than X accepts (512 characters).
        """
        if self.settings.query:
            query = self.settings.query
        else:
            terms = " OR ".join(_query_term(t) for t in self.context.brand.terms)
            parts = [f"({terms})"]
            parts += [f"-{_query_term(t)}" for t in self.context.brand.exclude]
            for handle in sorted(self._own_handles()):
                parts.append(f"-from:{handle}")
            if not self.settings.include_retweets:
                parts.append("-is:retweet")
            if self.settings.language:
                parts.append(f"lang:{self.settings.language}")
            query = " ".join(parts)
        if len(query) > MAX_QUERY_LENGTH:
            raise SourceError(
                f"Source {self.name}: the X search query is {len(query)} characters; X accepts "
                f"{MAX_QUERY_LENGTH}.",
                hint="Use fewer brand terms, or write a shorter `query` on this source.",
            )
        return query

    def _own_handles(self) -> set[str]:
        handles = self.context.brand.own_handles(self.platform)
        if self.settings.account:
            handles.add(self.settings.account.lower())
        return handles

    def fetch(self, cursor: str | None) -> Batch:
        """Read new posts from the mentions timeline and recent search.

        Raises RateLimited (429, with the reset time), AuthFailed (401/403, naming the
        setting), Transient (5xx, timeouts, connection errors), BadResponse (invalid JSON or
        shape). On any error nothing is returned, so the stored cursor stays where it was.
        """
        state = TwitterCursor.parse(cursor)
        now = self.clock()
        period = now.strftime("%Y-%m")
        if state.period != period:
            state.period, state.read = period, 0
        cap = self.settings.monthly_read_cap
        allowance = read_allowance(cap, state.read, now) if cap else None
        if allowance is not None and allowance <= 0:
            assert cap is not None
            resume = next_read_at(cap, state.read, now)
            return Batch([], next_cursor=None, requests=0, items_read=0, notes=[
                f"read budget: {state.read:,} of {cap:,} posts read this month; paced until "
                f"{resume:%Y-%m-%d %H:%M} UTC",
            ])
        mentions: list[MentionIn] = []
        read = 0
        sent_before = self.requests_sent
        notes: list[str] = []
        unreadable = UnreadableItems(self.name)
        if self.settings.mentions:
            user_id = self.settings.account_user_id or state.user_id or self._lookup_user_id()
            state.user_id = None if self.settings.account_user_id else user_id
            got, n, more = self._run_query("mentions", state, now, _left(allowance, read),
                                           unreadable, notes, user_id=user_id)
            mentions += got
            read += n
            if more:
                notes.append("mentions: more to read next pass")
        if self.settings.search and (allowance is None or read < allowance):
            got, n, more = self._run_query("search", state, now, _left(allowance, read),
                                           unreadable, notes)
            mentions += got
            read += n
            if more:
                notes.append("search: more to read next pass")
        notes += unreadable.notes()
        state.read += read
        return Batch(mentions, next_cursor=state.dumps(),
                     requests=self.requests_sent - sent_before, items_read=read, notes=notes)

    def _lookup_user_id(self) -> str:
        handle = self.settings.account
        assert handle is not None  # the settings validator requires account or its id
        body = self._call(lambda: self.reader.get_user(username=handle), "reading")
        data = body.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise BadResponse(
                f"Source {self.name}: X has no user @{handle}.",
                hint="Check `account`, or set `account_user_id`.",
            )
        return str(data["id"])

    def _run_query(
        self, name: str, state: TwitterCursor, now: datetime, left: int | None,
        unreadable: UnreadableItems, notes: list[str], *, user_id: str | None = None,
    ) -> tuple[list[MentionIn], int, bool]:
        """Page through one query from its cursor. Returns (mentions, posts read, more left);
        what the pass should say goes into `notes`.

        The query's cursor in `state` is updated in memory; it is stored only with the batch.
        """
        q = state.queries.get(name) or QueryCursor()
        token = q.next_token
        newest = q.newest_id if token else None
        start_time = q.start_time if token else None
        if not q.since_id and not token:
            since = self.context.since or now - self.settings.lookback
            start_time = max(since, now - SEARCH_HORIZON).strftime("%Y-%m-%dT%H:%M:%SZ")
        minimum = 5 if name == "mentions" else 10
        query = self.build_query() if name == "search" else None
        mentions: list[MentionIn] = []
        read = pages = 0
        while True:
            size = self.settings.page_size if left is None else left - read
            params: dict[str, Any] = {
                "max_results": max(minimum, min(100, self.settings.page_size, size)),
                "expansions": EXPANSIONS, "tweet_fields": TWEET_FIELDS,
                "user_fields": USER_FIELDS,
            }
            if q.since_id:
                params["since_id"] = q.since_id
            elif start_time:
                params["start_time"] = start_time
            if name == "search":
                if token:
                    params["next_token"] = token
                call = functools.partial(self.reader.search_recent_tweets, query, **params)
            else:
                if token:
                    params["pagination_token"] = token
                call = functools.partial(self.reader.get_users_mentions, user_id, **params)
            try:
                body = self._call(call, "reading")
            except _RefusedToken:
                if pages or not token:
                    raise
                # X refuses the page token a backlog stopped at (issued for the query before
                # it changed, or no longer valid), on every pass: the source would never
                # move again. Read again from the cursor; dedup absorbs what was read before.
                token, newest = None, None
                if not q.since_id:
                    begun = _parse_time(q.start_time) or now - self.settings.lookback
                    if name == "search":
                        begun = max(begun, now - SEARCH_HORIZON)
                    start_time = begun.strftime("%Y-%m-%dT%H:%M:%SZ")
                where = (f"post {q.since_id}" if q.since_id
                         else f"{_parse_time(start_time):%Y-%m-%d %H:%M} UTC")
                notes.append(f"{name}: X no longer takes the page token this backlog stopped "
                             f"at; read again from {where}")
                continue
            except _BeyondRecentSearch:
                if name != "search" or pages or not (q.since_id or token):
                    raise
                # The cursor is older than the 7 days recent search reaches (after an
                # outage, or a read budget spent until the month's end): X refuses it on
                # every pass. Read from the horizon instead; what is older is out of reach.
                horizon = now - SEARCH_HORIZON
                q, token, newest = QueryCursor(), None, None
                start_time = horizon.strftime("%Y-%m-%dT%H:%M:%SZ")
                notes.append(f"search: the cursor was older than the 7 days recent search "
                             f"reaches; read again from {horizon:%Y-%m-%d %H:%M} UTC")
                continue
            page, meta = self._page(body)
            pages += 1
            read += len(page)
            mentions += self._to_mentions(page, body, user_id or state.user_id, unreadable)
            page_newest = meta.get("newest_id")
            if isinstance(page_newest, str) and page_newest.isdigit() and (
                newest is None or int(page_newest) > int(newest)
            ):
                newest = page_newest
            token = meta.get("next_token") if isinstance(meta.get("next_token"), str) else None
            if token is None:
                # Reached the page that meets the cursor: the next pass starts after the newest.
                state.queries[name] = QueryCursor(since_id=newest or q.since_id)
                return mentions, read, False
            if pages >= self.settings.max_pages or (left is not None and read >= left):
                state.queries[name] = QueryCursor(since_id=q.since_id, next_token=token,
                                                  newest_id=newest, start_time=start_time)
                return mentions, read, True

    def _page(self, body: Any) -> tuple[list[Any], dict[str, Any]]:
        """The posts and meta of a page; a post in an odd shape is the caller's to skip."""
        if not isinstance(body, dict):
            raise BadResponse(f"Source {self.name}: X answered with JSON that is not an object.")
        data = body.get("data", [])  # an empty result has no "data" at all
        meta = body.get("meta", {})
        if not isinstance(data, list) or not isinstance(meta, dict):
            raise BadResponse(f"Source {self.name}: X answered with an unexpected shape "
                              "(no list of posts).")
        return data, meta

    def _call(self, fn: Callable[[], Any], purpose: str) -> Any:
        """Run one tweepy call, turning its failures into mentionwatch errors."""
        # A read is tried again at the next pass; a post that failed this way is "unknown"
        # (it may have gone out) and is never sent again by itself.
        then = ("; it may have gone out: check the account before sending again."
                if purpose == "posting" else "; will retry.")
        try:
            return fn()
        except tweepy.TooManyRequests as exc:
            raise self._rate_limited(exc, purpose) from None
        except tweepy.Unauthorized:
            raise self._auth_error(purpose, 401, "") from None
        except tweepy.Forbidden as exc:
            raise self._auth_error(purpose, 403, _api_detail(exc)) from None
        except tweepy.TwitterServerError as exc:
            raise Transient(f"Source {self.name}: X server error "
                            f"({exc.response.status_code}){then}") from None
        except tweepy.BadRequest as exc:
            refused = _refused_parameters(exc)
            error = (_BeyondRecentSearch if refused & {"since_id", "start_time"}
                     else _RefusedToken if refused & {"next_token", "pagination_token"}
                     else BadResponse)
            raise error(f"Source {self.name}: X rejected the request (400): "
                        f"{_api_detail(exc) or 'no detail'}.",
                        hint="Check `query`, `language` and `account_user_id`.") from None
        except tweepy.HTTPException as exc:
            raise BadResponse(f"Source {self.name}: X answered {exc.response.status_code}: "
                              f"{_api_detail(exc) or 'no detail'}.") from None
        except requests.Timeout:
            raise Transient(f"Source {self.name}: X did not answer within "
                            f"{self._timeout:g} s{then}") from None
        except requests.ConnectionError as exc:
            raise Transient(f"Source {self.name}: cannot reach {self.settings.base_url}: "
                            f"{type(exc).__name__}{then}") from None
        except ValueError:  # requests.JSONDecodeError: a 2xx whose body is not JSON
            if purpose == "posting":
                raise SendUnconfirmed(f"Source {self.name}: X's answer is not JSON; the post "
                                      "may have gone out: check the account before sending "
                                      "again.") from None
            raise BadResponse(f"Source {self.name}: X answered with invalid JSON; "
                              "will retry.") from None
        except requests.RequestException as exc:
            raise Transient(f"Source {self.name}: request to X failed: "
                            f"{type(exc).__name__}{then}") from None

    def _rate_limited(self, exc: tweepy.TooManyRequests, purpose: str) -> RateLimited:
        """A 429: X took nothing. Without a reset time that can be read, wait one window."""
        until = _reset_time(exc)
        if until is not None:
            when = f" until {until:%H:%M:%S} UTC"
        else:
            until = utcnow() + RATE_LIMIT_WINDOW
            when = (f" until about {until:%H:%M:%S} UTC (X gave no reset time; its windows "
                    f"are {RATE_LIMIT_WINDOW // timedelta(minutes=1)} minutes)")
        hint = ("Nothing was posted; after that, `mentionwatch outbox retry` sends it again."
                if purpose == "posting" else None)
        return RateLimited(f"Source {self.name}: X rate limit reached{when}.", until=until,
                           hint=hint)

    def _auth_error(self, purpose: str, status: int, detail: str) -> AuthFailed:
        s = self.settings
        if purpose == "reading":
            setting = f"bearer_token_env (${s.bearer_token_env})"
        elif s.consumer_key_env:
            setting = ("consumer_key_env, consumer_secret_env, access_token_env and "
                       f"access_token_secret_env (${s.consumer_key_env}, ...)")
        else:
            setting = f"oauth2_user_token_env (${s.oauth2_user_token_env})"
        what = "rejected the credentials" if status == 401 else "refused access"
        extra = f": {detail}" if detail else ""
        return AuthFailed(
            f"Source {self.name}: X {what} ({status}){extra}.",
            hint=f"Fix the token named by {setting}; for 403 also check the app's access "
            "level and permissions in the X developer portal.",
        )

    # ------------------------------------------------------------------ normalising

    def _to_mentions(
        self, tweets: Iterable[Any], body: Mapping[str, Any], user_id: str | None,
        unreadable: UnreadableItems,
    ) -> list[MentionIn]:
        includes = body.get("includes")
        users_list = includes.get("users", []) if isinstance(includes, dict) else []
        users = {u["id"]: u for u in users_list
                 if isinstance(u, dict) and isinstance(u.get("id"), str)}
        own = self._own_handles()
        out = []
        for tweet in tweets:
            item_id = tweet.get("id") if isinstance(tweet, dict) else tweet
            mention = unreadable.read(item_id, functools.partial(
                self._kept_mention, tweet, users, own, user_id))
            if mention is not None:
                out.append(mention)
        return out

    def _kept_mention(self, tweet: dict[str, Any], users: Mapping[str, Any], own: set[str],
                      user_id: str | None) -> MentionIn | None:
        """The mention for one post, or None for the brand's own posts and dropped reposts.
        Raises one of connector.UNREADABLE for a post in an odd shape."""
        if not isinstance(tweet.get("id"), str):
            raise TypeError("a post without a string id")
        user = users.get(tweet.get("author_id", ""), {})
        handle = str(user.get("username") or "")
        if handle.lower() in own or (user_id and tweet.get("author_id") == user_id):
            return None  # the brand's own posts (and our replies) are never mentions
        refs = {str(r.get("type")): r.get("id") for r in tweet.get("referenced_tweets") or []
                if isinstance(r, dict)}
        if "retweeted" in refs and not self.settings.include_retweets:
            return None
        return self._to_mention(tweet, user, refs, user_id)

    def _to_mention(
        self, tweet: dict[str, Any], user: Mapping[str, Any], refs: Mapping[str, Any],
        user_id: str | None,
    ) -> MentionIn:
        tweet_id = tweet["id"]
        handle = str(user.get("username") or "")
        metrics = tweet.get("public_metrics") or {}
        user_metrics = user.get("public_metrics") or {}
        author = AuthorIn(
            handle=handle or f"id:{tweet.get('author_id', 'unknown')}",
            display_name=clean_text(user.get("name"), is_html=False) or None,
            followers=_int_or_none(user_metrics.get("followers_count")),
            verified=bool(user["verified"]) if "verified" in user else None,
            profile_url=f"https://x.com/{handle}" if handle else None,
            external_id=tweet.get("author_id"),
        ) if handle or tweet.get("author_id") else None
        kind = "reply" if "replied_to" in refs else "quote" if "quoted" in refs else (
            "repost" if "retweeted" in refs else "post")
        return MentionIn(
            external_id=tweet_id,
            text=tweet_text(tweet),
            url=f"https://x.com/{handle or 'i/web'}/status/{tweet_id}",
            author=author,
            created_at=_parse_time(tweet.get("created_at")) or snowflake_time(tweet_id),
            language=tweet.get("lang") if tweet.get("lang") not in (None, "und", "zxx") else None,
            likes=_int_or_none(metrics.get("like_count")) or 0,
            reposts=(_int_or_none(metrics.get("retweet_count")) or 0)
            + (_int_or_none(metrics.get("quote_count")) or 0),
            replies=_int_or_none(metrics.get("reply_count")) or 0,
            conversation_id=tweet.get("conversation_id"),
            in_reply_to_id=refs.get("replied_to"),
            is_reply_to_brand=bool(user_id) and tweet.get("in_reply_to_user_id") == user_id,
            kind=kind,
            raw={"tweet": tweet, "author": dict(user)},
        )

    # ------------------------------------------------------------------ writing

    def reply(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Post `text` as a public reply in the mention's thread.

        Raises SendError (too long by X's weighted count, refused by X), AuthFailed
        (posting not configured or credentials refused), RateLimited, Transient.
        """
        check_reply_length(text)
        client, oauth1 = self._posting_client()
        body = self._write(
            lambda: client.create_tweet(text=text, in_reply_to_tweet_id=mention.external_id,
                                        user_auth=oauth1),
            what=f"the reply to post {mention.external_id}", dm=False,
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise SendUnconfirmed(f"Source {self.name}: X accepted the reply but its answer has "
                                  "no post id; check the account before sending again.")
        who = self.settings.account or "i/web"
        return PostResult(external_id=data["id"], url=f"https://x.com/{who}/status/{data['id']}")

    def send_private(self, mention: StoredMentionRef, text: str) -> PostResult:
        """Send `text` as a direct message to the mention's author.

        Raises SendError (no author id, too long, DMs closed: X's 403), AuthFailed,
        RateLimited, Transient.
        """
        if not text.strip():
            raise SendError("The message is empty; write something before sending.")
        if len(text) > DM_LIMIT:
            raise SendError(f"The message is {len(text):,} characters; X allows {DM_LIMIT:,}.")
        # The post's own author id first: the stored author row is keyed by handle, and a
        # handle X recycled may carry an earlier holder's id.
        participant = _tweet_author_id(mention.raw) or mention.author_external_id
        if not participant:
            raise SendError(f"No X user id is stored for @{mention.author_handle}; "
                            "cannot open a direct message.")
        client, oauth1 = self._posting_client()
        body = self._write(
            lambda: client.create_direct_message(participant_id=participant, text=text,
                                                 user_auth=oauth1),
            what=f"the direct message to @{mention.author_handle}", dm=True,
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("dm_event_id"), str):
            raise SendUnconfirmed(f"Source {self.name}: X accepted the message but its answer "
                                  "has no event id; check the inbox before sending again.")
        conversation = data.get("dm_conversation_id")
        url = f"https://x.com/messages/{conversation}" if isinstance(conversation, str) else None
        return PostResult(external_id=data["dm_event_id"], url=url)

    def _write(self, fn: Callable[[], Any], *, what: str, dm: bool) -> Any:
        """Run one posting call; refusals that a person must act on become SendError."""

        def guarded() -> Any:
            try:
                return fn()
            except tweepy.Forbidden as exc:
                detail = _api_detail(exc)
                if _is_permission_problem(detail):
                    raise self._auth_error("posting", 403, detail) from None
                if dm:
                    raise SendError(
                        f"X refused {what}: their direct messages are closed to this account "
                        f"(403{': ' + detail if detail else ''}).",
                        hint="Reply in public instead, asking them to DM or email us.",
                    ) from None
                raise SendError(f"X refused {what} (403): {detail or 'no detail'}.") from None
            except tweepy.BadRequest as exc:
                raise SendError(f"X rejected {what} (400): {_api_detail(exc) or 'no detail'}.") \
                    from None
            except tweepy.NotFound:
                raise SendError(f"X could not find the target of {what} (404); "
                                "it may have been deleted.") from None

        return self._call(guarded, "posting")


def _tweet_author_id(raw: Mapping[str, Any]) -> str | None:
    """The author id in a stored mention's raw payload (`{"tweet": ..., "author": ...}`)."""
    tweet = raw.get("tweet") if isinstance(raw, Mapping) else None
    author_id = tweet.get("author_id") if isinstance(tweet, Mapping) else None
    return author_id if isinstance(author_id, str) and author_id.isdigit() else None


def _left(allowance: int | None, read: int) -> int | None:
    return None if allowance is None else allowance - read


def _query_term(term: str) -> str:
    term = term.strip()
    if re.search(r"[\s\"():]", term) or term.upper() in ("OR", "AND"):
        return '"' + term.replace('"', "") + '"'
    return term


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def snowflake_time(tweet_id: str) -> datetime | None:
    """When a post was created, from its id (X ids carry a millisecond timestamp)."""
    try:
        ms = (int(tweet_id) >> 22) + 1288834974657
    except ValueError:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


def tweet_text(tweet: Mapping[str, Any]) -> str:
    """The plain text of a post: the long-form text when there is one, t.co links replaced by
    the URLs they stand for, entities (&amp;) decoded."""
    note = tweet.get("note_tweet")
    if isinstance(note, dict) and isinstance(note.get("text"), str):
        text, entities = note["text"], note.get("entities") or {}
    else:
        text, entities = str(tweet.get("text") or ""), tweet.get("entities") or {}
    for url in entities.get("urls") or [] if isinstance(entities, dict) else []:
        if not isinstance(url, dict) or not isinstance(url.get("url"), str):
            continue
        target = url.get("unwound_url") or url.get("expanded_url")
        if isinstance(target, str) and target.startswith(("http://", "https://")):
            text = text.replace(url["url"], target)
    # X escapes only &, < and >; the text is not HTML, so tags must survive as text.
    return clean_text(text, is_html=False)
