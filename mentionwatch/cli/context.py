"""What every command shares: the config, the store, consoles, and error handling."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.panel import Panel
from rich.text import Text

from mentionwatch.config import Config, load_config
from mentionwatch.durations import MAX_DURATION, DurationTooLong, parse_duration
from mentionwatch.errors import MentionwatchError
from mentionwatch.store import Store

#: Table width for output that is not a terminal (cron mail, journald, a pipe) when $COLUMNS
#: is not set: wide enough that no column is dropped, as 80 had dropped `status`'s mentions.
PIPE_WIDTH = 200


class PipeConsole(Console):
    """A console for a stream that is not a terminal. Messages (plain strings and Text) are
    printed as they are, one line each, never wrapped or padded to a width: a mail reader or
    journald wraps for itself. Tables and panels are still laid out, for `width`."""

    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:
        if soft_wrap is None:
            soft_wrap = all(isinstance(o, str | Text) for o in objects)
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)


def make_console(*, stderr: bool = False) -> Console:
    # rich honours NO_COLOR and turns styling off when the stream is not a terminal.
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
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
        if self._store is None:
            self._store = Store.open(self.config.database_url(),
                                     concurrency=self.config.poll.concurrency)
        return self._store

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


def run_guarded(command: Any) -> int:
    """Run the click group and turn user-facing errors into messages and exit codes."""
    try:
        command.main(standalone_mode=False)
    except MentionwatchError as error:
        print_error(make_console(stderr=True), error)
        return error.exit_code
    except click.exceptions.Abort:
        make_console(stderr=True).print("Aborted.")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


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
