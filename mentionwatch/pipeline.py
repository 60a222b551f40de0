"""One pass over the sources: fetch, normalise, filter, de-duplicate, judge, store.

Each source pass runs in its own worker thread, so many slow feeds take about as long as the
slowest few. Each pass is one transaction (see `Store.store_batch`); a failure is recorded on
the source (last error, consecutive failures, backoff) and the other sources carry on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.exc import OperationalError

from mentionwatch import __version__, db
from mentionwatch.brand import BrandMatcher
from mentionwatch.config import Config, SourceConfig
from mentionwatch.connector import Batch, Connector, ConnectorContext, MentionIn
from mentionwatch.deadlines import BODY_DEADLINE_FACTOR, body_deadline
from mentionwatch.errors import AuthFailed, RateLimited, SourceError
from mentionwatch.health import (
    AUTH_FAILURES_TO_DISABLE,
    MAX_RATE_LIMIT_WAIT,
    backoff,
    due_state,
)
from mentionwatch.judgement import Judge
from mentionwatch.models import Author, Mention, utcnow
from mentionwatch.registry import connector_class
from mentionwatch.store import Store, config_hash
from mentionwatch.text import one_line, strip_terminal_escapes

log = logging.getLogger(__name__)

USER_AGENT = f"mentionwatch/{__version__} (+self-hosted brand monitor)"
#: Why a source is skipped whose pass is in flight in another process (it holds the lock).
BEING_POLLED = "being polled by another mentionwatch process"


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """What happened to one source in a pass."""

    name: str
    status: str  # "ok" | "not_modified" | "failed" | "skipped"
    stored: int = 0
    duplicates: int = 0
    fetched: int = 0
    message: str | None = None
    #: Mentions stored without a judgement: the rules engine failed on them (see message).
    unjudged: int = 0
    #: When this pass began, as recorded on the source (None: skipped, nothing recorded).
    attempted_at: datetime | None = None
    #: Skipped: why (a `Due` reason), and when the source is due (None: not known).
    skipped_because: str | None = None
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PollReport:
    outcomes: tuple[SourceOutcome, ...]

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def stored(self) -> int:
        return sum(o.stored for o in self.outcomes)

    @property
    def unjudged(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if o.unjudged]


def source_interval(source: SourceConfig) -> timedelta:
    if source.interval is not None:
        return source.interval
    return timedelta(seconds=connector_class(source.kind).default_interval)


def build_connector(
    source: SourceConfig,
    config: Config,
    *,
    http: httpx.Client | None = None,
    environ: Mapping[str, str] | None = None,
    since: datetime | None = None,
    state: Mapping[str, Any] | None = None,
) -> Connector:
    cls = connector_class(source.kind)
    settings = cls.Settings.model_validate(source.settings_data)
    context = ConnectorContext(
        source=source, brand=config.brand, poll=config.poll,
        environ=os.environ if environ is None else environ, http=http, since=since,
        state=state,
    )
    connector: Connector = cls(settings, context)
    return connector


def make_http_client(config: Config) -> httpx.Client:
    """One pooled client for all HTTP-based connectors: timeouts, redirects, gzip, a UA, and
    a deadline on each response's body (BODY_DEADLINE_FACTOR x the timeout)."""
    timeout = config.poll.timeout.total_seconds()
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        headers={"User-Agent": config.poll.user_agent or USER_AGENT},
        limits=httpx.Limits(max_connections=config.poll.concurrency * 2,
                            max_keepalive_connections=config.poll.concurrency),
        event_hooks={"response": [body_deadline(timeout * BODY_DEADLINE_FACTOR)]},
    )


def sync_sources(config: Config, store: Store) -> None:
    store.sync_sources([
        (s.name, s.kind, config_hash({"kind": s.kind, **s.settings_data}))
        for s in config.sources
    ])


def flatten_single_lines(mention: MentionIn) -> MentionIn:
    """Make the fields shown on one line (title, author handle and display name) one line,
    whatever the connector did: a line break in a feed item's title or author must not be
    able to pass for a line of an alert email or a screen."""
    if mention.title is not None:
        mention.title = one_line(mention.title) or None
    author = mention.author
    if author is not None:
        handle = one_line(author.handle)
        name = one_line(author.display_name) or None
        if handle != author.handle or name != author.display_name:
            mention.author = replace(author, handle=handle, display_name=name)
    return mention


