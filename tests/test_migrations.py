"""Schema migrations as a deployment meets them: several processes starting at once on a fresh
or an old database, and a database a newer mentionwatch has upgraded. Real processes, a SQLite
file and the PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from mentionwatch import db
from mentionwatch.store import Store
from tests.test_cli import config_text, run

#: Waits for the gate file, then opens the store (which migrates): the processes start their
#: migrations within milliseconds of each other, as a service and a cron job do after a deploy.
OPEN_AT_GATE = """
import os, sys, time
from mentionwatch.store import Store
while not os.path.exists(sys.argv[2]):
    time.sleep(0.005)
Store.open(sys.argv[1]).close()
"""


@pytest.mark.parametrize("start", [None, "0001"])
def test_processes_starting_at_once_migrate_the_schema_once(
        tmp_path: Path, db_url: str, start: str | None) -> None:
    if start is not None:
        engine = db.make_engine(db_url)
        db.upgrade(engine, start)
        engine.dispose()
    gate = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTIONWATCH_")}
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT_GATE, db_url, str(gate)],
                              env=env, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    time.sleep(3)  # every process has imported and waits at the gate
    gate.touch()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    # On PostgreSQL all but one had failed: 'duplicate key value violates unique constraint
    # "pg_type_typname_nsp_index"' (both created the tables) or 'already exists'.
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    engine = db.make_engine(db_url)
    try:
        assert db.current_revision(engine) == db.head_revision()
    finally:
        engine.dispose()


def test_an_upgrade_that_fails_part_way_leaves_the_schema_where_it_was(db_url: str) -> None:
    # One transaction for the whole upgrade. Alembic had committed SQLite after each
    # revision, so a second process starting at once read the first revision's commit as
    # current and ran the next one again ("duplicate column name: explanation"); and a
    # failure part way left a schema between versions.
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine, "0001")
        with engine.begin() as conn:  # in the way of the last revision's table
            conn.execute(text("CREATE TABLE scheduled_sends (id INTEGER PRIMARY KEY)"))
        with pytest.raises(Exception, match="scheduled_sends"):
            db.upgrade(engine)
        assert db.current_revision(engine) == "0001"
        columns = [c["name"] for c in inspect(engine).get_columns("mentions")]
        assert "explanation" not in columns  # 0003's column went with the failed upgrade
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE scheduled_sends"))
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
    finally:
        engine.dispose()


def test_a_database_a_newer_mentionwatch_upgraded_is_refused_clearly(
        tmp_path: Path, db_url: str) -> None:
    Store.open(db_url).close()
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    (tmp_path / "mentionwatch.toml").write_text(config_text(db_url, ""), encoding="utf-8")
    current = run(["db", "current"], tmp_path)
    assert current.returncode == 1
    assert "revision 0099_from_the_future (ahead: a newer mentionwatch upgraded it" in \
        current.stdout
    assert "db upgrade" not in current.stdout  # upgrading cannot help; it had said to
    for command in (["status"], ["db", "upgrade"], ["mentions", "list"]):
        result = run(command, tmp_path)
        assert result.returncode == 1, command
        assert "Traceback" not in result.stderr, result.stderr  # it was alembic's CommandError
        assert "schema revision '0099_from_the_future', which this mentionwatch" in \
            result.stderr
        assert "Upgrade mentionwatch" in result.stderr
