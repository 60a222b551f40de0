"""`mentionwatch alerts test|list|send`: check the mail setup and see what was sent."""

from __future__ import annotations

import json
from datetime import datetime

import click
from rich.table import Table
from rich.text import Text

from mentionwatch.cli.context import AppContext, pass_app
from mentionwatch.durations import format_duration


@click.group("alerts")
def alerts_group() -> None:
    """Alert emails to on-call staff."""


@alerts_group.command("test")
@click.option("--to", "to", multiple=True, metavar="ADDRESS",
              help="Send to this address instead of whoever is on call (repeatable).")
@pass_app
def alerts_test(app: AppContext, to: tuple[str, ...]) -> None:
    """Send a test email through the configured SMTP server now.

    Exit code 1 (with the server's answer) when it cannot be sent.
    """
    from mentionwatch.alerts import send_test

    for address in to:
        if any(c in address for c in "\r\n") or "@" not in address:
            raise click.BadParameter(f"{address!r} is not an email address", param_hint="--to")
    delivered = send_test(app.config, to=list(to) or None)
    app.out.print(Text(f"Test email sent to {', '.join(delivered)}."))


@alerts_group.command("send")
@pass_app
def alerts_send(app: AppContext) -> None:
    """Record due alerts and send pending ones now (what every poll does afterwards)."""
    from mentionwatch.alerts import run_alerts, waiting
    from mentionwatch.models import utcnow

    result = run_alerts(app.config, app.store)
    app.out.print(Text(f"recorded {result.recorded}, sent {result.sent} in {result.emails} "
                       f"email(s), held for digest {result.held}"))
    if result.error:
        app.err.print(Text(f"sending failed (alerts stay pending): {result.error}", style="red"))
        raise SystemExit(1)
    # What this run did not try: alerts in back-off after an earlier failure, or waiting for
    # a digest. "sent 0" alone had read as if nothing were waiting.
    now = utcnow()
    wait = waiting(app.store, now=now)
    if wait.retrying and wait.next_retry_at:
        app.err.print(Text(
            f"{wait.retrying} alert(s) wait for a retry after a failed send; next attempt "
            f"{_when(wait.next_retry_at, now)} (last error: {wait.last_error or 'unknown'})",
            style="yellow"))
    if wait.held and wait.held_until:
        app.out.print(Text(f"{wait.held} alert(s) wait for the digest, sent "
                           f"{_when(wait.held_until, now)}"))


def _when(at: datetime, now: datetime) -> str:
    return f"at {at:%Y-%m-%d %H:%M:%S} UTC (in {format_duration(at - now)})"


@alerts_group.command("list")
@click.option("--limit", default=30, show_default=True, help="How many to show.")
@click.option("--state", type=click.Choice(["pending", "sending", "sent"]),
              help="Only alerts in this state.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def alerts_list(app: AppContext, limit: int, state: str | None, as_json: bool) -> None:
    """Recent alerts, newest first: what was (or will be) sent, to whom, and why."""
    from mentionwatch.alerts.store import AlertStore
    from mentionwatch.cli.core import ago

    rows = AlertStore(app.store).recent(limit=limit, state=state)
    if as_json:
        click.echo(json.dumps([
            {"id": r.id, "trigger": r.trigger, "state": r.state, "mention_id": r.mention_id,
             "headline": r.headline, "recipients": r.recipients, "attempts": r.attempts,
             "last_error": r.last_error, "created_at": r.created_at.isoformat(),
             "sent_at": r.sent_at.isoformat() if r.sent_at else None, "details": r.details}
            for r in rows
        ], indent=2, ensure_ascii=False))
        return
    if not rows:
        app.out.print("No alerts yet.")
        return
    table = Table(title_justify="left")
    for col in ("id", "created", "trigger", "state", "to", "what", "error"):
        table.add_column(col, overflow="fold")
    styles = {"sent": "green", "pending": "yellow", "sending": "yellow"}
    for r in rows:
        table.add_row(
            str(r.id), ago(r.created_at), r.trigger,
            Text(r.state + (f" ({r.attempts} tries)" if r.state != "sent" and r.attempts else ""),
                 style=styles.get(r.state, "")),
            Text(r.recipients or ""), Text(r.headline), Text(r.last_error or "", style="red"),
        )
    app.out.print(table)
