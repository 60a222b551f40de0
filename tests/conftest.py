"""Shared fixtures: real databases (a SQLite file, and the PostgreSQL server when
MENTIONWATCH_TEST_PG_URL is set), real HTTP servers on 127.0.0.1, and configs."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mentionwatch.config import Config, parse_config
from mentionwatch.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
PG_ENV = "MENTIONWATCH_TEST_PG_URL"
#: Set by .ci/run: PostgreSQL tests must run there, so an unreachable server fails them.
PG_REQUIRED_ENV = "MENTIONWATCH_REQUIRE_PG"


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get(PG_REQUIRED_ENV):
            pytest.fail(f"{PG_REQUIRED_ENV} is set but {PG_ENV} is not")
        return None
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = _pg_admin_url()
    if admin is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(admin)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"mw_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        engine.dispose()
        if os.environ.get(PG_REQUIRED_ENV):
            pytest.fail(f"PostgreSQL at {url.render_as_string()} is required but failed: {exc}")
        pytest.skip(f"PostgreSQL at {url.render_as_string()} is unreachable: {exc}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, then the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mentionwatch.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each database backend."""
    s = Store.open(db_url)
    try:
        yield s
    finally:
        s.close()


BRAND: dict[str, Any] = {
    "name": "Acme",
    "terms": ["acme", "@acme", "#acmefail", "acme fiber", "slack"],
    "exclude": ["acme anvil"],
    "own_accounts": {"twitter": ["acme", "acmehelp"], "reddit": ["acme_official"]},
    "support_email": "help@acme.example",
}


class Overtime(BaseException):
    """A block ran past its `deadline`. Not an Exception, so that no `except Exception`
    (or `except TimeoutError`) of the code under test can take it for its own failure."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail, instead of hanging the run, when the block takes longer than `seconds`
    (SIGALRM: the main thread on POSIX; Python's `re` and `regex` both check for it)."""
    def expire(signum: int, frame: Any) -> None:
        raise Overtime(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def make_config(db_url: str, sources: list[dict[str, Any]], **sections: Any) -> Config:
    """A validated Config for tests (secrets checked against os.environ)."""
    data: dict[str, Any] = {"brand": dict(BRAND), "database": {"url": db_url},
                            "sources": sources, **sections}
    return parse_config(data, Path("test-config.toml"))


@pytest.fixture
def feeds() -> Iterator[Any]:
    """A real HTTP server on 127.0.0.1 serving feeds (see tests/feedserver.py)."""
    from tests.feedserver import serve

    yield from serve()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP server on 127.0.0.1 that records what the test `postbox` source posts."""
    from tests.test_outbox import Receiver

    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def postbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register the test-only `postbox` source kind (replies POSTed to `receiver`)."""
    from mentionwatch import registry

    monkeypatch.setitem(registry.BUILTIN, "postbox", "tests.test_outbox:PostboxConnector")
    registry.available_kinds.cache_clear()
    registry.connector_class.cache_clear()
    yield
    registry.available_kinds.cache_clear()
    registry.connector_class.cache_clear()


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own user cache dir (connectors keep login sessions there)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
