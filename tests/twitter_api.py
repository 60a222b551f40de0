"""A stand-in for the X API v2 on 127.0.0.1, replaying the recordings in fixtures/twitter.

The recordings have default fields only; `enrich` adds authors, metrics, dates and t.co
entities in the documented API v2 shape (see fixtures/twitter/SOURCES.md). Scripted one-off
answers (429, 503, invalid JSON...) can be queued in front of the replay per route.
"""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURES = Path(__file__).parent / "fixtures" / "twitter"

BRAND_ID = "783214"  # @Twitter, the "brand account" of these tests
BOT_ID = "1072250532645998596"  # @TweepyDev (real), posts the "... tweepy" timestamps
DM_PERSON_ID = "750362064426721281"  # real participant id of the recorded DM

USERS: dict[str, dict[str, Any]] = {
    BRAND_ID: {"id": BRAND_ID, "name": "Twitter", "username": "Twitter", "verified": True,
               "public_metrics": {"followers_count": 65_000_000}},
    BOT_ID: {"id": BOT_ID, "name": "Tweepy Testing", "username": "TweepyDev",
             "verified": False, "public_metrics": {"followers_count": 120}},
    DM_PERSON_ID: {"id": DM_PERSON_ID, "name": "Feed Person", "username": "feed_person",
                   "verified": False, "public_metrics": {"followers_count": 48_200}},
    "111": {"id": "111", "name": "Retweeter", "username": "retweeter", "verified": False,
            "public_metrics": {"followers_count": 10}},
    "222": {"id": "222", "name": "Commenter <b>&amp;</b>", "username": "commenter",
            "verified": True, "public_metrics": {"followers_count": 9_999}},
}


