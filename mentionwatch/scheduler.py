"""`mentionwatch run`: a long-lived scheduler that keeps every source polled.

APScheduler 3.x (a BlockingScheduler): one job per enabled source at its own interval with
jitter, coalescing (a backlog of missed runs becomes one), `max_instances=1` (a slow pass is
never overlapped by the next) and a misfire grace of one interval (with coalescing, a pass
however late runs once: after the machine slept, or the clock stepped forward). Each job is one
`poll_source` pass (its own transaction) followed by the after-poll steps (alerts...). A
heartbeat row says the daemon is alive. SIGINT/SIGTERM stop the scheduler and wait for the
passes in flight, which commit or roll back as a whole.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import OperationalError

from mentionwatch import db
from mentionwatch.config import Config, SourceConfig
from mentionwatch.durations import format_duration
from mentionwatch.health import POLLED_ELSEWHERE
from mentionwatch.hooks import after_poll
from mentionwatch.judgement import Judge
from mentionwatch.models import utcnow
from mentionwatch.pipeline import (
    BEING_POLLED,
    PollReport,
    SourceOutcome,
    make_http_client,
    poll_source,
    source_interval,
    sync_sources,
)
from mentionwatch.store import Store

log = logging.getLogger(__name__)

HEARTBEAT_NAME = "run"
#: Heartbeats of `run` services last seen longer ago than this are removed when one starts.
HEARTBEAT_KEPT = timedelta(days=7)
HEARTBEAT_EVERY = timedelta(seconds=30)
#: The executor of the jobs that are not passes (heartbeat, digest).
HOUSEKEEPING = "housekeeping"
#: How long after another process's next pass is due a timer that follows it fires.
FOLLOW_MARGIN = timedelta(seconds=2)
#: How often `run` compares the wall clock with the monotonic one (see `check_clock`), and
#: how far back the wall clock must have gone for the timers to be moved with it.
CLOCK_CHECK_EVERY = 5.0
CLOCK_STEP = timedelta(seconds=2)


#: The scheduled send of the morning digest (`sends.send_once`).
DIGEST = "digest"


def digest_period(now: datetime, digest_at: str, timezone: str) -> str:
    """The digest a firing at `now` is for: the local day whose `digest_at` it follows, with
    the time and zone ("2026-10-25 02:30 Europe/Berlin"). A firing late by up to a day
    (the misfire grace, a firing moved by a clock change) is still that day's."""
    hour, minute = (int(x) for x in digest_at.split(":"))
    local = now.astimezone(ZoneInfo(timezone))
    day = local.date() if (local.hour, local.minute) >= (hour, minute) else \
        local.date() - timedelta(days=1)
    return f"{day.isoformat()} {digest_at} {timezone}"


def jitter_for(interval: timedelta) -> int:
    """Up to 10% of the interval (at most 30 s), so sources do not all fire at once."""
    return int(min(30.0, interval.total_seconds() * 0.1))


def heartbeat_name(host: str, pid: int) -> str:
    """The heartbeat row of one `run` process: "run:HOST:PID" (at most 100 characters)."""
    tail = f":{pid}"
    return f"{HEARTBEAT_NAME}:{host}"[:100 - len(tail)] + tail


