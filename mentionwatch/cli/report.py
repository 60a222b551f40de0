"""`mentionwatch report` and `mentionwatch export mentions`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import parseaddr
from itertools import islice
from pathlib import Path
from typing import IO, Any

import click
from rich.text import Text

from mentionwatch.audit import operator_name
from mentionwatch.cli.context import AppContext, parse_since, pass_app
from mentionwatch.errors import ConfigError, MentionwatchError, SendError, StoreReadOnly
from mentionwatch.export import (
    TooManyRowsForExcel,
    count_mention_records,
    excel_rows,
    in_parts,
    iter_mention_records,
    part_path,
    remove_stale_parts,
    write_csv,
    write_jsonl,
)
from mentionwatch.models import utcnow
from mentionwatch.report_render import (
    SECTIONS,
    render_csv,
    render_html,
    render_json,
    render_terminal,
)
from mentionwatch.reports import Report, build_report
from mentionwatch.sends import (
    REPORT_EMAIL,
    Delivery,
    daily_period,
    local_day,
    send_digest,
    send_once,
)


def check_sources(app: AppContext, sources: tuple[str, ...]) -> None:
    """Each name is a configured source or one the store has mentions of (a source since
    renamed or removed keeps its history)."""
    from mentionwatch.tui.queries import source_names

    configured = {s.name for s in app.config.sources}
    unknown = [n for n in sources if n not in configured]
    if not unknown:
        return
    stored = set(source_names(app.store))
    for name in unknown:
        if name not in stored:
            known = ", ".join(sorted(configured | stored)) or "none"
            raise ConfigError(f"No source named {name!r} in {app.config.path} or the store "
                              f"(sources: {known}).")


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None or path == "-":
        yield sys.stdout
        return
    try:
        with open(path, "w", encoding="utf-8", newline="") as fp:
            yield fp
    except OSError as exc:
        raise MentionwatchError(f"Cannot write {path}: {exc.strerror}.",
                                hint="Check the folder exists and is writable.") from None


EXCEL_HELP = ("CSV for Excel: start with a byte-order mark, so Excel reads it as UTF-8 "
              "(accents, emoji; other tools may then see the mark in the first column's "
              "name), and cut text longer than an Excel cell holds (32,767 characters), "
              "saying so in the cell.")


@click.command()
@click.option("--since", default="7d", show_default=True, metavar="DURATION|DATE",
              help="Start of the window: a duration back from now (24h, 7d, 4w) or an ISO date.")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Only this source (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True, help="Terminal report, JSON, or CSV.")
@click.option("--section", type=click.Choice(SECTIONS), default=None,
              help="With --format csv: one section as its own table (default: all sections "
              "in one long table with columns section,row,column,value).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many top authors and terms.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML report (opens offline) to this file.")
@click.option("--email", "email", is_flag=True,
              help="Email the report as the morning digest to the on-call addresses "
              "(uses the [alerts] SMTP settings; for cron).")
@click.option("--to", "to", multiple=True, metavar="ADDRESS",
              help="With --email: send to this address instead of on-call (repeatable).")
@click.option("--again", is_flag=True,
              help="With --email: send it even if the same report (the same --since, "
              "--source, --top and --to) was emailed already today ([reports] timezone). "
              "Without it such a second run sends nothing and exits 3.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the json/csv output to this file instead of stdout.")
@click.option("--excel", is_flag=True, help="With --format csv: " + EXCEL_HELP +
              " As `export mentions --excel` writes it.")
@pass_app
def report(app: AppContext, since: str, sources: tuple[str, ...], fmt: str,
           section: str | None, top: int, html_path: str | None, email: bool,
           to: tuple[str, ...], again: bool, output: str | None, excel: bool) -> None:
    """Volume, flags, sentiment, top authors and terms, and how fast complaints are answered.

    \b
    Examples:
      mentionwatch report                       last 7 days in the terminal
      mentionwatch report --since 24h --html report.html
      mentionwatch report --format csv --section mentions_per_day > per_day.csv
      mentionwatch report --since 1d --email    the morning digest, from cron
                                                (once a day: exit code 3 if sent already)
    """
    if section and fmt != "csv":
        raise click.BadParameter("--section needs --format csv", param_hint="--section")
    if excel and fmt != "csv":
        raise click.BadParameter("--excel is for --format csv", param_hint="--excel")
    if to and not email:
        raise click.BadParameter("--to needs --email (it says who the emailed report goes to)",
                                 param_hint="--to")
    if again and not email:
        raise click.BadParameter("--again needs --email (it sends the email once more)",
                                 param_hint="--again")
    for address in to:
        _check_address(address)
    if output and fmt == "text":
        raise click.BadParameter("-o writes the json or csv output: add --format json or "
                                 "--format csv (the text report is for the terminal)",
                                 param_hint="--output")
    if html_path is not None and not html_path.strip():
        raise click.BadParameter("--html needs a file name", param_hint="--html")
    if html_path and output and Path(html_path).resolve() == Path(output).resolve():
        raise click.BadParameter("--html and -o name the same file", param_hint="--html")
    now = utcnow()
    start = parse_since(since, now)  # a mistyped option is said before the store is looked for
    check_sources(app, sources)
    result = build_report(app.store, since=start, now=now, sources=sources, top=top)
    if html_path:
        with _output(html_path) as fp:
            fp.write(render_html(result))
    if fmt == "json":
        with _output(output) as fp:
            fp.write(render_json(result) + "\n")
    elif fmt == "csv":
        with _output(output) as fp:
            fp.write(render_csv(result, section, excel=excel))
    elif not (html_path or email) or app.out.is_terminal:
        app.out.print(render_terminal(result))
    if html_path:
        app.err.print(f"Wrote the HTML report to {html_path}.")
    if email:  # last: one sent already today (exit code 3) leaves the rest written
        _send_digest(app, result, to, now, again=again,
                     options=_email_options(since, sources, top, to))


def _email_options(since: str, sources: tuple[str, ...], top: int,
                   to: tuple[str, ...]) -> list[str]:
    """The options that make an emailed report a different one, as typed (no --to: to
    on-call, whoever is on call)."""
    return [f"--since {since}", *(f"--source {name}" for name in sorted(set(sources))),
            f"--top {top}", *(f"--to {address}" for address in sorted(set(to)))]


def _check_address(address: str) -> None:
    """One plain email address, as --to takes (no display name, no line breaks)."""
    _, parsed = parseaddr(address)
    if (parsed != address.strip() or "@" not in parsed or any(c in address for c in "\r\n")
            or " " in parsed):
        raise click.BadParameter(f"{address!r} is not an email address (name@example.com)",
                                 param_hint="--to")


def _send_digest(app: AppContext, result: Report, to: tuple[str, ...], now: datetime, *,
                 again: bool, options: list[str]) -> None:
    """Email the report, once a local day for the same `options` (raises AlreadySent for a
    second time), recorded in scheduled_sends and the audit trail. A store this user may
    only read records nothing: the email goes, and the user is told."""
    def send() -> Delivery:
        return send_digest(app.config, result, list(to), now)

    zone = app.config.reports.timezone
    # A store this user may only read keeps no record: said after the send.
    unrecorded: str | None = None
    try:
        try:
            delivered, refused = send_once(
                app.store, REPORT_EMAIL, daily_period(now, zone, options), send, now=now,
                actor=operator_name(), again=again, hint="--again sends it once more.",
                what=f"The digest of `mentionwatch report {' '.join(options)} --email` "
                f"for {local_day(now, zone)} ({zone})")
        except StoreReadOnly as exc:  # refused at the claim, before anything was sent
            unrecorded = exc.message
            delivered, refused = send()
    except SendError as exc:  # nothing keeps a digest to retry: say so
        raise SendError(f"The digest was not sent: {exc.message}",
                        hint=(exc.hint or "") + " Run the command again once it is fixed."
                        ) from None
    app.err.print(f"Sent the digest to {', '.join(delivered)}.")
    if refused:
        app.err.print(Text(f"Refused by the server: {', '.join(refused)}", style="red"))
    if unrecorded is not None:
        app.err.print(Text("Not recorded as sent, so a second run today sends it again: "
                           f"{unrecorded[0].lower()}{unrecorded[1:]}", style="yellow"))


@click.group("export")
def export_group() -> None:
    """Export stored data for spreadsheets and other tools."""


@export_group.command("mentions")
@click.option("--since", default=None, metavar="DURATION|DATE",
              help="Only mentions created since (30d, or 2024-05-01). Default: all.")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Only this source (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
@click.option("--no-formula-guard", is_flag=True,
              help="CSV: keep cells that start with = + - @ exactly as stored (by default "
              "they get a leading ' so a spreadsheet does not run them as formulas).")
@click.option("--excel", is_flag=True, help=EXCEL_HELP + " More mentions than an Excel sheet "
              "holds (1,048,575 under the header) go to -o FILE as FILE, FILE-2, ... of that "
              "many each; on stdout they are refused.")
@pass_app
def export_mentions(app: AppContext, since: str | None, sources: tuple[str, ...], fmt: str,
                    output: str | None, no_formula_guard: bool, excel: bool) -> None:
    """Every stored field of each mention, oldest first: stable column names, ISO 8601 UTC
    times, URLs. CSV opens in any spreadsheet; JSON Lines keeps lists and numbers typed."""
    if excel and fmt != "csv":
        raise click.BadParameter("--excel is for --format csv", param_hint="--excel")
    start = parse_since(since, utcnow()) if since else None
    check_sources(app, sources)
    records = iter_mention_records(app.store, since=start, sources=sources)
    if excel:
        _export_for_excel(app, records, output, formula_guard=not no_formula_guard,
                          since=start, sources=sources)
        return
    with _output(output) as fp:
        count = (write_csv(records, fp, formula_guard=not no_formula_guard)
                 if fmt == "csv" else write_jsonl(records, fp))
    if output:
        app.err.print(f"Exported {count} mentions to {Path(output)}.")
    if output not in (None, "-"):
        _remove_stale_parts(app, Path(output), 1)


def _remove_stale_parts(app: AppContext, first: Path, parts: int) -> None:
    """Remove, and name, the parts of an earlier and longer split of an Excel export to
    `first` past this export's `parts`: beside this one they would read as its rest."""
    removed = remove_stale_parts(first, parts)
    if removed:
        app.err.print(f"Removed {', '.join(map(str, removed))}: "
                      f"{'parts' if len(removed) > 1 else 'a part'} of an earlier export to "
                      f"{first} split into more files than this one.")


