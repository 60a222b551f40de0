"""Ways to show a `Report`: rich terminal, JSON, CSV tables and a self-contained HTML page.

User-written values (author handles and names, matched terms, source names) are always inert:
`rich.text.Text` in the terminal, `html.escape` in HTML. The HTML page loads nothing from the
network (inline CSS and SVG, a Content-Security-Policy that forbids scripts and remote loads),
so it opens offline and can be mailed to management as one file.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from mentionwatch.durations import format_duration
from mentionwatch.export import TooManyRowsForExcel, excel_rows, fit_excel_cell
from mentionwatch.reports import COMPLAINT_FLAGS, Report

SPARK = "▁▂▃▄▅▆▇█"
FLAG_STYLES = {"complaint": "red", "crisis": "bold red", "question": "yellow",
               "praise": "green", "spam": "dim"}


# --------------------------------------------------------------------------- small helpers


def sparkline(values: Sequence[float | None]) -> str:
    """One block character per value, scaled between the smallest and largest; None is a
    space. Equal values draw a flat low line."""
    present = [v for v in values if v is not None]
    if not present:
        return " " * len(values)
    lo, hi = min(present), max(present)
    span = hi - lo
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        else:
            level = 0 if span == 0 else round((v - lo) / span * (len(SPARK) - 1))
            out.append(SPARK[level])
    return "".join(out)


def bar(value: float, largest: float, width: int = 20) -> str:
    """A horizontal bar of `width` cells at most; any non-zero value gets at least one."""
    if largest <= 0 or value <= 0:
        return ""
    return "█" * max(1, round(value / largest * width))


def human_seconds(seconds: float | None) -> str:
    """"1h 05m" / "12m 30s" / "45s"; "n/a" for None."""
    if seconds is None:
        return "n/a"
    s = round(seconds)
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.0f}%"


def window_label(report: Report) -> str:
    span = format_duration(report.until - report.since)
    return (f"{report.since.astimezone(UTC):%Y-%m-%d %H:%M} to "
            f"{report.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({span})")


# --------------------------------------------------------------------------- tables


def report_tables(report: Report) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Each section of the report as (columns, rows): the shape of `--format csv`."""
    r = report.response
    return {
        "mentions_per_day": (
            ["day", "source", "mentions"],
            [[row.day.isoformat(), row.source, row.count] for row in report.per_day],
        ),
        "flags": (["flag", "mentions"], [[f.flag, f.count] for f in report.flags]),
        "sentiment": (
            ["day", "scored", "mean", "negative", "neutral", "positive"],
            [[s.day.isoformat(), s.scored, None if s.mean is None else round(s.mean, 4),
              s.negative, s.neutral, s.positive] for s in report.sentiment],
        ),
        "top_authors": (
            ["handle", "platform", "display_name", "followers", "verified", "mentions",
             "engagement"],
            [[a.handle, a.platform, a.display_name, a.followers, a.verified, a.mentions,
              a.engagement] for a in report.top_authors],
        ),
        "top_terms": (["term", "mentions"], [[t.term, t.count] for t in report.top_terms]),
        "response": (
            ["metric", "value"],
            [["complaints", r.complaints], ["answered", r.answered],
             ["unanswered", r.unanswered],
             ["median_first_reply_s", r.median_first_reply_s],
             ["p90_first_reply_s", r.p90_first_reply_s],
             ["answered_within_1h", r.answered_within_1h],
             ["share_within_1h", r.share_within_1h],
             ["moved_private", r.moved_private],
             ["share_private", r.share_private]],
        ),
        "backlog": (["age", "open"], [[b.label, b.count] for b in report.backlog]),
    }


SECTIONS: tuple[str, ...] = ("mentions_per_day", "flags", "sentiment", "top_authors",
                             "top_terms", "response", "backlog")


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # User text (handles, names, terms) must not run as a spreadsheet formula.
    if isinstance(value, str) and text.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + text
    return text


