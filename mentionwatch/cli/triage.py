"""Snooze, assign and resolve from the command line: the same calls the TUI's z, w, x keys
make, each recorded in the audit trail with the operator."""

from __future__ import annotations

import click

from mentionwatch import triage
from mentionwatch.cli.context import AppContext, pass_app
from mentionwatch.models import utcnow
from mentionwatch.team import current_operator


@click.command("snooze")
@click.argument("mention_id", type=int)
@click.argument("until", nargs=-1, required=True)
@pass_app
def snooze(app: AppContext, mention_id: int, until: tuple[str, ...]) -> None:
    """Hide a mention from the queue until UNTIL: '30m', '2h', 'tomorrow 9:00', 'fri 14:30',
    an ISO time, or 'now' to bring it back. Clock times are in this machine's time zone."""
    now = utcnow()
    try:
        when = triage.parse_snooze_until(" ".join(until), now=now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="UNTIL") from None
    operator = current_operator(app.config)
    triage.snooze(app.store, mention_id, when, operator=operator)
    if when is None:
        app.out.print(f"Mention {mention_id} is back in the queue.")
    else:
        app.out.print(f"Snoozed mention {mention_id} until "
                      f"{triage.describe_until(when, now=now)}.")


@click.command("assign")
@click.argument("mention_id", type=int)
@click.argument("person", required=False)
@click.option("--nobody", is_flag=True, help="Take the assignment away.")
@pass_app
def assign(app: AppContext, mention_id: int, person: str | None, nobody: bool) -> None:
    """Give a mention to PERSON (shown in the TUI queue; `m` there shows your own)."""
    if bool(person) == nobody:
        raise click.UsageError("Name a PERSON, or pass --nobody to take the assignment away.")
    operator = current_operator(app.config)
    name = triage.assign(app.store, mention_id, None if nobody else person,
                         operator=operator, team=app.config.team)
    app.out.print(f"Assigned mention {mention_id} to {name}." if name
                  else f"Mention {mention_id} is assigned to nobody.", markup=False)


@click.command("resolve")
@click.argument("mention_id", type=int)
@pass_app
def resolve(app: AppContext, mention_id: int) -> None:
    """Close a case: the mention leaves the queue, recorded as resolved by you."""
    operator = current_operator(app.config)
    triage.resolve(app.store, mention_id, operator=operator)
    app.out.print(f"Resolved mention {mention_id}.")
