"""What every command shares: the config, the store, consoles, and error handling."""

from __future__ import annotations

import errno
import logging
import os
import select
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import IO, Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.panel import Panel
from rich.text import Text

from mentionwatch import db
from mentionwatch.config import Config, load_config
from mentionwatch.durations import MAX_DURATION, DurationTooLong, parse_duration
from mentionwatch.errors import MentionwatchError, StoreNotFound
from mentionwatch.store import Store

#: Table width for output that is not a terminal (cron mail, journald, a pipe) when $COLUMNS
#: is not set: wide enough that no column is dropped, as 80 had dropped `status`'s mentions.
PIPE_WIDTH = 200


class AppConsole(Console):
    """rich's console, except that a reader who stops reading (`| head -1`) is a
    BrokenPipeError for `run_guarded` to end quietly, where rich would exit 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader of this output has gone")


class PipeConsole(AppConsole):
    """A console for a stream that is not a terminal. Messages (plain strings and Text) are
    printed as they are, one line each, never wrapped or padded to a width: a mail reader or
    journald wraps for itself. Tables and panels are still laid out, for `width`."""

    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:
        if soft_wrap is None:
            soft_wrap = all(isinstance(o, str | Text) for o in objects)
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)


def make_console(*, stderr: bool = False) -> Console:
    # rich honours NO_COLOR and turns styling off when the stream is not a terminal.
    console = AppConsole(stderr=stderr, highlight=False, soft_wrap=False)
    if console.is_terminal:
        return console
    return PipeConsole(stderr=stderr, highlight=False, soft_wrap=False, width=pipe_width())


def pipe_width(environ: Mapping[str, str] | None = None) -> int:
    """$COLUMNS when it is a positive number, else PIPE_WIDTH."""
    columns = (os.environ if environ is None else environ).get("COLUMNS", "").strip()
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH


@dataclass
class AppContext:
    config_path: str | None = None
    verbosity: int = 0
    out: Console = field(default_factory=make_console)
    err: Console = field(default_factory=lambda: make_console(stderr=True))
    _config: Config | None = None
    _store: Store | None = None

    def setup_logging(self) -> None:
        level = {0: logging.WARNING, 1: logging.INFO}.get(self.verbosity, logging.DEBUG)
        handler: logging.Handler
        if self.err.is_terminal:
            handler = RichHandler(console=self.err, show_path=False, markup=False,
                                  rich_tracebacks=False)
            handler.setFormatter(logging.Formatter("%(message)s"))
        else:
            # Cron mail, journald, a file: one plain line per record (a traceback as Python
            # prints it), not rich's columns padded and wrapped to a width.
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logging.basicConfig(level=level, handlers=[handler], force=True)
        # Library chatter (HTTP request lines may carry query strings; apscheduler's two
        # lines for every job run, the heartbeat's every 30 s) stays out below -vvv.
        for noisy in ("httpx", "httpcore", "urllib3", "alembic", "prawcore", "tweepy",
                      "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.DEBUG if self.verbosity > 2
                                              else logging.WARNING)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        """The store of a command that works on stored data (see `open_store`)."""
        return self.open_store()

    def open_store(self, *, create: bool = False) -> Store:
        """The store, opened once and brought to the current schema.

        By default the database must exist: a SQLite file that does not is StoreNotFound,
        since opening it would create an empty store, and a typo in the path would look like
        a store with nothing in it. One this process may not write opens read-only.
        `create` is for the commands that fill the store (poll, run): a missing file is
        created, and a read-only one is refused (StoreReadOnly) before any work starts.
        """
        if self._store is None:
            self._store = Store.open(self.database_url(existing=not create),
                                     concurrency=self.config.poll.concurrency)
        if create:
            self._store.check_writable()
        return self._store

    def database_url(self, *, existing: bool) -> str:
        """The configured database URL. `existing`: a SQLite file it names must exist
        (StoreNotFound otherwise). So must one whose `file:` URI opens it without creating
        it (mode=ro, immutable=1, mode=rw), for every command. In-memory SQLite and other
        databases are not checked."""
        url = self.config.database_url()
        target = db.sqlite_file(url)
        if target is None or target.path is None or target.path.exists():
            return url
        if existing or target.no_create_option is not None:
            raise StoreNotFound(target.path, config_file=self.config.path,
                                no_create=target.no_create_option)
        return url

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


pass_app = click.make_pass_decorator(AppContext)


def print_error(console: Console, error: MentionwatchError) -> None:
    body = Text(error.message)
    if error.hint:
        body.append("\n" + error.hint, style="dim")
    if console.is_terminal:
        console.print(Panel(body, title=error.title, title_align="left", border_style="red"))
    else:
        console.print(Text(f"{error.title}: ", style="bold red") + body)


#: The exit code when whoever read our output stopped reading (`| head -1`): 0, as ripgrep
#: exits. The reader stopped because it had what it wanted; a reader that failed says so with
#: its own exit code. (C tools die of SIGPIPE, 141, which fails a `set -o pipefail` pipeline
#: whenever the reader happens to leave before the writer is done.)
OUTPUT_CLOSED_EXIT = 0


class OutputClosed(Exception):
    """Whoever read our standard output stopped reading (`| head -1`)."""


class CommandGroup(click.Group):
    """The `mentionwatch` group. A broken pipe on stdout ends the command as OutputClosed,
    which `run_guarded` ends quietly; click would turn it into exit code 1. A broken pipe
    elsewhere (a socket) stays click's."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        with _output_may_close():  # --help and --version print here
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _output_may_close():
            return super().invoke(ctx)