def recording(name: str) -> dict[str, Any]:
    """The recorded exchange (request, response) from fixtures/twitter/<name>.json."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def body(name: str) -> dict[str, Any]:
    return copy.deepcopy(recording(name)["response"]["body"])


def _author_for(tweet: dict[str, Any], timeline: str, index: int) -> str:
    if tweet["text"].startswith("RT @"):
        return "111"
    if timeline == "search":
        return BOT_ID
    if timeline == "own":
        return BRAND_ID
    return DM_PERSON_ID if index == 0 else "222"


def enrich(page: dict[str, Any], timeline: str) -> dict[str, Any]:
    """Add the fields and expansions a recording lacks, in the API v2 shape."""
    page = copy.deepcopy(page)
    authors = []
    for index, tweet in enumerate(page.get("data") or []):
        author = _author_for(tweet, timeline, index)
        authors.append(author)
        tweet_id = int(tweet["id"])
        ms = (tweet_id >> 22) + 1288834974657
        from datetime import UTC, datetime

        when = datetime.fromtimestamp(ms / 1000, UTC)
        tweet["author_id"] = author
        tweet["created_at"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
        tweet["lang"] = "en"
        tweet["conversation_id"] = tweet["id"]
        tweet["public_metrics"] = {"retweet_count": index, "reply_count": 1, "like_count": 7,
                                   "quote_count": 2, "impression_count": 100}
        urls = []
        for n, match in enumerate(re.finditer(r"https://t\.co/\w+", tweet["text"])):
            urls.append({"start": match.start(), "end": match.end(), "url": match.group(0),
                         "expanded_url": f"https://example.com/expanded/{tweet['id']}/{n}",
                         "display_url": f"example.com/expanded/{tweet['id']}/{n}"})
        if urls:
            tweet["entities"] = {"urls": urls}
        if tweet["text"].startswith("RT @"):
            tweet["referenced_tweets"] = [{"type": "retweeted", "id": "1578000000000000000"}]
        if timeline == "mentions" and index == 0:
            # The first mention answers one of the brand's posts.
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": "1577730467436138524"}]
            tweet["in_reply_to_user_id"] = BRAND_ID
            tweet["conversation_id"] = "1577730467436138524"
    if authors:
        page["includes"] = {"users": [USERS[a] for a in dict.fromkeys(authors)]}
    return page


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    json: Any


class FakeX:
    """Routes: recent search, users/:id/mentions, users/by/username, POST tweets and DMs."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.base_url = server.url_for("").rstrip("/")
        self.search_pages = [enrich(body("v2_search_recent__async"), "search"),
                             enrich(body("v2_search_recent"), "search")]
        self.mentions_pages = [enrich(body("v2_users_mentions"), "mentions"),
                               enrich(body("v2_users_tweets"), "own")]
        self.scripted: dict[tuple[str, str], deque[Response]] = defaultdict(deque)
        self.seen: list[Seen] = []
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    # -------------------------------------------------------------- scripting

    def script(self, method: str, path: str, status: int, payload: Any = None, *,
               headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        """Answer the next `method path` with this instead of the replay."""
        data = raw if raw is not None else json.dumps(payload).encode()
        self.scripted[(method, path)].append(Response(
            data, status=status, headers={"content-type": "application/json", **(headers or {})}))

    def add_newer_mentions(self) -> None:
        """Newer posts arrive (the recording made a few minutes after the first)."""
        newer = enrich(body("v2_users_mentions__async"), "newer")
        newer["meta"].pop("next_token")
        self.mentions_pages.insert(0, newer)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    # -------------------------------------------------------------- handling

    def handle(self, request: Request) -> Response:
        payload = request.get_json(silent=True) if request.data else None
        self.seen.append(Seen(request.method, request.path, dict(request.args),
                              dict(request.headers), payload))
        queued = self.scripted.get((request.method, request.path))
        if queued:
            return queued.popleft()
        if request.method == "GET" and request.path == "/2/tweets/search/recent":
            return self._page(self.search_pages, "next_token", request)
        if request.method == "GET" and request.path == f"/2/users/{BRAND_ID}/mentions":
            return self._page(self.mentions_pages, "pagination_token", request)
        if request.method == "GET" and request.path == "/2/users/by/username/Twitter":
            return _json(200, body("v2_users_by_username"))
        if request.method == "POST" and request.path == "/2/tweets":
            answer = body("v2_tweets_create")
            answer["data"]["text"] = (payload or {}).get("text", "")
            return _json(201, answer)
        if request.method == "POST" and re.fullmatch(
            r"/2/dm_conversations/with/\d+/messages", request.path
        ):
            return _json(201, body("v2_dm_send_to_participant"))
        return _json(404, {"title": "Not Found Error", "detail": "no such route in FakeX",
                           "type": "https://api.twitter.com/2/problems/resource-not-found",
                           "status": 404})

    def _page(self, pages: list[dict[str, Any]], token_parameter: str,
              request: Request) -> Response:
        token, since_id = request.args.get(token_parameter), request.args.get("since_id")
        index = 0
        if token:
            tokens = [p.get("meta", {}).get("next_token") for p in pages]
            if token not in tokens:
                return _json(400, invalid_token(token_parameter, token))
            index = tokens.index(token) + 1
        page = copy.deepcopy(pages[index])
        if index == len(pages) - 1:
            page["meta"].pop("next_token", None)  # the last page of what exists
        if since_id:
            data = [t for t in page.get("data", []) if int(t["id"]) > int(since_id)]
            if len(data) < len(page.get("data", [])):
                page["meta"].pop("next_token", None)  # reached the cursor on this page
            if not data:
                return _json(200, {"meta": {"result_count": 0}})
            page["data"] = data
            page["meta"].update(result_count=len(data), newest_id=data[0]["id"],
                                oldest_id=data[-1]["id"])
        return _json(200, page)


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    """An error body in the documented API v2 problem shape."""
    return {"title": title, "detail": detail, "type": "about:blank", "status": status}


def invalid_token(parameter: str, token: str) -> dict[str, Any]:
    """X's 400 for a page token it does not take (the message as X words it for
    pagination_token, quoted in strohne/Facepager#191; the shape of its other parameter
    errors)."""
    return {"errors": [{"parameters": {parameter: [token]},
                        "message": f"The `{parameter}` query parameter value [{token}] is not "
                        "a valid token."}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request"}


def serve() -> Iterator[HTTPServer]:
    """A loopback server to share between tests (starting and stopping one costs 0.5 s)."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def fake_x(server: HTTPServer) -> Iterator[FakeX]:
    """A fresh FakeX (no scripted answers, nothing seen) on a shared server."""
    server.clear()
    yield FakeX(server)
    server.clear()
