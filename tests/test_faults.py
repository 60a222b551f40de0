"""Fault injection: a flaky paged source and a poller killed with SIGKILL at random moments.
Afterwards every mention is stored exactly once and the cursors agree with what is stored.
Real servers on 127.0.0.1, real processes, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from mentionwatch.models import Mention
from mentionwatch.pipeline import poll_source, sync_sources
from mentionwatch.store import Store
from tests.conftest import make_config
from tests.feedserver import FeedServer, rss

TOTAL = 1000
BASE_TIME = 1_795_000_000


def _hits() -> list[dict[str, Any]]:
    rng = random.Random(3)
    hits = []
    for i in range(TOTAL):
        # Several hits share a second, so page boundaries fall inside seconds too.
        created = BASE_TIME + i // 3
        hits.append({"objectID": str(900_000 + i), "created_at_i": created,
                     "created_at": "2026-11-19T00:00:00.000Z", "title": f"Acme story {i}",
                     "url": f"https://example.com/{i}", "author": f"user{rng.randrange(50)}",
                     "points": 1, "num_comments": 0, "_tags": ["story"], "story_id": 900_000 + i})
    return hits


class FlakyAlgolia(ThreadingHTTPServer):
    """Answers search_by_date like Algolia, except that 30% of requests get a 500, hang past
    the client's timeout, or have their connection cut."""

    daemon_threads = True

    def __init__(self, failure_rate: float = 0.3, hang: float = 1.0) -> None:
        self.hits = sorted(_hits(), key=lambda h: h["created_at_i"], reverse=True)
        self.rng = random.Random(11)
        self.failure_rate = failure_rate
        self.hang = hang
        self.requests = 0
        self.failures = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1"

    def answer(self, query: str) -> bytes:
        args = {k: v[0] for k, v in parse_qs(query).items()}
        hits = self.hits
        for flt in filter(None, args.get("numericFilters", "").split(",")):
            m = re.fullmatch(r"created_at_i(>=|<)(\d+)", flt)
            assert m, flt
            value = int(m.group(2))
            hits = [h for h in hits if (h["created_at_i"] >= value if m.group(1) == ">="
                                        else h["created_at_i"] < value)]
        per_page, page = int(args.get("hitsPerPage", "20")), int(args.get("page", "0"))
        body = {"hits": hits[page * per_page:(page + 1) * per_page], "nbHits": len(hits),
                "page": page, "nbPages": -(-len(hits) // per_page), "hitsPerPage": per_page}
        return json.dumps(body).encode()


class _FlakyHandler(BaseHTTPRequestHandler):
    server: FlakyAlgolia
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.requests += 1
            roll = server.rng.random()
            fail = roll < server.failure_rate
            kind = server.rng.choice(("500", "hang", "cut")) if fail else None
            server.failures += fail
        if kind == "500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "hang":
            time.sleep(server.hang)
            self.close_connection = True
        elif kind == "cut":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            body = server.answer(urlsplit(self.path).query)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture
def flaky() -> Iterator[FlakyAlgolia]:
    server = FlakyAlgolia()
    yield server
    server.shutdown()
    server.server_close()


def _stored(store: Store) -> tuple[int, int]:
    with store.session(readonly=True) as s:
        rows = s.execute(select(func.count(), func.count(func.distinct(Mention.external_id))))
        total, distinct = rows.one()
    return int(total), int(distinct)


def test_flaky_paged_source_ends_with_every_mention_exactly_once(
        flaky: FlakyAlgolia, store: Store, db_url: str) -> None:
    config = make_config(db_url, [{
        "name": "hn", "kind": "hackernews", "api_url": flaky.url, "queries": ["acme"],
        "hits_per_page": 50, "max_pages": 4, "first_lookback": "3650d"}],
        poll={"timeout": "0.4s"})
    sync_sources(config, store)
    outcomes = []
    for _ in range(120):
        outcome = poll_source(config.sources[0], config, store, force=True)
        outcomes.append(outcome.status)
        cursor = json.loads(store.source_row("hn").cursor or "{}").get("acme", {})
        if outcome.status == "ok" and not cursor.get("gaps") and _stored(store)[0] == TOTAL:
            break
    assert flaky.failures >= 5, "the server was not flaky enough to prove anything"
    assert "failed" in outcomes and "ok" in outcomes
    total, distinct = _stored(store)
    assert (total, distinct) == (TOTAL, TOTAL)
    assert cursor["created_at_i"] == BASE_TIME + (TOTAL - 1) // 3


POLL_SCRIPT = [sys.executable, "-m", "mentionwatch", "poll", "--all"]


def test_sigkill_at_random_moments_loses_and_doubles_nothing(
        tmp_path: Path, feeds: FeedServer, db_url: str) -> None:
    items = [{"title": f"Acme post {i}", "guid": f"k{i}", "link": f"http://k.example/{i}",
              "description": "acme is down again"} for i in range(TOTAL)]
    url = feeds.add("/big.xml", rss(items), delay=0.25, etag=False)
    second = feeds.add("/small.xml", rss(items[:50]).replace("k.example", "s.example")
                       .replace("<guid>k", "<guid>s"), etag=False)
    config = tmp_path / "mentionwatch.toml"
    config.write_text(
        f'[brand]\nname = "Acme"\nterms = ["acme"]\n[database]\nurl = "{db_url}"\n'
        f'[[sources]]\nname = "big"\nkind = "rss"\nurl = "{url}"\n'
        f'[[sources]]\nname = "small"\nkind = "rss"\nurl = "{second}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTIONWATCH_")}
    env.update(MENTIONWATCH_CONFIG=str(config), NO_COLOR="1")
    Store.open(db_url).close()  # schema first: a kill during the first migration is not the point
    rng = random.Random(5)
    kills = 0
    for _ in range(20):
        proc = subprocess.Popen(POLL_SCRIPT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        store = Store.open(db_url)
        try:
            for name, size in (("big", TOTAL), ("small", 50)):
                row = store.source_row(name)
                stored = store.count_mentions(name)
                if row is None:  # killed before the sources were even registered
                    assert stored == 0
                    continue
                # The cursor and the rows commit together: a cursor means all rows are there.
                assert stored in (0, size), f"{name}: {stored} rows, a pass was half-written"
                assert (row.cursor is not None) == (stored == size)
        finally:
            store.close()
    assert kills >= 10, f"only {kills} of 20 runs were killed; adjust the timing"
    finished = subprocess.run(POLL_SCRIPT, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    store = Store.open(db_url)
    try:
        assert _stored(store) == (TOTAL + 50, TOTAL + 50)
    finally:
        store.close()
