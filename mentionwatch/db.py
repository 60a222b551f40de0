"""Engines and schema migrations.

SQLite gets WAL, a busy timeout, foreign keys and `BEGIN IMMEDIATE` for writes, so a poller
and the TUI can write at the same time. Any other SQLAlchemy URL is used as given.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError

from mentionwatch.errors import StoreError
from mentionwatch.resources import migrations_dir

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Poll passes run in up to [poll] concurrency threads, each briefly holding a connection.
POOL = {"pool_size": 10, "max_overflow": 30, "pool_timeout": 60}


def redact_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for `url`; raises StoreError with a readable message."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"Database URL {redact_url(url)!r} is not a valid SQLAlchemy URL."
        ) from None
    if parsed.drivername == "postgresql":
        # Prefer psycopg 3, which the `postgres` extra installs.
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, **kwargs)
        return create_engine(parsed, pool_pre_ping=True, **{**POOL, **kwargs})
    except NoSuchModuleError:
        raise StoreError(f"No database driver for {parsed.drivername!r}.") from None
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"The database driver {exc.name!r} is not installed.",
            hint="For PostgreSQL: pip install 'mentionwatch[postgres]'.",
        ) from None


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names; None for an in-memory database, a `file:` URI (its
    options are the user's) and any other backend."""
    try:
        return _database_file(make_url(url))
    except ArgumentError:
        return None


def _database_file(url: URL) -> Path | None:
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    database = url.database
    path = _database_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        **{**(POOL if database not in (None, "", ":memory:") else {}), **kwargs},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take over transaction control so writes start with BEGIN IMMEDIATE: a deferred
        # BEGIN that later upgrades to a write lock fails instead of waiting.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
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

    return engine


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(_alembic_config_no_engine())
    return script.get_current_head()


def _alembic_config_no_engine() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DatabaseError as exc:  # unreachable, or (SQLite) a file that is not a database
        raise StoreError(_connect_message(engine, exc)) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`. Safe to run on every start; a no-op when current."""
    try:
        if current_revision(engine) == head_revision() and revision == "head":
            return
        command.upgrade(_alembic_config(engine), revision)
    except DatabaseError as exc:
        raise StoreError(_connect_message(engine, exc)) from None


def _connect_message(engine: Engine, exc: DatabaseError) -> str:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return f"Cannot use the database {redact_url(str(engine.url))}: {reason}"