def render_csv(report: Report, section: str | None = None, *, excel: bool = False) -> str:
    """One section as a plain table, or (no section) every section stacked in one long table
    with columns section,row,column,value, which any tool can pivot back.

    `excel` writes the flavour `export mentions --excel` writes: a byte-order mark first,
    and cells cut to what an Excel cell holds. Raises KeyError for an unknown section name,
    and with `excel` TooManyRowsForExcel when the table has more rows than a sheet holds.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    tables = report_tables(report)
    def cell(value: Any) -> str:
        return fit_excel_cell(_csv_value(value)) if excel else _csv_value(value)

    if section is not None:
        columns, rows = tables[section]
        table = [[cell(v) for v in row] for row in rows]
    else:
        columns = ["section", "row", "column", "value"]
        table = [[name, str(i), column, cell(value)]
                 for name, (names, rows) in tables.items() for i, row in enumerate(rows)
                 for column, value in zip(names, row, strict=True)]
    if excel:
        if len(table) > excel_rows():
            raise TooManyRowsForExcel(len(table), "rows", hint=(
                "Take one section (--section), a shorter window (--since) or fewer top "
                "authors and terms (--top); or write it without --excel."))
        out.write("\ufeff")
    writer.writerow(columns)
    writer.writerows(table)
    return out.getvalue()


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- terminal


def report_renderables(report: Report) -> list[RenderableType]:
    """The report as rich renderables; the TUI stats view can show these in a Static."""
    parts: list[RenderableType] = [
        Text.assemble(("Mentions report  ", "bold"), (window_label(report), "dim")),
    ]
    if report.sources_filter:
        parts.append(Text("Sources: " + ", ".join(report.sources_filter), style="dim"))
    totals = report.day_totals()
    parts.append(Text.assemble(
        ("Total ", "bold"), (str(report.total), "bold cyan"), "  per day ",
        (sparkline(totals), "cyan"),
    ))
    parts += [_per_day_table(report, totals), _response_table(report), _flags_table(report),
              _sentiment_table(report), _backlog_table(report), _authors_table(report),
              _terms_table(report)]
    return parts


def render_terminal(report: Report) -> Group:
    return Group(*report_renderables(report))


def _per_day_table(report: Report, totals: list[int]) -> Table:
    table = Table(title="Mentions per day (UTC)", title_justify="left")
    table.add_column("day")
    for source in report.sources:
        table.add_column(Text(source), justify="right")
    table.add_column("total", justify="right")
    table.add_column("")
    counts = {(r.day, r.source): r.count for r in report.per_day}
    largest = max(totals, default=0)
    for day, total in zip(report.days, totals, strict=True):
        table.add_row(day.isoformat(), *[str(counts[(day, s)]) for s in report.sources],
                      str(total), Text(bar(total, largest), style="cyan"))
    return table


def _response_table(report: Report) -> Table:
    r = report.response
    flags = "/".join(COMPLAINT_FLAGS)
    table = Table(title=f"Response to {flags}s", title_justify="left", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    within = r.share_within_1h
    table.add_row(f"{flags}s in window", str(r.complaints))
    table.add_row("answered", f"{r.answered} ({r.unanswered} not yet)")
    table.add_row("median time to first reply", human_seconds(r.median_first_reply_s))
    table.add_row("90th percentile", human_seconds(r.p90_first_reply_s))
    table.add_row("answered within 1 hour", Text(
        f"{percent(within)} ({r.answered_within_1h})",
        style="" if within is None else "green" if within >= 0.8 else "yellow"
        if within >= 0.5 else "red"))
    table.add_row("moved to a private channel", f"{percent(r.share_private)} "
                  f"({r.moved_private})")
    return table


def _flags_table(report: Report) -> Table:
    table = Table(title="Flags", title_justify="left")
    table.add_column("flag")
    table.add_column("mentions", justify="right")
    table.add_column("")
    largest = max((f.count for f in report.flags), default=0)
    for f in report.flags:
        table.add_row(Text(f.flag, style=FLAG_STYLES.get(f.flag, "")), str(f.count),
                      Text(bar(f.count, largest), style=FLAG_STYLES.get(f.flag, "")))
    return table


def _sentiment_table(report: Report) -> Table:
    means = [s.mean for s in report.sentiment]
    table = Table(title=Text.assemble("Sentiment trend  ", (sparkline(means), "magenta")),
                  title_justify="left")
    for col in ("day", "scored", "mean", "negative", "neutral", "positive"):
        table.add_column(col, justify="left" if col == "day" else "right")
    for s in report.sentiment:
        mean = Text("" if s.mean is None else f"{s.mean:+.2f}",
                    style="" if s.mean is None else "red" if s.mean < 0 else "green")
        table.add_row(s.day.isoformat(), str(s.scored), mean, str(s.negative), str(s.neutral),
                      str(s.positive))
    return table


def _backlog_table(report: Report) -> Table:
    oldest = human_seconds(report.backlog_oldest_s) if report.backlog_oldest_s else "none"
    table = Table(title=f"Open backlog: {report.backlog_total} (oldest {oldest})",
                  title_justify="left")
    table.add_column("age")
    table.add_column("open", justify="right")
    table.add_column("")
    largest = max((b.count for b in report.backlog), default=0)
    for i, b in enumerate(report.backlog):
        style = "green" if i == 0 else "yellow" if i == 1 else "red"
        table.add_row(b.label, str(b.count), Text(bar(b.count, largest), style=style))
    return table


def _authors_table(report: Report) -> Table:
    table = Table(title="Top authors by reach", title_justify="left")
    for col in ("author", "name", "platform", "followers", "mentions", "engagement"):
        table.add_column(col, justify="right" if col in ("followers", "mentions",
                                                         "engagement") else "left")
    for a in report.top_authors:
        table.add_row(Text(a.handle + (" ✓" if a.verified else "")),
                      Text(a.display_name or ""), Text(a.platform or ""),
                      "" if a.followers is None else f"{a.followers:,}", str(a.mentions),
                      str(a.engagement))
    return table


def _terms_table(report: Report) -> Table:
    table = Table(title="Top terms", title_justify="left")
    table.add_column("term")
    table.add_column("mentions", justify="right")
    table.add_column("")
    largest = max((t.count for t in report.top_terms), default=0)
    for t in report.top_terms:
        table.add_row(Text(t.term), str(t.count), Text(bar(t.count, largest), style="blue"))
    return table


# --------------------------------------------------------------------------- HTML

_PALETTE = ("#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04",
            "#db2777", "#4b5563", "#65a30d")
_FLAG_COLOURS = {"complaint": "#dc2626", "crisis": "#7f1d1d", "question": "#ca8a04",
                 "praise": "#16a34a", "spam": "#6b7280"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1000px;color:#111827;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}
.muted{color:#6b7280}.kpis{display:flex;flex-wrap:wrap;gap:.75rem;margin:1rem 0}
.kpi{border:1px solid #e5e7eb;border-radius:8px;padding:.6rem .9rem;min-width:9rem}
.kpi .v{font-size:1.6rem;font-weight:600}.kpi .l{color:#6b7280;font-size:.85rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .7rem;text-align:left;
border-bottom:1px solid #f3f4f6}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:1rem}.sw{display:inline-block;width:.8rem;
height:.8rem;margin-right:.3rem;vertical-align:middle}svg text{font-size:11px;fill:#374151}
"""


