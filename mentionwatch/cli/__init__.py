"""The `mentionwatch` command. A thin layer over the library: each command calls functions
you could call from Python. User mistakes print one clear message and exit 2 (config) or 1;
only bugs print tracebacks."""

from __future__ import annotations

import sys

import click

from mentionwatch import __version__
from mentionwatch.cli.alerts import alerts_group
from mentionwatch.cli.context import AppContext, CommandGroup, run_guarded
from mentionwatch.cli.core import db_group, init, mentions_group, poll, status
from mentionwatch.cli.demo import demo
from mentionwatch.cli.outbox import (
    approve,
    audit_command,
    dismiss,
    outbox_group,
    replied_elsewhere,
)
from mentionwatch.cli.report import export_group, report
from mentionwatch.cli.rules import rules_group
from mentionwatch.cli.run import run
from mentionwatch.cli.triage import assign, resolve, snooze
from mentionwatch.cli.tui import tui


@click.group(cls=CommandGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), envvar="MENTIONWATCH_CONFIG",
    help="Config file. Default: $MENTIONWATCH_CONFIG, ./mentionwatch.toml, then the user "
    "config dir.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="mentionwatch")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Watch where your brand is named, catch complaints, draft and approve replies.

    \b
    Start here:
      mentionwatch demo          see it work on bundled sample data, no keys needed
      mentionwatch init          write a starter config (mentionwatch.toml)
      mentionwatch poll          one pass over the sources that are due (for cron)
      mentionwatch run           keep polling on schedule (as a service)
      mentionwatch tui           the approval queue: read, edit, approve
      mentionwatch status        health of every source
      mentionwatch mentions list what was found
    """
    ctx.obj = AppContext(config_path=config_path, verbosity=verbose)
    ctx.obj.setup_logging()
    ctx.call_on_close(ctx.obj.close)


for command in (init, poll, status, mentions_group, db_group, demo):
    cli.add_command(command)
for command in (report, export_group):
    cli.add_command(command)
cli.add_command(alerts_group)
cli.add_command(rules_group)
cli.add_command(run)
cli.add_command(tui)
for command in (approve, dismiss, replied_elsewhere, outbox_group, audit_command):
    cli.add_command(command)
for command in (snooze, assign, resolve):
    cli.add_command(command)


def main() -> None:
    sys.exit(run_guarded(cli))
