"""Emails sent once per period: `run`'s morning digest and cron's `report --email`.

Each send is taken in `scheduled_sends` (one row per name and period) before the email goes,
so a second firing of the same period (a clock change repeating an hour, a restarted service,
a second one on the same database, a cron job run twice) finds it and sends nothing. A send
that fails is given back; one that goes is recorded with its recipients and an audit event
saying who sent it.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any, cast
from zoneinfo import ZoneInfo

from mentionwatch.config import Config
from mentionwatch.errors import ConfigError, MentionwatchError
from mentionwatch.models import ScheduledSend, utcnow
from mentionwatch.report_render import digest_text, render_html
from mentionwatch.reports import Report
from mentionwatch.store import Store

#: What a send returns: the addresses the server took, and those it refused.
Delivery = tuple[list[str], list[str]]

#: The send of `mentionwatch report --email` (its period also names the report's options).
REPORT_EMAIL = "report --email"
_PERIOD_WIDTH = cast(int, ScheduledSend.__table__.c.period.type.length)  # type: ignore[attr-defined]


class AlreadySent(MentionwatchError):
    """The send was made for its period already, or is being made: it is not made again.
    Exit code 3, so that cron or a script can tell it from a send that failed (1)."""

    exit_code = 3
    title = "Already sent"

    def __init__(self, what: str, earlier: ScheduledSend | None, *,
                 hint: str | None = None) -> None:
        if earlier is not None and earlier.sent_at is not None:
            count = len(earlier.recipients.split(", ")) if earlier.recipients else 0
            host = f" from {earlier.host}" if earlier.host else ""
            said = (f"{what} went out at {earlier.sent_at:%Y-%m-%d %H:%M} UTC{host}, to "
                    f"{count} recipient{'s' if count != 1 else ''}")
        else:  # taken and not finished: in flight, or cut short (the process killed)
            taken = "" if earlier is None else (
                f" (taken at {earlier.claimed_at:%Y-%m-%d %H:%M} UTC"
                + (f" by process {earlier.pid} on {earlier.host})" if earlier.host else ")"))
            said = (f"{what} is being sent{taken}, or that send was cut short (check the "
                    "inbox)")
        super().__init__(f"{said}: not sent again.", hint=hint)
        self.earlier = earlier


def local_day(now: datetime, timezone: str) -> str:
    """The ISO date of `now` in `timezone`."""
    return now.astimezone(ZoneInfo(timezone)).date().isoformat()


def daily_period(now: datetime, timezone: str, options: Sequence[str] = ()) -> str:
    """The period of a send made once a local day: the day of `now` in `timezone`, the
    zone, and the options that make it a different send ("2026-12-02 Europe/Berlin --since
    1d --top 10"). One longer than the period column keeps its start and a hash of all."""
    period = " ".join([local_day(now, timezone), timezone, *options])
    if len(period) <= _PERIOD_WIDTH:
        return period
    digest = hashlib.sha256(period.encode()).hexdigest()[:16]
    return f"{period[:_PERIOD_WIDTH - len(digest) - 2]}… {digest}"


def send_once(store: Store, name: str, period: str, send: Callable[[], Delivery], *,
              now: datetime, actor: str, what: str, again: bool = False,
              hint: str | None = None, clock: Callable[[], datetime] = utcnow) -> Delivery:
    """Call `send` unless the send `name` of `period` was made, or is being made, already;
    record it as made (when, to whom) with an audit event by `actor`. `again` sends all the
    same (its audit event says so), leaving the earlier send as recorded.

    Raises AlreadySent, naming `what` and the earlier send, with `hint`; StoreReadOnly,
    before sending, when the database may be read but not written (a SQLite file opened
    read-only, a PostgreSQL standby or read-only role); and whatever `send` raises, having
    given the period back.
    """
    claimed = store.claim_send(name, period, now=now, host=socket.gethostname(),
                               pid=os.getpid())
    if not claimed and not again:
        raise AlreadySent(what, store.scheduled_send(name, period), hint=hint)
    try:
        delivered, refused = send()
    except BaseException:
        if claimed:
            store.release_send(name, period)
        raise
    extra: dict[str, Any] = {"refused": refused} if refused else {}
    if not claimed:
        extra["again"] = True
    store.finish_send(name, period, now=clock(), recipients=delivered, actor=actor,
                      host=socket.gethostname(), **extra)
    return delivered, refused


def send_digest(config: Config, result: Report, to: list[str], now: datetime) -> Delivery:
    """Email the report (plain text + the HTML report) through the [alerts.smtp] server to
    `to` or the on-call list. Returns (delivered, refused) addresses.

    Raises ConfigError when nobody is named to receive it, SendError when the server
    refuses or cannot be reached.
    """
    from mentionwatch.alerts.rules import clean_header, on_call
    from mentionwatch.alerts.smtp import send

    alerts = config.alerts
    recipients = list(to) or on_call(alerts, now)
    if not recipients:
        raise ConfigError(f"{config.path}: nobody to send the digest to.",
                          hint="Add addresses to [alerts] on_call, or pass --to ADDRESS.")
    message = digest_message(result, sender=alerts.from_address, recipients=recipients,
                             now=now, subject_clean=clean_header)
    refused = list(send(alerts.smtp, message, recipients))
    return [r for r in recipients if r not in refused], refused


def digest_message(result: Report, *, sender: str, recipients: list[str], now: datetime,
                   subject_clean: Callable[[str], str] = lambda s: s) -> EmailMessage:
    """The morning digest: a plain text summary with the HTML report as the rich part."""
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject_clean(
        f"[mentionwatch] digest: {result.total} mentions, {result.response.complaints} "
        f"complaints, {result.backlog_total} open")
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain="mentionwatch.local")
    msg.set_content(digest_text(result))
    msg.add_alternative(render_html(result, title="mentionwatch digest"), subtype="html")
    return msg
