"""A real HTTP server on 127.0.0.1 for feed tests: serves files or in-memory bodies, replays
the `Header:` lines of feedparser's test files, honours conditional GET, and can be told to
fail, delay, hang or trickle its body a byte at a time (`drip`) per path. A POST is answered
as a GET of its path. Every request is recorded."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: bool = True
    #: Seconds between the body's bytes: each read is quick, the whole response is not.
    drip: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


_HEADER_LINE = re.compile(rb"^Header:\s*([^:]+):\s*(.*)$", re.MULTILINE)


def fixture_headers(body: bytes) -> dict[str, str]:
    """The `Header: Name: value` lines feedparser's harness serves with a test file."""
    head = body[:2000]
    return {k.decode().strip(): v.decode().strip() for k, v in _HEADER_LINE.findall(head)}


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()  # answered as the GET of the same path

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(Seen(self.command, self.path,
                                                dict(self.headers.items())))
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.delay:
                    time.sleep(route.delay)
                headers = {"Content-Type": "application/xml", **route.headers}
                if route.etag and route.status == 200:
                    tag = '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
                    headers.setdefault("ETag", tag)
                    headers.setdefault("Last-Modified", "Sun, 22 Nov 2026 08:00:00 GMT")
                    if self.headers.get("If-None-Match") == headers["ETag"]:
                        self._send(304, b"", {"ETag": headers["ETag"]})
                        return
                self._send(route.status, route.body, headers, drip=route.drip)

            def _send(self, status: int, body: bytes, headers: dict[str, str],
                      drip: float = 0.0) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304 and drip:
                    try:
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(drip)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client gave up: what a drip test wants
                elif status != 304:
                    self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, path: str, body: bytes | str, **kwargs: object) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **kwargs)  # type: ignore[arg-type]
        return self.base_url + path

    def add_file(self, path: str, file: Path, **kwargs: object) -> str:
        body = file.read_bytes()
        headers = {**fixture_headers(body), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return self.add(path, body, headers=headers, **kwargs)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve() -> Iterator[FeedServer]:
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()


def rss(items: list[dict[str, str]], title: str = "Test feed") -> str:
    """A small RSS 2.0 document; item values are inserted as given (escape them yourself)."""
    parts = [f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
             f"<title>{title}</title><link>http://example.org/</link>"]
    for item in items:
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in item.items())
        parts.append(f"<item>{fields}</item>")
    parts.append("</channel></rss>")
    return "".join(parts)
