"""Pure decisions behind alerts: is this a spike, who is on call, when to retry, how to
write a header line. Values in, values out; no I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mentionwatch.config import AlertsConfig, OnCallShift

DAY = timedelta(days=1)
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(minutes=30)
SUBJECT_LIMIT = 140
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Spike:
    """The numbers behind a spike decision, kept for the email's "why"."""

    spiking: bool
    current: int
    baseline_mean: float
    threshold: float
    baseline_days: int


def spike_windows(
    now: datetime, window: timedelta, days: int, monitored_since: datetime | None
) -> tuple[tuple[datetime, datetime], list[tuple[datetime, datetime]]]:
    """The current window (now - W, now] and the same window on each of the last `days`
    days, (now - i·24h - W, now - i·24h]. Days before `monitored_since` (when the first
    mention was stored) are left out: zero counts from before we watched would drag the
    baseline down and make everything look like a spike."""
    current = (now - window, now)
    baseline = []
    for i in range(1, days + 1):
        start, end = now - i * DAY - window, now - i * DAY
        if monitored_since is not None and start >= monitored_since:
            baseline.append((start, end))
    return current, baseline


def spike_history_ready(now: datetime, window: timedelta,
                        monitored_since: datetime | None) -> bool:
    """Whether spikes may alert: monitoring began at least a day before the current window,
    so yesterday's same window (now - 24h - W, now - 24h] was watched.

    Before that every post is new to us (a first pass, a backfill on a new install stores
    weeks at once) and there is no history to call a burst unusual; urgent mentions still
    alert one by one.
    """
    return monitored_since is not None and monitored_since <= now - DAY - window


def judge_spike(current: int, baseline: Sequence[int], k: float, min_count: int) -> Spike:
    """Spike when `current >= min_count` and `current > k * mean(baseline)`.

    With no baseline days yet, the minimum count alone decides.
    """
    mean = sum(baseline) / len(baseline) if baseline else 0.0
    threshold = max(float(min_count), k * mean)
    spiking = current >= min_count and current > k * mean
    return Spike(spiking, current, mean, threshold, len(baseline))


def on_call(config: AlertsConfig, now: datetime) -> list[str]:
    """Who gets an email sent at `now`: the shifts covering that local time (in the
    configured zone), else the plain on_call list. Order kept, duplicates dropped."""
    local = now.astimezone(ZoneInfo(config.timezone))
    people: list[str] = []
    for shift in config.schedule:
        if _covers(shift, local):
            people.extend(shift.who)
    if not people:
        people = list(config.on_call)
    return list(dict.fromkeys(people))


def _covers(shift: OnCallShift, local: datetime) -> bool:
    start = _clock(shift.start)
    end = _clock(shift.end)
    clock = local.time().replace(tzinfo=None)
    today = _WEEKDAYS[local.weekday()]
    yesterday = _WEEKDAYS[(local.weekday() - 1) % 7]
    if start < end:
        return today in shift.days and start <= clock < end
    # An overnight shift (22:00-06:00) belongs to the day it starts on.
    return (today in shift.days and clock >= start) or (yesterday in shift.days and clock < end)


def _clock(value: str) -> time:
    if value == "24:00":
        return time.max
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def retry_delay(attempts: int) -> timedelta:
    """Backoff after `attempts` failed sends: 30 s, 1 m, 2 m, ... capped at 30 minutes."""
    if attempts <= 0:
        return timedelta(0)
    delay: timedelta = RETRY_BASE * 2 ** min(attempts - 1, 16)
    return min(delay, RETRY_CAP)


# Every character that can end a line somewhere: CR, LF, VT, FF, NEL, LS, PS, and any other
# control or format character. A subject built from user text keeps none of them.
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def clean_header(value: str, limit: int = SUBJECT_LIMIT) -> str:
    """One safe header line from user text: no line breaks or control characters, spaces
    collapsed, at most `limit` characters (cut with an ellipsis)."""
    text = _LINE_BREAKS.sub(" ", value)
    text = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text
    )
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
