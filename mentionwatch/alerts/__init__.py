"""Alert emails to on-call staff: urgent mentions, spikes, unhealthy sources and unanswered
complaints reach a person within a minute, once.

`after_poll` runs after every poll pass (`mentionwatch poll` and `mentionwatch run`, through
`mentionwatch.hooks`). It records what deserves an alert (the unique dedup key makes each
alert exist once, even with two pollers), then sends what is due. Sending never raises:
an SMTP failure leaves the alerts pending with a retry time, and `mentionwatch status` shows
it once it has failed `failures_to_report` times.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mentionwatch.alerts.message import build_message, check_message
from mentionwatch.alerts.rules import on_call, retry_delay
from mentionwatch.alerts.smtp import send
from mentionwatch.alerts.store import AlertRow, AlertStore, DeliveryProblem, Waiting
from mentionwatch.alerts.triggers import detect
from mentionwatch.config import Config
from mentionwatch.errors import SendError
from mentionwatch.models import utcnow
from mentionwatch.pipeline import PollReport
from mentionwatch.store import Store

__all__ = ["Delivery", "after_poll", "deliver", "delivery_problem", "record_alerts",
           "run_alerts", "send_test", "waiting"]

log = logging.getLogger(__name__)

#: At most this many alerts in one email; more go out as further emails in the same pass.
MAX_PER_EMAIL = 50


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one run did: alerts recorded, alerts emailed, alerts held for a digest, and the
    error of a failed send (the alerts stay pending)."""

    recorded: int = 0
    sent: int = 0
    held: int = 0
    emails: int = 0
    error: str | None = None


def after_poll(config: Config, store: Store, report: PollReport) -> None:
    """The after-poll step: record and send alerts. Never raises for an SMTP problem."""
    run_alerts(config, store)


def run_alerts(
    config: Config, store: Store, *, now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Delivery:
    """Record every alert the database calls for, then send what is due."""
    if not config.alerts.enabled:
        return Delivery()
    now = now or utcnow()
    recorded = record_alerts(config, store, now=now)
    result = deliver(config, store, now=now, environ=environ)
    return Delivery(recorded, result.sent, result.held, result.emails, result.error)


def record_alerts(config: Config, store: Store, *, now: datetime | None = None) -> int:
    """Insert the alerts not recorded yet (before anything is sent); return how many."""
    now = now or utcnow()
    alerts = AlertStore(store)
    found = detect(config, alerts, now)
    known = alerts.known_keys([a.dedup_key for a in found])
    fresh = [a for a in found if a.dedup_key[:300] not in known]
    return len(alerts.record(fresh, now)) if fresh else 0


def deliver(
    config: Config, store: Store, *, now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Delivery:
    """Send the pending alerts that are due, grouped into digests.

    The first alert after a quiet spell goes out at once; alerts that come within
    `digest_window` of the last email wait for the end of that window and then go out
    together in one email.
    """
    cfg = config.alerts
    now = now or utcnow()
    alerts = AlertStore(store)
    lease = cfg.smtp.timeout * 3 + timedelta(seconds=60)
    claimed = alerts.claim_due(now, lease)
    if not claimed:
        return Delivery()
    last = alerts.last_sent_at()
    if cfg.digest_window and last is not None and now < last + cfg.digest_window:
        alerts.hold([r.id for r in claimed], last + cfg.digest_window)
        return Delivery(held=len(claimed))
    recipients = on_call(cfg, now)
    if not recipients:
        nobody = "no on-call recipients: set [alerts] on_call or a schedule"
        alerts.mark_failed(claimed, nobody, now, retry_delay)
        log.warning("alerts not sent: %s", nobody)
        return Delivery(error=nobody)
    sent = emails = 0
    error: str | None = None
    for start in range(0, len(claimed), MAX_PER_EMAIL):
        rows = claimed[start : start + MAX_PER_EMAIL]
        if error is not None:  # the server just failed: do not hammer it in this pass
            alerts.mark_failed(rows, error, now, retry_delay)
            continue
        try:
            refused = _send_rows(config, alerts, rows, recipients, now, environ)
        except SendError as exc:
            error = str(exc)
            alerts.mark_failed(rows, error, now, retry_delay)
            log.warning("alert email failed, will retry: %s", exc.message)
            continue
        note = f"refused by the server: {', '.join(refused)}" if refused else None
        alerts.mark_sent(rows, [r for r in recipients if r not in refused], now, note)
        sent += len(rows)
        emails += 1
    return Delivery(sent=sent, emails=emails, error=error)


def _send_rows(
    config: Config, alerts: AlertStore, rows: Sequence[AlertRow], recipients: Sequence[str],
    now: datetime, environ: Mapping[str, str] | None,
) -> list[str]:
    mentions = alerts.mention_views([r.mention_id for r in rows if r.mention_id is not None])
    message = build_message(rows, mentions, sender=config.alerts.from_address,
                            recipients=recipients, now=now)
    return list(send(config.alerts.smtp, message, recipients, environ=environ))


def send_test(
    config: Config, *, to: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Send a test email now to `to` (default: whoever is on call); return the recipients.

    Raises SendError when it cannot be sent.
    """
    now = utcnow()
    recipients = list(to or on_call(config.alerts, now))
    if not recipients:
        raise SendError("Nobody to send to: [alerts] on_call is empty and no schedule covers now.",
                        hint="Add addresses to on_call, or pass --to ADDRESS.")
    message = check_message(sender=config.alerts.from_address, recipients=recipients, now=now)
    refused = send(config.alerts.smtp, message, recipients, environ=environ)
    return [r for r in recipients if r not in refused]


def delivery_problem(config: Config, store: Store) -> DeliveryProblem | None:
    """Alerts that have failed to send `failures_to_report` times or more, or None."""
    return AlertStore(store).delivery_problem(config.alerts.failures_to_report)


def waiting(store: Store, *, now: datetime | None = None) -> Waiting:
    """The pending alerts not due yet: in back-off after a failed send, or held for a digest."""
    return AlertStore(store).waiting(now or utcnow())
