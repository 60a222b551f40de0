"""The SQLite file as the commands find it: not there (a typo in the path). Real processes,
real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mentionwatch.cli import cli
from mentionwatch.errors import StoreNotFound
from tests.feedserver import FeedServer, rss
from tests.test_cli import config_text, feed_source, run

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
