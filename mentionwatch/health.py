"""When may a source be polled again? Pure functions over its stored health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

BACKOFF_BASE = timedelta(seconds=60)
BACKOFF_CAP = timedelta(hours=1)
#: The longest a source is skipped because it asked us to wait (Retry-After, a rate-limit
#: reset): a header that says "2099" must not silence a source for decades.
MAX_RATE_LIMIT_WAIT = timedelta(hours=24)
#: Consecutive authentication failures after which a source is disabled until its config changes.
AUTH_FAILURES_TO_DISABLE = 3


def backoff(consecutive_failures: int, interval: timedelta) -> timedelta:
    """Exponential backoff after failures, starting at the smaller of a minute and the
    interval and doubling up to a cap of one hour (or the interval, if longer)."""
    if consecutive_failures <= 0:
        return timedelta(0)
    base = min(BACKOFF_BASE, interval)
    cap = max(BACKOFF_CAP, interval)
    # The exponent is capped before multiplying: after many failures 2**n overflows timedelta.
    delay: timedelta = base * (2 ** min(consecutive_failures - 1, 20))
    return min(delay, cap)


#: Clocks of machines sharing a database may differ by this much. A source's last attempt
#: further ahead of now than this says this clock was stepped back since (NTP, a VM
#: restored): every wait measured from that attempt would last as long again.
CLOCK_SKEW = timedelta(minutes=1)
#: Why a source is due whose last attempt is later than now (see CLOCK_SKEW).
CLOCK_WENT_BACK = "the clock went back"

#: Why a scheduled pass is skipped when another process (a second `run`, cron's `poll`)
#: polled the source within its interval: polling it again would double its API calls.
POLLED_ELSEWHERE = "polled by another mentionwatch process"


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
    scheduled: bool = False,
    polled_here_at: datetime | None = None,
) -> Due:
    """Whether a source should be polled now, and if not, why and when it will be.

    `force` (a person asked) skips the interval and the backoff; `scheduled` (the daemon's
    timer fired) skips the interval the timer keeps, unless the last attempt was not this
    process's (`polled_here_at`, its own last attempt, None before its first): a pass
    another process made within the interval makes this one unnecessary (POLLED_ELSEWHERE).
    Neither overrides a rate limit or a disabled source.

    A last attempt later than now (beyond CLOCK_SKEW) means the clock went back: how long
    has really passed since is unknown, so the source is due (CLOCK_WENT_BACK), where the
    interval, a backoff or a rate limit measured from that attempt would each have waited
    as long again as the clock went back. One pass, stamped with the new clock, puts it
    right; a rate limit still in force is learnt again from that pass."""
    if disabled_reason:
        return Due(False, disabled_reason)
    if last_attempt_at and last_attempt_at > now + CLOCK_SKEW:
        return Due(True, CLOCK_WENT_BACK)
    if rate_limited_until and now < rate_limited_until:
        return Due(False, "rate limited", rate_limited_until)
    if force:
        return Due(True, "requested")
    if next_attempt_at and now < next_attempt_at:
        return Due(False, "backing off after failures", next_attempt_at)
    if scheduled:
        elsewhere = last_attempt_at is not None and (
            polled_here_at is None or last_attempt_at > polled_here_at)
        if elsewhere and last_attempt_at and now < last_attempt_at + interval:
            return Due(False, POLLED_ELSEWHERE, last_attempt_at + interval)
        return Due(True, "scheduled")
    if last_attempt_at and now < last_attempt_at + interval:
        return Due(False, "not due yet", last_attempt_at + interval)
    return Due(True, "due")


def typical_gap(arrivals: list[datetime]) -> timedelta | None:
    """The median time between successive passes that brought new mentions (None: too few)."""
    times = sorted(set(arrivals))
    if len(times) < 4:
        return None
    gaps = sorted(b - a for a, b in pairwise(times))
    return gaps[len(gaps) // 2]


def quiet_for(*, now: datetime, last_new: datetime | None, last_success: datetime | None,
              gap: timedelta | None, interval: timedelta) -> timedelta | None:
    """How long a source that keeps succeeding has brought nothing new, when that is far
    beyond its usual rhythm (5x its typical gap, and at least a day); else None.

    Silent failure (a feed that moved, a query that broke) looks like success with nothing
    new; this is how it becomes visible."""
    if gap is None or last_new is None or last_success is None:
        return None
    if last_success < now - 3 * interval:  # failing, not quiet: the error says why
        return None
    silent = now - last_new
    if silent > max(5 * gap, timedelta(days=1), 3 * interval):
        return silent
    return None
