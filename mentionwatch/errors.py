"""One error tree for everything mentionwatch reports to a person.

The CLI catches `MentionwatchError`, prints its message (and hint) without a traceback and
exits with `exit_code`. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


class MentionwatchError(Exception):
    """Base of all errors that are meant for a user, not a developer."""

    exit_code = 1
    title = "Error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(MentionwatchError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 2
    title = "Configuration error"


class StoreError(MentionwatchError):
    """The database cannot be reached or is not at the expected schema."""

    title = "Database error"


class StoreNotFound(StoreError):
    """A command that works on stored data was pointed at a SQLite file that does not exist,
    most often a typo in [database] url. Opening it would create an empty store and show
    nothing, with no hint why. Also any command, `poll` included, on a `file:` URI whose
    `no_create` option (mode=ro, immutable=1, mode=rw) keeps SQLite from creating it, where
    SQLite's own words were "unable to open database file". Exit code 2, as for the other
    configuration mistakes."""

    exit_code = 2

    def __init__(self, path: Path, *, config_file: Path | None = None,
                 no_create: str | None = None) -> None:
        setting = f"[database] url in {config_file}" if config_file else "[database] url"
        create = "`mentionwatch poll` (or `mentionwatch db upgrade`)"
        # One line: the path and both ways out (with `no_create`, poll would not create it).
        ways_out = (f"run {create} to create it, or check {setting}" if no_create is None
                    else f"{setting} opens it with {no_create}, which does not create a "
                    f"file: check the path, or take {no_create} out of the URL and run "
                    f"{create} to create it")
        super().__init__(f"No database at {path}: {ways_out}.")
        self.path = path


class StoreReadOnly(StoreError):
    """A write to a database this process may only read: a SQLite file or its folder
    read-only for this user, or opened with mode=ro; a PostgreSQL standby, read-only
    transaction or role without the privilege. Reading it works."""

    def __init__(self, path: Path | str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"Cannot write to the database {path}: {reason}.",
            hint=hint or "Commands that only read it work (report, export, mentions list and "
            "show, status). To change it, run this as a user who may write the file and its "
            "folder.")
        self.path = path


class SourceError(MentionwatchError):
    """A source could not be read (or written). Subclasses say how the scheduler should react."""

    title = "Source error"
    #: Whether trying again later can help without a person changing anything.
    retryable = True


class RateLimited(SourceError):
    """The source asked us to wait. Skip it until `until` (UTC), never sleep the process."""

    def __init__(self, message: str, *, until: datetime | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.until = until


class AuthFailed(SourceError):
    """Credentials are missing, wrong or lack a permission. Retrying will not help."""

    retryable = False


class Transient(SourceError):
    """A timeout, connection failure or server error: retry with backoff."""


class BadResponse(SourceError):
    """The source answered with something we cannot read (not a feed, invalid JSON...)."""


class RuleError(MentionwatchError):
    """A rule pack is invalid."""

    exit_code = 2
    title = "Rule error"


class SendError(MentionwatchError):
    """An approved reply or private message could not be sent."""

    title = "Send error"


class SendUnconfirmed(SendError):
    """The source took the call, but its answer does not show what it created (unreadable,
    no id). It may have been posted: the outbox leaves the action `unknown` for a person to
    check at the source, and never sends it again by itself."""
