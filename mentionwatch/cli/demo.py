"""`mentionwatch demo`: the whole pipeline on bundled sample data, no keys needed."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.text import Text

from mentionwatch.cli.context import AppContext, pass_app, stdout_is_tty
from mentionwatch.config import parse_config
from mentionwatch.resources import sample_dir

if TYPE_CHECKING:
    from mentionwatch.config import Config
    from mentionwatch.pipeline import PollReport
    from mentionwatch.store import Store

SAMPLE_FEEDS = {"community-forum": ("rss", "forum.xml"),
                "google-alerts-acme": ("google_alerts", "alerts.xml"),
                "tech-news": ("rss", "news.xml")}
#: A news site's feed: its stories get a statement, not "send us a direct message".
PRESS_FEEDS = {"tech-news"}
#: The sample Mastodon instance: where each recorded answer is served (under /api).
SAMPLE_MASTODON = {"verify_credentials.json": "api/v1/accounts/verify_credentials",
                   "tag_acme.json": "api/v1/timelines/tag/acme",
                   "instance_v2.json": "api/v2/instance"}
#: The sample instance takes any token; the demo names this variable for it.
DEMO_TOKEN_ENV = "MENTIONWATCH_DEMO_MASTODON_TOKEN"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a free port) for as long as the block runs."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def demo_config_data(base_url: str, db_path: Path) -> dict[str, object]:
    return {
        "brand": {
            "name": "Acme",
            "terms": ["acme", "@acme", "@acmehelp", "#acmefail", "acme fiber"],
            "exclude": ["acme anvil"],
            "own_accounts": {"web": ["acme newsroom"]},
            "support_email": "help@acme.example",
            "support_hours": "Mon-Fri 8:00-20:00 ET",
        },
        "database": {"url": f"sqlite:///{db_path}"},
        # One source at a time, in this order: a story in two feeds is always kept from the
        # same one, so the demo shows the same queue every time.
        "poll": {"concurrency": 1},
        "sources": [
            {"name": name, "kind": kind, "url": f"{base_url}/{file}", "press": name in PRESS_FEEDS}
            for name, (kind, file) in SAMPLE_FEEDS.items()
        ] + [
            # A source that can post, so approving a reply shows the outbox at work (sent to
            # the demo's simulated sender).
            {"name": "mastodon-acme", "kind": "mastodon", "api_base_url": base_url,
             "access_token_env": DEMO_TOKEN_ENV, "notifications": False, "hashtags": ["acme"]},
        ],
    }


def demo_environ() -> dict[str, str]:
    """The environment the demo's sources read: the sample instance's token added."""
    return {**os.environ, DEMO_TOKEN_ENV: "demo"}


@click.command()
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="Keep the demo database here (default: a throwaway temporary file).")
@click.option("--no-tui", is_flag=True,
              help="Print what was found and exit, without opening the triage screen "
              "(the default when not run in a terminal).")
@pass_app
def demo(app: AppContext, db_path: str | None, no_tui: bool) -> None:
    """Run the real pipeline on bundled sample feeds, then open the triage screen on them.

    The sample feeds and Mastodon posts are served from 127.0.0.1, polled by the real
    connectors, de-duplicated, judged by the default rules and stored in a SQLite database.
    Nothing leaves the machine: a reply approved to the sample Mastodon posts goes to a
    simulated sender; the sample feeds have no posting, so a reply to one is answered at the
    source and the mention marked answered elsewhere, as for real. No API keys, no network.
    Outside a terminal (CI, pipes) it prints what it found and exits.
    """
    from mentionwatch.cli.core import _poll_table, mentions_list

    with tempfile.TemporaryDirectory(prefix="mentionwatch-demo-") as tmp:
        path = Path(db_path) if db_path else Path(tmp) / "demo.db"
        app._config, app._store, report = build_demo(path)
        if not no_tui and interactive_terminal():
            _triage_simulated(app)
        else:
            app.out.print(_poll_table(report.outcomes))
            ctx = click.get_current_context()
            ctx.invoke(mentions_list, limit=20, source=None, flag=None, status_=None,
                       since=None, search=None, as_json=False)
            app.out.print("In a terminal, `mentionwatch demo` opens the triage screen on these "
                          "(nothing leaves the machine).")
        if db_path:
            app.out.print(f"Demo database kept at {path}.")
        app.close()


def build_demo(path: Path) -> tuple[Config, Store, PollReport]:
    """The demo's database at `path`: the bundled sample feeds served from 127.0.0.1,
    polled by the real connectors and judged by the default rules (the real pipeline)."""
    from mentionwatch.pipeline import poll
    from mentionwatch.rules_engine import load_judge
    from mentionwatch.store import Store

    with tempfile.TemporaryDirectory(prefix="mentionwatch-sample-") as folder:
        fresh_samples(sample_dir(), Path(folder), datetime.now(UTC))
        with serve_directory(Path(folder)) as base_url:
            environ = demo_environ()
            config = parse_config(demo_config_data(base_url, path.resolve()), Path("<demo>"),
                                  environ=environ)
            store = Store.open(config.database_url())
            store.check_writable()  # --db naming a file we may only read
            report = poll(config, store, force=True, judge=load_judge(config), environ=environ)
    return config, store, report


_RFC822 = re.compile(r"(<pubDate>)([^<]+)(</pubDate>)")
_ISO = re.compile(r"(<(?:published|updated)>)([^<]+)(</(?:published|updated)>)")


def fresh_samples(source: Path, target: Path, now: datetime) -> timedelta:
    """Copy the sample feeds with every date moved by one offset, so that the newest post is
    a few minutes old: the demo's queue shows ages (and their amber and red) as a morning
    shift would see them. Returns the offset."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(source.glob("*.xml"))}
    dates = [parsedate_to_datetime(m.group(2)) for t in texts.values()
             for m in _RFC822.finditer(t)]
    dates += [datetime.fromisoformat(m.group(2)) for t in texts.values() for m in _ISO.finditer(t)]
    offset = now - timedelta(minutes=4) - max(dates)

    def rfc822(match: re.Match[str]) -> str:
        moved = parsedate_to_datetime(match.group(2)) + offset
        return match.group(1) + format_datetime(moved, usegmt=True) + match.group(3)

    def iso(match: re.Match[str]) -> str:
        moved = datetime.fromisoformat(match.group(2)) + offset
        return match.group(1) + moved.strftime("%Y-%m-%dT%H:%M:%SZ") + match.group(3)

    for name, text in texts.items():
        (target / name).write_text(_ISO.sub(iso, _RFC822.sub(rfc822, text)), encoding="utf-8")
    for name, where in SAMPLE_MASTODON.items():
        answer = json.loads((source / "mastodon" / name).read_text(encoding="utf-8"))
        for status in answer if isinstance(answer, list) else ():
            moved = datetime.fromisoformat(status["created_at"]) + offset
            status["created_at"] = moved.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        (target / where).parent.mkdir(parents=True, exist_ok=True)
        (target / where).write_text(json.dumps(answer), encoding="utf-8")
    return offset


def interactive_terminal() -> bool:
    """A person at a terminal: both ends are TTYs (a pipe or CI must never wait on a UI)."""
    return sys.stdin.isatty() and stdout_is_tty()


def _triage_simulated(app: AppContext) -> None:
    """The triage screen on the demo data, with the simulated sender; then what it "sent"."""
    from mentionwatch import outbox
    from mentionwatch.tui.app import TriageApp

    TriageApp(app.config, app.store, simulated=True).run()
    done = outbox.actions(app.store)
    if done:
        states = ", ".join(f"{a.action} to #{a.mention_id}: {a.state}" for a in done)
        app.out.print(Text(f"Demo outbox (simulated, nothing was posted): {states}."))
