"""The `mentionwatch` command as users and cron run it: a real process, real files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from mentionwatch.db import head_revision
from mentionwatch.models import Mention
from mentionwatch.store import Store
from tests.feedserver import FeedServer, rss
from tests.smtpsink import free_port


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, *,
        prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """`mentionwatch ARGS` in `cwd`, as a user runs it (`prefix`: what runs it, e.g. as
    another user)."""
    return subprocess.run([*prefix, sys.executable, "-m", "mentionwatch", *args], cwd=cwd,
                          env=cli_env(cwd, env), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def cli_env(cwd: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a command under test: no MENTIONWATCH_ settings of the caller's,
    no colour, 200 columns, user dirs inside `cwd`."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MENTIONWATCH_")}
    full_env.update({"NO_COLOR": "1", "XDG_CONFIG_HOME": str(cwd / "xdg-config"),
                     "XDG_DATA_HOME": str(cwd / "xdg-data"), "COLUMNS": "200"})
    full_env.update(env or {})
    return full_env


def config_text(db_url: str, sources: str) -> str:
    return f"""
[brand]
name = "Acme"
terms = ["acme"]

[database]
url = "{db_url}"
{sources}
"""


def feed_source(name: str, url: str) -> str:
    return f'\n[[sources]]\nname = "{name}"\nkind = "rss"\nurl = "{url}"\n'


@pytest.fixture
def project(tmp_path: Path, feeds: FeedServer, db_url: str) -> Path:
    good = feeds.add("/good.xml", rss([
        {"title": "Acme is down", "guid": "1", "link": "http://x.example/1",
         "description": "[bold red]Acme[/] is down \x1b[31m again"},
        {"title": "Acme rocks", "guid": "2", "link": "http://x.example/2",
         "description": "love acme"},
    ]))
    (tmp_path / "mentionwatch.toml").write_text(
        config_text(db_url, feed_source("good", good)), encoding="utf-8")
    return tmp_path


def test_poll_is_quiet_for_cron_and_stores_mentions(project: Path, db_url: str) -> None:
    result = run(["poll"], project)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    listed = run(["mentions", "list", "--json"], project)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["external_id"] for r in rows} == {"1", "2"}
    for row in rows:
        assert {"source", "external_id", "url", "author", "text", "created_at"} <= row.keys()
        assert row["source"] == "good"
    down = next(r for r in rows if r["external_id"] == "1")
    assert down["text"] == "[bold red]Acme[/] is down again"
    # The table view prints the markup literally instead of styling it.
    table = run(["mentions", "list"], project)
    assert "[bold red]Acme[/]" in table.stdout
    # Each row starts with the id that `mentions show` and `approve` take.
    [row] = [line for line in table.stdout.splitlines() if "[bold red]Acme[/]" in line]
    assert row.split()[1] == str(down["id"])
    # Filters that match nothing say so (not "no mentions stored yet"); typos are refused.
    none = run(["mentions", "list", "--search", "zzzz-nothing"], project)
    assert none.returncode == 0 and "No stored mention matches these options." in none.stdout
    typo = run(["mentions", "list", "--flag", "complaints"], project)
    assert typo.returncode == 2 and "'complaints' is not one of" in typo.stderr
    # A row that holds escapes anyway (written by something other than ingest) stays inert.
    store = Store.open(db_url)
    with store.engine.begin() as conn:
        conn.execute(update(Mention).where(Mention.id == down["id"]).values(
            text="\x1b[2J\x1b]0;pwned\x07wiped", author_handle="\x1b[41mred"))
    store.close()
    for command in (["mentions", "show", str(down["id"])], ["mentions", "list"]):
        shown = run(command, project)
        assert shown.returncode == 0 and "\x1b" not in shown.stdout and "\x07" not in shown.stdout
        assert "wiped" in shown.stdout or command[1] == "list"
    flagged = run(["mentions", "list", "--flag", "complaint", "--json"], project)
    assert {r["external_id"] for r in json.loads(flagged.stdout)} == {
        r["external_id"] for r in rows if r["flag"] == "complaint"}


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n")
    (tmp_path / "mentionwatch.toml").write_text(config_text(f"sqlite:///{junk}", ""),
                                                 encoding="utf-8")
    for command in (["status"], ["report"], ["db", "current"], ["db", "upgrade"]):
        result = run(command, tmp_path)
        assert result.returncode == 1, command
        assert "Database error: Cannot use the database" in result.stderr
        assert "file is not a database" in result.stderr and "Traceback" not in result.stderr


def test_poll_exit_code_1_when_a_source_fails(project: Path, feeds: FeedServer) -> None:
    config = project / "mentionwatch.toml"
    config.write_text(config.read_text() + feed_source("broken", feeds.base_url + "/gone.xml"))
    result = run(["poll"], project)
    assert result.returncode == 1
    assert "broken:" in result.stderr and "404 Not Found" in result.stderr
    # said once, not logged and then said again (the port can hold "404" too, so count the phrase)
    assert result.stderr.count("404 Not Found") == 1
    assert "Traceback" not in result.stderr
    status = run(["status", "--json"], project)
    by_name = {s["source"]: s for s in json.loads(status.stdout)}
    assert by_name["broken"]["consecutive_failures"] == 1
    assert "404 Not Found" in by_name["broken"]["last_error"]
    assert by_name["good"]["mentions"] == 2 and by_name["good"]["last_error"] is None
    human = run(["status"], project)
    assert "broken" in human.stdout and "404 Not Found" in human.stdout


def test_status_shows_the_date_of_a_rate_limit_that_ends_another_day(
        project: Path, feeds: FeedServer) -> None:
    limited = feeds.add("/limited.xml", "slow down", status=429,
                        headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    config = project / "mentionwatch.toml"
    config.write_text(config.read_text() + feed_source("limited", limited))
    result = run(["poll"], project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "asked to wait until 2099-10-21 07:28 UTC" in result.stderr
    # Capped at 24 hours from now: always another day, so the date is shown.
    [until] = [s["rate_limited_until"] for s in json.loads(run(["status", "--json"],
                                                               project).stdout)
               if s["source"] == "limited"]
    human = run(["status"], project)
    assert f"rate limited until {until[:10]} {until[11:19]} UTC" in human.stdout


@pytest.mark.parametrize("command", [["poll"], ["mentions", "list"]])
def test_a_since_beyond_ten_years_is_a_usage_error(project: Path, command: list[str]) -> None:
    result = run([*command, "--since", "99999999d"], project)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Invalid value for --since: '99999999d' is too long" in result.stderr


def test_bad_config_exits_2_with_one_clear_message(tmp_path: Path) -> None:
    (tmp_path / "mentionwatch.toml").write_text(
        '[brand]\nname = "Acme"\nterms = ["acme"]\nbogus = 1\n', encoding="utf-8")
    result = run(["poll"], tmp_path)
    assert result.returncode == 2
    assert "mentionwatch.toml: brand.bogus: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_config_exit_2_and_init_writes_one(tmp_path: Path) -> None:
    result = run(["status"], tmp_path)
    assert result.returncode == 2 and "mentionwatch init" in result.stderr
    assert run(["init"], tmp_path).returncode == 0
    assert (tmp_path / "mentionwatch.toml").read_text().startswith("# mentionwatch configuration")
    again = run(["init"], tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr


def test_db_commands(project: Path) -> None:
    upgraded = run(["db", "upgrade"], project)
    assert upgraded.returncode == 0 and (head_revision() or "?") in upgraded.stdout
    current = run(["db", "current"], project)
    assert current.returncode == 0 and "up to date" in current.stdout


def test_db_current_exits_1_when_the_schema_is_behind(tmp_path: Path) -> None:
    from mentionwatch import db

    path = tmp_path / "old.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine, "0002_tui_indexes")
    engine.dispose()
    (tmp_path / "mentionwatch.toml").write_text(config_text(f"sqlite:///{path}", ""),
                                                 encoding="utf-8")
    behind = run(["db", "current"], tmp_path)
    assert behind.returncode == 1 and "behind: latest is" in behind.stdout
    assert "0002_tui_indexes" in behind.stdout


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://nobody:hunter2@127.0.0.1:9/none", "Cannot use the database"),
    # libpq also takes the password as a parameter; it had been printed as given.
    ("postgresql://nobody@127.0.0.1:9/none?password=hunter2", "Cannot use the database"),
    # A port that is not a number had given make_url's ValueError traceback.
    ("postgresql://nobody:hunter2@127.0.0.1:5432:1/none",
     "Database URL 'postgresql://nobody:***@127.0.0.1:5432:1/none' is not a valid"),
])
def test_unreachable_database_is_a_clear_error(tmp_path: Path, url: str, message: str) -> None:
    (tmp_path / "mentionwatch.toml").write_text(config_text(url, ""), encoding="utf-8")
    for command in (["db", "current"], ["status"]):
        result = run(command, tmp_path)
        assert result.returncode == 1
        assert message in result.stderr
        assert "hunter2" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [[], ["poll"], ["status"], ["init"], ["mentions", "list"],
                                     ["db", "upgrade"], ["db", "current"], ["demo"]])
def test_every_command_explains_itself(command: list[str], tmp_path: Path) -> None:
    result = run([*command, "--help"], tmp_path)
    assert result.returncode == 0
    assert "Usage:" in result.stdout and len(result.stdout.splitlines()) > 4


def test_demo_runs_on_bundled_sample_without_keys(tmp_path: Path) -> None:
    result = run(["demo", "--db", str(tmp_path / "demo.db")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "community-forum" in result.stdout and "ok" in result.stdout
    assert "Acme" in result.stdout and "anvil" not in result.stdout.lower()
    # The outage story is in two feeds; it is kept from Google Alerts every time, and
    # drafted as press coverage (a statement), not asked to send a direct message.
    import sqlite3

    with sqlite3.connect(tmp_path / "demo.db") as db:
        rows = db.execute(
            "SELECT s.name, d.rule, d.public_text FROM mentions m JOIN sources s ON "
            "s.id = m.source_id JOIN drafts d ON d.mention_id = m.id "
            "WHERE m.title LIKE 'Outage hits%'").fetchall()
    assert [(name, rule) for name, rule, _ in rows] == [("google-alerts-acme", "press-coverage")]
    assert "direct message" not in rows[0][2]


def test_demo_samples_are_moved_to_now_keeping_their_spacing(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    import feedparser

    from mentionwatch.cli.demo import fresh_samples
    from mentionwatch.resources import sample_dir

    now = datetime(2031, 5, 4, 9, 30, tzinfo=UTC)
    offset = fresh_samples(sample_dir(), tmp_path, now)

    def stamps(folder: Path) -> list[datetime]:
        out = []
        for path in sorted(folder.glob("*.xml")):
            for entry in feedparser.parse(path.read_bytes()).entries:
                parsed = entry.get("published_parsed") or entry.get("updated_parsed")
                out.append(datetime(*parsed[:6], tzinfo=UTC))
        return out

    before, after = stamps(sample_dir()), stamps(tmp_path)
    assert len(after) == len(before) > 10
    # The newest date of all (a feed's own <updated>) is 4 minutes old; posts a little older.
    assert now - timedelta(minutes=15) <= max(after) <= now - timedelta(minutes=4)
    assert [a - b for a, b in zip(after, before, strict=True)] == [offset] * len(before)


def test_mentions_show_explains_one_mention(project: Path) -> None:
    assert run(["poll"], project).returncode == 0
    rows = json.loads(run(["mentions", "list", "--json"], project).stdout)
    down = next(r for r in rows if r["external_id"] == "1")
    shown = run(["mentions", "show", str(down["id"])], project)
    assert shown.returncode == 0, shown.stderr
    assert "[bold red]Acme[/] is down again" in shown.stdout  # literal, not styled
    assert "complaint" in shown.stdout and "public reply" in shown.stdout
    # How the priority was reached, with this mention's numbers, and the complaint score.
    said = " ".join(shown.stdout.split())
    assert "priority = (0.45×severity " in said and f"= {down['priority']:.3f}" in said
    assert re.search(r"complaint score 0\.\d\d", said)
    assert "terms: down" in said and "['" not in said  # reasons read as words, not a list
    data = json.loads(run(["mentions", "show", str(down["id"]), "--json"], project).stdout)
    assert data["flag"] == "complaint" and data["matches"] and data["draft"]["public"]
    parts, weights = data["explanation"]["components"], data["explanation"]["weights"]
    assert parts["severity"] > 0 and set(weights) <= set(parts)
    missing = run(["mentions", "show", "99999"], project)
    assert missing.returncode == 1 and "No mention with id 99999" in missing.stderr


# ------------------------------------------- output that is not a terminal (cron, journald)

LONG_NAME = "regional-support-forum-for-the-north-eastern-fibre-customers-feed"


def test_output_to_a_pipe_is_not_wrapped_padded_or_cut_to_80_columns(
        tmp_path: Path, feeds: FeedServer) -> None:
    """Cron mail and journald get each message and log record on one line, as it is, and
    tables laid out wide enough for every column (no $COLUMNS: 200), not 80."""
    smtp_port = free_port()  # nothing listens: the alert email fails and is logged
    url = feeds.add("/forum.xml", rss([{
        "title": "Acme is down", "guid": "1", "link": "http://x.example/1",
        "description": "acme is down again, I am furious, worst service, refund me"}]))
    config = config_text(f"sqlite:///{tmp_path / 'mw.db'}", feed_source(LONG_NAME, url)
                         + feed_source(LONG_NAME + "-dead", "http://127.0.0.1:9/f.xml"))
    (tmp_path / "mentionwatch.toml").write_text(config + f"""
