"""What deserves an email: urgent mentions, spikes, unhealthy sources, unanswered complaints.

Each trigger returns `NewAlert`s with a dedup key naming the mention (or the episode) and the
trigger, so recording the same alert twice does nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import OperationalError

from mentionwatch.alerts.rules import judge_spike, spike_history_ready, spike_windows
from mentionwatch.alerts.store import AlertStore, NewAlert
from mentionwatch.config import Config
from mentionwatch.durations import format_duration

log = logging.getLogger(__name__)


def detect(config: Config, alerts: AlertStore, now: datetime) -> list[NewAlert]:
    """Every alert the current state of the database calls for (recorded or not).

    A trigger that fails is logged and skipped; the others still run. A database that
    cannot be used fails them all: that is raised, for the caller to say once.
    """
    found: list[NewAlert] = []
    steps: dict[str, Callable[[Config, AlertStore, datetime], list[NewAlert]]] = {
        "mention": urgent_mentions, "spike": spikes, "source": source_health,
        "escalation": escalations,
    }
    for name, step in steps.items():
        if name not in config.alerts.triggers:
            continue
        try:
            found.extend(step(config, alerts, now))
        except OperationalError:
            raise
        except Exception:
            log.exception("alert trigger %s failed", step.__name__)
    return found


def urgent_mentions(config: Config, alerts: AlertStore, now: datetime) -> list[NewAlert]:
    """One alert per mention and alerting rule, and one per mention whose priority crosses
    the threshold."""
    cfg = config.alerts
    out: list[NewAlert] = []
    for mention_id, priority, flag, rules in alerts.urgent_mentions(
        now - cfg.lookback, cfg.priority_threshold
    ):
        what = flag or "mention"
        for rule in rules:
            out.append(NewAlert(
                dedup_key=f"rule:{mention_id}:{rule}"[:300], trigger="rule",
                headline=f"Urgent {what}: rule {rule} says alert",
                details={"rule": rule, "priority": priority}, mention_id=mention_id,
            ))
        if priority >= cfg.priority_threshold:
            out.append(NewAlert(
                dedup_key=f"priority:{mention_id}", trigger="priority",
                headline=f"Urgent {what}: priority {priority:g}",
                details={"priority": priority, "threshold": cfg.priority_threshold},
                mention_id=mention_id,
            ))
    return out


def spikes(config: Config, alerts: AlertStore, now: datetime) -> list[NewAlert]:
    """A spike alert at most once per window-sized time bucket, and none in the first day
    of monitoring (see `spike_history_ready`)."""
    cfg = config.alerts
    flags = None if "all" in cfg.spike_flags else list(cfg.spike_flags)
    series = "all mentions" if flags is None else " + ".join(flags)
    since = alerts.monitored_since()
    if not spike_history_ready(now, cfg.spike_window, since):
        return []  # a first day (first pass, backfill): nothing to compare a burst with
    (start, end), baseline_windows = spike_windows(
        now, cfg.spike_window, cfg.spike_baseline_days, since
    )
    current = alerts.count_mentions(flags, start, end)
    if current < cfg.spike_min_count:
        return []  # the cheap exit: most passes stop here
    baseline = [alerts.count_mentions(flags, s, e) for s, e in baseline_windows]
    spike = judge_spike(current, baseline, cfg.spike_k, cfg.spike_min_count)
    if not spike.spiking:
        return []
    seconds = max(1, int(cfg.spike_window.total_seconds()))
    bucket = int(now.timestamp()) // seconds
    window = format_duration(cfg.spike_window)
    return [NewAlert(
        dedup_key=f"spike:{','.join(flags or ['all'])}:{seconds}:{bucket}"[:300],
        trigger="spike",
        headline=f"Spike: {current} {series} in the last {window}",
        details={
            "series": series, "window": window, "current": current,
            "baseline_mean": round(spike.baseline_mean, 2), "baseline_days": spike.baseline_days,
            "baseline_counts": baseline, "k": cfg.spike_k, "min_count": cfg.spike_min_count,
            "threshold": round(spike.threshold, 2),
        },
    )]


def source_health(config: Config, alerts: AlertStore, now: datetime) -> list[NewAlert]:
    """Failing too long, disabled for bad credentials, or gone quiet: once per episode (an
    episode ends with the next success or new mention, which changes the key)."""
    cfg = config.alerts
    out: list[NewAlert] = []
    enabled = [s.name for s in config.sources if s.enabled]
    for src in alerts.source_health(enabled):
        ok_since = src.last_success_at.isoformat() if src.last_success_at else "never"
        if src.disabled_reason:
            digest = hashlib.sha256(src.disabled_reason.encode()).hexdigest()[:12]
            out.append(NewAlert(
                dedup_key=f"source-disabled:{src.name}:{ok_since}:{digest}"[:300],
                trigger="source_disabled",
                headline=f"Source {src.name} is disabled",
                details={"source": src.name, "reason": src.disabled_reason,
                         "hint": "Fix the credentials or settings; changing the source's "
                                 "config re-enables it."},
            ))
            continue
        failing_since = src.last_success_at or src.created_at
        if src.consecutive_failures > 0 and now - failing_since >= cfg.source_failing_after:
            out.append(NewAlert(
                dedup_key=f"source-failing:{src.name}:{ok_since}"[:300],
                trigger="source_failing",
                headline=f"Source {src.name} failing for {format_duration(now - failing_since)}",
                details={"source": src.name, "failures": src.consecutive_failures,
                         "last_error": src.last_error, "last_success_at": ok_since},
            ))
            continue
        quiet = cfg.source_quiet_after
        if quiet is not None and src.last_success_at is not None:
            since = src.last_new_mention_at or src.created_at
            if now - since >= quiet:
                out.append(NewAlert(
                    dedup_key=f"source-quiet:{src.name}:{since.isoformat()}"[:300],
                    trigger="source_quiet",
                    headline=f"Source {src.name}: no new mention for "
                             f"{format_duration(now - since)}",
                    details={"source": src.name, "last_new_mention_at": since.isoformat(),
                             "quiet_after": format_duration(quiet)},
                ))
    return out


def escalations(config: Config, alerts: AlertStore, now: datetime) -> list[NewAlert]:
    """An unanswered mention past its flag's response target: once per mention, with the
    size of the whole overdue backlog."""
    targets = config.alerts.response_targets
    if not targets:
        return []
    oldest = now - max(targets.values()) - config.alerts.lookback
    overdue = [
        (mid, flag, created) for mid, flag, created in alerts.unanswered(list(targets), oldest, now)
        if now - created >= targets[flag]
    ]
    backlog = {flag: sum(1 for _, f, _ in overdue if f == flag) for flag in targets}
    backlog = {k: v for k, v in backlog.items() if v}
    return [
        NewAlert(
            dedup_key=f"escalation:{mid}", trigger="escalation",
            headline=f"Unanswered {flag} for {format_duration(now - created)} "
                     f"(target {format_duration(targets[flag])})",
            details={"flag": flag, "waiting": format_duration(now - created),
                     "target": format_duration(targets[flag]), "backlog": backlog},
            mention_id=mid,
        )
        for mid, flag, created in overdue
    ]
