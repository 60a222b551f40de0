"""Report figures on fixture rows with hand-worked answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console
from sqlalchemy import select

from mentionwatch import export
from mentionwatch.cli import cli
from mentionwatch.errors import ConfigError, SendError, StoreReadOnly
from mentionwatch.export import (
    EXCEL_CELL_LIMIT,
    EXPORT_COLUMNS,
    csv_cell,
    fit_excel_cell,
    iter_mention_records,
    utf16_units,
)
from mentionwatch.models import Mention, utcnow
from mentionwatch.report_render import render_csv, render_terminal, sparkline
from mentionwatch.reports import (
    MentionRow,
    backlog_buckets,
    build_report,
    percentile,
    response_performance,
)
from mentionwatch.store import Store
from tests.reportdata import (
    EXPECTED,
    FORMULA_TEXT,
    HOSTILE_NAME,
    NOW,
    SINCE,
    TRICKY_TEXT,
    at,
    insert_fixture,
)
from tests.test_cli import run

# --------------------------------------------------------------------------- pure figures


def test_percentile_known_answers() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.5) == 5.5
    assert percentile(values, 0.9) == pytest.approx(9.1)
    assert percentile(reversed(values), 0.0) == 1.0
    assert percentile(values, 1.0) == 10.0
    assert percentile([42.0], 0.9) == 42.0
    assert percentile([], 0.5) is None
    with pytest.raises(ValueError):
        percentile(values, 1.5)


def test_backlog_bucket_bounds_fall_in_the_older_bucket() -> None:
    ages = [timedelta(0), timedelta(minutes=59), timedelta(hours=1), timedelta(hours=4),
            timedelta(hours=23), timedelta(days=1), timedelta(days=3), timedelta(days=30)]
    buckets = backlog_buckets([NOW - a for a in ages], NOW)
    assert [(b.label, b.count) for b in buckets] == [
        ("< 1h", 2), ("1-4h", 1), ("4-24h", 2), ("1-3d", 1), ("> 3d", 2)]


def test_response_counts_unanswered_complaints_against_the_shares() -> None:
    rows = [
        MentionRow(id=1, source="s", created_at=NOW, flag="complaint",
                   first_reply_at=NOW + timedelta(hours=1)),  # exactly 1 h counts as within
        MentionRow(id=2, source="s", created_at=NOW, flag="complaint",
                   first_reply_at=NOW - timedelta(minutes=5)),  # clock skew: clamped to 0
        MentionRow(id=3, source="s", created_at=NOW, flag="complaint",
                   private_at=NOW + timedelta(hours=2)),
        MentionRow(id=4, source="s", created_at=NOW, flag="praise",
                   first_reply_at=NOW + timedelta(days=1)),
    ]
    r = response_performance(rows)
    assert (r.complaints, r.answered, r.unanswered) == (3, 2, 1)
    assert (r.median_first_reply_s, r.answered_within_1h) == (1800.0, 2)
    assert r.share_within_1h == pytest.approx(2 / 3)
    assert r.share_private == pytest.approx(1 / 3)


def test_sparkline_scales_and_leaves_gaps() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([None, 1.0, 1.0]) == " ▁▁"
    assert sparkline([]) == ""


# --------------------------------------------------------------------------- on the store


def test_report_figures_match_the_hand_worked_answers(store: Store) -> None:
    insert_fixture(store)
    report = build_report(store, since=SINCE, now=NOW)
    assert report.total == EXPECTED["total"]
    assert len(report.days) == 8 and report.days[0].isoformat() == "2024-05-01"
    assert report.day_totals() == EXPECTED["per_day_totals"]
    assert report.source_totals() == EXPECTED["source_totals"]
    assert {f.flag: f.count for f in report.flags} == EXPECTED["flags"]
    r = report.response
    assert (r.complaints, r.answered, r.answered_within_1h, r.moved_private) == (
        EXPECTED["complaints"], EXPECTED["answered"], EXPECTED["within_1h"],
        EXPECTED["private"])
    assert r.median_first_reply_s == EXPECTED["median_s"]
    assert r.p90_first_reply_s == EXPECTED["p90_s"]
    assert [b.count for b in report.backlog] == EXPECTED["backlog"]
    assert report.backlog_oldest_s == timedelta(days=10).total_seconds()
    assert [a.handle.lower() for a in report.top_authors] == EXPECTED["authors"]
    alice = report.top_authors[0]
    assert (alice.followers, alice.mentions, alice.engagement, alice.verified) == (
        50_000, 3, 10, True)
    assert [(t.term, t.count) for t in report.top_terms] == EXPECTED["terms"]
    by_day = {s.day.isoformat(): s for s in report.sentiment}
    assert by_day["2024-05-01"].mean is None
    assert by_day["2024-05-03"].mean == pytest.approx(-0.3)
    assert (by_day["2024-05-08"].negative, by_day["2024-05-08"].neutral,
            by_day["2024-05-08"].positive) == (0, 1, 1)
    assert by_day["2024-05-07"].scored == 2  # the unscored mention is left out


def test_source_filter_narrows_every_figure(store: Store) -> None:
    insert_fixture(store)
    report = build_report(store, since=SINCE, now=NOW, sources=["rd"], top=2)
    assert report.total == 5 and report.sources == ("rd",)
    # rd complaints answered after 30 min (audit) and 90 min (outbox).
    assert report.response.median_first_reply_s == 3600.0
    assert report.response.p90_first_reply_s == pytest.approx(5040.0)
    assert [b.count for b in report.backlog] == [0, 0, 1, 0, 0]
    assert [a.handle for a in report.top_authors] == ["judy", "dave"]


def test_window_edges_and_empty_store(store: Store) -> None:
    empty = build_report(store, since=timedelta(days=1), now=NOW)
    assert empty.total == 0 and empty.response.median_first_reply_s is None
    assert empty.response.share_within_1h is None and empty.backlog_total == 0
    insert_fixture(store)
    # m8 at 11:30 is the only one in the last hour; m9 (07:00) is not.
    last_hour = build_report(store, since=timedelta(hours=1), now=NOW)
    assert last_hour.total == 1
    with pytest.raises(ValueError):
        build_report(store, since=NOW, until=at(5, 1, 0), now=NOW)


# --------------------------------------------------------------------------- output formats


def test_terminal_report_keeps_user_text_inert(store: Store) -> None:
    insert_fixture(store)
    console = Console(width=200, record=True, color_system=None)
    console.print(render_terminal(build_report(store, since=SINCE, now=NOW)))
    out = console.export_text()
    assert "[bold red]boom[/]" in out  # printed literally, not styled
    assert "40m 00s" in out and "2h 15m" in out and "57% (4)" in out


def test_report_csv_sections_open_with_the_csv_module(store: Store) -> None:
    insert_fixture(store)
    report = build_report(store, since=SINCE, now=NOW)
    rows = list(csv.DictReader(io.StringIO(render_csv(report, "mentions_per_day"))))
    assert len(rows) == 16
    assert {r["source"] for r in rows} == {"rd", "tw"}
    assert sum(int(r["mentions"]) for r in rows) == 13
    long = list(csv.DictReader(io.StringIO(render_csv(report))))
    metrics = {r["value"] for r in long if r["section"] == "response"}
    assert {"2400.0", "8100.0"} <= metrics
    names = [r["value"] for r in long if r["section"] == "top_authors"
             and r["column"] == "display_name"]
    assert HOSTILE_NAME in names  # round-trips (starts with "<", not a formula)


def _write_config(tmp_path: Path, db_url: str, extra: str = "") -> Path:
    path = tmp_path / "mentionwatch.toml"
    path.write_text(extra + f"""
