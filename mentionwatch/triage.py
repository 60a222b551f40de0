"""Triage without posting: snooze a mention until a time, assign it to a person, resolve it.

Each change is one transaction with its audit event (who, when, what), shared by the TUI and
the command line. `parse_snooze_until` reads the times people type ("30m", "2h",
"tomorrow 9:00", "fri 14:30", an ISO time) relative to a clock the caller passes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo

from sqlalchemy import Connection, select, update

from mentionwatch import outbox
from mentionwatch.audit import MACHINE, record
from mentionwatch.config import TeamConfig
from mentionwatch.durations import DurationTooLong, format_duration, parse_duration
from mentionwatch.models import AuditEvent, Mention
from mentionwatch.store import Store

SNOOZE_HELP = ("use a duration ('30m', '2h', '1d'), a time today or tomorrow ('9:00', "
               "'tomorrow 9:00', 'mon 14:30') or an ISO time ('2026-12-02T09:00', "
               "'2026-12-02 09:00+01:00'); 'now' wakes a snoozed mention")
#: "tomorrow" or a weekday alone means the start of the working day.
DEFAULT_WAKE = time(9, 0)
MAX_NAME = 100
_WEEKDAYS = {name: i for i, full in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
    for name in (full, full[:3])}
_CLOCK = re.compile(r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>am|pm)?")
_DAY_AND_CLOCK = re.compile(r"(?P<day>[a-z]+)(?:\s+(?:at\s+)?(?P<clock>.+))?")


class TriageError(outbox.OutboxError):
    """A snooze, assignment or resolution that cannot be taken; the message says why."""

    title = "Triage"


def parse_snooze_until(value: str, *, now: datetime, tz: tzinfo | None = None) -> datetime | None:
    """When a mention typed as `value` should come back, as aware UTC; None for 'now'
    (wake it). Clock times are read in `tz` (default: this machine's time zone).

    Raises ValueError naming what was typed and what is accepted, also for past times.
    """
    typed = " ".join(value.strip().lower().split())
    if not typed:
        raise ValueError(f"Say when the mention should come back: {SNOOZE_HELP}.")
    if typed == "now":
        return None
    zone = tz or now.astimezone().tzinfo or UTC
    local_now = now.astimezone(zone)
    until = (_as_duration(typed, now) or _as_clock(typed, local_now)
             or _as_iso(value.strip(), zone))
    if until is None:
        raise ValueError(f"{value.strip()!r} is not a time I can read: {SNOOZE_HELP}.")
    if until <= now:
        raise ValueError(f"{value.strip()!r} is in the past ({_local(until, zone)}); "
                         "give a later time.")
    return until.astimezone(UTC)


def _as_duration(typed: str, now: datetime) -> datetime | None:
    typed = typed.removeprefix("in ").strip()
    if re.fullmatch(r"\d+(\.\d+)?", typed):
        # Minutes? Hours? Nine o'clock? Ask rather than guess.
        raise ValueError(f"{typed!r} needs a unit ('{typed}m', '{typed}h') or a clock time "
                         f"('{typed}:00').")
    try:
        return now + parse_duration(typed)
    except DurationTooLong:
        raise
    except ValueError:
        return None


def _clock(text: str) -> time | None:
    match = _CLOCK.fullmatch(text)
    if match is None:
        return None
    hour, minute = int(match["h"]), int(match["m"] or 0)
    if match["ampm"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match["ampm"] == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _as_clock(typed: str, local_now: datetime) -> datetime | None:
    """'9:00' (today, or tomorrow when already past), 'tomorrow [at] 9:00', 'fri 14:30'."""
    bare = _clock(typed)
    if bare is not None:
        at = _on(local_now, 0, bare)
        return at if at > local_now else _on(local_now, 1, bare)
    match = _DAY_AND_CLOCK.fullmatch(typed)
    if match is None:
        return None
    day, clock_text = match["day"], match["clock"]
    wake = _clock(clock_text) if clock_text else DEFAULT_WAKE
    if wake is None:
        return None
    if day == "today":
        return _on(local_now, 0, wake)
    if day == "tomorrow":
        return _on(local_now, 1, wake)
    weekday = _WEEKDAYS.get(day)
    if weekday is None:
        return None
    ahead = (weekday - local_now.weekday()) % 7 or 7  # "mon" on a Monday: next week
    return _on(local_now, ahead, wake)


def _on(local_now: datetime, days_ahead: int, at: time) -> datetime:
    day = (local_now + timedelta(days=days_ahead)).date()
    tz = local_now.tzinfo
    # Through UTC so a day that crosses a DST change still lands on the wall-clock time.
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC).astimezone(tz)


def _as_iso(value: str, zone: tzinfo) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    if len(value) <= 10:  # a date alone: the start of that working day
        parsed = datetime.combine(parsed.date(), DEFAULT_WAKE)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _local(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


def describe_until(until: datetime, *, now: datetime, tz: tzinfo | None = None) -> str:
    """'Tue 2026-12-01 09:00 (in 14h)' in the operator's time zone."""
    zone = tz or now.astimezone().tzinfo or UTC
    return f"{_local(until, zone)} (in {format_duration(until - now)})"


def snooze(store: Store, mention_id: int, until: datetime | None, *, operator: str) -> None:
    """Hide a mention from the queue until `until` (None: bring it back now)."""
    with store.engine.begin() as conn:
        _update(conn, mention_id, snoozed_until=until)
        if until is None:
            record(conn, operator, "unsnooze", mention_id)
        else:
            record(conn, operator, "snooze", mention_id, until=until.isoformat())


def assign(store: Store, mention_id: int, person: str | None, *, operator: str,
           team: TeamConfig | None = None) -> str | None:
    """Give a mention to a named person (None or blank: nobody). With a [team] the person
    must be one of its operators (stored as spelled there). Returns the stored name."""
    name = assignee(person, team)
    with store.engine.begin() as conn:
        _update(conn, mention_id, assigned_to=name)
        if name is None:
            record(conn, operator, "unassign", mention_id)
        else:
            record(conn, operator, "assign", mention_id, to=name)
    return name


def assignee(person: str | None, team: TeamConfig | None = None) -> str | None:
    """The name to store for `person`: spaces collapsed, None for a blank one (nobody), and
    with a [team] one of its operators as spelled there. Raises TriageError otherwise."""
    name = " ".join((person or "").split()) or None
    if name is None:
        return None
    if len(name) > MAX_NAME:
        raise TriageError(f"The name {name[:20]!r}... is longer than {MAX_NAME} characters.")
    if team is None:
        return name
    found = team.find(name)
    if found is None:
        raise TriageError(
            f"{name!r} is not in the team ({', '.join(o.name for o in team.operators)}).",
            hint="Assign to one of the [[team.operators]] in the config.")
    return found.name


def resolve(store: Store, mention_id: int, *, operator: str) -> int:
    """The case is closed: off the queue, recorded as resolved by `operator`. Returns the
    id of its audit event."""
    try:
        return outbox.mark(store, mention_id, "resolved", operator=operator)
    except outbox.OutboxError as exc:
        raise TriageError(exc.message, hint="See the ids with `mentionwatch mentions list`."
                          ) from None


class ChangedMeanwhile(TriageError):
    """An undo not made: the mention changed after the change it would undo."""


def undo_mark(store: Store, mention_id: int, *, marked: str, event_id: int, restore: str,
              operator: str, event: str, unanswered: bool = False) -> None:
    """Undo `outbox.mark`: put the mention back to `restore` (and with `unanswered`, clear
    its first response), if it is still as that mark left it: status `marked`, and no
    person's audit event after `event_id`. Raises ChangedMeanwhile, saying who did what,
    if someone (another operator, another screen) changed it since, and changes nothing.

    The mention's row is locked first (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
    serialises writers), so an approval or mark made at the same moment either comes
    before this check and is seen, or waits for the undo to finish.
    """
    with store.engine.begin() as conn:
        status = conn.execute(select(Mention.status).where(Mention.id == mention_id)
                              .with_for_update()).scalar()
        if status is None:
            raise TriageError(f"#{mention_id} is no longer stored: nothing to undo.")
        later = conn.execute(
            select(AuditEvent.actor, AuditEvent.event, AuditEvent.at)
            .where(AuditEvent.mention_id == mention_id, AuditEvent.id > event_id,
                   AuditEvent.actor != MACHINE)
            .order_by(AuditEvent.id.desc()).limit(1)).first()
        if later is not None or status != marked:
            what = (f"{later.actor} {_DONE.get(later.event, later.event.replace('_', ' '))} "
                    f"it at {later.at.astimezone():%H:%M}" if later is not None
                    else f"it is {status} now")
            raise ChangedMeanwhile(f"#{mention_id} was not undone: {what}, after your "
                                   f"change. It stays {status}.")
        values: dict[str, object] = {"status": restore}
        if unanswered:
            values["first_response_at"] = None
        _update(conn, mention_id, **values)
        record(conn, operator, event, mention_id, status=restore)


#: What an audit event says a person did, for "alice approved it at 10:32".
_DONE = {"approve": "approved", "second_approve": "gave the second approval to",
         "dismiss": "dismissed", "resolve": "resolved", "edit": "edited",
         "replied_elsewhere": "marked as answered elsewhere", "assign": "assigned",
         "unassign": "unassigned", "snooze": "snoozed", "unsnooze": "woke",
         "undo_dismiss": "brought back", "undo_resolve": "reopened", "retry": "retried",
         "reject": "rejected a reply to", "resolve_unknown": "settled a send of"}


def _update(conn: Connection, mention_id: int, **values: object) -> None:
    found = conn.execute(
        update(Mention).where(Mention.id == mention_id).values(**values)).rowcount
    if not found:
        raise TriageError(f"No mention with id {mention_id}.",
                          hint="See the ids with `mentionwatch mentions list`.")


def record_edit(store: Store, mention_id: int, action: str, *, operator: str,
                via: str) -> None:
    """A draft changed outside the in-place editor (e.g. in $EDITOR): who, when, which."""
    with store.engine.begin() as conn:
        record(conn, operator, "edit", mention_id, action=action, via=via)