[alerts]
on_call = ["oncall@acme.example"]
priority_threshold = 0.0

[alerts.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
timeout = "2s"
""", encoding="utf-8")
    no_columns = {"COLUMNS": ""}

    polled = run(["poll"], tmp_path, env=no_columns)

    assert polled.returncode == 1, polled.stderr
    lines = polled.stderr.splitlines()
    assert f"{LONG_NAME}-dead: 127.0.0.1:9: connection failed (ConnectError: [Errno 111] " \
           "Connection refused)." in lines
    (warning,) = [line for line in lines if "alert email failed" in line]
    assert warning.startswith("WARNING alert email failed, will retry: cannot reach the SMTP "
                              f"server 127.0.0.1:{smtp_port} (")
    assert warning.endswith(").")
    assert all(line == line.rstrip() for line in lines), lines
    assert "\x1b[" not in polled.stderr

    status = run(["status"], tmp_path, env=no_columns)
    header = next(line for line in status.stdout.splitlines() if "source" in line)
    assert "mentions" in header and "state / last error" in header
    assert f" {LONG_NAME}-dead " in status.stdout
    assert max(map(len, status.stdout.splitlines())) <= 200
    # $COLUMNS, when set, is the width.
    narrow = run(["status"], tmp_path, env={"COLUMNS": "120"})
    assert max(map(len, narrow.stdout.splitlines())) == 120


def test_log_records_and_tracebacks_to_a_pipe_are_plain_lines(
        capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from mentionwatch.cli.context import AppContext

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    app = AppContext(verbosity=1)  # stderr is captured here: not a terminal
    app.setup_logging()
    long = ("a long reason that goes on " * 6).strip()
    try:
        try:
            raise ValueError(long)
        except ValueError:
            logging.getLogger("mentionwatch.test").exception("step failed: %s", long)
        logging.getLogger("mentionwatch.test").info("done")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"ERROR step failed: {long}"
    assert "Traceback (most recent call last):" in lines
    assert f"ValueError: {long}" in lines
    assert lines[-1] == "INFO done"
    assert all(line == line.rstrip() for line in lines)


def _store_many_mentions(path: Path, count: int) -> None:
    """A store with `count` mentions, written straight into the tables: output enough to
    fill a pipe many times over."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from mentionwatch.models import Source

    now = datetime.now(UTC)
    store = Store.open(f"sqlite:///{path}")
    with store.engine.begin() as conn:
        source_id = conn.execute(insert(Source).values(
            name="feed", kind="rss", created_at=now).returning(Source.id)).scalar_one()
        conn.execute(insert(Mention), [
            {"source_id": source_id, "external_id": str(i), "url": f"http://x.example/{i}",
             "text": f"acme is down again, post {i} of {count}", "author_handle": "sam",
             "created_at": now - timedelta(minutes=i), "fetched_at": now}
            for i in range(count)])
    store.close()


@pytest.fixture
def many(tmp_path: Path) -> Path:
    _store_many_mentions(tmp_path / "mw.db", 3000)
    (tmp_path / "mentionwatch.toml").write_text(config_text(f"sqlite:///{tmp_path / 'mw.db'}",
                                                            ""), encoding="utf-8")
    return tmp_path


def _popen(args: list[str], cwd: Path, **streams: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "mentionwatch", *args], cwd=cwd,
                            env=cli_env(cwd), stdin=subprocess.DEVNULL, **streams)


