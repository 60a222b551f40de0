"""The HTML report: self-contained, escaped, and rendered for real in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mentionwatch.report_render import render_html
from mentionwatch.reports import Report, build_report
from mentionwatch.store import Store
from tests.reportdata import NOW, SINCE, insert_fixture

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS_ENV = "MENTIONWATCH_ARTIFACTS"


def _report(store: Store) -> Report:
    insert_fixture(store)
    return build_report(store, since=SINCE, now=NOW)


def test_html_is_self_contained_and_escapes_user_text(store: Store) -> None:
    page = render_html(_report(store))
    # Nothing to fetch: no src/href attributes, no CSS imports or url(), no scripts.
    assert not re.search(r"\b(src|href)\s*=", page, re.IGNORECASE)
    assert "url(" not in page and "@import" not in page
    assert "<script" not in page.lower()
    assert "default-src 'none'" in page
    # The hostile display name arrives as text.
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;Ivan&lt;/b&gt; &amp; co" in page
    # Figures are there: one bar per non-zero (day, source) cell.
    assert len(re.findall(r"<rect [^>]*><title>2024-05-\d\d (tw|rd): \d+</title>", page)) == 12
    assert re.search(r'id="kpi-median"><div class="v">40m 00s<', page)


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason=f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)")
def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'report.db'}")
    try:
        report = _report(store)
    finally:
        store.close()
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    url = page.as_uri()

    dom = _chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # The parsed DOM holds the figures where a reader sees them.
    for kpi, value in (("kpi-total", "13"), ("kpi-complaints", "7"),
                       ("kpi-median", "40m 00s"), ("kpi-p90", "2h 15m"),
                       ("kpi-within-1h", "57%"), ("kpi-private", "29%"),
                       ("kpi-backlog", "4")):
        assert re.search(rf'id="{kpi}"><div class="v">{re.escape(value)}</div>', html), kpi
    assert len(re.findall(r"<rect [^>]*><title>2024-05-\d\d (tw|rd): \d+</title>", html)) == 12
    assert "<title>Mentions per day: 13 in total</title>" in html
    # The hostile name stayed text: no script or <b> element was created from it.
    assert "<script" not in html and "<b>Ivan" not in html
    assert "&lt;b&gt;Ivan&lt;/b&gt;" in html

    artifacts = Path(os.environ.get(ARTIFACTS_ENV) or tmp_path / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "report-html.png"
    taken = _chromium([f"--screenshot={shot}", "--window-size=1100,2400",
                       "--hide-scrollbars", url], tmp_path / "profile-shot")
    assert taken.returncode == 0, taken.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # A blank page compresses to a few KB; charts and tables make it far larger.
    assert len(png) > 40_000, len(png)
    shutil.copy(page, artifacts / "report.html")
