"""Engines and schema migrations.

SQLite gets WAL, a busy timeout, foreign keys and `BEGIN IMMEDIATE` for writes, so a poller
and the TUI can write at the same time. A SQLite file this process may not write is opened
read-only: reads work, a write is StoreReadOnly. Any other SQLAlchemy URL is used as given.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError as AlembicCommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, NoSuchModuleError

from mentionwatch import __version__
from mentionwatch.errors import StoreError, StoreReadOnly
from mentionwatch.resources import migrations_dir
from mentionwatch.sqlite_url import SqliteTarget, sqlite_target

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: The [poll] concurrency the default pool is sized for.
DEFAULT_CONCURRENCY = 32


def pool_options(concurrency: int = DEFAULT_CONCURRENCY) -> dict[str, int]:
    """A connection pool for up to `concurrency` poll passes at once. On PostgreSQL each pass
    holds a connection for its whole length (its source's advisory lock) and needs a second
    one for its reads and writes, so the pool must hold more than the passes: with 40
    connections for 60 passes, every pass held one and waited for another that no one gave
    back, for pool_timeout, then the poll failed with SQLAlchemy's TimeoutError."""
    return {"pool_size": 10, "max_overflow": max(30, 2 * concurrency), "pool_timeout": 60}


POOL = pool_options()


def redact_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs: the one after the user name
    and a `password=` query parameter (libpq takes both), also in a URL that does not parse."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # a port that is not a number raises ValueError
        return _PASSWORD_QUERY.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", url))
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


_USERINFO_PASSWORD = re.compile(r"(://[^/@:]*:)[^@]*@")
_PASSWORD_QUERY = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for `url`; raises StoreError with a readable message. A SQLite file
    this process may not write (the file or its folder) is opened read-only (`is_read_only`);
    a write to it raises StoreReadOnly."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        reason = f" ({exc})" if isinstance(exc, ValueError) else ""
        raise StoreError(
            f"Database URL {redact_url(url)!r} is not a valid SQLAlchemy URL{reason}."
        ) from None
    if parsed.drivername == "postgresql":
        # Prefer psycopg 3, which the `postgres` extra installs.
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, **kwargs)
        engine = create_engine(parsed, pool_pre_ping=True, **{**POOL, **kwargs})
    except NoSuchModuleError:
        raise StoreError(f"No database driver for {parsed.drivername!r}.") from None
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"The database driver {exc.name!r} is not installed.",
            hint="For PostgreSQL: pip install 'mentionwatch[postgres]'.",
        ) from None
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "connect", _server_keepalives)
        event.listen(engine, "handle_error", _server_read_only)
    return engine


#: SQLSTATEs of a write PostgreSQL refuses to a session that may read: a read-only
#: transaction (a standby, `default_transaction_read_only`) and a missing privilege.
PG_READ_ONLY_STATES = frozenset({"25006", "42501"})


def _server_read_only(context: ExceptionContext) -> BaseException | None:
    """A write the server refuses as read-only is StoreReadOnly, with the server's words, as
    SQLite's are (a traceback otherwise)."""
    original = context.original_exception
    if getattr(original, "sqlstate", None) not in PG_READ_ONLY_STATES:
        return None
    words = (str(original).strip().splitlines() or ["refused"])[0][:200]
    where = redact_url(str(context.engine.url)) if context.engine is not None else "PostgreSQL"
    return StoreReadOnly(where, f"the server refuses the write ({words})",
                         hint="Commands that only read it work (report, export, mentions list "
                         "and show, status). To change it, use a role that may write it, on "
                         "the primary server.")


#: How soon PostgreSQL ends the session of a client gone without a word (its host crashed
#: or lost the network; a process that dies is noticed at once), and with it the advisory
#: locks that session held (a source's lock, see `mentionwatch.locks`): 30 s of silence,
#: then 3 probes 10 s apart. The server's default is the system's, over two hours on Linux,
#: for which no other service on the database could poll that source.
SERVER_KEEPALIVES = {"tcp_keepalives_idle": 30, "tcp_keepalives_interval": 10,
                     "tcp_keepalives_count": 3}


