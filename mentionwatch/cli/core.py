"""Core commands: init, poll, status, mentions list, db upgrade/current."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from mentionwatch import db
from mentionwatch.cli.context import AppContext, parse_since, pass_app, stdout_is_tty
from mentionwatch.config import CONFIG_FILENAME, user_config_path
from mentionwatch.durations import format_duration
from mentionwatch.errors import ConfigError
from mentionwatch.health import due_state, quiet_for, typical_gap
from mentionwatch.hooks import after_poll
from mentionwatch.judgement import FLAGS, explanation_lines, reasons_text
from mentionwatch.models import Mention, utcnow
from mentionwatch.pipeline import NOT_STARTED, PollReport, PollStop, SourceOutcome
from mentionwatch.pipeline import poll as run_poll
from mentionwatch.resources import example_config_path
from mentionwatch.store import UNJUDGED_WINDOW, SourceStatus
from mentionwatch.text import first_line, one_line, strip_terminal_escapes


def _since(value: str | None) -> datetime | None:
    return parse_since(value, utcnow()) if value is not None else None


def ago(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "never"
    delta = (now or utcnow()) - when
    if delta < timedelta(0):
        return "in " + format_duration(-delta)
    return format_duration(delta) + " ago"


@click.command()
@click.option("--path", "target", type=click.Path(dir_okay=False), default=None,
              help=f"Where to write it. Default: ./{CONFIG_FILENAME}.")
@click.option("--user", "user_dir", is_flag=True,
              help=f"Write it to the user config dir ({user_config_path()}).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_app
def init(app: AppContext, target: str | None, user_dir: bool, force: bool) -> None:
    """Write a starter config file with every setting explained.

    Edit the [brand] terms and the [[sources]] list, then run `mentionwatch poll`.
    """
    path = user_config_path() if user_dir else Path(target or CONFIG_FILENAME)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists.", hint="Pass --force to overwrite it.")
    from mentionwatch.rules_engine import sentence

    text = example_config_path().read_text(encoding="utf-8")
    # Whoever installed the sentence extra wants it used; the fast word model is one edit away.
    with_sentence = sentence.installed() and SENTENCE_OFF in text
    if with_sentence:
        text = text.replace(SENTENCE_OFF, SENTENCE_ON, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    app.out.print(f"Wrote {path}. Edit the brand terms and sources, then run "
                  "`mentionwatch poll`.")
    if with_sentence:
        app.out.print(Text('The sentence model is installed, so [rules] complaint_model = '
                           '"words+sentence" (set "words" for the word model alone: faster, '
                           'fewer complaints found).'))


SENTENCE_OFF = '# complaint_model = "words"\n'
SENTENCE_ON = 'complaint_model = "words+sentence"  # mentionwatch[sentence] is installed\n'


@click.command()
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Poll only this source (repeatable), even if it is not due yet.")
@click.option("--since", "since", metavar="DURATION",
              help="Backfill: read back this far (e.g. 2d) instead of from the cursor.")
@click.option("--all", "force_all", is_flag=True, help="Poll every enabled source now.")
@pass_app
def poll(app: AppContext, sources: tuple[str, ...], since: str | None, force_all: bool) -> None:
    """One pass over the sources that are due, then exit (for cron and systemd timers).

    Quiet when all is well unless run in a terminal; failures go to stderr. Ctrl-C or
    SIGTERM: the passes in flight finish (it says which), no more start; a second one stops
    at once (a pass cut short stores nothing and is read again next time).
    Exit codes: 0 all polled sources fine, 1 a source failed (or the rules failed on a
    mention, which is stored unjudged), 2 bad config, 130 (143 for SIGTERM) stopped.
    """
    config = app.config
    if not config.sources:
        raise ConfigError(f"{config.path}: no [[sources]] configured.",
                          hint="Add at least one source; see config.example.toml.")
    store = app.open_store(create=True)
    judge = _load_judge(app)
    names = list(sources) or None
    count = len(names) if names else sum(s.enabled for s in config.sources)
    # Long work (a backfill, many sources) gets a progress bar on a terminal; cron sees none.
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stored]} new mentions"), TimeElapsedColumn(),
        console=app.err, transient=True,
        disable=not app.err.is_terminal or (since is None and count < 5),
    ) as progress:
        task = progress.add_task("Backfilling" if since else "Polling", total=count,
                                 stored=0)

        def advance(outcome: SourceOutcome) -> None:
            stored = progress.tasks[0].fields["stored"] + outcome.stored
            progress.update(task, advance=1, stored=stored)

        stop = PollStop()
        with _stop_on_signals(app, stop) as stopped_by:
            report = run_poll(app.config, store, names=names, force=force_all,
                              since=_since(since), judge=judge, on_outcome=advance, stop=stop)
    if stop.stopped:
        _report_stopped(app, report)
        sys.exit(128 + stopped_by[0])
    after_poll(app.config, store, report)
    for outcome in (*report.failed, *report.unjudged):
        app.err.print(Text(f"{outcome.name}: {outcome.message}", style="red"))
    if stdout_is_tty() or app.verbosity:
        app.out.print(_poll_table(report.outcomes))
    if report.failed or report.unjudged:
        sys.exit(1)


@contextmanager
def _stop_on_signals(app: AppContext, stop: PollStop) -> Iterator[list[int]]:
    """While the block runs, the first SIGINT or SIGTERM stops `stop` (the passes in flight
    finish) and says so on stderr; a second one exits at once with 128 + its number, as
    `mentionwatch run` does. Yields a list that holds the first signal's number."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signals reach only the main thread
        return

    def handle(signum: int, _frame: Any) -> None:
        name = _signal_name(signum)
        if received:
            app.err.print(Text(f"{name} again: stopping now, without waiting for: "
                               f"{', '.join(stop.in_flight()) or 'none'}", style="yellow"))
            os._exit(128 + signum)
        received.append(signum)
        waiting = stop.stop()
        app.err.print(Text(
            f"{name}: finishing the passes in flight ({', '.join(waiting) or 'none'}) and "
            f"starting no more; {name} again stops at once (a pass cut short stores nothing "
            "and is read again next time).", style="yellow"))

    previous = {signum: signal.signal(signum, handle)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _report_stopped(app: AppContext, report: PollReport) -> None:
    """What a stopped poll did and did not do."""
    polled = [o for o in report.outcomes if o.message != NOT_STARTED]
    skipped = [o.name for o in report.outcomes if o.message == NOT_STARTED]
    for outcome in report.failed:
        app.err.print(Text(f"{outcome.name}: {outcome.message}", style="red"))
    line = f"Stopped: {len(polled)} of {len(report.outcomes)} sources polled"
    if skipped:
        line += f"; not polled: {', '.join(skipped)}"
    app.err.print(Text(line + ". Alerts and approved replies go out with the next poll."))


def _load_judge(app: AppContext) -> Any:
    """The rules engine, when it is installed; None means mentions are stored unjudged."""
    try:
        from mentionwatch.rules_engine import load_judge
    except ImportError:
        return None
    return load_judge(app.config)


def _poll_table(outcomes: tuple[SourceOutcome, ...]) -> Table:
    table = Table(title="Poll", title_justify="left")
    for col in ("source", "result", "new", "duplicates", "note"):
        table.add_column(col)
    styles = {"ok": "green", "not_modified": "green", "failed": "red", "skipped": "dim"}
    for o in outcomes:
        table.add_row(
            o.name, Text(o.status.replace("_", " "), style=styles.get(o.status, "")),
            str(o.stored), str(o.duplicates), Text(o.message or ""),
        )
    return table


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Health of every source: last success, last error, failures, mentions stored."""
    from mentionwatch.pipeline import source_interval, sync_sources

    configured = {s.name: s for s in app.config.sources}
    if app.store.read_only:
        # Nothing to sync into (a copy on a report server): sources the store has never
        # seen are shown as never polled.
        stored = {r.name: r for r in app.store.source_statuses()}
        rows = [stored.get(s.name) or SourceStatus.never_polled(s.name, s.kind)
                for s in sorted(configured.values(), key=lambda s: s.name)]
    else:
        sync_sources(app.config, app.store)
        rows = [r for r in app.store.source_statuses() if r.name in configured]
    now = utcnow()
    _report_alert_delivery(app)
    if as_json:
        click.echo(json.dumps([
            {
                "source": r.name, "kind": r.kind, "enabled": configured[r.name].enabled,
                "last_success_at": _iso(r.last_success_at), "last_error": r.last_error,
                "last_error_at": _iso(r.last_error_at),
                "consecutive_failures": r.consecutive_failures,
                "rate_limited_until": _iso(r.rate_limited_until),
                "disabled_reason": r.disabled_reason, "mentions": r.mentions,
                "unjudged": r.unjudged,
                "interval_s": source_interval(configured[r.name]).total_seconds(),
                "reads_this_month": _reads(app, configured[r.name], now)[0],
                "monthly_read_cap": _reads(app, configured[r.name], now)[1],
            }
            for r in rows
        ], indent=2))
        return
    for line in _daemon_lines(app, now):
        app.out.print(line)
    table = Table(title=f"Sources ({app.config.path})", title_justify="left")
    capped = any(_reads(app, configured[r.name], now)[1] is not None for r in rows)
    for col in ("source", "kind", "last ok", "next", "fails"):
        table.add_column(col, no_wrap=True)
    table.add_column("state / last error", overflow="fold", ratio=1, min_width=16)
    table.add_column("mentions", no_wrap=True, justify="right")
    if capped:
        table.add_column("reads this month", no_wrap=True, justify="right")
    for r in rows:
        source = configured[r.name]
        interval = source_interval(source)
        quiet = quiet_for(now=now, last_new=r.last_new_mention_at,
                          last_success=r.last_success_at,
                          gap=typical_gap(app.store.arrivals(r.name)), interval=interval)
        if not source.enabled:
            state = Text("disabled in config", style="dim")
        elif r.disabled_reason:
            state = Text(r.disabled_reason, style="bold red")
        elif r.rate_limited_until and r.rate_limited_until > now:
            state = Text(f"rate limited until {_utc_time(r.rate_limited_until, now)}",
                         style="yellow")
        elif r.last_error:
            state = Text(r.last_error, style="red")
        elif quiet is not None:
            state = Text(f"quiet for {format_duration(quiet)}, far longer than usual: "
                         "check it", style="yellow")
        else:
            state = Text("ok", style="green")
        if r.unjudged and state.plain == "ok":
            state = Text(f"{r.unjudged} mentions of the last {UNJUDGED_WINDOW.days} days not "
                         "judged: run `mentionwatch rules rescore`", style="yellow")
        elif r.unjudged:
            state.append(f"; {r.unjudged} mentions of the last {UNJUDGED_WINDOW.days} days "
                         "not judged", style="yellow")
        table.add_row(
            r.name, r.kind, ago(r.last_success_at, now), _next_cell(r, interval, now),
            Text(str(r.consecutive_failures), style="red" if r.consecutive_failures else ""),
            state, str(r.mentions),
            *([_reads_cell(*_reads(app, source, now))] if capped else []),
        )
    app.out.print(table)


def _daemon_lines(app: AppContext, now: datetime) -> list[Text]:
    """A line per `run` service seen in the last day (a team may run one per host), or the
    last one seen; "never started" when none ever ran."""
    from mentionwatch.scheduler import HEARTBEAT_NAME

    beats = app.store.heartbeats(HEARTBEAT_NAME)
    if not beats:
        return [Text("mentionwatch run: never started here (cron mode, or not running)",
                     style="dim")]
    recent = [b for b in beats if now - b.at <= timedelta(days=1)] or beats[:1]
    # A restart leaves the old process's row behind, "stopped" or, after a crash, silent:
    # shown only while its host has nothing newer.
    newest: dict[str | None, Any] = {}
    for beat in recent:  # latest first
        newest.setdefault(beat.host, beat)
    shown = [b for b in recent if _alive(b, now) or newest[b.host] is b]
    return [_daemon_line(beat, now) for beat in shown]


def _alive(beat: Any, now: datetime) -> bool:
    """Whether the heartbeat says its process runs: not stopped, and written lately."""
    from mentionwatch.scheduler import HEARTBEAT_EVERY

    details = beat.details or {}
    every = timedelta(seconds=details.get("interval_s", HEARTBEAT_EVERY.total_seconds()))
    return not details.get("stopped") and now - beat.at <= 3 * every


def _daemon_line(beat: Any, now: datetime) -> Text:
    details = beat.details or {}
    where = f"pid {beat.pid} on {beat.host}"
    if details.get("stopped"):
        return Text(f"mentionwatch run: stopped {ago(beat.at, now)} ({where})", style="yellow")
    if not _alive(beat, now):
        return Text(f"mentionwatch run: NOT RESPONDING, last heartbeat {ago(beat.at, now)} "
                    f"({where})", style="bold red")
    return Text(f"mentionwatch run: alive, {where}, heartbeat {ago(beat.at, now)}",
                style="green")


def _next_cell(r: Any, interval: timedelta, now: datetime) -> Text:
    due = due_state(now=now, interval=interval, last_attempt_at=r.last_attempt_at,
                    next_attempt_at=r.next_attempt_at, rate_limited_until=r.rate_limited_until,
                    disabled_reason=r.disabled_reason)
    if due.due:
        # Due for longer than an interval (plus a minute's grace) means nobody is polling.
        late = r.last_attempt_at is not None and now - r.last_attempt_at > 2 * interval + \
            timedelta(minutes=1)
        return Text("late" if late else "due now", style="bold yellow" if late else "")
    if due.at is None:
        return Text("-")
    return Text("in " + format_duration(due.at - now))


def _reads(app: AppContext, source: Any, now: datetime) -> tuple[int, int | None]:
    """Items read from a source this month, and its `monthly_read_cap` (paid APIs: X)."""
    cap = source.settings_data.get("monthly_read_cap")
    read = app.store.usage(source.name, now.strftime("%Y-%m"))[1]
    return read, cap if isinstance(cap, int) and not isinstance(cap, bool) else None


def _reads_cell(read: int, cap: int | None) -> Text:
    if cap is None:
        return Text(f"{read:,}")
    return Text(f"{read:,} / {cap:,}", style="yellow" if read >= 0.9 * cap else "")


def _report_alert_delivery(app: AppContext) -> None:
    """Alert emails that keep failing are shown on stderr (both table and JSON modes)."""
    from mentionwatch.alerts import delivery_problem

    problem = delivery_problem(app.config, app.store)
    if problem is not None:
        app.err.print(Text(
            f"Alert emails failing: {problem.pending} pending after {problem.attempts} "
            f"attempts (oldest {ago(problem.oldest)}): {problem.last_error or 'unknown error'}",
            style="bold red"))


def _utc_time(when: datetime, now: datetime) -> str:
    """A time in UTC, with its date when that is not today's."""
    when = when.astimezone(UTC)
    if when.date() == now.astimezone(UTC).date():
        return f"{when:%H:%M:%S} UTC"
    return f"{when:%Y-%m-%d %H:%M:%S} UTC"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


@click.group("mentions")
def mentions_group() -> None:
    """Look at stored mentions."""


#: A mention's triage status, as stored.
MENTION_STATUSES = ("new", "open", "replied", "replied_elsewhere", "dismissed", "resolved")


@mentions_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="How many to show.")
@click.option("--source", help="Only this source.")
@click.option("--flag", type=click.Choice([*FLAGS, "none"]),
              help="Only this flag (none: the mentions no rule flagged).")
