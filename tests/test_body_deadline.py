"""The connectors on their own HTTP stacks (X through tweepy, Reddit through prawcore,
Mastodon.py, Bluesky through atproto's httpx client) bound a whole response as the feeds do:
a body still arriving 3 x [poll] timeout after its headers ends as a timeout. Their timeouts
bound each read only, so a server sending a byte at a time held the pass (or the sender) for
as long as it kept trickling."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from mentionwatch.connector import Connector, StoredMentionRef
from mentionwatch.errors import Transient
from mentionwatch.pipeline import build_connector
from tests.apiserver import _api_server, api_fixture, load  # noqa: F401 (fixture `api`)
from tests.conftest import make_config
from tests.feedserver import FeedServer
from tests.reddit_api import COMMENT, TOKEN_PATH, recorded

TIMEOUT = 0.5  # s: every body must be in 1.5 s after its headers
DRIP = 0.05  # s between bytes: each read is quick, a 200-byte body takes 10 s
ENV = {"X_BEARER": "x-token", "MASTO_TOKEN": "m-token", "RD_ID": "id", "RD_SECRET": "secret",
       "RD_USER": "acme_bot", "RD_PASS": "hunter2", "BSKY_PW": "app-password"}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def _padded(body: bytes, size: int = 200) -> bytes:
    return body + b" " * max(0, size - len(body))


def _connector(source: dict[str, Any]) -> Connector:
    config = make_config("sqlite://", [source], poll={"timeout": f"{TIMEOUT}s"})
    return build_connector(config.sources[0], config, environ=ENV)


def _bounded(call: Callable[[], object]) -> float:
    started = time.monotonic()
    with pytest.raises(Transient):
        call()
    return time.monotonic() - started


def test_x_search_that_trickles_times_out(feeds: FeedServer) -> None:
    feeds.add("/2/tweets/search/recent", _padded(b'{"meta": {"result_count": 0}}'),
              headers={"Content-Type": "application/json"}, drip=DRIP)
    x = _connector({"name": "x", "kind": "twitter", "base_url": feeds.base_url,
                    "bearer_token_env": "X_BEARER", "mentions": False})
    try:
        elapsed = _bounded(lambda: x.fetch(None))
    finally:
        x.close()
    assert len(feeds.seen("/2/tweets/search/recent")) == 1
    assert elapsed < 3 * TIMEOUT + TIMEOUT + 1


def test_mastodon_answer_that_trickles_times_out(feeds: FeedServer) -> None:
    feeds.add("/api/v1/accounts/verify_credentials",
              _padded(json.dumps(load("mastodon", "verify_credentials.json")).encode()),
              headers={"Content-Type": "application/json"}, drip=DRIP)
    masto = _connector({"name": "masto", "kind": "mastodon", "api_base_url": feeds.base_url,
                        "access_token_env": "MASTO_TOKEN"})
    try:
        elapsed = _bounded(lambda: masto.fetch(None))
    finally:
        masto.close()
    assert elapsed < 3 * TIMEOUT + TIMEOUT + 1


def test_reddit_reply_whose_answer_trickles_times_out(feeds: FeedServer, api: HTTPServer
                                                      ) -> None:
    api.expect_request(TOKEN_PATH, method="POST").respond_with_json(
        recorded("oauth_access_token__client_credentials.json")["body"])
    feeds.add(COMMENT, _padded(b'{"json": {"errors": [], "data": {"things": []}}}'),
              headers={"Content-Type": "application/json"}, drip=DRIP)
    reddit = _connector({"name": "reddit", "kind": "reddit", "base_url": api.url_for("/"),
                         "oauth_url": feeds.base_url, "client_id_env": "RD_ID",
                         "client_secret_env": "RD_SECRET", "username_env": "RD_USER",
                         "password_env": "RD_PASS", "user_agent": "python:mw-tests:1.0"})
    ref = StoredMentionRef("t1_d1616q2", None, "someone", None, None, "comment",
                           {"name": "t1_d1616q2"})
    try:
        # Sent once (a reply is never posted twice): a timeout, recorded as unknown.
        elapsed = _bounded(lambda: reddit.reply(ref, "Thanks for the report"))
    finally:
        reddit.close()
    assert [s.method for s in feeds.seen(COMMENT)] == ["POST"]
    assert elapsed < 3 * TIMEOUT + 1 + 1  # prawcore's read timeout is at least 1 s


def test_bluesky_login_that_trickles_times_out(feeds: FeedServer) -> None:
    feeds.add("/xrpc/com.atproto.server.createSession",
              _padded(json.dumps(load("bluesky", "createSession.json")).encode()),
              headers={"Content-Type": "application/json"}, drip=DRIP)
    bsky = _connector({"name": "bsky", "kind": "bluesky", "handle": "acme.bsky.social",
                       "app_password_env": "BSKY_PW", "service_url": feeds.base_url,
                       "queries": ["acme"]})
    try:
        elapsed = _bounded(lambda: bsky.fetch(None))
    finally:
        bsky.close()
    assert [s.method for s in feeds.seen("/xrpc/com.atproto.server.createSession")] == ["POST"]
    assert elapsed < 3 * TIMEOUT + TIMEOUT + 1