def _limit(column: Any) -> int:
    return int(column.type.length)


#: Column widths of the fields a source fills in (a longer value fails the whole insert on
#: PostgreSQL: "value too long for type character varying(20)").
_MENTION_WIDTH = {name: _limit(getattr(Mention, name)) for name in (
    "external_id", "kind", "conversation_id", "in_reply_to_id")}
_AUTHOR_WIDTH = {name: _limit(getattr(Author, name)) for name in (
    "handle", "display_name", "external_id")}
_LANGUAGE_WIDTH = _limit(Mention.language)


def fit_to_store(mention: MentionIn) -> MentionIn | None:
    """The mention with the short fields a source sets made to fit their columns, or None
    when it cannot be stored (an id longer than its column). A value of the wrong type
    (a list for a language) is dropped. One odd post must not fail its whole pass, and with
    it every later pass that reads it again."""
    if not isinstance(mention.external_id, str) or (
            len(mention.external_id) > _MENTION_WIDTH["external_id"]):
        log.warning("skipped a mention whose id does not fit the store: %s",
                    ascii(str(mention.external_id))[:100])
        return None
    mention.kind = _fit(mention.kind, _MENTION_WIDTH["kind"]) or "post"
    mention.url = mention.url if isinstance(mention.url, str) else None
    mention.conversation_id = _fit(mention.conversation_id, _MENTION_WIDTH["conversation_id"])
    mention.in_reply_to_id = _fit(mention.in_reply_to_id, _MENTION_WIDTH["in_reply_to_id"])
    language = mention.language if isinstance(mention.language, str) else None
    if language and len(language) > _LANGUAGE_WIDTH:  # a long BCP 47 tag: its language
        language = language.replace("_", "-").split("-")[0][:_LANGUAGE_WIDTH]
    mention.language = language or None
    author = mention.author
    if author is not None:
        fitted = (_fit(author.handle, _AUTHOR_WIDTH["handle"]) or "",
                  _fit(author.display_name, _AUTHOR_WIDTH["display_name"]),
                  _fit(author.external_id, _AUTHOR_WIDTH["external_id"]))
        if not fitted[0]:
            mention.author = None
        elif fitted != (author.handle, author.display_name, author.external_id):
            # (copied only when a field changes: replace() costs more than the comparison)
            mention.author = replace(author, handle=fitted[0], display_name=fitted[1],
                                     external_id=fitted[2])
    return mention


def _fit(value: Any, width: int) -> str | None:
    return value[:width] if isinstance(value, str) else None


def filter_mentions(
    mentions: Sequence[MentionIn], matcher: BrandMatcher, *, prefiltered: bool,
    own_handles: set[str],
) -> list[MentionIn]:
    """Keep mentions that name the brand (unless the source already filtered) and that were
    not written by the brand's own accounts; record the matched terms on each."""
    kept = []
    fitting = (m for m in map(fit_to_store, mentions) if m is not None)
    for mention in map(flatten_single_lines, fitting):
        if mention.author and mention.author.handle.lower().lstrip("@") in own_handles:
            continue
        terms = matcher.find(f"{mention.title or ''}\n{mention.text}")
        if not terms and not prefiltered:
            continue
        mention.matched_terms = tuple(terms)
        kept.append(mention)
    return kept