[brand]
name = "Acme"
terms = ["acme"]

[database]
url = "{db_url}"

[[sources]]
name = "tw"
kind = "rss"
url = "http://127.0.0.1:9/tw.xml"

[[sources]]
name = "rd"
kind = "rss"
url = "http://127.0.0.1:9/rd.xml"
""", encoding="utf-8")
    return path


def test_cli_report_json_and_unknown_source(store: Store, db_url: str, tmp_path: Path) -> None:
    insert_fixture(store)
    config = _write_config(tmp_path, db_url)
    since = SINCE.isoformat()
    result = CliRunner().invoke(cli, ["--config", str(config), "report", "--since", since,
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # "now" is the real clock here, so only window-independent totals are compared.
    assert data["since"] == "2024-05-01T12:00:00+00:00"
    assert data["response"]["median_first_reply_s"] == 2400.0
    assert data["response"]["share_within_1h"] == pytest.approx(4 / 7, abs=1e-6)
    assert data["total"] == 13
    bad = CliRunner().invoke(cli, ["--config", str(config), "report", "--source", "nope"])
    assert isinstance(bad.exception, ConfigError) and "rd, tw" in bad.exception.message
    # A source taken out of the config keeps its history: it can still be reported on.
    text = config.read_text()
    config.write_text(text[:text.index("[[sources]]\nname = \"rd\"")])
    alone = CliRunner().invoke(cli, ["--config", str(config), "report", "--since", since,
                                     "--source", "rd", "--format", "json"])
    assert alone.exit_code == 0, alone.output
    assert 0 < json.loads(alone.output)["total"] < 13


@pytest.mark.parametrize(("args", "expected"), [
    (["report", "--since", "99999999d"], "'99999999d' is too long; durations are at most 3650d"),
    (["export", "mentions", "--since", "99999999d"], "is too long"),
    # Nothing is stored from the future (created_at is clamped to the fetch time), so a
    # window that starts there is a typo, for the report and the export alike.
    (["report", "--since", "2999-01-01"], "'2999-01-01' is in the future"),
    (["export", "mentions", "--since", "2999-01-01"], "'2999-01-01' is in the future"),
    # A date long ago had built a report of 740,000 days (4.6 GB and still going).
    (["report", "--since", "0001-01-01"], "is more than 3650 days (10 years) back"),
    (["mentions", "list", "--since", "1900-01-01"], "is more than 3650 days"),
])
def test_since_too_long_or_in_the_future_is_a_usage_error(
        store: Store, db_url: str, tmp_path: Path, args: list[str], expected: str) -> None:
    config = _write_config(tmp_path, db_url)
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --since" in result.output and expected in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(("args", "expected"), [
    # A negative --top had sliced from the end: all authors but the last three.
    (["--top", "-3"], "Invalid value for '--top': -3 is not in the range x>=1"),
    (["--top", "0"], "Invalid value for '--top': 0 is not in the range x>=1"),
    # --to alone had been ignored: nothing was sent and nothing said so.
    (["--to", "x@y.example"], "Invalid value for --to: --to needs --email"),
    (["--email", "--to", "not an address"], "'not an address' is not an email address"),
    (["--email", "--to", "a@b.example\r\nBcc: evil@x.example"], "is not an email address"),
    # The text report is for the terminal: -o had been ignored, writing no file.
    (["-o", "report.txt"], "-o writes the json or csv output"),
    (["--html", "same.out", "--format", "json", "-o", "same.out"], "name the same file"),
])
def test_report_options_that_make_no_sense_are_usage_errors(
        store: Store, db_url: str, tmp_path: Path, args: list[str], expected: str) -> None:
    config = _write_config(tmp_path, db_url)
    result = CliRunner().invoke(cli, ["--config", str(config), "report", *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output


# --------------------------------------------------------------------------- export


def test_export_csv_round_trips_every_field(store: Store, db_url: str, tmp_path: Path) -> None:
    insert_fixture(store)
    config = _write_config(tmp_path, db_url)
    out = tmp_path / "mentions.csv"
    result = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions",
                                      "--format", "csv", "--no-formula-guard", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as fp:
        reader = csv.DictReader(fp)
        assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
        rows = list(reader)
    expected = list(iter_mention_records(store))
    assert len(rows) == len(expected) == 15
    for got, want in zip(rows, expected, strict=True):
        assert got == {c: csv_cell(c, want[c], formula_guard=False) for c in EXPORT_COLUMNS}
    m1 = next(r for r in rows if r["external_id"] == "m1")
    assert m1["text"] == TRICKY_TEXT
    assert m1["created_at"] == "2024-05-02T09:00:00+00:00"
    assert m1["first_response_at"] == "2024-05-02T09:10:00+00:00"
    assert m1["url"] == "https://tw.example/m1" and m1["matched_terms"] == "acme; #acmefail"
    assert m1["author_profile_url"] == "https://twitter.example/alice"
    assert (m1["author_followers"], m1["author_verified"]) == ("50000", "true")


def test_export_guards_formulas_and_filters(store: Store, db_url: str, tmp_path: Path) -> None:
    insert_fixture(store)
    config = _write_config(tmp_path, db_url)
    result = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions",
                                      "--since", "2024-05-03", "--source", "tw"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert {r["source"] for r in rows} == {"tw"}
    assert min(r["created_at"] for r in rows) >= "2024-05-03"
    m2 = next(r for r in rows if r["external_id"] == "m2")
    assert m2["text"] == "'" + FORMULA_TEXT
    m4 = next(r for r in rows if r["external_id"] == "m4")
    assert m4["sentiment"] == "-0.8"  # numbers are never touched by the guard


def test_every_column_a_feed_can_set_is_guarded_and_excel_gets_a_bom(
        store: Store, db_url: str, tmp_path: Path) -> None:
    insert_fixture(store)
    with store.engine.begin() as conn:  # a feed's <guid> and <language>, as stored
        conn.execute(Mention.__table__.update().values(  # type: ignore[attr-defined]
            language="=1+2", assigned_to="@SUM(1)"))
    config = _write_config(tmp_path, db_url)
    out = tmp_path / "excel.csv"
    result = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions",
                                      "--excel", "-o", str(out)])
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel then reads UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows and all(r["language"] == "'=1+2" and r["assigned_to"] == "'@SUM(1)"
                        for r in rows)
    with store.engine.begin() as conn:
        conn.execute(Mention.__table__.update().where(  # type: ignore[attr-defined]
            Mention.external_id == "m1").values(
            external_id='=HYPERLINK("http://evil.example","open me")'))
    plain = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions"])
    guids = [r["external_id"] for r in csv.DictReader(io.StringIO(plain.output))]
    assert "'=HYPERLINK(\"http://evil.example\",\"open me\")" in guids
    assert not plain.output.startswith("\ufeff")


def _excel_rows(raw: bytes) -> list[dict[str, str]]:
    assert raw.startswith(b"\xef\xbb\xbf")  # every part, as Excel needs
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_an_excel_export_past_one_sheet_is_split_into_files_excel_opens_whole(
        store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Excel opens at most 1,048,576 rows (header included) of a CSV and drops the rest
    with a warning. Here a sheet holds 7 rows, so 15 mentions are 6 + 6 + 3."""
    monkeypatch.setattr(export, "EXCEL_SHEET_ROWS", 7)
    insert_fixture(store)
    config = _write_config(tmp_path, db_url)
    out = tmp_path / "mentions.csv"
    result = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions",
                                      "--excel", "-o", str(out)])
    assert result.exit_code == 0, result.output
    parts = [out, tmp_path / "mentions-2.csv", tmp_path / "mentions-3.csv"]
    assert sorted(tmp_path.glob("mentions*.csv")) == sorted(parts)
    rows = [_excel_rows(p.read_bytes()) for p in parts]
    assert [len(r) for r in rows] == [6, 6, 3]
    whole = list(csv.DictReader(io.StringIO(CliRunner().invoke(
        cli, ["--config", str(config), "export", "mentions"]).output)))
    assert [r["id"] for part in rows for r in part] == [r["id"] for r in whole]
    assert " ".join(result.output.split()) == (
        f"Exported 15 mentions to 3 files, {parts[0]} (6), {parts[1]} (6), {parts[2]} (3): "
        "an Excel sheet holds 6 under its header.")
    # Within one sheet: one file, as before.
    monkeypatch.setattr(export, "EXCEL_SHEET_ROWS", 16)
    for p in parts:
        p.unlink()
    one = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions", "--excel",
                                   "-o", str(out)])
    assert one.exit_code == 0 and list(tmp_path.glob("mentions*.csv")) == [out]
    assert len(_excel_rows(out.read_bytes())) == 15


