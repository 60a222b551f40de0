"""`mentionwatch run` and safe overlapping `poll`: real processes, real servers, both
databases."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mentionwatch.health import due_state, quiet_for, typical_gap
from mentionwatch.locks import source_lock
from mentionwatch.store import Store
from tests.conftest import deadline
from tests.feedserver import FeedServer, rss

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def env_for(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTIONWATCH_")}
    env.update(NO_COLOR="1", XDG_CONFIG_HOME=str(tmp / "cfg"), XDG_DATA_HOME=str(tmp / "data"))
    return env


def write_config(tmp: Path, db_url: str, sources: list[tuple[str, str]],
                 interval: str = "10s") -> Path:
    body = f'[brand]\nname = "Acme"\nterms = ["acme"]\n[database]\nurl = "{db_url}"\n'
    for name, url in sources:
        body += (f'\n[[sources]]\nname = "{name}"\nkind = "rss"\nurl = "{url}"\n'
                 f'interval = "{interval}"\n')
    path = tmp / "mentionwatch.toml"
    path.write_text(body, encoding="utf-8")
    return path


def items(n: int, prefix: str) -> list[dict[str, str]]:
    return [{"title": f"Acme {prefix} {i}", "guid": f"{prefix}-{i}",
             "link": f"http://{prefix}.example/{i}", "description": "acme is down"}
            for i in range(n)]


def start_run(config: Path, tmp: Path, *options: str) -> subprocess.Popen[str]:
    """`mentionwatch run` as a service manager starts it: its own process, output piped."""
    return subprocess.Popen([sys.executable, "-m", "mentionwatch", "--config", str(config),
                             *options, "run"], env=env_for(tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_until(done: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not done():
        time.sleep(0.2)


def count(db_url: str) -> int:
    store = Store.open(db_url)
    try:
        return store.count_mentions()
    finally:
        store.close()


def test_run_polls_on_schedule_keeps_a_heartbeat_and_stops_cleanly(
        tmp_path: Path, feeds: FeedServer, db_url: str) -> None:
    url = feeds.add("/f.xml", rss(items(3, "a")))
    config = write_config(tmp_path, db_url, [("forum", url)])
    cmd = [sys.executable, "-m", "mentionwatch", "--config", str(config), "run"]
    proc = subprocess.Popen(cmd, env=env_for(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and count(db_url) < 3:
            time.sleep(0.2)
        assert count(db_url) == 3, "the first pass did not run at start"
        feeds.add("/f.xml", rss(items(5, "a")))  # two new entries appear
        # 10 s is the shortest interval a source may have; the next pass is due then.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and count(db_url) < 5:
            time.sleep(0.2)
        assert len(feeds.seen("/f.xml")) >= 2, "the source was not polled on its interval"
        status = subprocess.run([sys.executable, "-m", "mentionwatch", "--config", str(config),
                                 "status"], env=env_for(tmp_path), capture_output=True,
                                text=True, timeout=60)
        assert "mentionwatch run: alive" in status.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Stopped after" in err
    assert count(db_url) == 5  # each entry once, across many passes
    # Conditional GET: later passes asked with the ETag.
    assert any("If-None-Match" in r.headers for r in feeds.seen("/f.xml")[1:])
    status = subprocess.run([sys.executable, "-m", "mentionwatch", "--config", str(config),
                             "status"], env=env_for(tmp_path), capture_output=True, text=True,
                            timeout=60)
    assert "mentionwatch run: stopped" in status.stdout


def test_run_verbose_logs_each_pass_in_one_line_without_scheduler_chatter(
        tmp_path: Path, feeds: FeedServer, db_url: str) -> None:
    url = feeds.add("/f.xml", rss(items(3, "a")))
    proc = start_run(write_config(tmp_path, db_url, [("forum", url)]), tmp_path, "-v")
    try:
        wait_until(lambda: count(db_url) >= 3)
        time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert "INFO source forum: ok, 3 new" in err
    # apscheduler's 'Running job ...' and 'Job ... executed successfully' for every run of
    # every job (the heartbeat's every 30 s) had been two more lines each in the journal.
    assert "Running job" not in err and "executed successfully" not in err, err
    assert "Adding job tentatively" not in err
    assert len(err.splitlines()) <= 4, err


def test_the_heartbeat_goes_on_while_every_worker_is_in_a_slow_pass(
        feeds: FeedServer, store: Store, db_url: str) -> None:
    import threading

    from mentionwatch.scheduler import HEARTBEAT_NAME, Daemon
    from tests.conftest import make_config

    # One worker, busy for seconds with a slow source: the heartbeat (every second here) had
    # queued behind it, so `status` would call a working daemon NOT RESPONDING.
    slow = feeds.add("/slow.xml", rss(items(1, "d")), drip=0.05)
    config = make_config(db_url, [{"name": "slow", "kind": "rss", "url": slow,
                                   "interval": "1h"}], poll={"concurrency": 1, "timeout": "2s"})
    daemon = Daemon(config, store, heartbeat_every=timedelta(seconds=1))
    daemon.schedule()
    scheduler = threading.Thread(target=daemon.scheduler.start, daemon=True)
    scheduler.start()
    try:
        wait_until(lambda: bool(feeds.seen("/slow.xml")), 10)
        time.sleep(3)
        assert daemon.in_flight() == "slow", "the pass should still be running"
        beats = store.heartbeats(HEARTBEAT_NAME)
        assert beats, "no heartbeat while the only worker was busy"
        beat = beats[0]
        assert datetime.now(UTC) - beat.at.replace(tzinfo=UTC) < timedelta(seconds=2.5)
    finally:
        daemon.scheduler.shutdown(wait=True)
        daemon.http.close()


def test_a_second_sigterm_stops_run_at_once_and_loses_nothing(
        tmp_path: Path, feeds: FeedServer, db_url: str) -> None:
    # A pass that takes long (a byte every 0.2 s, within every timeout): the first SIGTERM
    # waits for it, the second stops now. It had raised SchedulerNotRunningError in a thread
    # (a traceback) and gone on waiting; only SIGKILL stopped it.
    slow = feeds.add("/slow.xml", rss(items(1, "d")), drip=0.2)
    good = feeds.add("/good.xml", rss(items(2, "g")))
    config = write_config(tmp_path, db_url, [("slow", slow), ("good", good)])
    proc = start_run(config, tmp_path)
    try:
        wait_until(lambda: count(db_url) >= 2 and bool(feeds.seen("/slow.xml")))
        assert count(db_url) == 2
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert proc.poll() is None, "the first SIGTERM must wait for the pass in flight"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "finishing the passes in flight (slow); SIGTERM again stops at once" in err
    assert "received SIGTERM again; stopping now, without waiting for: slow" in err
    assert "Traceback" not in err
    # The pass cut short stored nothing and recorded nothing; the next one reads it whole.
    store = Store.open(db_url)
    try:
        assert store.count_mentions("slow") == 0
        assert store.count_mentions("good") == 2
    finally:
        store.close()


@pytest.mark.postgres
def test_run_says_in_one_line_per_pass_that_the_database_is_gone(
        tmp_path: Path, feeds: FeedServer, pg_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = feeds.add("/f.xml", rss(items(1, "a")))
    config = write_config(tmp_path, pg_url, [("forum", url)])
    proc = start_run(config, tmp_path)
    try:
        wait_until(lambda: count(pg_url) >= 1)
        assert count(pg_url) == 1
        # The database goes away under the service (as when the server is down or moved).
        name = make_url(pg_url).database
        admin = create_engine(make_url(pg_url).set(database="postgres"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        time.sleep(13)  # the source's next pass (10 s) runs into it
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # One line saying what is wrong, per pass; each had been a screenful of traceback
    # (apscheduler's 'Job ... raised an exception') every interval in the journal.
    assert "Traceback" not in err, err
    assert f'source forum: Cannot use the database {make_url(pg_url)}' in err
    assert f'database "{name}" does not exist' in err


def test_two_overlapping_polls_poll_each_source_once(tmp_path: Path, feeds: FeedServer,
                                                     db_url: str) -> None:
    sources = [(f"s{i}", feeds.add(f"/s{i}.xml", rss(items(4, f"s{i}")), delay=1.0))
               for i in range(3)]
    config = write_config(tmp_path, db_url, sources, interval="1h")
    cmd = [sys.executable, "-m", "mentionwatch", "--config", str(config), "poll"]
    Store.open(db_url).close()  # migrate first, so both start on an upgraded schema
    procs = [subprocess.Popen(cmd, env=env_for(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower()
    for i in range(3):
        assert len(feeds.seen(f"/s{i}.xml")) == 1, f"s{i} was polled twice"
    assert count(db_url) == 12


@contextlib.contextmanager
def slow_poll(tmp_path: Path, feeds: FeedServer, db_url: str
              ) -> Iterator[subprocess.Popen[str]]:
    """`mentionwatch poll` (as cron runs it: no terminal) one source at a time, in the middle
    of a slow pass (a byte every 0.01 s, some seconds in all); a second source waits."""
    slow = feeds.add("/slow.xml", rss(items(1, "d")), drip=0.01)
    later = feeds.add("/later.xml", rss(items(2, "l")))
    config = write_config(tmp_path, db_url, [("slow", slow), ("later", later)])
    config.write_text(config.read_text().replace("[database]", "[poll]\nconcurrency = 1\n"
                                                 "[database]"), encoding="utf-8")
    Store.open(db_url).close()
    proc = subprocess.Popen([sys.executable, "-m", "mentionwatch", "--config", str(config),
                             "poll"], env=env_for(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: bool(feeds.seen("/slow.xml")))
        assert feeds.seen("/slow.xml"), "the slow pass did not start"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_ctrl_c_on_poll_says_which_passes_it_finishes_and_starts_no_more(
        tmp_path: Path, feeds: FeedServer, db_url: str) -> None:
    # It had waited without a word for the passes in flight, then printed "Aborted."
    with slow_poll(tmp_path, feeds, db_url) as proc:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert ("Ctrl-C: finishing the passes in flight (slow) and starting no more; Ctrl-C again "
            "stops at once") in err
    assert "Stopped: 1 of 2 sources polled; not polled: later." in err
    assert "\x1b" not in err and "Traceback" not in err  # not a terminal: plain lines
    assert count(db_url) == 1  # the pass in flight finished and stored its mention
    assert not feeds.seen("/later.xml")


def test_a_second_ctrl_c_stops_poll_at_once(tmp_path: Path, feeds: FeedServer,
                                            db_url: str) -> None:
    with slow_poll(tmp_path, feeds, db_url) as proc:
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        with deadline(30):
            first = proc.stderr.readline()  # said once the first one is taken
        assert "finishing the passes in flight (slow)" in first
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert "Ctrl-C again: stopping now, without waiting for: slow" in err
    assert count(db_url) == 0  # the pass cut short stored nothing


def test_a_poll_of_many_sources_at_a_high_concurrency_finishes(
        tmp_path: Path, feeds: FeedServer, db_url: str) -> None:
    # On PostgreSQL each pass holds a connection for its source's lock and needs another for
    # its writes. 45 passes at once on the fixed pool of 40 had all waited for a connection
    # none gave back: 60 s (pool_timeout), then a TimeoutError traceback.
    sources = [(f"s{i}", feeds.add(f"/s{i}.xml", rss(items(1, f"s{i}")), delay=0.5))
               for i in range(45)]
    config = write_config(tmp_path, db_url, sources, interval="1h")
    config.write_text(config.read_text().replace("[database]", "[poll]\nconcurrency = 45\n"
                                                 "[database]"), encoding="utf-8")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mentionwatch", "--config", str(config),
                             "poll"], env=env_for(tmp_path), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert count(db_url) == 45


def test_source_lock_excludes_a_second_holder(db_url: str) -> None:
    a, b = Store.open(db_url), Store.open(db_url)
    try:
        with source_lock(a, "x") as first:
            assert first
            with source_lock(b, "x") as second:
                assert not second
            with source_lock(b, "y") as other:
                assert other
        with source_lock(b, "x") as again:
            assert again
    finally:
        a.close()
        b.close()


def test_two_services_on_one_database_call_each_source_once_an_interval(
        feeds: FeedServer, store: Store, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Two `run` services on one database (two machines, or cron's `poll` beside `run`): the
    lock kept their passes from overlapping, but each timer's pass polled the source anyway,
    so every source's API was called twice an interval."""
    import logging

    from mentionwatch.pipeline import poll
    from mentionwatch.scheduler import FOLLOW_MARGIN, Daemon
    from tests.conftest import make_config

    url = feeds.add("/f.xml", rss(items(2, "a")))
    config = make_config(db_url, [{"name": "forum", "kind": "rss", "url": url,
                                   "interval": "10m"}])
    source = config.sources[0]
    here, there = Daemon(config, Store.open(db_url)), Daemon(config, Store.open(db_url))
    try:
        for daemon in (here, there):
            daemon.schedule()
        here.poll_one(source)
        assert len(feeds.seen("/f.xml")) == 1
        with caplog.at_level(logging.INFO, logger="mentionwatch.scheduler"):
            there.poll_one(source)  # its timer fires: the other polled it a moment ago
            there.poll_one(source)
        assert len(feeds.seen("/f.xml")) == 1
        lines = [(r.levelname, r.getMessage()) for r in caplog.records]
        assert lines[0][0] == "WARNING" and lines[1][0] == "INFO"  # said loudly once
        assert lines[0][1].startswith("source forum: skipped (no second call to its API), "
                                      "polled by another mentionwatch process 0s ago; next "
                                      "pass here at ")
        # Its timer now follows the other's passes: just after the next one is due.
        row = store.source_row("forum")
        assert row is not None and row.last_attempt_at is not None
        job = there.scheduler.get_job("source:forum")
        assert job.next_run_time == row.last_attempt_at + timedelta(minutes=10, seconds=30) \
            + FOLLOW_MARGIN
        here.poll_one(source)  # the first service's own timer keeps its interval
        assert len(feeds.seen("/f.xml")) == 2
        poll(config, store)  # cron's `poll` beside them: not due
        assert len(feeds.seen("/f.xml")) == 2
        # The first service stops (or crashes): an interval after its last pass the other
        # polls, and from then on its own passes are its own.
        store.record_not_modified("forum", now=datetime.now(UTC) - timedelta(minutes=11))
        with caplog.at_level(logging.INFO, logger="mentionwatch.scheduler"):
            there.poll_one(source)
            there.poll_one(source)
        assert len(feeds.seen("/f.xml")) == 4
        assert "source forum: polled here again" in caplog.text
    finally:
        for daemon in (here, there):
            daemon.http.close()
            daemon.store.close()