# Nothing may load: no scripts, no remote fonts or images; inline styles only.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg_stacked_days(report: Report) -> str:
    width, height, left, bottom, top = 900, 230, 40, 40, 20
    days = report.days
    totals = report.day_totals()
    largest = max(totals, default=0) or 1
    plot_h = height - bottom - top
    step = (width - left) / max(len(days), 1)
    bw = max(step * 0.7, 1)
    counts = {(r.day, r.source): r.count for r in report.per_day}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="chart-per-day" role="img" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f'<title>Mentions per day: {sum(totals)} in total</title>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" '
             f'stroke="#9ca3af"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{largest}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>']
    label_every = max(1, len(days) // 12)
    for i, day in enumerate(days):
        x = left + i * step + (step - bw) / 2
        y = float(top + plot_h)
        for j, source in enumerate(report.sources):
            n = counts.get((day, source), 0)
            if not n:
                continue
            h = n / largest * plot_h
            y -= h
            parts.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bw)}" '
                         f'height="{_num(h)}" fill="{_PALETTE[j % len(_PALETTE)]}">'
                         f'<title>{_e(day.isoformat())} {_e(source)}: {n}</title></rect>')
        if totals[i]:
            parts.append(f'<text x="{_num(x + bw / 2)}" y="{_num(y - 3)}" '
                         f'text-anchor="middle" class="total">{totals[i]}</text>')
        if i % label_every == 0:
            parts.append(f'<text x="{_num(x + bw / 2)}" y="{height - bottom + 15}" '
                         f'text-anchor="middle">{day:%m-%d}</text>')
    parts.append("</svg>")
    legend = "".join(
        f'<span><i class="sw" style="background:{_PALETTE[j % len(_PALETTE)]}"></i>'
        f'{_e(source)}</span>' for j, source in enumerate(report.sources))
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _svg_hbars(chart_id: str, items: Sequence[tuple[str, int, str]]) -> str:
    row_h, label_w, bar_w = 24, 130, 420
    height = row_h * max(len(items), 1) + 4
    largest = max((n for _l, n, _c in items), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="{_e(chart_id)}" role="img" '
             f'width="{label_w + bar_w + 60}" height="{height}">']
    for i, (label, n, colour) in enumerate(items):
        y = i * row_h + 2
        w = n / largest * bar_w
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{_num(w)}" height="{row_h - 8}" '
                     f'fill="{colour}"/><text x="{_num(label_w + w + 5)}" y="{y + 15}">'
                     f'{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_sentiment(report: Report) -> str:
    width, height, left, top, plot_h = 900, 160, 40, 10, 120
    points = [(i, s.mean) for i, s in enumerate(report.sentiment) if s.mean is not None]
    n = max(len(report.sentiment) - 1, 1)
    step = (width - left - 10) / n

    def y(v: float) -> float:
        return top + (1 - (v + 1) / 2) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="chart-sentiment" role="img" '
             f'width="{width}" height="{height}">',
             f'<line x1="{left}" y1="{_num(y(0))}" x2="{width}" y2="{_num(y(0))}" '
             f'stroke="#d1d5db" stroke-dasharray="4 3"/>',
             f'<text x="{left - 4}" y="{_num(y(1) + 4)}" text-anchor="end">+1</text>',
             f'<text x="{left - 4}" y="{_num(y(0) + 4)}" text-anchor="end">0</text>',
             f'<text x="{left - 4}" y="{_num(y(-1))}" text-anchor="end">-1</text>']
    if points:
        path = " ".join(f"{_num(left + i * step)},{_num(y(v))}" for i, v in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#9333ea" '
                     f'stroke-width="2"/>')
        for i, v in points:
            day = report.sentiment[i].day
            parts.append(f'<circle cx="{_num(left + i * step)}" cy="{_num(y(v))}" r="3" '
                         f'fill="#9333ea"><title>{day.isoformat()}: {v:+.2f}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]],
                numeric: Sequence[str] = ()) -> str:
    head = "".join(f'<th class="{"n" if c in numeric else ""}">{_e(c)}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="{"n" if c in numeric else ""}">{_e(v)}</td>'
            for c, v in zip(columns, row, strict=True)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report, *, title: str = "Mentions report") -> str:
    """A complete, self-contained HTML document (inline CSS and SVG, no scripts)."""
    r = report.response
    kpis = [
        ("kpi-total", str(report.total), "mentions"),
        ("kpi-complaints", str(r.complaints), "complaints"),
        ("kpi-median", human_seconds(r.median_first_reply_s), "median first reply"),
        ("kpi-p90", human_seconds(r.p90_first_reply_s), "90th percentile"),
        ("kpi-within-1h", percent(r.share_within_1h), "answered within 1 h"),
        ("kpi-private", percent(r.share_private), "moved to private channel"),
        ("kpi-backlog", str(report.backlog_total), "open backlog"),
    ]
    kpi_html = "".join(f'<div class="kpi" id="{k}"><div class="v">{_e(v)}</div>'
                       f'<div class="l">{_e(label)}</div></div>' for k, v, label in kpis)
    flags = _svg_hbars("chart-flags", [(f.flag, f.count, _FLAG_COLOURS.get(f.flag, "#2563eb"))
                                       for f in report.flags])
    backlog = _svg_hbars("chart-backlog", [(b.label, b.count, "#dc2626" if i > 1 else
                                            "#ca8a04" if i == 1 else "#16a34a")
                                           for i, b in enumerate(report.backlog)])
    terms = _svg_hbars("chart-terms", [(t.term, t.count, "#2563eb") for t in report.top_terms])
    authors = _html_table(
        ["author", "name", "platform", "followers", "verified", "mentions", "engagement"],
        [[a.handle, a.display_name or "", a.platform or "",
          "" if a.followers is None else f"{a.followers:,}", "yes" if a.verified else "",
          a.mentions, a.engagement] for a in report.top_authors],
        numeric=("followers", "mentions", "engagement"))
    sentiment_rows = [[s.day.isoformat(), s.scored, "" if s.mean is None else f"{s.mean:+.2f}",
                       s.negative, s.neutral, s.positive] for s in report.sentiment]
    source_rows = [[s, n] for s, n in report.source_totals().items()]
    filt = (f'<p class="muted">Sources: {_e(", ".join(report.sources_filter))}</p>'
            if report.sources_filter else "")
    generated = report.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">{_e(window_label(report))}. Generated {_e(generated)} by mentionwatch.</p>
{filt}
<div class="kpis">{kpi_html}</div>
<h2>Mentions per day</h2>
{_svg_stacked_days(report)}
{_html_table(["source", "mentions"], source_rows, numeric=("mentions",))}
<h2>Response to complaints</h2>
<p>{r.complaints} complaints; {r.answered} answered, {r.unanswered} not yet.
Median time to first reply <b>{_e(human_seconds(r.median_first_reply_s))}</b>,
90th percentile <b>{_e(human_seconds(r.p90_first_reply_s))}</b>.
{r.answered_within_1h} answered within an hour ({_e(percent(r.share_within_1h))});
{r.moved_private} moved to a private channel ({_e(percent(r.share_private))}).</p>
<h2>Open backlog by age</h2>
<p>{report.backlog_total} open{_e(
    f", oldest {human_seconds(report.backlog_oldest_s)}" if report.backlog_oldest_s else "")}.