def poll_source(
    source: SourceConfig,
    config: Config,
    store: Store,
    *,
    http: httpx.Client | None = None,
    judge: Judge | None = None,
    force: bool = False,
    since: datetime | None = None,
    environ: Mapping[str, str] | None = None,
    matcher: BrandMatcher | None = None,
    fail_after: int | None = None,
    scheduled: bool = False,
    polled_here_at: datetime | None = None,
) -> SourceOutcome:
    """Poll one source if it is due; record the result on the source. Never raises
    SourceError: failures become the outcome and the source's health. `scheduled` is for the
    daemon, whose timer keeps the interval (backoff and rate limits still apply), with
    `polled_here_at` its own last attempt at this source (see `health.due_state`)."""
    from mentionwatch.locks import source_lock

    try:
        with source_lock(store, source.name) as taken:
            if not taken:
                return SourceOutcome(source.name, "skipped", message=BEING_POLLED,
                                     skipped_because=BEING_POLLED)
            return _poll_locked(source, config, store, http=http, judge=judge, force=force,
                                since=since, environ=environ, matcher=matcher,
                                fail_after=fail_after, scheduled=scheduled,
                                polled_here_at=polled_here_at)
    except OperationalError as exc:
        # The database (down, unreachable, locked past the busy timeout), not the source:
        # nothing is stored, there is nowhere to record it, and the next pass reads again.
        return SourceOutcome(source.name, "failed",
                             message=db.connect_message(store.engine, exc))


def _poll_locked(
    source: SourceConfig,
    config: Config,
    store: Store,
    *,
    http: httpx.Client | None,
    judge: Judge | None,
    force: bool,
    since: datetime | None,
    environ: Mapping[str, str] | None,
    matcher: BrandMatcher | None,
    fail_after: int | None,
    scheduled: bool,
    polled_here_at: datetime | None,
) -> SourceOutcome:
    # Read the source's state only once the lock is held: another process may just have
    # polled it, and then it is not due any more.
    now = utcnow()
    interval = source_interval(source)
    row = store.source_row(source.name)
    if row is None:
        sync_sources(config, store)
        row = store.source_row(source.name)
        assert row is not None
    due = due_state(
        now=now, interval=interval, last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at, rate_limited_until=row.rate_limited_until,
        disabled_reason=row.disabled_reason, force=force or since is not None,
        scheduled=scheduled, polled_here_at=polled_here_at,
    )
    if not due.due:
        when = f" until {due.at:%Y-%m-%d %H:%M:%S} UTC" if due.at else ""
        return SourceOutcome(source.name, "skipped", message=f"{due.reason}{when}",
                             skipped_because=due.reason, due_at=due.at)

    cls = connector_class(source.kind)
    matcher = matcher or BrandMatcher(config.brand.terms, config.brand.exclude)
    connector: Connector | None = None
    try:
        connector = build_connector(source, config, http=http, environ=environ, since=since,
                                    state=row.state)
        batch: Batch = connector.fetch(None if since else row.cursor)
        if batch.not_modified:
            store.record_not_modified(source.name, now=now)
            return SourceOutcome(source.name, "not_modified", attempted_at=now)
        platform = getattr(cls, "platform", source.kind)
        kept = filter_mentions(
            batch.mentions, matcher, prefiltered=getattr(cls, "prefiltered", False),
            own_handles=config.brand.own_handles(platform),
        )
        fetched = len(batch.mentions)
        batch.mentions = kept
        result = store.store_batch(source.name, batch, judge=judge, platform=platform,
                                   now=now, fail_after=fail_after)
        notes = list(batch.notes)
        if result.unjudged:
            notes.append(f"{result.unjudged} new mentions stored without a judgement: the "
                         f"rules failed on them ({result.judge_error}); `mentionwatch rules "
                         "rescore` judges them again")
            log.error("source %s: %s", source.name, notes[-1])
        return SourceOutcome(source.name, "ok", stored=result.stored,
                             duplicates=result.duplicates, fetched=fetched,
                             message="; ".join(notes) or None, unjudged=result.unjudged,
                             attempted_at=now)
    except SourceError as exc:
        return _record_source_error(store, source, row.consecutive_failures, interval, exc, now)
    except OperationalError:
        raise  # the database's failure, not the source's (see poll_source)
    except Exception as exc:  # a bug in a connector must not stop the other sources
        log.exception("unexpected error while polling source %s", source.name)
        message = strip_terminal_escapes(f"internal error: {type(exc).__name__}: {exc}")
        store.record_failure(
            source.name, message, now=now,
            next_attempt_at=now + backoff(row.consecutive_failures + 1, interval),
        )
        return SourceOutcome(source.name, "failed", message=message, attempted_at=now)
    finally:
        if connector is not None:
            connector.close()