@contextmanager
def _output_may_close() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        if not reader_gone(sys.stdout):
            raise
        raise OutputClosed from None


def reader_gone(stream: IO[str]) -> bool:
    """Whether `stream` is a pipe or socket whose reader has gone (a write fails with EPIPE).
    False for a stream that is not a file descriptor (click's test runner)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _discard_closed_output() -> None:
    """Point stdout, and stderr when it went to the same closed pipe, at /dev/null: the
    interpreter's last flush of what is still buffered for them would fail again and print
    "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            if reader_gone(stream):
                os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def run_guarded(command: Any) -> int:
    """Run the click group and turn user-facing errors into messages and exit codes. A
    reader that stops reading our output ends it quietly, with OUTPUT_CLOSED_EXIT."""
    try:
        command.main(standalone_mode=False)
        sys.stdout.flush()  # what is still buffered breaks here, not in the interpreter's exit
    except (OutputClosed, BrokenPipeError):
        _discard_closed_output()
        return OUTPUT_CLOSED_EXIT
    except MentionwatchError as error:
        return _told(partial(print_error, make_console(stderr=True), error), error.exit_code)
    except click.exceptions.Abort:
        return _told(partial(make_console(stderr=True).print, "Aborted."), 130)
    except click.ClickException as exc:
        return _told(exc.show, exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


def _told(tell: Callable[[], None], exit_code: int) -> int:
    """`exit_code`, after `tell` has printed why on stderr. A closed stderr (`2>&1 | head`)
    loses the message, not the exit code."""
    try:
        tell()
        sys.stderr.flush()
    except BrokenPipeError:
        _discard_closed_output()
    return exit_code


def stdout_is_tty() -> bool:
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def parse_since(value: str, now: datetime) -> datetime:
    """A duration back from now ("7d") or an ISO 8601 date/time (UTC when no offset), not in
    the future (nothing is stored from later than now, so such a window is a typo) and at
    most MAX_DURATION back (0001-01-01 would build a report of 740,000 days)."""
    compact_date = len(value) == 8 and value.isdigit()  # 20261130: a date, not seconds
    if not compact_date:
        try:
            return now - parse_duration(value)
        except DurationTooLong as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
        except ValueError:
            pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a duration (e.g. 7d, 24h) nor an ISO date (2024-05-01)",
            param_hint="--since",
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=now.tzinfo)
    if when > now:
        raise click.BadParameter(
            f"{value!r} is in the future (now is {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC); "
            "give a start before now, e.g. 7d or 2024-05-01", param_hint="--since")
    if now - when > MAX_DURATION:
        raise click.BadParameter(
            f"{value!r} is more than {MAX_DURATION.days} days (10 years) back, the longest "
            "window", param_hint="--since")
    return when