@pytest.mark.skipif(shutil.which("head") is None, reason="needs head(1)")
def test_export_piped_into_head_ends_quietly(many: Path) -> None:
    """`mentionwatch export mentions | head -1`: head leaves after one line, the export stops
    there with exit code 0 and nothing on stderr (it had exited 1)."""
    writer = _popen(["export", "mentions"], many, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-1"], stdin=writer.stdout, stdout=subprocess.PIPE)
    assert writer.stdout is not None
    writer.stdout.close()  # head holds the only reading end
    first, _ = head.communicate(timeout=120)
    _, err = writer.communicate(timeout=120)
    assert first.decode().startswith("id,source,source_kind,")
    assert (writer.returncode, err.decode()) == (0, "")


@pytest.mark.parametrize("command", [
    ["mentions", "list", "--limit", "3000"],            # a rich table
    ["mentions", "list", "--json", "--limit", "3000"],  # click.echo
    ["report"], ["report", "--format", "json"],         # short: still buffered at the end
    ["status", "--json"], ["--help"],                   # --help prints before any command
])
def test_a_reader_gone_before_the_first_line_ends_it_quietly(many: Path,
                                                             command: list[str]) -> None:
    """Every way a command prints meets the closed pipe as quietly as the export does. The
    reader is gone before the first write, so each write meets it (behind head, one large
    write can be taken whole before head leaves, and would prove nothing)."""
    writer = _popen(command, many, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout is not None
    writer.stdout.close()
    _, err = writer.communicate(timeout=120)
    assert (writer.returncode, err.decode()) == (0, "")


def test_an_error_told_into_a_closed_pipe_keeps_its_exit_code(tmp_path: Path) -> None:
    """`2>&1 | head`: the message is lost with the pipe, the exit code (2, the config) is not."""
    writer = _popen(["--config", "missing.toml", "report"], tmp_path,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert writer.stdout is not None
    writer.stdout.close()
    writer.wait(timeout=120)
    assert writer.returncode == 2