def _record_source_error(
    store: Store, source: SourceConfig, failures: int, interval: timedelta,
    exc: SourceError, now: datetime,
) -> SourceOutcome:
    # The message often quotes the server (a reason phrase, an error text): it is stored
    # and shown by status, poll and the TUI, so it must not carry terminal escapes.
    message = strip_terminal_escapes(exc.message if not exc.hint else f"{exc.message} {exc.hint}")
    rate_limited_until = exc.until if isinstance(exc, RateLimited) else None
    if rate_limited_until is not None and rate_limited_until > now + MAX_RATE_LIMIT_WAIT:
        asked = rate_limited_until.astimezone(UTC)
        hours = MAX_RATE_LIMIT_WAIT / timedelta(hours=1)
        message += (f" The server asked to wait until {asked:%Y-%m-%d %H:%M} UTC; mentionwatch"
                    f" waits at most {hours:.0f} hours and tries again then.")
        rate_limited_until = now + MAX_RATE_LIMIT_WAIT
    if isinstance(exc, RateLimited) and rate_limited_until is None:
        rate_limited_until = now + max(interval, timedelta(minutes=1))
    store.record_failure(
        source.name, message, now=now,
        next_attempt_at=rate_limited_until or now + backoff(failures + 1, interval),
        rate_limited_until=rate_limited_until,
        auth_failure=isinstance(exc, AuthFailed),
        disable_after_auth_failures=AUTH_FAILURES_TO_DISABLE,
    )
    # Debug only: the caller says it once (`poll` on stderr, `run` in its log).
    log.debug("source %s failed: %s", source.name, message)
    return SourceOutcome(source.name, "failed", message=message, attempted_at=now)


#: The message of a source a stopped `poll` did not start.
NOT_STARTED = "not polled: the poll was stopped before it started"


class PollStop:
    """Lets a `poll` be stopped from outside (a signal handler): the passes in flight
    finish, each one whole, and no more start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._stopped = False

    def stop(self) -> list[str]:
        """Start no more passes; return the sources whose pass is in flight."""
        with self._lock:
            self._stopped = True
            return sorted(self._running)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def in_flight(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def begin(self, name: str) -> bool:
        """Whether the pass of `name` may start (and is now in flight)."""
        with self._lock:
            if self._stopped:
                return False
            self._running.add(name)
            return True

    def end(self, name: str) -> None:
        with self._lock:
            self._running.discard(name)


def poll(
    config: Config,
    store: Store,
    *,
    names: Sequence[str] | None = None,
    force: bool = False,
    since: datetime | None = None,
    judge: Judge | None = None,
    environ: Mapping[str, str] | None = None,
    on_outcome: Callable[[SourceOutcome], Any] | None = None,
    stop: PollStop | None = None,
) -> PollReport:
    """Poll the enabled sources (or those named) concurrently; return what happened. Once
    `stop` is stopped, the sources not started yet are skipped (NOT_STARTED)."""
    sync_sources(config, store)
    sources = [config.source(n) for n in names] if names else [
        s for s in config.sources if s.enabled
    ]
    matcher = BrandMatcher(config.brand.terms, config.brand.exclude)
    control = stop or PollStop()
    outcomes: list[SourceOutcome] = []

    def one(source: SourceConfig) -> SourceOutcome:
        if not control.begin(source.name):
            return SourceOutcome(source.name, "skipped", message=NOT_STARTED)
        try:
            return poll_source(source, config, store, http=http, judge=judge,
                               force=force or bool(names), since=since, environ=environ,
                               matcher=matcher)
        finally:
            control.end(source.name)

    with make_http_client(config) as http, ThreadPoolExecutor(
        max_workers=min(config.poll.concurrency, max(1, len(sources))),
        thread_name_prefix="poll",
    ) as pool:
        futures = [pool.submit(one, s) for s in sources]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    order = {s.name: i for i, s in enumerate(sources)}
    return PollReport(tuple(sorted(outcomes, key=lambda o: order[o.name])))