def _server_keepalives(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for name, value in SERVER_KEEPALIVES.items():
            cursor.execute(f"SET {name} = {int(value)}")
        dbapi_connection.commit()  # a SET in a transaction rolled back is undone
    except Exception as exc:  # the driver's own error (psycopg.Error): a pooler refusing SET
        log.debug("server keepalives not set, the server's defaults apply: %s", exc)
        dbapi_connection.rollback()
    finally:
        cursor.close()


def sqlite_file(url: str) -> SqliteTarget | None:
    """The file a SQLite URL names, as a path or inside a `file:` URI, with the URI's
    options; None for an in-memory database, a URL that is not valid (make_engine says why)
    and any other backend."""
    try:
        target = sqlite_target(make_url(url))
    except (ArgumentError, ValueError):
        return None
    return target if target is not None and target.path is not None else None


def read_only_reason(path: Path) -> str | None:
    """Why this process may not write the SQLite database at `path`, or None if it may.

    A database in WAL mode is written through `-wal` and `-shm` files beside it, so a folder
    we may not write is as read-only as the file itself.
    """
    if not os.access(path, os.W_OK):
        return "the file is read-only for this user"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return ("its folder is read-only for this user (SQLite writes its -wal and -shm files "
                "beside the database)")
    return None


def read_only_error(url: URL) -> StoreReadOnly:
    """The error for a write to the SQLite database at `url`: which file, and why not."""
    target = sqlite_target(url)
    path = target.path if target is not None else None
    option = target.read_only_option if target is not None else None
    if option is not None:
        return StoreReadOnly(path or redact_url(str(url)),
                             f"[database] url opens it read-only ({option})",
                             hint="Commands that only read it work (report, export, mentions "
                             f"list and show, status). To change it, take {option} out of "
                             "[database] url.")
    reason = read_only_reason(path) if path is not None and path.exists() else None
    return StoreReadOnly(path or redact_url(str(url)), reason or "it is opened read-only")


def is_read_only(engine: Engine) -> bool:
    """Whether `make_engine` opened the engine's SQLite file read-only."""
    return bool(engine.get_execution_options().get("readonly"))


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    database = url.database
    try:
        target = sqlite_target(url)
    except ValueError as exc:
        raise StoreError(f"Database URL {redact_url(str(url))!r}: {exc}.") from None
    assert target is not None
    path = target.path
    read_only = target.read_only_option is not None or (
        path is not None and path.exists() and read_only_reason(path) is not None)
    if path is not None and not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        **({**POOL, **kwargs} if database not in (None, "", ":memory:") else
           {k: v for k, v in kwargs.items() if k not in POOL}),  # one connection: no pool
    )
    if read_only and path is not None:
        _open_read_only(engine, path, target.options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take over transaction control so writes start with BEGIN IMMEDIATE: a deferred
        # BEGIN that later upgrades to a write lock fails instead of waiting.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not read_only:  # the journal mode is the writer's to choose
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers (the TUI, reports) pass execution_options(readonly=True) and need no
        # write lock under WAL.
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> BaseException | None:
        # SQLITE_READONLY and its variants: say which file and why, not the driver's words.
        name = getattr(context.original_exception, "sqlite_errorname", "")
        return read_only_error(url) if name.startswith("SQLITE_READONLY") else None

    return engine


def _open_read_only(engine: Engine, path: Path, options: Mapping[str, str]) -> None:
    """Connect to `path` read-only (mode=ro, with the other options of a `file:` URI) and
    begin every transaction with a plain BEGIN, so reads work and a write fails as
    StoreReadOnly.

    A database in WAL mode is read through its -shm file. A running writer keeps one beside
    it, which SQLite reads. With none there (the last writer closed, so every commit is in
    the file itself), SQLite would have to create it, which a read-only folder refuses, and
    which in a writable one would leave a -shm and -wal owned by this reader that the
    service may not write. So the file is read as it is on disk (immutable=1): exact for a
    copy; a writer that starts and checkpoints during a read could make that read see a mix
    of old and new pages.
    """
    wanted = {**options, "mode": "ro"}
    if _is_wal(path) and not path.with_name(path.name + "-shm").exists():
        wanted.setdefault("immutable", "1")
    uri = f"{path.resolve().as_uri()}?{urlencode(wanted)}"

    @event.listens_for(engine, "do_connect")
    def _connect_read_only(_dialect: Any, _record: Any, cargs: list[Any],
                           cparams: dict[str, Any]) -> None:
        cargs[0] = uri
        cparams["uri"] = True

    engine.update_execution_options(readonly=True)


def _is_wal(path: Path) -> bool:
    """Whether the SQLite file's header says WAL mode (bytes 18 and 19 are 2)."""
    try:
        with path.open("rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return header[18:20] == b"\x02\x02"


def _alembic_config(engine: Engine | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def is_known_revision(revision: str | None) -> bool:
    """Whether this version's migrations include `revision` (None, an empty database, is)."""
    if revision is None:
        return True
    try:
        ScriptDirectory.from_config(_alembic_config()).get_revision(revision)
    except AlembicCommandError:  # a revision written by a newer mentionwatch
        return False
    return True


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DatabaseError as exc:  # unreachable, or (SQLite) a file that is not a database
        raise StoreError(connect_message(engine, exc)) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`. Safe to run on every start, from several processes at
    once; a no-op when current. Raises StoreError when the database cannot be used, or was
    upgraded by a newer mentionwatch (whose schema this version must not write to)."""
    try:
        if revision == "head" and current_revision(engine) == head_revision():
            return
        if is_read_only(engine):
            current = current_revision(engine)
            if not is_known_revision(current):
                raise StoreError(newer_schema_message(engine, current))
            raise StoreError(
                f"The database {engine.url.database} is read-only here and its schema is "
                f"at {current or 'none'}, not {head_revision()}, which this version of "
                "mentionwatch reads.",
                hint="Run `mentionwatch db upgrade` as a user who may write it.")
        with _migration_lock(engine):
            # Read again under the lock: another process may just have migrated.
            current = current_revision(engine)
            if not is_known_revision(current):
                raise StoreError(newer_schema_message(engine, current))
            if revision == "head" and current == head_revision():
                return
            command.upgrade(_alembic_config(engine), revision)
    except DatabaseError as exc:
        raise StoreError(connect_message(engine, exc)) from None


def newer_schema_message(engine: Engine, revision: str | None) -> str:
    return (f"The database {redact_url(str(engine.url))} is at schema revision {revision!r}, "
            f"which this mentionwatch ({__version__}, latest {head_revision()}) does not know: "
            "a newer mentionwatch upgraded it. Upgrade mentionwatch to use it.")


#: pg_advisory_lock key for schema migrations (any 64-bit constant; "mentionw" in ASCII).
_MIGRATION_LOCK = int.from_bytes(b"mentionw", "big", signed=True)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One migrating process at a time. PostgreSQL: a session advisory lock on a connection of
    its own (two processes starting on a fresh database had both created the tables, and all
    but one failed on a duplicate pg_type). SQLite's BEGIN IMMEDIATE already serialises."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()


def connect_message(engine: Engine, exc: DBAPIError) -> str:
    """One line for a database that cannot be used: its URL (password hidden) and the
    driver's first line of why."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return f"Cannot use the database {redact_url(str(engine.url))}: {reason}"