class Daemon:
    """Owns the scheduler, the shared HTTP client and the heartbeat."""

    def __init__(self, config: Config, store: Store, *, judge: Judge | None = None,
                 heartbeat_every: timedelta = HEARTBEAT_EVERY,
                 clock: Callable[[], datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.store = store
        #: Wall time, for what is dated (the digest's day), and monotonic time, for how much
        #: really passed (see `check_clock`); tests move them.
        self.clock = clock
        self.monotonic = monotonic
        self._clock_mark: tuple[datetime, float] | None = None
        self.judge = judge
        self.heartbeat_every = heartbeat_every
        self.http = make_http_client(config)
        self.scheduler = BlockingScheduler(
            # The heartbeat and the digest have a thread of their own: behind a pool full of
            # slow passes (a network outage makes every feed wait for its timeout) the
            # heartbeat had waited in the queue, and `status` called a busy daemon NOT
            # RESPONDING.
            executors={"default": ThreadPoolExecutor(max_workers=config.poll.concurrency),
                       HOUSEKEEPING: ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
        self.passes = 0
        self._lock = threading.Lock()
        #: Sources whose pass is running now (for the stop messages).
        self._running: set[str] = set()
        #: When this process last attempted each source (another process's later attempt
        #: makes a scheduled pass here unnecessary), and the sources another one polls now.
        self._polled_here: dict[str, datetime] = {}
        self._elsewhere: dict[str, bool] = {}

    def schedule(self) -> None:
        sync_sources(self.config, self.store)
        for source in self.config.sources:
            if not source.enabled:
                continue
            interval = source_interval(source)
            self.scheduler.add_job(
                self.poll_one, IntervalTrigger(seconds=max(1, int(interval.total_seconds())),
                                               jitter=jitter_for(interval)),
                args=[source], id=f"source:{source.name}", name=source.name,
                # Coalesced, so however late (the machine slept, the clock stepped forward)
                # the latest missed time is within this grace: one pass runs.
                misfire_grace_time=max(1, int(interval.total_seconds())),
                next_run_time=utcnow(), replace_existing=True,
            )
        try:  # services long gone (a host retired, a pid of last month) leave `status`
            self.store.prune_heartbeats(HEARTBEAT_NAME, before=utcnow() - HEARTBEAT_KEPT)
        except OperationalError as exc:
            log.error("old heartbeats not removed: %s", db.connect_message(self.store.engine,
                                                                           exc))
        self.scheduler.add_job(
            self.beat, IntervalTrigger(seconds=int(self.heartbeat_every.total_seconds())),
            id="heartbeat", next_run_time=utcnow(), replace_existing=True,
            executor=HOUSEKEEPING,
        )
        digest = self.config.reports
        if digest.digest_at:
            hour, minute = (int(x) for x in digest.digest_at.split(":"))
            self.scheduler.add_job(
                self.send_digest, CronTrigger(hour=hour, minute=minute,
                                              timezone=digest.timezone),
                id="digest", misfire_grace_time=3600, replace_existing=True,
                executor=HOUSEKEEPING,
            )

    def poll_one(self, source: SourceConfig) -> None:
        """One pass of one source. The timer keeps the interval; a source backing off after
        failures or rate limited is skipped until its time, and so is one another process
        polls (its pass in flight, or made within the interval): its timer here then follows
        that process's passes, so it takes over within an interval if they stop."""
        with self._lock:
            self._running.add(source.name)
        try:
            outcome = poll_source(source, self.config, self.store, http=self.http,
                                  judge=self.judge, scheduled=True,
                                  polled_here_at=self._polled_here.get(source.name))
        finally:
            with self._lock:
                self._running.discard(source.name)
        if outcome.attempted_at is not None:
            self._polled_here[source.name] = outcome.attempted_at
            if self._elsewhere.pop(source.name, None):
                log.info("source %s: polled here again (no other process polled it within "
                         "its interval)", source.name)
        if outcome.skipped_because in (POLLED_ELSEWHERE, BEING_POLLED):
            self._follow_elsewhere(source, outcome)
            return
        if outcome.status == "skipped":
            log.debug("source %s skipped: %s", source.name, outcome.message)
            return
        if outcome.status == "failed":
            log.warning("source %s: %s", source.name, outcome.message)
        else:
            log.info("source %s: %s, %d new", source.name, outcome.status, outcome.stored)
        with self._lock:
            self.passes += 1
        after_poll(self.config, self.store, PollReport((outcome,)))

    def _follow_elsewhere(self, source: SourceConfig, outcome: SourceOutcome) -> None:
        """Another process polls `source`: say so (a warning the first time), and move this
        timer to just after that process's next pass is due, where it finds that pass made
        (and skips again) or not made (and polls). Waiting a whole interval from here had
        left the source unpolled for up to two intervals once the other process stopped."""
        first = not self._elsewhere.get(source.name)
        self._elsewhere[source.name] = True
        what = f"{BEING_POLLED} now"
        if outcome.due_at is not None:
            interval = source_interval(source)
            ago = format_duration(self.clock() - (outcome.due_at - interval))
            at = outcome.due_at + timedelta(seconds=jitter_for(interval)) + FOLLOW_MARGIN
            self.scheduler.modify_job(f"source:{source.name}", next_run_time=at)
            what = f"{POLLED_ELSEWHERE} {ago} ago; next pass here at {at:%H:%M:%S} UTC"
        log.log(logging.WARNING if first else logging.INFO,
                "source %s: skipped (no second call to its API), %s", source.name, what)

    def check_clock(self) -> timedelta:
        """How far the wall clock stepped since the last check, measured against the
        monotonic clock (0 within CLOCK_STEP). Back: the interval timers (each source's, the
        heartbeat's) move back as far. Forward: the scheduler wakes to run what is due.
        APScheduler waits for wall-clock times, so a clock stepped back an hour (an NTP step,
        a VM restored) had stopped every pass and the heartbeat for that hour. The digest
        keeps its wall-clock time of day."""
        wall, mono = self.clock(), self.monotonic()
        mark, self._clock_mark = self._clock_mark, (wall, mono)
        if mark is None:
            return timedelta(0)
        step = (wall - mark[0]) - timedelta(seconds=mono - mark[1])
        if step > CLOCK_STEP:
            # Stepped forward, or the machine slept (the monotonic clock stops then, and the
            # scheduler's wait with it): the passes due meanwhile run now, once each, not when
            # that wait ends, up to an interval later.
            log.warning("the system clock went forward by %s (or the machine slept); the "
                        "passes due meanwhile run now", format_duration(step))
            if self.scheduler.running:
                self.scheduler.wakeup()
            return step
        if step >= -CLOCK_STEP:
            return timedelta(0)
        log.warning("the system clock went back by %s; the next passes move back with it",
                    format_duration(-step))
        for job in self.scheduler.get_jobs():
            if isinstance(job.trigger, IntervalTrigger) and job.next_run_time is not None:
                job.modify(next_run_time=job.next_run_time + step)
        return step

    def _watch_clock(self, stopped: threading.Event) -> None:
        self.check_clock()
        while not stopped.wait(CLOCK_CHECK_EVERY):  # a wait in monotonic time
            try:
                self.check_clock()
            except Exception:  # the scheduler shutting down under it: the next check says
                log.exception("clock check failed")

    def send_digest(self, now: datetime | None = None) -> None:
        """The morning digest: the report of the last `digest_since`, emailed to on-call,
        once per local day and `digest_at` (see `digest_period`), whoever fires it: a send
        taken or made for the day already (a second 02:30 on the night the clocks go back,
        a restarted service, a second one on this database) is not made again. A send that
        failed is given back: it is not recorded as made."""
        from mentionwatch.audit import MACHINE
        from mentionwatch.errors import MentionwatchError
        from mentionwatch.reports import build_report
        from mentionwatch.sends import AlreadySent, Delivery, send_digest, send_once

        now = now or self.clock()
        reports = self.config.reports
        assert reports.digest_at is not None  # scheduled only when set
        period = digest_period(now, reports.digest_at, reports.timezone)

        def send() -> Delivery:
            report = build_report(self.store, since=now - reports.digest_since, now=now)
            return send_digest(self.config, report, [], now)

        try:
            delivered, refused = send_once(self.store, DIGEST, period, send, now=now,
                                           actor=MACHINE, what="morning digest",
                                           clock=self.clock)
        except AlreadySent:
            log.info("morning digest for %s already sent; not sent again", period)
            return
        except MentionwatchError as exc:
            log.error("morning digest not sent: %s", exc)
            return
        log.info("morning digest sent to %s", ", ".join(delivered))
        if refused:
            log.warning("morning digest refused for %s", ", ".join(refused))

    def beat(self) -> None:
        """Write the heartbeat with each source's next run."""
        next_runs = {
            job.name: job.next_run_time.isoformat() if job.next_run_time else None
            for job in self.scheduler.get_jobs() if job.id.startswith("source:")
        }
        self._write_heartbeat({"next_runs": next_runs, "passes": self.passes,
                               "interval_s": self.heartbeat_every.total_seconds()})

    def _write_heartbeat(self, details: dict[str, Any]) -> None:
        host, pid = socket.gethostname(), os.getpid()
        try:
            # A row per process: two services on one database (a team's two hosts) had
            # shared one, and `status` showed whichever wrote last as the only one.
            self.store.write_heartbeat(heartbeat_name(host, pid), pid=pid, host=host,
                                       details=details)
        except OperationalError as exc:  # the database is down: one line, not a traceback
            log.error("heartbeat not written: %s", db.connect_message(self.store.engine, exc))

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            log.info("job %s still running; this run is skipped", event.job_id)
        elif event.exception is not None:
            log.error("job %s failed: %s", event.job_id, event.exception)

    def in_flight(self) -> str:
        """The sources being polled now, for a message."""
        with self._lock:
            return ", ".join(sorted(self._running)) or "none"

    def run(self) -> None:
        """Schedule and block until SIGINT/SIGTERM; passes in flight finish first. A second
        signal exits at once with 128 + its number: a pass cut short commits nothing (each
        is one transaction) and a reply being sent is left `sending`, which the next sender
        marks unknown."""
        self.schedule()
        previous: dict[signal.Signals, Any] = {}
        stopping = threading.Event()

        def stop(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if stopping.is_set():
                log.warning("received %s again; stopping now, without waiting for: %s",
                            name, self.in_flight())
                os._exit(128 + signum)
            stopping.set()
            log.warning("received %s; finishing the passes in flight (%s); %s again stops "
                        "at once", name, self.in_flight(), name)
            # Not from inside the handler: shutdown(wait=True) joins worker threads.
            threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True},
                             daemon=True).start()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, stop)
        watcher_stop = threading.Event()
        watcher = threading.Thread(target=self._watch_clock, args=(watcher_stop,),
                                   name="clock", daemon=True)
        watcher.start()
        try:
            self.scheduler.start()
        finally:
            watcher_stop.set()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._write_heartbeat({"stopped": True, "passes": self.passes})
            self.http.close()