@click.option("--status", "status_", type=click.Choice(MENTION_STATUSES),
              help="Only this triage status.")
@click.option("--since", metavar="DURATION|DATE",
              help="Only mentions created since: a duration back (24h, 7d) or an ISO date.")
@click.option("--search", metavar="TEXT",
              help="Only mentions whose text, title or author contains it.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON array (source, external_id, url, author, text, created_at...).")
@pass_app
def mentions_list(app: AppContext, limit: int, source: str | None, flag: str | None,
                  status_: str | None, since: str | None, search: str | None,
                  as_json: bool) -> None:
    """Recent mentions, newest first."""
    start = _since(since)  # a mistyped option is said before the store is looked for
    rows = app.store.list_mentions(limit=limit, source=source, flag=flag, status=status_,
                                   since=start, search=search)
    if as_json:
        click.echo(json.dumps([mention_json(m) for m in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        if any(v is not None for v in (source, flag, status_, since, search)):
            app.out.print("No stored mention matches these options.")
        else:
            app.out.print("No mentions stored yet. Run `mentionwatch poll`.")
        return
    table = Table(title_justify="left", expand=True)
    # On a narrow terminal (or a narrow $COLUMNS in a pipe) the text matters more than who.
    narrow = app.out.width < 110
    table.add_column("id", no_wrap=True, justify="right")  # for `mentions show ID`, approve
    table.add_column("when", no_wrap=True)
    table.add_column("source", no_wrap=True, overflow="ellipsis", max_width=12 if narrow else 18)
    table.add_column("author", no_wrap=True, overflow="ellipsis", max_width=12 if narrow else 22)
    table.add_column("flag", no_wrap=True)
    table.add_column("text", no_wrap=True, overflow="ellipsis", ratio=3)
    show_url = not narrow
    if show_url:
        table.add_column("url", no_wrap=True, overflow="ellipsis", ratio=1)
    now = utcnow()
    for m in rows:
        # Text() keeps rich markup inert; escapes are stripped whatever a row holds (ingest
        # removes them already: this is the second line of defence).
        cells: list[str | Text] = [str(m.id), ago(m.created_at, now), m.source.name,
                                   Text(one_line(m.author_handle)), m.flag or "",
                                   Text(strip_terminal_escapes(first_line(_headline(m), 200)))]
        table.add_row(*cells, *([Text(strip_terminal_escapes(m.url or ""))] if show_url else []))
    app.out.print(table)


@mentions_group.command("show")
@click.argument("mention_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def mentions_show(app: AppContext, mention_id: int, as_json: bool) -> None:
    """Everything about one mention: text, author, why it was flagged, and the drafts.

    The alert emails name this command with the mention's id.
    """
    from rich.panel import Panel

    found = app.store.mention_detail(mention_id)
    if found is None:
        raise click.ClickException(f"No mention with id {mention_id}.")
    mention, matches, draft = found
    if as_json:
        data = mention_json(mention)
        data["matches"] = [{"rule": r.rule, "pack": r.pack, "flag": r.flag,
                            "severity": r.severity, "alert": r.alert, "why": r.explanation}
                           for r in matches]
        data["explanation"] = mention.explanation
        data["draft"] = ({"public": draft.public_text, "private": draft.private_text,
                          "channel": draft.private_channel} if draft else None)
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    author = mention.author
    # One line whatever is stored: an author cannot add a line of their own here.
    who = one_line(mention.author_handle) or "unknown author"
    if author and author.followers is not None:
        who += f" ({author.followers:,} followers)"
    out = app.out
    out.print(Text.assemble((f"#{mention.id} ", "bold"), (mention.flag or "unflagged", "bold"),
                            f"  priority {mention.priority:.2f}  ", mention.source.name,
                            "  ", Text(who), f"  {ago(mention.created_at)}"))
    if mention.url:
        out.print(Text(strip_terminal_escapes(mention.url)))
    body = Text(f"{one_line(mention.title)}\n\n" if mention.title else "") + Text(
        strip_terminal_escapes(mention.text))
    out.print(Panel(body, title="mention", title_align="left"))
    for r in matches:
        out.print(Text(f"{r.flag} · {r.pack}/{r.rule} · severity {r.severity:.2f}"
                       f"{' · alerts on-call' if r.alert else ''}: "
                       f"{reasons_text(r.explanation)}"))
    for line in explanation_lines(mention.explanation, mention.priority, mention.flag):
        out.print(Text(line))
    if draft:
        if draft.public_text:
            out.print(Panel(Text(strip_terminal_escapes(draft.public_text)), title="public reply",
                            title_align="left"))
        if draft.private_text:
            out.print(Panel(Text(strip_terminal_escapes(draft.private_text)),
                            title=f"private follow-up ({draft.private_channel})",
                            title_align="left"))


def _headline(m: Mention) -> str:
    """Title and text on one line: an article's title says more than its first sentence."""
    if m.title and not m.text.startswith(m.title):
        return f"{m.title} — {m.text}"
    return m.text


def mention_json(m: Mention) -> dict[str, Any]:
    author = m.author
    return {
        "id": m.id,
        "source": m.source.name,
        "source_kind": m.source.kind,
        "external_id": m.external_id,
        "url": m.url,
        "canonical_url": m.canonical_url,
        "author": m.author_handle,
        "author_name": author.display_name if author else None,
        "author_followers": author.followers if author else None,
        "title": m.title,
        "text": m.text,
        "language": m.language,
        "created_at": _iso(m.created_at),
        "fetched_at": _iso(m.fetched_at),
        "likes": m.likes,
        "reposts": m.reposts,
        "replies": m.replies,
        "flag": m.flag,
        "priority": m.priority,
        "status": m.status,
    }


@click.group("db")
def db_group() -> None:
    """Database schema: upgrade and inspect migrations."""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Apply pending migrations (also done automatically on start); creates the database
    if it does not exist yet."""
    engine = db.make_engine(app.database_url(existing=False))
    try:
        before = db.current_revision(engine)
        db.upgrade(engine)
        after = db.current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        app.out.print(f"Database is up to date (revision {after}).")
    else:
        app.out.print(f"Upgraded database from {before or 'empty'} to {after}.")


@db_group.command("current")
@pass_app
def db_current(app: AppContext) -> None:
    """Show the database URL (password hidden) and its schema revision. Exit code 1 when the
    schema is behind (run `mentionwatch db upgrade`) or ahead (a newer mentionwatch upgraded
    it), so a script can check; 2 when there is no database at all."""
    url = app.database_url(existing=True)
    engine = db.make_engine(url)
    try:
        current = db.current_revision(engine)
    finally:
        engine.dispose()
    head = db.head_revision()
    if current == head:
        note = "up to date"
    elif db.is_known_revision(current):
        note = f"behind: latest is {head}; run `db upgrade`"
    else:
        note = (f"ahead: a newer mentionwatch upgraded it; this one knows up to {head}; "
                "upgrade mentionwatch")
    app.out.print(f"{db.redact_url(url)}: revision {current or 'none'} "
                  f"({note})")
    if current != head:
        sys.exit(1)
