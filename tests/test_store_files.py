"""The SQLite file as the commands find it: not there (a typo in the path) or there but not
writable (a copy on a report server, the service user's file). Real processes, real files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mentionwatch.cli import cli
from mentionwatch.errors import StoreNotFound
from tests.feedserver import FeedServer, rss
from tests.test_cli import cli_env, config_text, feed_source, run

#: Commands that work on stored data, each as a user would type it (mention 1 is no mention
#: here: the store must be refused before anyone looks for it).
READERS = [["mentions", "list"], ["mentions", "show", "1"], ["status"], ["report"],
           ["export", "mentions"], ["alerts", "send"], ["alerts", "list"], ["tui"],
           ["db", "current"], ["rules", "rescore"], ["outbox", "list"], ["audit"],
           ["approve", "1"], ["dismiss", "1", "--reason", "spam"], ["snooze", "1", "2h"]]


@pytest.fixture
def polled(tmp_path: Path, feeds: FeedServer) -> Path:
    """A folder with a config and the store a real `poll` filled (two mentions)."""
    url = feeds.add("/feed.xml", rss([
        {"title": "Acme is down", "guid": "1", "link": "http://x.example/1",
         "description": "acme is down again"},
        {"title": "Acme rocks", "guid": "2", "link": "http://x.example/2",
         "description": "love acme"}]))
    (tmp_path / "mentionwatch.toml").write_text(
        config_text("sqlite:///data/mentionwatch.db", feed_source("feed", url)),
        encoding="utf-8")
    polled = run(["poll"], tmp_path)
    assert polled.returncode == 0, polled.stderr
    assert (tmp_path / "data" / "mentionwatch.db").is_file()
    return tmp_path


def _point_at(folder: Path, url: str) -> Path:
    config = folder / "mentionwatch.toml"
    text = config.read_text(encoding="utf-8")
    start = text.index('url = "sqlite:')
    end = text.index("\n", start)
    config.write_text(f'{text[:start]}url = "{url}"{text[end:]}', encoding="utf-8")
    return config


# ------------------------------------------------------------------- a file that is not there


def test_a_mistyped_sqlite_path_is_refused_not_created(polled: Path) -> None:
    config = _point_at(polled, "sqlite:///data/mentionz.db")
    typo = polled / "data" / "mentionz.db"
    for command in READERS:
        result = CliRunner().invoke(cli, ["--config", str(config), *command])
        assert isinstance(result.exception, StoreNotFound), (command, result.output)
        assert result.exception.exit_code == 2
        assert not typo.exists(), command
    # As the user sees it: one line naming the file and both ways out, exit code 2.
    for command in (["report"], ["mentions", "list"]):
        shown = run(command, polled)
        assert shown.returncode == 2, shown.stderr
        assert shown.stdout == ""
        assert shown.stderr.splitlines() == [
            f"Database error: No database at {typo}: run `mentionwatch poll` (or "
            f"`mentionwatch db upgrade`) to create it, or check [database] url in {config}."]
    assert not typo.exists()


@pytest.mark.parametrize("command", [["poll"], ["db", "upgrade"]])
def test_the_commands_that_fill_the_store_still_create_it(polled: Path,
                                                          command: list[str]) -> None:
    _point_at(polled, "sqlite:///fresh/mentionwatch.db")
    created = run(command, polled)
    assert created.returncode == 0, created.stderr
    assert (polled / "fresh" / "mentionwatch.db").is_file()
    listed = run(["mentions", "list", "--json"], polled)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == (2 if command == ["poll"] else 0)


@pytest.mark.parametrize("backend", ["sqlite://", "sqlite:///:memory:",
                                     pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_store_with_no_file_is_not_checked_for_one(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """In-memory SQLite and PostgreSQL open as before, empty ones included."""
    url = str(request.getfixturevalue("pg_url")) if backend == "postgres" else backend
    (tmp_path / "mentionwatch.toml").write_text(config_text(url, ""), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "mentionwatch.toml"),
                                      "mentions", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []


# ---------------------------------------------------------------- a file that is read-only


def _as_a_user() -> list[str]:
    """The prefix that runs a command as a user for whom permission bits apply. Root
    ignores them (CAP_DAC_OVERRIDE), so as root the command runs without that capability:
    the test then sees what the service user or a report reader would see."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux) to drop CAP_DAC_OVERRIDE: "
                    "permission bits do not apply to root")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


