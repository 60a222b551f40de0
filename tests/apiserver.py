"""A real HTTP server on 127.0.0.1 for the JSON-API connector tests (Hacker News, Mastodon,
Bluesky): pytest-httpserver (werkzeug) with a loopback-only fixture and small helpers to
answer JSON, read the fixture files, and inspect the requests that were made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURES = Path(__file__).parent / "fixtures"


def load(service: str, name: str) -> Any:
    """A fixture file under tests/fixtures/<service>/ as parsed JSON."""
    return json.loads((FIXTURES / service / name).read_text(encoding="utf-8"))


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(json.dumps(data), status=status, headers=headers or {},
                    content_type="application/json; charset=utf-8")


def requests_to(server: HTTPServer, path: str, method: str | None = None) -> list[Request]:
    """The requests the server received for `path` (and `method`), in order."""
    return [req for req, _ in server.log
            if req.path == path and (method is None or req.method == method)]


@pytest.fixture(scope="session")
def _api_server() -> Iterator[HTTPServer]:
    # One server for the session: stopping a werkzeug server takes about half a second.
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.fixture(name="api")
def api_fixture(_api_server: HTTPServer) -> Iterator[HTTPServer]:
    """The fake API server on 127.0.0.1, with no handlers and an empty request log."""
    _api_server.clear()
    yield _api_server
    _api_server.clear()