def _export_for_excel(app: AppContext, records: Iterator[dict[str, Any]], output: str | None,
                      *, formula_guard: bool, since: datetime | None,
                      sources: tuple[str, ...]) -> None:
    """CSV for Excel, in sheets Excel opens whole: to a file, split into FILE, FILE-2, ...
    of `excel_rows()` mentions each; to stdout, refused before anything is written when
    there are more. (Excel opens a longer file as "File not loaded completely", without
    the rest.)"""
    rows = excel_rows()
    if output in (None, "-"):
        total = count_mention_records(app.store, since=since, sources=sources)
        if total > rows:
            raise TooManyRowsForExcel(total, "mentions", hint=(
                f"Write them with -o FILE, split into FILE, FILE-2, ... of {rows:,} each; "
                "narrow them with --since or --source; or export without --excel (one "
                "CSV, whole, for other tools)."))
        with _output(None) as fp:
            write_csv(islice(records, rows), fp, formula_guard=formula_guard, excel=True)
        later = sum(1 for _ in records)  # arrived while exporting, past one sheet
        if later:
            app.err.print(f"{later:,} mentions that arrived while exporting were left out: "
                          f"one Excel sheet holds {rows:,}.")
        return
    first = Path(output)
    written: list[tuple[Path, int]] = []
    for n, part in enumerate(in_parts(records, rows), 1):
        path = part_path(first, n)
        with _output(str(path)) as fp:
            written.append((path, write_csv(part, fp, formula_guard=formula_guard,
                                            excel=True)))
    if not written:  # no mentions: the header alone
        with _output(output) as fp:
            written.append((first, write_csv(iter(()), fp, formula_guard=formula_guard,
                                             excel=True)))
    total = sum(count for _, count in written)
    if len(written) == 1:
        app.err.print(f"Exported {total} mentions to {first}.")
    else:
        files = ", ".join(f"{path} ({count:,})" for path, count in written)
        app.err.print(f"Exported {total:,} mentions to {len(written)} files, {files}: an "
                      f"Excel sheet holds {rows:,} under its header.")
    _remove_stale_parts(app, first, len(written))