def test_a_smaller_export_to_the_same_file_removes_the_parts_an_earlier_one_left(
        store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """15 mentions at 4 a sheet are 4 files, at 6 a sheet 3: the earlier mentions-4.csv had
    stayed beside the new three, and read as their rest. Only files the export wrote (its
    names exactly, beginning as its parts begin) are removed, and each is named."""
    insert_fixture(store)
    config = _write_config(tmp_path, db_url)
    out = tmp_path / "mentions.csv"
    args = ["--config", str(config), "export", "mentions", "--excel", "-o", str(out)]
    monkeypatch.setattr(export, "EXCEL_SHEET_ROWS", 5)
    assert CliRunner().invoke(cli, args).exit_code == 0
    part = (tmp_path / "mentions-4.csv").read_bytes()
    # A part of an even earlier export, and files that are not the export's to remove.
    (tmp_path / "mentions-9.csv").write_bytes(part)
    kept = {"mentions-7.csv": b"my own notes\r\n", "mentions-02.csv": part,
            "mentions-1.csv": part, "mentions-5.txt": part, "mentions-x.csv": part,
            "other-5.csv": part}
    for name, data in kept.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "mentions-6.csv").mkdir()
    (tmp_path / "mentions-8.csv").symlink_to(tmp_path / "mentions-9.csv")

    monkeypatch.setattr(export, "EXCEL_SHEET_ROWS", 7)
    smaller = CliRunner().invoke(cli, args)
    assert smaller.exit_code == 0, smaller.output
    parts = [out, tmp_path / "mentions-2.csv", tmp_path / "mentions-3.csv"]
    assert [len(_excel_rows(p.read_bytes())) for p in parts] == [6, 6, 3]
    assert not (tmp_path / "mentions-4.csv").exists()
    assert not (tmp_path / "mentions-9.csv").exists()
    assert {n: (tmp_path / n).read_bytes() for n in kept} == kept
    assert (tmp_path / "mentions-6.csv").is_dir() and (tmp_path / "mentions-8.csv").is_symlink()
    assert " ".join(smaller.output.split()).endswith(
        f"Removed {tmp_path / 'mentions-4.csv'}, {tmp_path / 'mentions-9.csv'}: parts of an "
        f"earlier export to {out} split into more files than this one.")
    # One file, --excel or not, leaves no part of a split beside it.
    plain = CliRunner().invoke(cli, args[:4] + args[5:])
    assert plain.exit_code == 0, plain.output
    assert not parts[1].exists() and not parts[2].exists()
    assert " ".join(plain.output.split()) == (
        f"Exported 15 mentions to {out}. Removed {parts[1]}, {parts[2]}: parts of an earlier "
        f"export to {out} split into more files than this one.")
    again = CliRunner().invoke(cli, args[:4] + args[5:])
    assert again.output.strip() == f"Exported 15 mentions to {out}."


