"""Hacker News connector against a fake Algolia HN search API on 127.0.0.1.

The fake filters, sorts and pages the fixture hits the way the documented API does
(`query` words, `numericFilters=created_at_i>=N`, newest first, 0-based `page`/`nbPages`)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from connectors.hackernews import HackerNewsConnector, HackerNewsSettings
from mentionwatch.cli import cli
from mentionwatch.config import SourceConfig
from mentionwatch.connector import ConnectorContext, StoredMentionRef
from mentionwatch.errors import BadResponse, RateLimited, SendError, Transient
from mentionwatch.models import Mention
from mentionwatch.store import Store
from tests.apiserver import _api_server, api_fixture, json_response, load, requests_to  # noqa: F401 (fixture `api`)
from tests.conftest import BRAND, make_config

SEARCH = "/api/v1/search_by_date"


class FakeAlgolia:
    """Answers search_by_date from a list of hits, as the documented API does."""

    def __init__(self, hits: list[dict[str, Any]]) -> None:
        self.hits = hits

    def __call__(self, request: Request) -> Response:
        args = request.args
        words = args.get("query", "").lower().split()
        hits = [h for h in self.hits if all(w in _searchable(h) for w in words)]
        for flt in filter(None, args.get("numericFilters", "").split(",")):
            m = re.fullmatch(r"created_at_i(>=|>|<=|<)(\d+)", flt)
            assert m, f"unexpected numeric filter {flt!r}"
            op, value = m.group(1), int(m.group(2))
            hits = [h for h in hits if _compare(h["created_at_i"], op, value)]
        hits.sort(key=lambda h: h["created_at_i"], reverse=True)
        per_page = int(args.get("hitsPerPage", "20"))
        page = int(args.get("page", "0"))
        pages = -(-len(hits) // per_page)
        return json_response({
            "hits": hits[page * per_page:(page + 1) * per_page],
            "nbHits": len(hits), "page": page, "nbPages": pages, "hitsPerPage": per_page,
            "exhaustiveNbHits": True, "exhaustiveTypo": True,
            "exhaustive": {"nbHits": True, "typo": True},
            "query": args.get("query", ""), "params": request.query_string.decode(),
            "processingTimeMS": 1,
        })


def _searchable(hit: dict[str, Any]) -> str:
    fields = ("title", "story_text", "comment_text", "author", "url", "story_title")
    return " ".join(str(hit.get(f) or "") for f in fields).lower()


def _compare(a: int, op: str, b: int) -> bool:
    return {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b}[op]


def _connector(api: HTTPServer, **settings: Any) -> HackerNewsConnector:
    config = make_config("sqlite://", [])
    data = {"queries": ["acme"], "first_lookback": "3650d",
            "api_url": api.url_for("/api/v1"), **settings}
    ctx = ConnectorContext(source=SourceConfig(name="hn", kind="hackernews"), brand=config.brand,
                           poll=config.poll, environ={})
    return HackerNewsConnector(HackerNewsSettings.model_validate(data), ctx)


def test_pages_newest_first_and_normalises_stories_and_comments(api: HTTPServer) -> None:
    api.expect_request(SEARCH).respond_with_handler(FakeAlgolia(load("hackernews", "hits.json")))
    hn = _connector(api, hits_per_page=2)
    batch = hn.fetch(None)

    reqs = requests_to(api, SEARCH)
    assert [r.args["page"] for r in reqs] == ["0", "1"]
    assert reqs[0].args["query"] == "acme"
    assert reqs[0].args["tags"] == "(story,comment)"
    assert reqs[0].args["hitsPerPage"] == "2"
    assert reqs[0].args["numericFilters"].startswith("created_at_i>=")
    assert batch.requests == 2
    by_id = {m.external_id: m for m in batch.mentions}
    assert sorted(by_id) == ["45000000", "45000001", "45000002", "45000003"]

    story = by_id["45000003"]
    assert story.kind == "story"
    assert story.url == "https://news.ycombinator.com/item?id=45000003"
    assert story.title == "Acme Fiber outage across the east coast"
    assert story.likes == 120 and story.replies == 45
    assert story.author is not None and story.author.handle == "jdoe"
    assert story.author.profile_url == "https://news.ycombinator.com/user?id=jdoe"
    assert story.created_at == datetime(2026, 11, 19, 8, 18, 20, tzinfo=UTC)
    assert "_highlightResult" not in story.raw

    comment = by_id["45000002"]
    assert comment.kind == "comment"
    assert comment.title == "Re: Ask HN: Which ISP do you trust?"
    # HTML and entities (&#x2F; included) become plain text.
    assert comment.text.startswith("Acme support took 3 days to answer & then closed my ticket.")
    assert "https://example.org/x" in comment.text and "<" not in comment.text
    assert comment.conversation_id == "44999990" and comment.in_reply_to_id == "44999991"

    assert json.loads(batch.next_cursor or "") == {
        "acme": {"created_at_i": 1795076300, "ids": ["45000003"]}}


def test_cursor_resume_reads_only_new_hits_including_same_second(api: HTTPServer) -> None:
    hits = load("hackernews", "hits.json")
    fake = FakeAlgolia(hits)
    api.expect_request(SEARCH).respond_with_handler(fake)
    hn = _connector(api)
    first = hn.fetch(None)
    fake.hits = hits + load("hackernews", "later_hits.json")
    second = hn.fetch(first.next_cursor)

    assert requests_to(api, SEARCH)[-1].args["numericFilters"] == "created_at_i>=1795076300"
    assert sorted(m.external_id for m in second.mentions) == ["45000004", "45000005"]
    assert json.loads(second.next_cursor or "") == {
        "acme": {"created_at_i": 1795078900, "ids": ["45000005"]}}
    # Nothing new: the cursor stays where it was and nothing is returned.
    third = hn.fetch(second.next_cursor)
    assert third.mentions == [] and json.loads(third.next_cursor or "") == json.loads(
        second.next_cursor or "")


def test_a_hit_in_an_odd_shape_is_skipped_and_the_others_kept(api: HTTPServer) -> None:
    hits = load("hackernews", "hits.json")
    hits[0]["num_comments"] = "n/a"  # int() of it had failed the pass, and every later one
    api.expect_request(SEARCH).respond_with_handler(FakeAlgolia(hits))
    batch = _connector(api).fetch(None)
    ids = {m.external_id for m in batch.mentions}
    assert hits[0]["objectID"] not in ids and len(ids) == len(hits) - 1
    assert "1 item(s) in a shape mentionwatch cannot read skipped" in batch.notes
    # The cursor moves on to the newest readable hit.
    assert json.loads(batch.next_cursor or "")["acme"]["created_at_i"] == max(
        h["created_at_i"] for h in hits[1:])


def test_a_backlog_longer_than_max_pages_is_read_in_later_passes(api: HTTPServer) -> None:
    hits = load("hackernews", "hits.json")
    api.expect_request(SEARCH).respond_with_handler(FakeAlgolia(hits))
    hn = _connector(api, hits_per_page=1, max_pages=2, first_lookback="3650d")
    batch = hn.fetch(None)
    assert len(requests_to(api, SEARCH)) == 2
    assert len(batch.mentions) == 2
    assert batch.notes and "backlog longer than 2 pages" in batch.notes[0]
    assert json.loads(batch.next_cursor or "")["acme"]["gaps"]
    # Later passes read the gap (bounded below and above) until nothing is left: nothing of
    # the backlog is skipped.
    seen = {m.external_id for m in batch.mentions}
    cursor = batch.next_cursor
    for _ in range(10):
        later = hn.fetch(cursor)
        seen |= {m.external_id for m in later.mentions}
        cursor = later.next_cursor
        if "gaps" not in json.loads(cursor or "")["acme"]:
            break
    expected = {str(h["objectID"]) for h in FakeAlgolia(hits).hits
                if all(w in _searchable(h) for w in ["acme"])}
    assert expected and seen >= expected
    assert any("<" in r.args["numericFilters"] for r in requests_to(api, SEARCH))


def test_rate_limit_maps_to_rate_limited_with_retry_after(api: HTTPServer) -> None:
    api.expect_request(SEARCH).respond_with_json(
        {"message": "Too many requests", "status": 429}, status=429,
        headers={"Retry-After": "120"})
    with pytest.raises(RateLimited) as info:
        _connector(api).fetch(None)
    assert info.value.until is not None
    wait = info.value.until - datetime.now(UTC)
    assert timedelta(seconds=100) < wait <= timedelta(seconds=120)


@pytest.mark.parametrize(("status", "header", "waits"), [
    (503, "120", True),  # a 503 that says when it is back waits like a 429
    (429, "999999999999", False),  # beyond the calendar: as if absent, not an OverflowError
    (429, "soon", False),
])
def test_retry_after_on_503_and_unusable_values(api: HTTPServer, status: int, header: str,
                                                waits: bool) -> None:
    api.expect_request(SEARCH).respond_with_json({"message": "busy"}, status=status,
                                                 headers={"Retry-After": header})
    with pytest.raises(RateLimited) as info:
        _connector(api).fetch(None)
    if waits:
        assert info.value.until is not None
        assert info.value.until - datetime.now(UTC) <= timedelta(seconds=120)
    else:
        assert info.value.until is None


@pytest.mark.parametrize(("status", "body", "error"), [
    (503, b"<html>Service Unavailable</html>", Transient),
    (200, b"{\"hits\": [", BadResponse),
    (200, b"{\"message\": \"index does not exist\"}", BadResponse),
    (400, b"{\"message\": \"invalid numericFilters\", \"status\": 400}", BadResponse),
])
def test_errors_are_typed(api: HTTPServer, status: int, body: bytes,
                          error: type[Exception]) -> None:
    api.expect_request(SEARCH).respond_with_data(body, status=status,
                                                 content_type="application/json")
    with pytest.raises(error):
        _connector(api).fetch("{\"acme\": {\"created_at_i\": 5, \"ids\": []}}")


def test_cannot_reply_or_message() -> None:
    assert HackerNewsConnector.can_reply is False
    assert HackerNewsConnector.can_send_private is False
    ref = StoredMentionRef("1", None, "jdoe", None, None, "story", {})
    hn = HackerNewsConnector.__new__(HackerNewsConnector)
    with pytest.raises(SendError, match="mark the mention replied elsewhere"):
        hn.reply(ref, "hi")
    with pytest.raises(SendError):
        hn.send_private(ref, "hi")


def _write_config(path: Path, db_url: str, api: HTTPServer) -> Path:
    brand = dict(BRAND, own_accounts={"hackernews": ["acme_official"]})
    lines = [
        "[brand]",
        f"name = {json.dumps(brand['name'])}",
        f"terms = {json.dumps(brand['terms'])}",
        f"exclude = {json.dumps(brand['exclude'])}",
        'own_accounts = { hackernews = ["Acme_Official"] }',
        "[database]",
        f"url = {json.dumps(db_url)}",
        "[[sources]]",
        'name = "hn"',
        'kind = "hackernews"',
        'queries = ["acme"]',
        'first_lookback = "3650d"',
        f"api_url = {json.dumps(api.url_for('/api/v1'))}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_poll_end_to_end_stores_mentions_and_keeps_cursor_on_failure(
    api: HTTPServer, db_url: str, tmp_path: Path,
) -> None:
    fake = FakeAlgolia(load("hackernews", "hits.json"))
    api.expect_request(SEARCH).respond_with_handler(fake)
    config = _write_config(tmp_path / "mentionwatch.toml", db_url, api)
    runner = CliRunner()

    result = runner.invoke(cli, ["--config", str(config), "poll", "--all"])
    assert result.exit_code == 0, result.output
    store = Store.open(db_url)
    try:
        with store.session(readonly=True) as s:
            rows = list(s.scalars(select(Mention).order_by(Mention.external_id)).unique())
        # The brand's own account (acme_official) is not a mention.
        assert [m.external_id for m in rows] == ["45000000", "45000002", "45000003"]
        assert rows[2].url == "https://news.ycombinator.com/item?id=45000003"
        row = store.source_row("hn")
        assert row is not None
        cursor = row.cursor

        # A failing pass records the error and leaves the cursor alone.
        api.clear_all_handlers()
        api.expect_request(SEARCH).respond_with_data("oops", status=502)
        result = runner.invoke(cli, ["--config", str(config), "poll", "--all"])
        assert result.exit_code == 1
        row = store.source_row("hn")
        assert row is not None and row.cursor == cursor
        assert row.last_error and "502" in row.last_error

        # The next good pass resumes from the stored cursor and adds only the new hits.
        api.clear_all_handlers()
        fake.hits = fake.hits + load("hackernews", "later_hits.json")
        api.expect_request(SEARCH).respond_with_handler(fake)
        result = runner.invoke(cli, ["--config", str(config), "poll", "--all"])
        assert result.exit_code == 0, result.output
        assert requests_to(api, SEARCH)[-1].args["numericFilters"] == "created_at_i>=1795076300"
        assert store.count_mentions("hn") == 5
    finally:
        store.close()