</p>
{backlog}
<h2>Flags</h2>
{flags}
<h2>Sentiment trend</h2>
{_svg_sentiment(report)}
{_html_table(["day", "scored", "mean", "negative", "neutral", "positive"], sentiment_rows,
             numeric=("scored", "mean", "negative", "neutral", "positive"))}
<h2>Top authors by reach</h2>
{authors}
<h2>Top terms</h2>
{terms}
</body></html>
"""


def digest_text(report: Report) -> str:
    """A plain-text summary for the morning digest email."""
    r = report.response
    lines = [
        f"Mentions report, {window_label(report)}",
        "",
        f"Mentions: {report.total}",
        "Flags: " + ", ".join(f"{f.flag} {f.count}" for f in report.flags if f.count),
        f"Complaints: {r.complaints}, answered {r.answered}, not yet {r.unanswered}",
        f"Median first reply: {human_seconds(r.median_first_reply_s)}; "
        f"90th percentile: {human_seconds(r.p90_first_reply_s)}",
        f"Answered within 1 h: {percent(r.share_within_1h)}; "
        f"moved to private: {percent(r.share_private)}",
        f"Open backlog: {report.backlog_total} ("
        + ", ".join(f"{b.label}: {b.count}" for b in report.backlog) + ")",
        "",
        "Top authors: " + ", ".join(
            a.handle if a.followers is None else f"{a.handle} ({a.followers:,})"
            for a in report.top_authors[:5]),
        "Top terms: " + ", ".join(f"{t.term} ({t.count})" for t in report.top_terms[:5]),
    ]
    return "\n".join(lines) + "\n"

