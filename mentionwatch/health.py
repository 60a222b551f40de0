"""When may a source be polled again? Pure functions over its stored health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

BACKOFF_BASE = timedelta(seconds=60)
BACKOFF_CAP = timedelta(hours=1)
#: Consecutive authentication failures after which a source is disabled until its config changes.
AUTH_FAILURES_TO_DISABLE = 3


def backoff(consecutive_failures: int, interval: timedelta) -> timedelta:
    """Exponential backoff after failures, starting at the smaller of a minute and the
    interval and doubling up to a cap of one hour (or the interval, if longer)."""
    if consecutive_failures <= 0:
        return timedelta(0)
    base = min(BACKOFF_BASE, interval)
    cap = max(BACKOFF_CAP, interval)
    delay: timedelta = base * (2 ** (consecutive_failures - 1))
    return min(delay, cap)


@dataclass(frozen=True, slots=True)
class Due:
    due: bool
    reason: str
    at: datetime | None = None


def due_state(
    *,
    now: datetime,
    interval: timedelta,
    last_attempt_at: datetime | None,
    next_attempt_at: datetime | None,
    rate_limited_until: datetime | None,
    disabled_reason: str | None,
    force: bool = False,
) -> Due:
    """Whether a source should be polled now, and if not, why and when it will be."""
    if disabled_reason:
        return Due(False, disabled_reason)
    if rate_limited_until and now < rate_limited_until:
        return Due(False, "rate limited", rate_limited_until)
    if force:
        return Due(True, "requested")
    if next_attempt_at and now < next_attempt_at:
        return Due(False, "backing off after failures", next_attempt_at)
    if last_attempt_at and now < last_attempt_at + interval:
        return Due(False, "not due yet", last_attempt_at + interval)
    return Due(True, "due")
