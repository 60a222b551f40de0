"""Parse the human durations used in config and on the command line ("90s", "15m", "2h", "7d")."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
#: Nothing in mentionwatch waits or looks back longer; far beyond it, date arithmetic
#: overflows ("99999999d" crashed the scheduler and every --since).
MAX_DURATION = timedelta(days=3650)


class DurationTooLong(ValueError):
    """A well-formed duration beyond MAX_DURATION (a mistake, not another format)."""


def parse_duration(value: str | int | float) -> timedelta:
    """Return the timedelta for "90s", "15m", "1h30m", "2d" or a number of seconds.

    Raises ValueError with a message that says what is accepted, and its subclass
    DurationTooLong for a duration beyond MAX_DURATION (10 years).
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '90s', '15m', '2h' or '7d'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded(value, value)
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _bounded(float(text), value)
    parts = _PART.findall(text)
    if not parts or _PART.sub("", text).strip():
        raise ValueError(f"{value!r} is not a duration; use e.g. '90s', '15m', '2h', '7d'")
    return _bounded(sum(float(n) * _UNITS[u.lower()] for n, u in parts), value)


def _bounded(seconds: float, value: str | int | float) -> timedelta:
    if math.isnan(seconds):
        raise ValueError(f"{value!r} is not a duration; use e.g. '90s', '15m', '2h', '7d'")
    # Compared as seconds first: timedelta itself overflows near 2.7 million years.
    if seconds > MAX_DURATION.total_seconds():
        raise DurationTooLong(f"{value!r} is too long; durations are at most "
                              f"{MAX_DURATION.days}d (10 years)")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """A short human form: 45s, 12m, 3h, 2d."""
    seconds = int(abs(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