def test_an_excel_export_to_stdout_past_one_sheet_is_refused_before_writing(
        store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "EXCEL_SHEET_ROWS", 15)  # 14 under the header
    insert_fixture(store)
    config = _write_config(tmp_path, db_url)
    refused = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions",
                                       "--excel"])
    assert isinstance(refused.exception, export.TooManyRowsForExcel)
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.exception.message == (
        "15 mentions are more than an Excel sheet holds (14 under its header row).")
    assert "Write them with -o FILE" in str(refused.exception.hint)
    # The same choice narrowed to fit: written whole, with the mark Excel needs.
    fits = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions", "--excel",
                                    "--source", "tw"])
    assert fits.exit_code == 0, fits.output
    assert 0 < len(_excel_rows(fits.stdout_bytes)) < 15


def test_report_csv_for_excel_as_export_writes_it(
        store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    insert_fixture(store)
    config = _write_config(tmp_path, db_url)
    args = ["--config", str(config), "report", "--since", SINCE.isoformat(), "--format", "csv"]
    plain = CliRunner().invoke(cli, args)
    excel = CliRunner().invoke(cli, [*args, "--excel"])
    assert excel.exit_code == 0, excel.output
    assert _excel_rows(excel.stdout_bytes) == list(csv.DictReader(io.StringIO(plain.output)))
    per_day = ["--section", "mentions_per_day"]
    section = CliRunner().invoke(cli, [*args, "--excel", *per_day])
    assert _excel_rows(section.stdout_bytes) == list(csv.DictReader(io.StringIO(
        CliRunner().invoke(cli, [*args, *per_day]).output)))
    monkeypatch.setattr(export, "EXCEL_SHEET_ROWS", 10)
    refused = CliRunner().invoke(cli, [*args, "--excel"])
    assert isinstance(refused.exception, export.TooManyRowsForExcel), refused.output
    assert "rows are more than an Excel sheet holds (9 under its header row)" in \
        refused.exception.message and refused.stdout == ""
    wrong = CliRunner().invoke(cli, [*args[:-1], "json", "--excel"])
    assert wrong.exit_code == 2 and "--excel is for --format csv" in wrong.output


def test_export_jsonl_keeps_types(store: Store, db_url: str, tmp_path: Path) -> None:
    insert_fixture(store)
    config = _write_config(tmp_path, db_url)
    result = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions",
                                      "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert len(records) == 15 and list(records[0]) == list(EXPORT_COLUMNS)
    m1 = next(r for r in records if r["external_id"] == "m1")
    assert m1["matched_terms"] == ["acme", "#acmefail"] and m1["likes"] == 5
    assert m1["text"] == TRICKY_TEXT and m1["sentiment"] == -0.6
    assert m1["snoozed_until"] is None


# --------------------------------------------------------------------------- digest email


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _digest_config(tmp_path: Path, db_url: str, port: int) -> Path:
    return _write_config(tmp_path, db_url, extra=f"""
[alerts]
on_call = ["lead@acme.example"]
from_address = "mentionwatch@acme.example"
[alerts.smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = "2s"
[reports]
timezone = "Europe/Berlin"
""")


def test_report_email_sends_the_digest_over_smtp(store: Store, db_url: str,
                                                 tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    insert_fixture(store)
    inbox = _Inbox()
    port = _free_port()  # aiosmtpd cannot take port 0
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = _digest_config(tmp_path, db_url, port)
        result = CliRunner().invoke(cli, ["--config", str(config), "report", "--since",
                                          SINCE.isoformat(), "--email"])
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # quiet for cron when not in a terminal
    assert len(inbox.messages) == 1
    rcpts, data = inbox.messages[0]
    assert rcpts == ["lead@acme.example"]
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == "[mentionwatch] digest: 13 mentions, 7 complaints, 4 open"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "Median first reply: 40m 00s; 90th percentile: 2h 15m" in text
    page = msg.get_body(preferencelist=("html",)).get_content()
    assert 'id="kpi-within-1h"><div class="v">57%<' in page
    assert "<script" not in page
    # The server gone: a digest is not kept to retry, and the message says so. (Another
    # report: this one went today.)
    failed = CliRunner().invoke(cli, ["--config", str(config), "report", "--since",
                                      SINCE.isoformat(), "--email", "--top", "3"])
    assert failed.exit_code == 1
    assert isinstance(failed.exception, SendError)
    assert failed.exception.message.startswith("The digest was not sent: cannot reach")
    assert "retried" not in str(failed.exception)


def test_report_email_without_recipients_says_what_to_do(store: Store, db_url: str,
                                                          tmp_path: Path) -> None:
    config = _write_config(tmp_path, db_url)
    result = CliRunner().invoke(cli, ["--config", str(config), "report", "--email"])
    assert isinstance(result.exception, ConfigError)
    assert "on_call" in (result.exception.hint or "")


def _sends(store: Store) -> list[Any]:
    from mentionwatch.models import ScheduledSend

    with store.session(readonly=True) as session:
        return list(session.scalars(select(ScheduledSend).order_by(ScheduledSend.id)))


def _digest_events(store: Store) -> list[Any]:
    """The audit trail's sent digests, the newest first."""
    from mentionwatch.audit import recent

    return [e for e in recent(store) if e.event == "digest_sent"]


def _not_across_midnight(zone: str, within: float = 120.0) -> None:
    """Wait for the local day to turn when it is about to: the test's runs must share one day
    (each send's period is its local day)."""
    from zoneinfo import ZoneInfo

    local = datetime.now(ZoneInfo(zone))
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    left = (midnight - local).total_seconds()
    if left < within:
        time.sleep(left + 1)


def test_report_email_from_cron_is_recorded_and_sent_once_a_day_unless_again(
        store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run`'s digest was recorded in scheduled_sends and went once a local day; cron's
    `report --email` recorded nothing, and a second run (a crontab on two hosts, a job run
    again) sent the same digest twice. Now it is taken as run's is, audited with who sent it,
    and a second identical run the same day sends nothing and exits 3."""
    from mentionwatch.sends import AlreadySent, local_day
    from tests.smtpsink import SmtpServer

    _not_across_midnight("Europe/Berlin")
    insert_fixture(store)
    monkeypatch.setenv("MENTIONWATCH_OPERATOR", "cron-user")
    smtp = SmtpServer().start()
    try:
        config = _digest_config(tmp_path, db_url, smtp.port)
        args = ["--config", str(config), "report", "--since", SINCE.isoformat(), "--email"]
        first = CliRunner().invoke(cli, args)
        assert first.exit_code == 0, first.output
        assert len(smtp.messages) == 1
        period = (f"{local_day(utcnow(), 'Europe/Berlin')} Europe/Berlin "
                  f"--since {SINCE.isoformat()} --top 10")
        (sent,) = _sends(store)
        assert (sent.name, sent.period, sent.recipients) == (
            "report --email", period, "lead@acme.example")
        assert sent.sent_at is not None and sent.host == socket.gethostname()
        (event,) = _digest_events(store)
        assert (event.actor, event.event, event.mention_id) == ("cron-user", "digest_sent", None)
        assert event.details == {"send": "report --email", "period": period,
                                 "recipients": ["lead@acme.example"],
                                 "host": socket.gethostname()}

        second = CliRunner().invoke(cli, args)
        assert isinstance(second.exception, AlreadySent), second.output
        assert len(smtp.messages) == 1 and len(_sends(store)) == 1
        assert second.exception.message == (
            f"The digest of `mentionwatch report --since {SINCE.isoformat()} --top 10 "
            f"--email` for {period[:10]} (Europe/Berlin) went out at "
            f"{sent.sent_at:%Y-%m-%d %H:%M} UTC from {socket.gethostname()}, to 1 recipient: "
            "not sent again.")
        assert second.exception.hint == "--again sends it once more."
        # As cron sees it: one line on stderr, exit code 3 (a failed send is 1).
        shown = run(["--config", str(config), "report", "--since", SINCE.isoformat(),
                     "--email"], tmp_path)
        assert shown.returncode == 3, shown.stderr
        assert shown.stderr.startswith("Already sent: The digest of `mentionwatch report")
        assert len(smtp.messages) == 1

        # Another report (other options, other recipients) is another send; --again sends
        # the same one again, audited as such, and the day keeps its first send.
        other = CliRunner().invoke(cli, [*args, "--top", "3", "--to", "pr@acme.example"])
        assert other.exit_code == 0, other.output
        again = CliRunner().invoke(cli, [*args, "--again"])
        assert again.exit_code == 0, again.output
        assert len(smtp.messages) == 3
        assert [s.period for s in _sends(store)] == [period, period.replace(
            "--top 10", "--top 3 --to pr@acme.example")]
        assert _sends(store)[0].sent_at == sent.sent_at
        assert len(_digest_events(store)) == 3
        assert _digest_events(store)[0].details["again"] is True
        # Taken by a run that never finished (killed while sending): said so, and --again
        # sends it and records it as sent.
        cut = period.replace("--top 10", "--top 5")
        store.claim_send("report --email", cut, now=utcnow(), host="cron2", pid=4242)
        taken = CliRunner().invoke(cli, [*args, "--top", "5"])
        assert isinstance(taken.exception, AlreadySent), taken.output
        assert " is being sent (taken at " in taken.exception.message
        assert taken.exception.message.endswith(
            " by process 4242 on cron2), or that send was cut short (check the inbox): not "
            "sent again.")
        resent = CliRunner().invoke(cli, [*args, "--top", "5", "--again"])
        assert resent.exit_code == 0, resent.output
        assert len(smtp.messages) == 4
        assert _sends(store)[-1].sent_at is not None
    finally:
        smtp.stop()
    # A send that fails is given back: the next run sends it.
    failed = CliRunner().invoke(cli, [*args, "--top", "4"])
    assert isinstance(failed.exception, SendError) and len(_sends(store)) == 3
    assert len(_digest_events(store)) == 4
    back = SmtpServer(port=smtp.port).start()
    try:
        retried = CliRunner().invoke(cli, [*args, "--top", "4"])
        assert retried.exit_code == 0, retried.output
        assert len(back.messages) == 1 and len(_digest_events(store)) == 5
    finally:
        back.stop()


def test_a_day_for_report_email_is_the_local_day_of_reports_timezone() -> None:
    from mentionwatch.sends import daily_period

    before, after = datetime(2026, 12, 1, 22, 59, tzinfo=UTC), datetime(2026, 12, 1, 23,
                                                                       tzinfo=UTC)
    assert daily_period(before, "Europe/Berlin", ["--since 1d"]) == \
        "2026-12-01 Europe/Berlin --since 1d"
    assert daily_period(after, "Europe/Berlin", ["--since 1d"]) == \
        "2026-12-02 Europe/Berlin --since 1d"
    assert daily_period(after, "UTC") == "2026-12-01 UTC"
    # Many options: bounded to the column, still one period per set of options.
    many = [f"--source source-{n}" for n in range(20)]
    long = daily_period(after, "UTC", many)
    assert len(long) == 100 and long.startswith("2026-12-01 UTC --source source-0 ")
    assert daily_period(after, "UTC", many[:-1]) != long


def test_report_email_on_a_read_only_store_is_sent_and_says_it_is_not_recorded(
        tmp_path: Path) -> None:
    from tests.smtpsink import SmtpServer

    database = tmp_path / "mentionwatch.db"
    writer = Store.open(f"sqlite:///{database}")
    insert_fixture(writer)
    smtp = SmtpServer().start()
    try:
        config = _digest_config(tmp_path, f"sqlite:///file:{database}?mode=ro&uri=true",
                                smtp.port)
        args = ["--config", str(config), "report", "--since", SINCE.isoformat(), "--email"]
        for _ in range(2):
            sent = CliRunner().invoke(cli, args)
            assert sent.exit_code == 0, sent.output
            assert " ".join(sent.output.split()) == (
                "Sent the digest to lead@acme.example. Not recorded as sent, so a second "
                f"run today sends it again: cannot write to the database {database}: "
                "[database] url opens it read-only (mode=ro).")
        assert len(smtp.messages) == 2
    finally:
        smtp.stop()
    assert _sends(writer) == []
    writer.close()


def test_report_email_on_a_postgresql_store_it_may_only_read_is_sent(
        pg_url: str, tmp_path: Path) -> None:
    # A standby, or a role with default_transaction_read_only: the record's INSERT had
    # escaped as a traceback ("cannot execute INSERT in a read-only transaction"), and the
    # digest, sent before the record was kept, went to nobody.
    from tests.smtpsink import SmtpServer

    writer = Store.open(pg_url)
    insert_fixture(writer)
    smtp = SmtpServer().start()
    try:
        read_only = pg_url + "?options=-c%20default_transaction_read_only%3Don"
        config = _digest_config(tmp_path, read_only, smtp.port)
        args = ["--config", str(config), "report", "--since", SINCE.isoformat(), "--email"]
        sent = CliRunner().invoke(cli, args)
        assert sent.exit_code == 0, sent.output
        said = " ".join(sent.output.split())
        assert said.startswith("Sent the digest to lead@acme.example. Not recorded as sent, "
                               "so a second run today sends it again: cannot write to the "
                               "database postgresql+psycopg://"), said
        assert said.endswith(": the server refuses the write (cannot execute INSERT in a "
                             "read-only transaction)."), said
        assert len(smtp.messages) == 1
        # Any other write there says the same, not a driver traceback.
        reader = Store.open(read_only)
        with pytest.raises(StoreReadOnly, match=r"the server refuses the write \(cannot "
                           r"execute INSERT in a read-only transaction\)"):
            reader.write_heartbeat("run", pid=1, host="h")
        reader.close()
    finally:
        smtp.stop()
    assert _sends(writer) == []
    writer.close()


# An emoji is one character to Python and two to Excel: 20,000 of them are 40,000 units.
EMOJI_TEXT = "acme down again 😡 " + "😡" * 20_000
LONG_FORMULA = "=" + "a" * (EXCEL_CELL_LIMIT - 1)  # fits alone; the guard's ' makes it over


def test_excel_export_cuts_cells_an_excel_cell_cannot_hold(
        store: Store, db_url: str, tmp_path: Path) -> None:
    ids = insert_fixture(store)
    at_limit = "b" * EXCEL_CELL_LIMIT
    with store.engine.begin() as conn:
        for key, text in (("m1", EMOJI_TEXT), ("m2", LONG_FORMULA), ("m3", at_limit)):
            conn.execute(Mention.__table__.update().where(  # type: ignore[attr-defined]
                Mention.id == ids[key]).values(text=text))
    config = _write_config(tmp_path, db_url)
    out = tmp_path / "excel.csv"
    result = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions",
                                      "--excel", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = {r["external_id"]: r for r in csv.DictReader(
        io.StringIO(out.read_bytes().decode("utf-8-sig"), newline=""))}
    assert len(rows) == 15
    for row in rows.values():
        assert all(utf16_units(cell) <= EXCEL_CELL_LIMIT for cell in row.values())
    # Counted in characters the text would fit, and go out whole; counted as Excel counts,
    # it is cut, as close to the limit as whole emoji allow.
    assert len(EMOJI_TEXT) < EXCEL_CELL_LIMIT < utf16_units(EMOJI_TEXT) == 19 + 40_000
    emoji = rows["m1"]["text"]
    assert EXCEL_CELL_LIMIT - 2 < utf16_units(emoji) <= EXCEL_CELL_LIMIT
    assert emoji.startswith("acme down again 😡 😡")
    assert "😡… [cut to fit an Excel cell (32,767 characters); the text has 40,019" in emoji
    assert emoji.endswith("export without --excel for all of it]")
    formula = rows["m2"]["text"]
    assert formula.startswith("'=aaa") and "… [cut to fit an Excel cell" in formula
    assert utf16_units(formula) <= EXCEL_CELL_LIMIT
    assert rows["m3"]["text"] == at_limit  # exactly at the limit: whole
    assert rows["m4"]["text"] == "m4 text about acme"
    # Plain CSV and JSON Lines keep every character.
    plain = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions"])
    texts = {r["external_id"]: r["text"] for r in csv.DictReader(io.StringIO(plain.output))}
    assert (texts["m1"], texts["m2"]) == (EMOJI_TEXT, "'" + LONG_FORMULA)
    jsonl = CliRunner().invoke(cli, ["--config", str(config), "export", "mentions",
                                     "--format", "jsonl"])
    records = {r["external_id"]: r for r in map(json.loads, jsonl.output.splitlines())}
    assert (records["m1"]["text"], records["m2"]["text"]) == (EMOJI_TEXT, LONG_FORMULA)


@pytest.mark.parametrize("grapheme", [
    "😡",            # two UTF-16 units: the cut must not leave half of it
    "👩‍👩‍👧",        # a family: three emoji joined by zero-width joiners, eight units
    "e\u0301",       # e and a combining accent
    "🇫🇷",            # a flag: two regional indicators
])
def test_an_excel_cut_never_splits_a_character(grapheme: str) -> None:
    for shift in range(len(grapheme.encode("utf-16-le")) // 2 + 1):
        text = "x" * shift + grapheme * EXCEL_CELL_LIMIT
        cut = fit_excel_cell(text)
        head = cut[: cut.index("… [cut to fit")]
        assert utf16_units(cut) <= EXCEL_CELL_LIMIT
        assert text.startswith(head) and head.removeprefix("x" * shift).count(grapheme) * \
            len(grapheme) == len(head) - shift, (grapheme, shift)