@pytest.mark.postgres
def test_a_postgres_session_whose_host_is_gone_ends_within_a_minute(pg_url: str) -> None:
    """A source's lock is its holder's session's: a host that crashed or lost the network
    held it, and kept every other service from polling that source, until the server's TCP
    keepalive gave up on the session (the system default: over two hours on Linux)."""
    from sqlalchemy import text

    store = Store.open(pg_url)
    try:
        with store.engine.connect() as conn:
            settings = {name: conn.execute(text(f"SHOW {name}")).scalar() for name in
                        ("tcp_keepalives_idle", "tcp_keepalives_interval",
                         "tcp_keepalives_count")}
    finally:
        store.close()
    idle, interval, probes = (int(str(v).rstrip("s")) for v in settings.values())
    assert 0 < idle + interval * probes <= 60, settings


def test_run_moves_its_timers_back_with_a_clock_stepped_back(store: Store, db_url: str,
                                                             caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    """APScheduler waits for wall-clock times: a clock stepped back an hour (an NTP step, a
    VM restored) had stopped every pass and the heartbeat for that hour."""
    from mentionwatch.scheduler import Daemon
    from tests.conftest import make_config

    wall, mono = [NOW], [1000.0]
    config = make_config(db_url, [{"name": "forum", "kind": "rss", "url": "http://127.0.0.1:9/",
                                   "interval": "15m"}])
    daemon = Daemon(config, store, clock=lambda: wall[0], monotonic=lambda: mono[0])
    try:
        daemon.schedule()
        jobs = [daemon.scheduler.get_job(i) for i in ("source:forum", "heartbeat")]
        before = [job.next_run_time for job in jobs]
        assert daemon.check_clock() == timedelta(0)  # the first look: nothing to compare
        wall[0] += timedelta(seconds=9)  # a second's drift is not a step
        mono[0] += 10
        assert daemon.check_clock() == timedelta(0)
        assert [job.next_run_time for job in jobs] == before
        wall[0] += timedelta(seconds=10) - timedelta(hours=1)  # stepped back an hour
        mono[0] += 10
        assert daemon.check_clock() == -timedelta(hours=1)
        assert [job.next_run_time for job in jobs] == [t - timedelta(hours=1) for t in before]
        assert "the system clock went back by 1h; the next passes move back" in caplog.text
    finally:
        daemon.http.close()


def test_poll_does_not_wait_out_a_clock_stepped_back(feeds: FeedServer, store: Store,
                                                     db_url: str) -> None:
    """Cron's `poll` measured the interval from the last attempt's time: with the clock
    stepped back an hour, a 15-minute source was "not due yet" for an hour and a quarter."""
    from mentionwatch.pipeline import poll
    from tests.conftest import make_config

    url = feeds.add("/f.xml", rss(items(1, "a")))
    config = make_config(db_url, [{"name": "forum", "kind": "rss", "url": url,
                                   "interval": "15m"}])
    poll(config, store)
    # That pass as this clock had stamped it before it was stepped back an hour.
    store.record_not_modified("forum", now=datetime.now(UTC) + timedelta(hours=1))
    outcome = poll(config, store).outcomes[0]
    assert outcome.status == "not_modified", outcome.message
    assert len(feeds.seen("/f.xml")) == 2
    assert poll(config, store).outcomes[0].status == "skipped"  # stamped anew: not due


def test_scheduled_passes_respect_backoff_and_rate_limits() -> None:
    common = {"now": NOW, "interval": timedelta(minutes=5), "disabled_reason": None,
              "last_attempt_at": NOW - timedelta(seconds=10)}
    ours = NOW - timedelta(seconds=10)  # the last attempt was this process's own
    assert due_state(**common, next_attempt_at=None, rate_limited_until=None,
                     scheduled=True, polled_here_at=ours).due
    assert not due_state(**common, next_attempt_at=None, rate_limited_until=None).due
    backing_off = due_state(**common, next_attempt_at=NOW + timedelta(minutes=2),
                            rate_limited_until=None, scheduled=True, polled_here_at=ours)
    assert not backing_off.due and backing_off.reason == "backing off after failures"
    limited = due_state(**common, next_attempt_at=None,
                        rate_limited_until=NOW + timedelta(minutes=9), force=True)
    assert not limited.due and limited.at == NOW + timedelta(minutes=9)
    # Another process attempted it 10 s ago: a scheduled pass here waits for the interval.
    mine = NOW - timedelta(minutes=5)
    elsewhere = due_state(**common, next_attempt_at=None, rate_limited_until=None,
                          scheduled=True, polled_here_at=mine)
    assert not elsewhere.due and elsewhere.reason == "polled by another mentionwatch process"
    assert elsewhere.at == NOW + timedelta(minutes=4, seconds=50)
    # An attempt stamped later than now: the clock went back since. The waits measured
    # from it would last as long again; it is due (a second's difference between the
    # clocks of two machines on one database is not that).
    ahead = {**common, "last_attempt_at": NOW + timedelta(hours=1)}
    for waits in ({"next_attempt_at": NOW + timedelta(hours=1, minutes=2)},
                  {"rate_limited_until": NOW + timedelta(hours=1, minutes=15)}, {}):
        stepped = due_state(**{"next_attempt_at": None, "rate_limited_until": None,
                               **ahead, **waits})
        assert stepped.due and stepped.reason == "the clock went back", waits
    assert not due_state(**{**common, "last_attempt_at": NOW + timedelta(seconds=20)},
                         next_attempt_at=None, rate_limited_until=None).due
    # Before its first pass, an attempt within the interval is another process's.
    assert not due_state(**common, next_attempt_at=None, rate_limited_until=None,
                         scheduled=True).due


def test_quiet_source_is_learned_from_its_rhythm() -> None:
    hourly = [NOW - timedelta(hours=h) for h in range(30, 60)]
    gap = typical_gap(hourly)
    assert gap == timedelta(hours=1)
    assert typical_gap(hourly[:3]) is None  # too little history to judge
    interval = timedelta(minutes=15)
    quiet = quiet_for(now=NOW, last_new=NOW - timedelta(hours=30), last_success=NOW,
                      gap=gap, interval=interval)
    assert quiet == timedelta(hours=30)
    assert quiet_for(now=NOW, last_new=NOW - timedelta(hours=3), last_success=NOW, gap=gap,
                     interval=interval) is None  # within a day: not alarming
    # A failing source is reported by its error, not as quiet.
    assert quiet_for(now=NOW, last_new=NOW - timedelta(days=3),
                     last_success=NOW - timedelta(days=2), gap=gap, interval=interval) is None


def test_status_json_is_unchanged_by_the_daemon_columns(tmp_path: Path, db_url: str,
                                                        store: Store) -> None:
    # `store` creates the database: status reads one, it does not make an empty one.
    config = write_config(tmp_path, db_url, [("forum", "http://127.0.0.1:9/x.xml")])
    result = subprocess.run([sys.executable, "-m", "mentionwatch", "--config", str(config),
                             "status", "--json"], env=env_for(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["source"] == "forum"


def test_backoff_grows_then_caps_even_after_very_many_failures() -> None:
    from mentionwatch.health import backoff

    interval = timedelta(minutes=15)
    assert backoff(0, interval) == timedelta(0)
    assert backoff(1, interval) == timedelta(minutes=1)
    assert backoff(3, interval) == timedelta(minutes=4)
    assert backoff(1000, interval) == timedelta(hours=1)  # no overflow, the cap holds
    assert backoff(2, timedelta(seconds=2)) == timedelta(seconds=4)


@pytest.mark.parametrize(("route", "within"), [
    ({"delay": 20}, 8),  # no answer at all: the read timeout (2 s)
    # A byte every 0.1 s: each read is well within the timeout, the whole body takes ~30 s,
    # which had held the pass that long; the body deadline (3 x the timeout) ends it.
    ({"drip": 0.1}, 12),
])
def test_a_hanging_source_does_not_hold_up_the_others(
        feeds: FeedServer, store: Store, db_url: str, route: dict[str, float],
        within: float) -> None:
    from mentionwatch.pipeline import poll
    from tests.conftest import make_config

    hang = feeds.add("/hang.xml", rss(items(1, "h")), **route)
    good = feeds.add("/good.xml", rss(items(2, "g")))
    config = make_config(db_url, [{"name": "hang", "kind": "rss", "url": hang},
                                  {"name": "good", "kind": "rss", "url": good}],
                         # 2 s, not 1: on a loaded machine (four test workers on two cores)
                         # the good source's own answer once took over 1 s.
                         poll={"timeout": "2s"})
    started = time.monotonic()
    report = poll(config, store)
    elapsed = time.monotonic() - started
    by_name = {o.name: o for o in report.outcomes}
    assert by_name["good"].stored == 2
    assert by_name["hang"].status == "failed" and "timed out" in (by_name["hang"].message or "")
    assert elapsed < within, elapsed


def test_run_stops_promptly_at_sigterm_while_a_source_trickles(
        tmp_path: Path, feeds: FeedServer, db_url: str) -> None:
    slow = feeds.add("/slow.xml", rss(items(1, "d")), drip=0.1)
    good = feeds.add("/good.xml", rss(items(2, "g")))
    config = write_config(tmp_path, db_url, [("slow", slow), ("good", good)])
    config.write_text(config.read_text().replace("[database]", '[poll]\ntimeout = "1s"\n'
                                                 "[database]"), encoding="utf-8")
    proc = start_run(config, tmp_path)
    try:
        wait_until(lambda: count(db_url) >= 2)
        assert count(db_url) == 2
        assert feeds.seen("/slow.xml"), "the trickling source was not being polled"
    finally:
        proc.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        _, err = proc.communicate(timeout=60)
    # It waited for the pass in flight, which the deadline ends: seconds, not the ~30 s the
    # body takes (systemd's stop timeout would SIGKILL a service that waits for hours).
    assert time.monotonic() - stopping < 8, err
    assert proc.returncode == 0, err
    row = Store.open(db_url)
    try:
        slow_row = row.source_row("slow")
        assert slow_row is not None and "timed out" in (slow_row.last_error or "")
    finally:
        row.close()


def test_repeated_auth_failures_disable_a_source_until_its_config_changes(
        feeds: FeedServer, store: Store, db_url: str) -> None:
    from mentionwatch.pipeline import poll
    from tests.conftest import make_config

    url = feeds.add("/private.xml", "no", status=401)
    config = make_config(db_url, [{"name": "p", "kind": "rss", "url": url}])
    for _ in range(3):
        poll(config, store, force=True)
    row = store.source_row("p")
    assert row is not None and row.disabled_reason
    assert "authentication failures" in row.disabled_reason
    assert poll(config, store, force=True).outcomes[0].status == "skipped"
    # The person fixes the setting: a changed config re-enables the source.
    fixed = feeds.add("/public.xml", rss(items(1, "p")))
    config = make_config(db_url, [{"name": "p", "kind": "rss", "url": fixed}])
    assert poll(config, store).outcomes[0].stored == 1


def test_run_schedules_the_morning_digest_and_sends_it(tmp_path: Path, store: Store,
                                                       db_url: str) -> None:
    from mentionwatch.audit import recent
    from mentionwatch.scheduler import Daemon
    from tests.conftest import make_config
    from tests.smtpsink import SmtpServer

    smtp = SmtpServer().start()
    try:
        config = make_config(
            db_url, [], alerts={"on_call": ["lead@acme.example"],
                                "smtp": {"host": "127.0.0.1", "port": smtp.port,
                                         "security": "none"}},
            reports={"digest_at": "08:30", "timezone": "Europe/Berlin", "digest_since": "1d"})
        daemon = Daemon(config, store)
        daemon.schedule()
        job = daemon.scheduler.get_job("digest")
        assert job is not None
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("8", "30")
        assert str(job.trigger.timezone) == "Europe/Berlin"
        daemon.send_digest()
        (mail,) = smtp.messages
        assert mail.rcpt_tos == ["lead@acme.example"]
        assert mail.message["Subject"].startswith("[mentionwatch] digest:")
        assert "<html" in mail.part("html").lower()
        # In the audit trail as the machine's send, as alerts are.
        (event,) = [e for e in recent(store) if e.event == "digest_sent"]
        assert event.actor == "mentionwatch" and event.details is not None
        assert (event.details["send"], event.details["recipients"]) == (
            "digest", ["lead@acme.example"])
        daemon.http.close()
    finally:
        smtp.stop()


def fire_times(trigger: Any, start: datetime, end: datetime) -> list[datetime]:
    """When the trigger fires between start and end (in UTC), as the scheduler asks it.
    (Arithmetic on the local times it returns is wall-clock arithmetic: 02:30 CET plus a
    second is 02:30:01 CEST, an hour earlier.)"""
    times: list[datetime] = []
    at = trigger.get_next_fire_time(None, start)
    while at is not None and at < end:
        times.append(at.astimezone(UTC))
        at = trigger.get_next_fire_time(at, times[-1] + timedelta(seconds=1))
    return times


def test_the_digest_goes_once_a_day_across_clock_changes_and_restarts(
        store: Store, db_url: str) -> None:
    from mentionwatch.scheduler import Daemon
    from tests.conftest import make_config
    from tests.smtpsink import SmtpServer

    smtp = SmtpServer().start()
    daemons: list[Any] = []
    try:
        def config(port: int) -> Any:
            return make_config(
                db_url, [], alerts={"on_call": ["lead@acme.example"],
                                    "smtp": {"host": "127.0.0.1", "port": port,
                                             "security": "none", "timeout": "2s"}},
                reports={"digest_at": "02:30", "timezone": "Europe/Berlin"})

        def daemon(port: int = smtp.port) -> Any:
            made = Daemon(config(port), store)
            daemons.append(made)
            made.schedule()
            return made

        first = daemon()
        trigger = first.scheduler.get_job("digest").trigger
        # 2026-10-25, the clocks go back at 03:00: 02:30 happens twice, and the cron trigger
        # fires at both (00:30 and 01:30 UTC). Each had sent a digest.
        autumn = fire_times(trigger, datetime(2026, 10, 24, 22, tzinfo=UTC),
                            datetime(2026, 10, 25, 22, tzinfo=UTC))
        assert [t.hour for t in autumn] == [0, 1]
        for at in autumn:
            first.send_digest(at)
        assert len(smtp.messages) == 1
        # A restarted service (or a second one on this database) in the repeated hour.
        daemon().send_digest(autumn[1] + timedelta(minutes=5))
        assert len(smtp.messages) == 1
        # 2026-03-29, the clocks go forward at 02:00: there is no 02:30; it fires once, at
        # 03:30 local, and the digest goes.
        spring = fire_times(trigger, datetime(2026, 3, 28, 22, tzinfo=UTC),
                            datetime(2026, 3, 29, 22, tzinfo=UTC))
        assert spring == [datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]
        first.send_digest(spring[0])
        assert len(smtp.messages) == 2
        # A send that failed (the mail server down) is not taken: the next firing sends it.
        next_day = spring[0] + timedelta(days=1)
        daemon(port=free_port()).send_digest(next_day)
        assert len(smtp.messages) == 2
        first.send_digest(next_day + timedelta(minutes=1))
        assert len(smtp.messages) == 3
    finally:
        for made in daemons:
            made.http.close()
        smtp.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("key", "value", "message"), [
    ("digest_at", "8am", "expected a time like '08:00'"),
    ("timezone", "Mars/Olympus", "unknown time zone"),
])
def test_digest_settings_are_checked(db_url: str, key: str, value: str, message: str) -> None:
    from mentionwatch.errors import ConfigError
    from tests.conftest import make_config

    with pytest.raises(ConfigError, match=message):
        make_config(db_url, [], reports={key: value})


def test_status_shows_each_run_service_and_old_ones_are_removed(
        tmp_path: Path, store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import update

    from mentionwatch.models import Heartbeat
    from mentionwatch.scheduler import HEARTBEAT_NAME, Daemon, heartbeat_name
    from tests.conftest import make_config
    from tests.test_decisions import run_cli

    config = write_config(tmp_path, db_url, [("forum", "http://127.0.0.1:9/f.xml")])
    # Two services on two hosts, one that stopped last week, and the single row an earlier
    # version wrote for all of them.
    for name, host, pid in ((heartbeat_name("web-1", 41), "web-1", 41),
                            (heartbeat_name("web-2", 42), "web-2", 42),
                            (heartbeat_name("old-box", 7), "old-box", 7),
                            (HEARTBEAT_NAME, "web-3", 12)):
        store.write_heartbeat(name, pid=pid, host=host, details={"interval_s": 30})
    # web-2's service before its restart: shown no more once the new one beats.
    store.write_heartbeat(heartbeat_name("web-2", 40), pid=40, host="web-2",
                          details={"stopped": True})
    # ... and one before that, which crashed (kill -9, OOM): silent, never "stopped".
    store.write_heartbeat(heartbeat_name("web-2", 39), pid=39, host="web-2",
                          details={"interval_s": 30})
    with store.engine.begin() as conn:
        conn.execute(update(Heartbeat).where(Heartbeat.host == "old-box")
                     .values(at=datetime.now(UTC) - timedelta(days=8)))
        conn.execute(update(Heartbeat).where(Heartbeat.name == HEARTBEAT_NAME)
                     .values(at=datetime.now(UTC) - timedelta(hours=3)))
        conn.execute(update(Heartbeat).where(Heartbeat.pid == 40)
                     .values(at=datetime.now(UTC) - timedelta(hours=1)))
        conn.execute(update(Heartbeat).where(Heartbeat.pid == 39)
                     .values(at=datetime.now(UTC) - timedelta(hours=2)))
    code, said = run_cli(["--config", str(config), "status"], monkeypatch, capsys)
    # It had shown one line, for whichever service wrote last.
    assert code == 0
    assert "mentionwatch run: alive, pid 41 on web-1" in said
    assert "mentionwatch run: alive, pid 42 on web-2" in said
    assert "NOT RESPONDING, last heartbeat 3h ago (pid 12 on web-3)" in said
    assert "old-box" not in said  # a week gone: not a service of today
    assert "pid 40" not in said and "pid 39" not in said  # it had been NOT RESPONDING all day
    # A service starting removes heartbeats older than a week.
    daemon = Daemon(make_config(db_url, []), store)
    try:
        daemon.schedule()
    finally:
        daemon.http.close()
    assert {b.pid for b in store.heartbeats(HEARTBEAT_NAME)} == {41, 42, 40, 39, 12}
    assert len(heartbeat_name("h" * 200, 123456)) == 100
    assert heartbeat_name("h" * 200, 123456).endswith(":123456")


def test_a_pass_due_while_the_machine_slept_runs_at_once(
        feeds: FeedServer, store: Store, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A pass far overdue (the machine slept two hours, or the clock stepped forward) runs
    once (coalesced, its latest missed time within the grace); and the clock watcher wakes
    the scheduler for it, which had slept on until its own wait ended (the monotonic clock
    stops while the machine sleeps)."""
    import threading

    from mentionwatch.scheduler import Daemon
    from tests.conftest import make_config

    url = feeds.add("/f.xml", rss(items(1, "a")))
    config = make_config(db_url, [{"name": "forum", "kind": "rss", "url": url,
                                   "interval": "15m"}])
    wall, mono = [datetime.now(UTC)], [1000.0]
    daemon = Daemon(config, store, clock=lambda: wall[0], monotonic=lambda: mono[0])
    daemon.schedule()
    daemon.scheduler.get_job("source:forum").modify(
        next_run_time=datetime.now(UTC) - timedelta(hours=2))
    scheduler = threading.Thread(target=daemon.scheduler.start, daemon=True)
    scheduler.start()
    try:
        wait_until(lambda: bool(feeds.seen("/f.xml")), 10)
        assert feeds.seen("/f.xml"), "the overdue pass was skipped"
        # The watcher says so, and wakes the scheduler for what is due.
        woken: list[bool] = []
        wake = daemon.scheduler.wakeup
        daemon.scheduler.wakeup = lambda: (woken.append(True), wake())  # type: ignore[method-assign]
        assert daemon.check_clock() == timedelta(0)
        wall[0] += timedelta(hours=2, seconds=5)
        mono[0] += 5
        assert daemon.check_clock() == timedelta(hours=2)
        assert woken == [True]
        assert "the system clock went forward by 2h (or the machine slept)" in caplog.text
    finally:
        daemon.scheduler.shutdown(wait=True)
        daemon.http.close()
