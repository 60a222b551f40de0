"""A fake Reddit (token endpoint + OAuth API) on 127.0.0.1 replaying the recorded praw
cassette bodies in tests/fixtures/reddit/ (see SOURCES.md there for what is changed and why).

Listings are paged the way Reddit pages `sort=new`: newest first, `limit`, `after=<fullname>`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.apiserver import json_response, load

TOKEN_PATH = "/api/v1/access_token"
SEARCH = "/r/all/search/"
COMMENTS = "/r/kakapo/comments/"
NEW = "/r/kakapo/new/"
COMMENT = "/api/comment/"
COMPOSE = "/api/compose/"
SENT = "/message/sent/"


def recorded(name: str) -> dict[str, Any]:
    """The recorded response (status, headers, body or body_text) of a fixture."""
    response: dict[str, Any] = load("reddit", name)["response"]
    return response


def children(name: str) -> list[dict[str, Any]]:
    return copy.deepcopy(recorded(name)["body"]["data"]["children"])


def replay(name: str, status: int | None = None) -> Response:
    """A recorded response as it was sent (headers other than the body type kept)."""
    rec = recorded(name)
    headers = {k: v for k, v in rec["headers"].items() if k.lower() not in {"content-type",
                                                                             "date"}}
    if "body" in rec:
        return json_response(rec["body"], status=status or rec["status"], headers=headers)
    return Response(rec["body_text"], status=status or rec["status"], headers=headers,
                    content_type=rec["headers"].get("content-type", "text/html"))


def listing(items: list[dict[str, Any]], request: Request) -> Response:
    """Reddit's `sort=new` paging over `items`: newest first, `after` then `limit`."""
    ordered = sorted(items, key=lambda c: c["data"]["created_utc"], reverse=True)
    after = request.args.get("after")
    if after:
        names = [c["data"]["name"] for c in ordered]
        ordered = ordered[names.index(after) + 1:] if after in names else []
    limit = int(request.args.get("limit", "25"))
    page, rest = ordered[:limit], ordered[limit:]
    return json_response({"kind": "Listing", "data": {
        "after": page[-1]["data"]["name"] if rest and page else None, "before": None,
        "dist": len(page), "modhash": None, "children": page}})


class FakeReddit:
    """Answers the endpoints the Reddit connector uses; tests edit the item lists."""

    def __init__(self, api: HTTPServer) -> None:
        self.api = api
        self.search = children("subreddit_search__r_all.json")
        self.comments = children("subreddit_comments__kakapo.json")
        self.submissions = children("subreddit_new_submissions__stream_before.json")
        self.sent: list[dict[str, Any]] = []
        #: Access tokens handed out, in order; the first is the recorded one.
        self.tokens: list[str] = []
        #: Tokens Reddit no longer takes (see `expire_token`).
        self.expired: set[str] = set()
        #: Headers put on every API answer (not the token endpoint's), over recorded ones.
        self.headers: dict[str, str] = {}
        api.expect_request(TOKEN_PATH, method="POST").respond_with_handler(self._token)
        self.serve_listings()
        api.expect_request(COMMENT, method="POST").respond_with_handler(self._api(self._reply))
        api.expect_request(COMPOSE, method="POST").respond_with_handler(
            self._api(self._compose))
        api.expect_request(SENT, method="GET").respond_with_handler(self._api(
            lambda r: json_response({"kind": "Listing", "data": {
                "after": None, "before": None, "children": list(reversed(self.sent))}})))

    def serve_listings(self) -> None:
        self.api.expect_request(SEARCH).respond_with_handler(
            self._api(lambda r: listing(self.search, r)))
        self.api.expect_request(COMMENTS).respond_with_handler(
            self._api(lambda r: listing(self.comments, r)))
        self.api.expect_request(NEW).respond_with_handler(
            self._api(lambda r: listing(self.submissions, r)))

    def _api(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def answer(request: Request) -> Response:
            response = handler(request)
            response.headers.update(self.headers)
            return response
        return answer

    def expire_token(self) -> None:
        """Reddit stops taking the token in use (it expired early, or was revoked): calls
        with it answer 401 invalid_token until a new one is fetched."""
        self.expired.add(self.tokens[-1])

    def _token(self, request: Request) -> Response:
        rec = recorded("oauth_access_token__client_credentials.json")
        token = rec["body"]["access_token"] + (str(len(self.tokens) + 1) if self.tokens else "")
        self.tokens.append(token)
        return json_response(dict(rec["body"], access_token=token))

    def _unauthorized(self, request: Request) -> Response | None:
        """Reddit's answer to an expired token (its www-authenticate header included)."""
        if request.headers.get("Authorization", "").removeprefix("bearer ") not in self.expired:
            return None
        response = replay("error_401_invalid_token.json")
        response.headers["www-authenticate"] = 'Bearer realm="reddit", error="invalid_token"'
        return response

    def _reply(self, request: Request) -> Response:
        if (refused := self._unauthorized(request)) is not None:
            return refused
        target = request.form.get("thing_id", "")
        name = ("api_comment__reply_to_comment.json" if target.startswith("t1_")
                else "api_comment__reply_to_submission.json")
        return replay(name)

    def _compose(self, request: Request) -> Response:
        if (refused := self._unauthorized(request)) is not None:
            return refused
        message = copy.deepcopy(children("message_single.json")[0])
        message["data"].update(dest=request.form["to"], subject=request.form["subject"],
                               body=request.form["text"], author="<USERNAME>")
        self.sent.append(message)
        return replay("api_compose__message_to_user.json")