def _run_as_a_user(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(args, cwd, prefix=_as_a_user())


@pytest.fixture
def read_only(polled: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """The polled store made read-only as `request.param` says: the file, its folder, or
    both (a copy on a report server). Permissions come back afterwards."""
    folder = polled / "data"
    database = folder / "mentionwatch.db"
    which = getattr(request, "param", "both")
    if which in ("file", "both"):
        database.chmod(0o444)
    if which in ("folder", "both"):
        folder.chmod(0o555)
    # The user may not write what was made read-only (append nothing, or make a file).
    target = database if which != "folder" else folder / "probe"
    written = subprocess.run([*_as_a_user(), sys.executable, "-c",
                              f"open({str(target)!r}, 'ab')"], capture_output=True)
    if written.returncode == 0:
        if target != database:
            target.unlink()
        folder.chmod(0o755)
        database.chmod(0o644)
        pytest.skip("permission bits do not apply to this user (root, and dropping "
                    "CAP_DAC_OVERRIDE did not take)")
    try:
        yield polled
    finally:
        folder.chmod(0o755)
        database.chmod(0o644)


def _readers_work(folder: Path) -> list[dict[str, object]]:
    listed = _run_as_a_user(["mentions", "list", "--json"], folder)
    assert (listed.returncode, listed.stderr) == (0, "")
    rows = json.loads(listed.stdout)
    assert {r["external_id"] for r in rows} == {"1", "2"}
    return list(rows)


def test_a_read_only_copy_serves_every_read(read_only: Path) -> None:
    files = sorted((read_only / "data").rglob("*"))
    rows = _readers_work(read_only)
    down = next(r for r in rows if r["external_id"] == "1")
    shown = _run_as_a_user(["mentions", "show", str(down["id"]), "--json"], read_only)
    assert shown.returncode == 0 and json.loads(shown.stdout)["title"] == "Acme is down"
    exported = _run_as_a_user(["export", "mentions"], read_only)
    assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 3
    report = _run_as_a_user(["report", "--format", "json"], read_only)
    assert report.returncode == 0 and json.loads(report.stdout)["total"] == 2
    status = _run_as_a_user(["status", "--json"], read_only)
    assert status.returncode == 0, status.stderr
    assert [(s["source"], s["mentions"]) for s in json.loads(status.stdout)] == [("feed", 2)]
    assert sorted((read_only / "data").rglob("*")) == files  # no -wal, -shm or lock left


@pytest.mark.parametrize("read_only", ["file", "folder", "both"], indirect=True)
def test_a_write_to_a_read_only_store_says_so(read_only: Path) -> None:
    database = read_only / "data" / "mentionwatch.db"
    files = sorted(database.parent.rglob("*"))
    rows = _readers_work(read_only)
    refused = _run_as_a_user(["dismiss", str(rows[0]["id"]), "--reason", "spam"], read_only)
    assert refused.returncode == 1, refused.stderr
    assert f"Database error: Cannot write to the database {database}: " in refused.stderr
    assert "read-only for this user" in refused.stderr and "Traceback" not in refused.stderr
    assert [r["status"] for r in _readers_work(read_only)] == [r["status"] for r in rows]
    # Nothing left beside it either: no -wal or -shm of this user's for the service to meet.
    assert sorted(database.parent.rglob("*")) == files


def test_work_that_writes_is_refused_before_it_starts(read_only: Path) -> None:
    """A poll would fetch every source and then fail to store what it found (its lock folder
    cannot be made either). (The triage screen opens for browsing: see below.)"""
    database = read_only / "data" / "mentionwatch.db"
    for command in (["poll"],):
        refused = _run_as_a_user(command, read_only)
        assert refused.returncode == 1, (command, refused.stderr)
        assert refused.stderr.startswith(
            f"Database error: Cannot write to the database {database}: the file is read-only "
            "for this user.\nCommands that only read it work (report, export, mentions list "
            "and show, status)."), refused.stderr


#: The triage screen on the store, driven as a person would (Textual's run_test), in a
#: process of its own so that it can run as a user the file's mode applies to. Prints what
#: the person saw, as JSON.
BROWSE = """
import asyncio, json, sys
from textual.widgets import Static, TextArea
from mentionwatch.config import load_config
from mentionwatch.store import Store
from mentionwatch.tui.app import TriageApp
from tests.test_tui_screens import screen_text

async def main():
    config = load_config(sys.argv[1])
    store = Store.open(config.database_url())
    app = TriageApp(config, store, refresh_every=3600)
    notes, show = [], app.notify
    app.notify = lambda message, **kw: (notes.append(message), show(message, **kw))[1]
    seen = {}
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        seen["rows"] = len(app.rows)
        seen["top"] = str(app.query_one("#outbox-bar", Static).render())
        public = app.query_one("#public", TextArea)
        seen["draft"] = public.text
        # Every key that writes: approve (a, p, b), edit (e, ctrl+o), dismiss (d, s),
        # answered elsewhere (h), resolve (x), snooze (z), assign (g), undo (u).
        for key in ("a", "p", "b", "e", "ctrl+o", "d", "s", "h", "x", "z", "g", "u"):
            await pilot.press(key)
            await pilot.pause()
        seen["screens"] = len(app.screen_stack)  # no prompt opened (snooze, assign)
        public.focus()  # Tab into the draft: it cannot be typed into
        await pilot.press("y", "e", "s")
        seen["typed"] = public.text
        await pilot.press("escape", "w")  # the outbox view: its keys that write
        await pilot.pause()
        seen["outbox"] = screen_text(app)
        for key in ("a", "r", "e", "s", "n", "x"):
            await pilot.press(key)
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        seen["help"] = str(app.screen.query_one("#help-notice", Static).render())
        await pilot.press("escape", "q")
    seen["notes"] = notes
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_a_read_only_store_opens_in_the_tui_for_browsing(read_only: Path) -> None:
    """An auditor (or a second screen) reads the queue, marked READ-ONLY; each key that
    would write says so once and changes nothing, and ? says which file and why."""
    database = read_only / "data" / "mentionwatch.db"
    files = sorted(database.parent.rglob("*"))
    before = _readers_work(read_only)
    browsed = subprocess.run(
        [*_as_a_user(), sys.executable, "-c", BROWSE, str(read_only / "mentionwatch.toml")],
        cwd=read_only, env={**cli_env(read_only), "PYTHONPATH": str(Path(__file__).parents[1])},
        capture_output=True, text=True, timeout=120)
    assert browsed.returncode == 0, browsed.stderr
    seen = json.loads(browsed.stdout)
    assert seen["rows"] >= 1
    assert seen["top"].startswith("READ-ONLY: browsing only")
    assert "READ-ONLY: browsing only" in seen["outbox"]
    # Twenty keys pressed within seconds: one notice, not twenty, and no prompt opened.
    assert seen["notes"] == ["Read-only store: nothing was changed (? says why)."]
    assert seen["screens"] == 1
    assert seen["typed"] == seen["draft"]
    assert (f"Cannot write to the database {database}: the file is read-only for this user."
            in seen["help"])
    assert _readers_work(read_only) == before
    assert sorted(database.parent.rglob("*")) == files  # no -wal, -shm or lock left


def test_a_read_only_reader_sees_what_a_running_writer_committed(read_only: Path) -> None:
    """While the service runs, its commits can still be in the -wal file: a reader who may
    not write the folder reads them through the -shm file the writer keeps."""
    database = read_only / "data" / "mentionwatch.db"
    folder = database.parent
    folder.chmod(0o755)
    database.chmod(0o644)
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")  # keep the commit in the -wal
        writer.execute("UPDATE mentions SET title = 'still in the wal' WHERE external_id = '1'")
        database.chmod(0o444)
        folder.chmod(0o555)
        assert (folder / "mentionwatch.db-wal").stat().st_size > 0
        titles = {r["external_id"]: r["title"] for r in _readers_work(read_only)}
        assert titles["1"] == "still in the wal"
    finally:
        folder.chmod(0o755)
        database.chmod(0o644)
        writer.close()


def test_the_same_user_writes_the_store_when_its_mode_allows(polled: Path) -> None:
    """The control: the refusals above come from the file's mode, not from the user."""
    database = polled / "data" / "mentionwatch.db"
    assert stat.S_IMODE(database.stat().st_mode) & stat.S_IWUSR
    rows = _readers_work(polled)
    dismissed = _run_as_a_user(["dismiss", str(rows[0]["id"]), "--reason", "spam"], polled)
    assert dismissed.returncode == 0, dismissed.stderr


# ------------------------------------------------- a SQLite file: URI, as SQLAlchemy documents


def test_a_file_uri_opens_the_file_it_names_relative_to_the_config(polled: Path) -> None:
    """`sqlite:///file:PATH?...&uri=true`: the file, not a folder named "file:" beside the
    config; a relative PATH is the config folder's, as for a plain path."""
    database = polled / "data" / "mentionwatch.db"
    for url in ("sqlite:///file:data/mentionwatch.db?uri=true",
                f"sqlite:///file:{database}?cache=private&uri=true",
                f"sqlite:///file://{database}?uri=true"):
        config = _point_at(polled, url)
        elsewhere = polled / "elsewhere"
        elsewhere.mkdir(exist_ok=True)
        listed = run(["--config", str(config), "mentions", "list", "--json"], elsewhere)
        assert listed.returncode == 0, (url, listed.stderr)
        assert {r["external_id"] for r in json.loads(listed.stdout)} == {"1", "2"}, url
        # A writer writes that same file (a dismiss shows in a plain-path reader).
        dismissed = run(["--config", str(config), "dismiss", "1", "--reason", "spam"],
                        elsewhere)
        assert dismissed.returncode == 0, (url, dismissed.stderr)
        assert not list(polled.rglob("file:*")), url
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT status FROM mentions WHERE id = 1").fetchone() == (
            "dismissed",)


def test_a_file_uri_naming_no_file_is_refused_not_created(polled: Path) -> None:
    config = _point_at(polled, "sqlite:///file:data/mentionz.db?uri=true")
    typo = polled / "data" / "mentionz.db"
    for command in (["report"], ["mentions", "list"], ["tui"]):
        result = CliRunner().invoke(cli, ["--config", str(config), *command])
        assert isinstance(result.exception, StoreNotFound), (command, result.output)
        assert result.exception.path == typo
    assert not typo.exists() and not list(polled.rglob("file:*"))


@pytest.mark.parametrize("option", ["mode=ro", "immutable=1", "mode=rw"])
def test_a_file_uri_that_does_not_create_its_missing_file_says_so_for_every_command(
        polled: Path, option: str) -> None:
    """With these options SQLite opens a file only if it is there: `poll`, `run` and
    `db upgrade`, which create a plain path's file, had failed with SQLite's own "unable to
    open database file" (exit code 1). Now every command says what a missing plain path
    says, with the way out that works for this URL."""
    config = _point_at(polled, f"sqlite:///file:data/mentionz.db?{option}&uri=true")
    typo = polled / "data" / "mentionz.db"
    for command in (["poll"], ["run"], ["db", "upgrade"], ["report"], ["mentions", "list"],
                    ["tui"], ["db", "current"]):
        result = CliRunner().invoke(cli, ["--config", str(config), *command])
        assert isinstance(result.exception, StoreNotFound), (command, result.output)
        assert result.exception.path == typo and result.exception.exit_code == 2
    shown = run(["poll"], polled)
    assert shown.returncode == 2, shown.stderr
    assert shown.stderr.splitlines() == [
        f"Database error: No database at {typo}: [database] url in {config} opens it with "
        f"{option}, which does not create a file: check the path, or take {option} out of "
        "the URL and run `mentionwatch poll` (or `mentionwatch db upgrade`) to create it."]
    assert not typo.exists() and not list(polled.rglob("file:*"))
    # The options that do create it (SQLite's default, mode=rwc) still do, for poll.
    _point_at(polled, "sqlite:///file:data/mentionz.db?mode=rwc&uri=true")
    created = run(["poll"], polled)
    assert created.returncode == 0, created.stderr
    assert typo.is_file()


def test_mode_ro_in_a_file_uri_reads_and_refuses_writes_saying_why(polled: Path) -> None:
    database = polled / "data" / "mentionwatch.db"
    _point_at(polled, "sqlite:///file:data/mentionwatch.db?mode=ro&uri=true")
    files = sorted(database.parent.rglob("*"))
    rows = _readers_work(polled)
    for command in (["dismiss", str(rows[0]["id"]), "--reason", "spam"], ["poll"]):
        refused = run(command, polled)
        assert refused.returncode == 1, (command, refused.stderr)
        assert refused.stderr.startswith(
            f"Database error: Cannot write to the database {database}: [database] url opens "
            "it read-only (mode=ro).\nCommands that only read it work"), refused.stderr
        assert "take mode=ro out of [database] url" in refused.stderr
    assert [r["status"] for r in _readers_work(polled)] == [r["status"] for r in rows]
    assert sorted(database.parent.rglob("*")) == files


@pytest.mark.parametrize("read_only", ["folder"], indirect=True)
def test_a_file_uri_to_a_read_only_store_keeps_its_options_and_reads(read_only: Path) -> None:
    """The file's mode makes it read-only as for a plain path; the URI's own options
    (here cache=private) still reach SQLite."""
    _point_at(read_only, "sqlite:///file:data/mentionwatch.db?cache=private&uri=true")
    files = sorted((read_only / "data").rglob("*"))
    assert len(_readers_work(read_only)) == 2
    refused = _run_as_a_user(["dismiss", "1", "--reason", "spam"], read_only)
    assert refused.returncode == 1 and "its folder is read-only" in refused.stderr
    assert sorted((read_only / "data").rglob("*")) == files


def test_a_file_uri_without_uri_true_is_refused_with_what_to_write(polled: Path) -> None:
    _point_at(polled, "sqlite:///file:data/mentionwatch.db?mode=ro")
    refused = run(["mentions", "list"], polled)
    assert refused.returncode == 1, refused.stderr
    assert "needs uri=true in the URL's query (sqlite:///file:data/mentionwatch.db?mode=ro" \
        "&uri=true)" in refused.stderr.replace("\n", " ")
    assert not list(polled.rglob("file:*"))
