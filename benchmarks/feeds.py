"""Many slow feeds: one `poll` pass over N feeds against a plain sequential fetch-and-parse
loop over the same feeds, same run.

    python benchmarks/feeds.py [--feeds 200 --delay-ms 100]

A local HTTP server on 127.0.0.1 serves N small RSS feeds, each answering after the delay.
Last line: {"project_s", "sequential_s", "speedup", ...}. Target: speedup >= 10 with 200 feeds.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import httpx
from _common import emit

from mentionwatch.config import parse_config
from mentionwatch.pipeline import poll
from mentionwatch.store import Store


def feed_body(index: int, items: int = 10) -> bytes:
    entries = "".join(
        f"<item><title>Acme post {index}-{i}</title><guid>f{index}-{i}</guid>"
        f"<link>http://blog{index}.example/{i}</link>"
        f"<description>My acme router is down again ({index}/{i})</description></item>"
        for i in range(items)
    )
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Feed {index}</title>"
            f"{entries}</channel></rss>").encode()


def start_server(n: int, delay: float) -> tuple[ThreadingHTTPServer, str]:
    bodies = {f"/feed/{i}.xml": feed_body(i) for i in range(n)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(delay)
            body = bodies.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def sequential(base: str, n: int) -> tuple[float, int]:
    started = time.perf_counter()
    entries = 0
    with httpx.Client(timeout=20) as client:
        for i in range(n):
            response = client.get(f"{base}/feed/{i}.xml")
            entries += len(feedparser.parse(io.BytesIO(response.content)).entries)
    return time.perf_counter() - started, entries


def project(base: str, n: int, db: Path) -> tuple[float, int, int]:
    config = parse_config({
        "brand": {"name": "Acme", "terms": ["acme"]},
        "database": {"url": f"sqlite:///{db}"},
        "sources": [{"name": f"feed-{i}", "kind": "rss", "url": f"{base}/feed/{i}.xml"}
                    for i in range(n)],
    }, Path("<benchmark>"))
    store = Store.open(config.database_url())
    started = time.perf_counter()
    report = poll(config, store)
    elapsed = time.perf_counter() - started
    store.close()
    failed = len(report.failed)
    return elapsed, report.stored, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--delay-ms", type=int, default=100)
    args = parser.parse_args()
    server, base = start_server(args.feeds, args.delay_ms / 1000)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            project_s, stored, failed = project(base, args.feeds, Path(tmp) / "feeds.db")
        sequential_s, entries = sequential(base, args.feeds)
    finally:
        server.shutdown()
    if failed or stored != entries:
        raise SystemExit(f"project pass stored {stored} of {entries} entries, {failed} failed")
    print(f"poll pass: {project_s:.2f}s (stored {stored}); sequential loop: {sequential_s:.2f}s")
    emit({"feeds": args.feeds, "delay_ms": args.delay_ms, "project_s": round(project_s, 3),
          "sequential_s": round(sequential_s, 3),
          "speedup": round(sequential_s / project_s, 2)})


if __name__ == "__main__":
    main()
