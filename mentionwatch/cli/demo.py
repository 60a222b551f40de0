"""`mentionwatch demo`: the whole pipeline on bundled sample data, no keys needed."""

from __future__ import annotations

import functools
import http.server
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from mentionwatch.cli.context import AppContext, pass_app
from mentionwatch.config import parse_config
from mentionwatch.resources import sample_dir

SAMPLE_FEEDS = {"community-forum": ("rss", "forum.xml"),
                "google-alerts-acme": ("google_alerts", "alerts.xml"),
                "tech-news": ("rss", "news.xml")}


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
        "sources": [
            {"name": name, "kind": kind, "url": f"{base_url}/{file}"}
            for name, (kind, file) in SAMPLE_FEEDS.items()
        ],
    }


@click.command()
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="Keep the demo database here (default: a throwaway temporary file).")
@pass_app
def demo(app: AppContext, db_path: str | None) -> None:
    """Run the real pipeline on bundled sample feeds and show what it found.

    The sample feeds are served from 127.0.0.1, polled by the real RSS and Google Alerts
    connectors, de-duplicated and stored in a SQLite database. No API keys, no network.
    """
    from mentionwatch.cli.core import _load_judge, _poll_table, mentions_list
    from mentionwatch.pipeline import poll
    from mentionwatch.store import Store

    with tempfile.TemporaryDirectory(prefix="mentionwatch-demo-") as tmp:
        path = Path(db_path) if db_path else Path(tmp) / "demo.db"
        with serve_directory(sample_dir()) as base_url:
            config = parse_config(demo_config_data(base_url, path.resolve()),
                                  Path("<demo>"))
            app._config = config
            app._store = Store.open(config.database_url())
            report = poll(config, app._store, force=True, judge=_load_judge(app))
        app.out.print(_poll_table(report.outcomes))
        ctx = click.get_current_context()
        ctx.invoke(mentions_list, limit=20, source=None, flag=None, status_=None, since=None,
                   search=None, as_json=False)
        if db_path:
            app.out.print(f"Demo database kept at {path}.")
        app.close()
