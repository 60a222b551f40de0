"""Approve, send and audit from the command line (the TUI will do the same through these)."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table
from rich.text import Text

from mentionwatch import audit, outbox
from mentionwatch.cli.context import AppContext, pass_app
from mentionwatch.team import current_operator
from mentionwatch.text import strip_terminal_escapes


@click.command()
@click.argument("mention_id", type=int)
@click.option("--public/--no-public", "public", default=True, show_default=True,
              help="Approve the public reply.")
@click.option("--private/--no-private", "private", default=False, show_default=True,
              help="Approve the private follow-up.")
@click.option("--text", help="Send this instead of the draft (recorded as an edit).")
@click.option("--send", "send_now", is_flag=True, help="Send right away instead of at the "
              "next poll/run pass.")
@click.option("--allow-private-data", is_flag=True,
              help="Post a public reply even though it shows an email address, a phone, "
              "order or card number (refused without this).")
@pass_app
def approve(app: AppContext, mention_id: int, public: bool, private: bool, text: str | None,
            send_now: bool, allow_private_data: bool) -> None:
    """Approve the drafted reply (and/or private follow-up) of a mention for sending.

    Nothing is posted without this; nothing is posted twice. See the drafts with
    `mentionwatch mentions show ID`. A reply to a crisis-flagged mention may wait in
    `needs_approval` for a second person (see [team]); running `approve` on it again as
    that person gives the second approval. A public reply that shows an email address, a
    phone, order or card number (other than the brand's own support contacts) is refused,
    masked, unless --allow-private-data says a person checked it.
    """
    operator = current_operator(app.config)
    wanted = [action for action, on in (("reply", public), ("private", private)) if on]
    if not wanted:
        raise click.UsageError("Nothing to approve: pass --public and/or --private.")
    check = None if allow_private_data else outbox.PrivateDataCheck(
        app.config.brand.own_contacts(),
        hint="Edit it out (`--text`), or run the same command with --allow-private-data to "
        "post it anyway. Nothing was approved.")
    for action in wanted:
        result = outbox.take_approval(app.store, mention_id, action, operator=operator,
                                      text=text, team=app.config.team, private_data=check)
        app.out.print(Text(result.describe(mention_id, action, operator)))
    if send_now:
        _send(app)


@click.command("dismiss")
@click.argument("mention_id", type=int)
@click.option("--reason", type=click.Choice(["not relevant", "handled elsewhere", "spam"]),
              required=True, help="Why it needs no answer.")
@pass_app
def dismiss(app: AppContext, mention_id: int, reason: str) -> None:
    """Take a mention off the queue without answering."""
    operator = current_operator(app.config)
    outbox.mark(app.store, mention_id, "dismissed", operator=operator, reason=reason)
    app.out.print(f"Dismissed mention {mention_id} ({reason}).")


@click.command("replied-elsewhere")
@click.argument("mention_id", type=int)
@pass_app
def replied_elsewhere(app: AppContext, mention_id: int) -> None:
    """Record that a mention was answered at the source by hand (feeds, Hacker News)."""
    operator = current_operator(app.config)
    outbox.mark(app.store, mention_id, "replied_elsewhere", operator=operator)
    app.out.print(f"Marked mention {mention_id} as replied elsewhere.")


@click.group("outbox")
def outbox_group() -> None:
    """Approved replies on their way out: list them, send them."""


def _send(app: AppContext) -> None:
    from mentionwatch.pipeline import build_connector

    results = outbox.send_pending(
        app.config, app.store, connector_for=lambda source: build_connector(source, app.config))
    for r in results:
        style = {"sent": "green", "failed": "red", "unknown": "bold yellow"}.get(r.state, "")
        app.out.print(Text(f"action {r.action_id} ({r.action} to mention {r.mention_id}): "
                           f"{r.state}" + (f": {r.message}" if r.message else "")
                           + (f" {r.url}" if r.url else ""), style=style))
    if not results:
        app.out.print("Nothing approved is waiting.")
    if any(r.state != "sent" for r in results):
        sys.exit(1)  # for scripts and cron: something needs a person


@outbox_group.command("send")
@pass_app
def outbox_send(app: AppContext) -> None:
    """Send every approved action once (also done after each poll/run pass).

    Exit code 1 when one failed or may have gone out (unknown): see `outbox list`."""
    _send(app)


@outbox_group.command("list")
@click.option("--state", "states", multiple=True,
              type=click.Choice(list(outbox.STATES)))
@click.option("--json", "as_json", is_flag=True)
@pass_app
def outbox_list(app: AppContext, states: tuple[str, ...], as_json: bool) -> None:
    """Recent outbox actions. `unknown` ones may have been posted: check at the source, then
    `outbox resolve`. `needs_approval` ones wait for a second approver."""
    rows = outbox.actions(app.store, states=states or None)
    if as_json:
        click.echo(json.dumps([{"id": a.id, "mention_id": a.mention_id, "action": a.action,
                                "state": a.state, "text": a.text, "error": a.last_error,
                                "approved_by": a.approved_by,
                                "second_approver": a.second_approver,
                                "posted_url": a.posted_url} for a in rows], indent=2))
        return
    table = Table(title="Outbox", title_justify="left")
    for col in ("id", "mention", "action", "state", "by", "text / error"):
        table.add_column(col, overflow="fold")
    for a in rows:
        by = a.approved_by or ""
        if a.second_approver:
            by += f" + {a.second_approver}"
        # A person's text may hold what an editor or a paste left in it (rich keeps ESC).
        table.add_row(str(a.id), str(a.mention_id), a.action, a.state, Text(by),
                      Text(strip_terminal_escapes(a.last_error or a.text)))
    app.out.print(table)


@outbox_group.command("retry")
@click.argument("action_id", type=int)
@pass_app
def outbox_retry(app: AppContext, action_id: int) -> None:
    """Send a failed action again with the same text (to change it, approve the mention
    again with --text)."""
    operator = current_operator(app.config)
    outbox.retry(app.store, action_id, operator=operator)
    app.out.print(f"Action {action_id} will be sent again at the next send.")


@outbox_group.command("resolve")
@click.argument("action_id", type=int)
@click.option("--posted/--not-posted", required=True,
              help="What you found at the source: it went out, or it did not.")
@pass_app
def outbox_resolve(app: AppContext, action_id: int, posted: bool) -> None:
    """Settle an `unknown` action after checking the source by hand: --posted marks it
    sent; --not-posted marks it failed so it can be retried or approved again."""
    operator = current_operator(app.config)
    outbox.resolve_unknown(app.store, action_id, operator=operator, posted=posted)
    app.out.print(f"Action {action_id} marked as {'sent' if posted else 'not sent (failed)'}.")


@outbox_group.command("reject")
@click.argument("action_id", type=int)
@pass_app
def outbox_reject(app: AppContext, action_id: int) -> None:
    """Turn down an action that waits for its second approval."""
    operator = current_operator(app.config)
    outbox.reject(app.store, action_id, operator=operator)
    app.out.print(f"Action {action_id} rejected; it will not be sent.")


@click.command("audit")
@click.option("--limit", default=50, show_default=True)
@click.option("--mention", "mention_id", type=int, help="Only events about this mention.")
@pass_app
def audit_command(app: AppContext, limit: int, mention_id: int | None) -> None:
    """Who approved, edited, dismissed and sent what, and when."""
    table = Table(title="Audit", title_justify="left")
    for col in ("when (UTC)", "who", "event", "mention", "details"):
        table.add_column(col, overflow="fold")
    for e in audit.recent(app.store, limit=limit, mention_id=mention_id):
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", Text(e.actor), e.event,
                      str(e.mention_id or ""), Text(json.dumps(e.details or {})))
    app.out.print(table)
