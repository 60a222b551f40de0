"""Alembic environment, run from the application (no alembic.ini needed).

The application passes its engine in `config.attributes["engine"]`. `fileConfig()` is
deliberately not called: it would reset the application's logging.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from mentionwatch.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:
        url = context.config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("run migrations through `mentionwatch db upgrade`")
        engine = create_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Alembic takes SQLite's DDL for non-transactional and commits after each
            # revision, so a second process starting at once waited at its BEGIN IMMEDIATE
            # only until the first revision was in, read that as current and ran the next
            # revision again ("duplicate column name"). SQLite's DDL is transactional: the
            # whole upgrade is one transaction (begun before `configure`, so Alembic leaves
            # it to us), and a process that waited for it finds the schema current.
            with connection.begin():
                _configure(connection)
                context.run_migrations()
            return
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode re-creates tables instead.
        render_as_batch=True,
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
