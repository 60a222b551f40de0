"""Reddit connector (praw) reading against a fake Reddit on 127.0.0.1 that replays recorded
praw cassette bodies: search paging, subreddit comments, cursor resume, deleted/removed items,
429, 401, 5xx, malformed JSON, rate-limit headers prawcore cannot read."""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.reddit import RedditConnector, RedditSettings, markdown_to_text
from mentionwatch.config import SourceConfig
from mentionwatch.connector import ConnectorContext
from mentionwatch.errors import AuthFailed, BadResponse, RateLimited, Transient
from tests.apiserver import _api_server, api_fixture, json_response, requests_to  # noqa: F401 (fixture `api`)
from tests.conftest import make_config
from tests.reddit_api import COMMENTS, NEW, SEARCH, TOKEN_PATH, FakeReddit, replay

ENV = {"RD_ID": "app-id", "RD_SECRET": "app-secret", "RD_USER": "acme_bot",
       "RD_PASS": "hunter2"}
BRAND_R: dict[str, Any] = {
    "name": "Sirocco", "terms": ["praw", "sirocco", "kakaportrait", "favourite"],
    "own_accounts": {"reddit": ["MC_Kloppedie"]},
}
USER_AGENT = "python:mentionwatch-tests:1.0 (by /u/acme_bot)"


def connector(api: HTTPServer, environ: dict[str, str] | None = None,
              **settings: Any) -> RedditConnector:
    config = make_config("sqlite://", [], brand=BRAND_R)
    base = api.url_for("/").rstrip("/")
    data = {"base_url": base, "oauth_url": base, "client_id_env": "RD_ID",
            "client_secret_env": "RD_SECRET", "username_env": "RD_USER",
            "password_env": "RD_PASS", "user_agent": USER_AGENT, **settings}
    ctx = ConnectorContext(source=SourceConfig(name="reddit", kind="reddit"),
                           brand=config.brand, poll=config.poll,
                           environ=ENV if environ is None else environ)
    return RedditConnector(RedditSettings.model_validate(data), ctx)


def by_created(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda c: c["data"]["created_utc"])


def test_search_pages_back_to_the_cursor_and_resumes(api: HTTPServer) -> None:
    fake = FakeReddit(api)
    recorded = by_created(fake.search)  # six hits, oldest first
    fake.search = recorded[:3]
    reddit = connector(api, page_size=2)
    try:
        first = reddit.fetch(None)
    finally:
        reddit.close()

    [token] = requests_to(api, TOKEN_PATH)
    assert token.headers["Authorization"] == "Basic " + base64.b64encode(
        b"app-id:app-secret").decode()
    assert token.form.to_dict() == {"grant_type": "password", "username": "acme_bot",
                                    "password": "hunter2"}
    [search] = requests_to(api, SEARCH)
    assert search.args.to_dict() == {
        "q": '"praw" OR "sirocco" OR "kakaportrait" OR "favourite"', "sort": "new",
        "syntax": "lucene", "t": "all", "limit": "2", "raw_json": "1"}
    assert search.headers["Authorization"] == "bearer <ACCESS_TOKEN>"
    assert search.headers["User-Agent"].startswith(USER_AGENT)
    # The first pass reads one page (now), not the history.
    assert [m.external_id for m in first.mentions] == ["t3_3gpbiu", "t3_3b4erh"]
    hit = first.mentions[0]
    assert hit.kind == "submission" and hit.conversation_id == "t3_3gpbiu"
    assert hit.title == ("[PRAW][OAuth2Util] Problem using get_banned() : "
                         "raise Forbidden(_raw=response)")
    assert hit.text.startswith("solved\n\nProblem solved with this: /r/redditdev/")  # '# ' gone
    assert hit.url == (api.url_for("/").rstrip("/") + "/r/redditdev/comments/3gpbiu/"
                       "prawoauth2util_problem_using_get_banned_raise/?ref=search_posts")
    assert hit.author is not None and hit.author.handle == "dClauzel"
    assert hit.created_at == datetime.fromtimestamp(1439370514, UTC)
    assert (hit.likes, hit.replies) == (0, 21)
    assert hit.raw["subreddit"] == "redditdev" and hit.raw["kind"] == "t3"
    cursor = json.loads(first.next_cursor or "")
    assert cursor[f"search:{search.args['q']}"]["t"] == 1439370514.0
    assert first.requests == 1

    # Three newer hits: page 1 has two, page 2 one plus the cursor's edge, page 3 is older.
    api.clear_log()
    fake.search = recorded
    reddit = connector(api, page_size=2)
    try:
        second = reddit.fetch(first.next_cursor)
    finally:
        reddit.close()
    pages = requests_to(api, SEARCH)
    assert [p.args.get("after") for p in pages] == [None, "t3_3x4kt2", "t3_3gpbiu"]
    assert sorted(m.external_id for m in second.mentions) == [
        "t3_3qc02b", "t3_3x4kt2", "t3_4at068"]
    assert second.requests == 3 and not second.notes

    # Nothing new: one request, nothing returned, cursor unchanged in substance.
    api.clear_log()
    reddit = connector(api, page_size=2)
    try:
        third = reddit.fetch(second.next_cursor)
    finally:
        reddit.close()
    assert third.mentions == [] and len(requests_to(api, SEARCH)) == 1
    assert json.loads(third.next_cursor or "") == json.loads(second.next_cursor or "")


def test_items_in_an_odd_shape_cost_only_themselves(api: HTTPServer) -> None:
    fake = FakeReddit(api)
    recorded = by_created(fake.search)
    fake.search = recorded[:4]
    odd, infinite, *_ = by_created(fake.search)[::-1]
    odd["data"]["created_utc"] = 1e20  # beyond the calendar: had failed the pass...
    infinite["data"]["num_comments"] = "inf"  # ...as had this (OverflowError)
    reddit = connector(api)
    try:
        first = reddit.fetch(None)
        # ...and a far-future time held the cursor there: every later post looked older.
        fake.search = [odd, *recorded]
        second = reddit.fetch(first.next_cursor)
    finally:
        reddit.close()
    names = [m.external_id for m in first.mentions]
    assert odd["data"]["name"] not in names and infinite["data"]["name"] in names
    assert len(names) == 3
    assert "1 item(s) in a shape mentionwatch cannot read skipped" in first.notes
    assert [m.external_id for m in second.mentions] == [
        c["data"]["name"] for c in by_created(recorded[4:])[::-1]]


def test_gap_longer_than_max_pages_is_reported(api: HTTPServer) -> None:
    fake = FakeReddit(api)
    recorded = by_created(fake.search)
    fake.search = recorded[:1]
    reddit = connector(api, page_size=1, max_pages=2)
    try:
        first = reddit.fetch(None)
        fake.search = recorded
        second = reddit.fetch(first.next_cursor)
    finally:
        reddit.close()
    assert len(second.mentions) == 2 and second.requests == 2
    assert second.notes and "more than 2 pages" in second.notes[0]


def test_subreddit_comments_skip_own_deleted_and_removed(api: HTTPServer) -> None:
    fake = FakeReddit(api)
    for child in fake.comments:
        data = child["data"]
        if data["name"] == "t1_dgauydy":  # deleted by its author
            data.update(author="[deleted]", body="[deleted]")
        if data["name"] == "t1_dg8ievl":  # removed by moderators (it named a brand term)
            data["body"] = "[removed]"
    reddit = connector(api, search=[], subreddits=["r/kakapo"])
    try:
        batch = reddit.fetch(None)
    finally:
        reddit.close()
    [comments_req] = requests_to(api, COMMENTS)
    assert comments_req.args["limit"] == "100"
    assert requests_to(api, SEARCH) == []
    names = [m.external_id for m in batch.mentions]
    # MC_Kloppedie is one of the brand's own accounts; the gone items are recognised.
    assert sorted(n for n in names if n.startswith("t1_")) == [
        "t1_cg7r41r", "t1_d75kgcd", "t1_dezyi1z", "t1_dfktga0", "t1_dg3s290"]
    assert "2 deleted or removed item(s) skipped" in batch.notes
    assert batch.items_read == 16 + 4
    sirocco = next(m for m in batch.mentions if m.external_id == "t1_dfktga0")
    assert sirocco.kind == "comment" and sirocco.text == (
        "I hope they find Sirocco. I'm a bit worried for that funny borb.")
    assert (sirocco.conversation_id, sirocco.in_reply_to_id) == ("t3_626c0c", "t3_626c0c")
    assert sirocco.is_reply_to_brand  # a top-level comment under the brand's own post
    # Old comment listings carry no permalink: built from the thread and comment ids.
    assert sirocco.url == api.url_for("/").rstrip("/") + "/r/kakapo/comments/626c0c/_/dfktga0/"
    assert not next(m for m in batch.mentions if m.external_id == "t1_dg3s290").is_reply_to_brand
    subs = [m for m in batch.mentions if m.kind == "submission"]
    assert len(subs) == 4 and len(requests_to(api, NEW)) == 1
    cursor = json.loads(batch.next_cursor or "")
    assert set(cursor) == {"comments:kakapo", "new:kakapo"}
    assert cursor["comments:kakapo"]["t"] == 1492274908.0


def test_markdown_becomes_plain_text() -> None:
    source = ("# Heading\n> quoted **bold** and *em* and ~~gone~~\n\n"
              "* item with [the docs](https://example.com/a_b) and snake_case_name\n"
              "[](#middleparrot) >!spoiler!< ^(tiny) `code` \\*not emphasis\\*\n"
              "```\nprint(1)\n```")
    assert markdown_to_text(source).split("\n") == [
        "Heading", "quoted bold and em and gone", "",
        "- item with the docs (https://example.com/a_b) and snake_case_name",
        " spoiler tiny code *not emphasis*", "", "print(1)", ""]


def test_429_is_rate_limited_with_retry_after(api: HTTPServer) -> None:
    FakeReddit(api)
    api.clear_all_handlers()
    api.expect_request(TOKEN_PATH).respond_with_handler(
        lambda r: replay("oauth_access_token__client_credentials.json"))
    api.expect_request(SEARCH).respond_with_handler(
        lambda r: replay("error_429_too_many_requests__html_retry_after.json"))
    reddit = connector(api)
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as err:
        reddit.fetch(None)
    reddit.close()
    assert err.value.until is not None
    assert before + timedelta(seconds=3) <= err.value.until <= datetime.now(UTC) + \
        timedelta(seconds=5)
    assert len(requests_to(api, SEARCH)) == 1  # not retried


def test_429_with_a_retry_after_beyond_the_calendar_waits_a_minute(api: HTTPServer) -> None:
    def huge(request: Request) -> Response:
        response = replay("error_429_too_many_requests__html_retry_after.json")
        response.headers["Retry-After"] = "999999999999"
        return response

    FakeReddit(api)
    api.clear_all_handlers()
    api.expect_request(TOKEN_PATH).respond_with_handler(
        lambda r: replay("oauth_access_token__client_credentials.json"))
    api.expect_request(SEARCH).respond_with_handler(huge)
    reddit = connector(api)
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as err:  # not OverflowError
        reddit.fetch(None)
    reddit.close()
    assert err.value.until is not None
    assert before + timedelta(seconds=59) <= err.value.until <= datetime.now(UTC) + \
        timedelta(seconds=61)


def test_401_names_the_settings(api: HTTPServer) -> None:
    api.expect_request(TOKEN_PATH).respond_with_handler(
        lambda r: replay("error_401_invalid_token.json"))
    reddit = connector(api)
    with pytest.raises(AuthFailed) as err:
        reddit.fetch(None)
    reddit.close()
    assert "client_id_env" in str(err.value) and "$RD_ID" in str(err.value)
    assert "app-secret" not in str(err.value) and "hunter2" not in str(err.value)

    api.clear_all_handlers()
    api.clear_log()
    api.expect_request(TOKEN_PATH).respond_with_handler(
        lambda r: replay("oauth_access_token__client_credentials.json"))
    api.expect_request(SEARCH).respond_with_handler(
        lambda r: replay("error_401_invalid_token.json"))
    reddit = connector(api)
    with pytest.raises(AuthFailed) as err:
        reddit.fetch(None)
    reddit.close()
    assert "username_env / password_env" in str(err.value)
    # prawcore treats an API 401 as an expired token: new token, retried twice, then fails.
    assert len(requests_to(api, SEARCH)) == 3 and len(requests_to(api, TOKEN_PATH)) == 3

    # A wrong password: Reddit answers 200 {"error": "invalid_grant"}.
    api.clear_all_handlers()
    api.expect_request(TOKEN_PATH).respond_with_json({"error": "invalid_grant"})
    reddit = connector(api)
    with pytest.raises(AuthFailed, match="invalid_grant") as err:
        reddit.fetch(None)
    reddit.close()

    with pytest.raises(AuthFailed, match=r"\$RD_PASS"):
        connector(api, environ={"RD_ID": "x", "RD_USER": "acme_bot"})
    with pytest.raises(AuthFailed, match=r"\$RD_ID"):
        connector(api, environ={})


def test_503_is_retried_by_prawcore_then_succeeds(api: HTTPServer) -> None:
    fake = FakeReddit(api)
    api.clear_all_handlers()
    api.expect_request(TOKEN_PATH).respond_with_handler(
        lambda r: replay("oauth_access_token__client_credentials.json"))
    api.expect_oneshot_request(SEARCH).respond_with_handler(
        lambda r: replay("error_500_internal.json", status=503))
    fake.serve_listings()
    reddit = connector(api)
    started = time.monotonic()
    try:
        batch = reddit.fetch(None)
    finally:
        reddit.close()
    assert len(requests_to(api, SEARCH)) == 2
    assert len(batch.mentions) == 6
    assert time.monotonic() - started < 6


def test_5xx_after_retries_is_transient(api: HTTPServer) -> None:
    FakeReddit(api)
    api.clear_all_handlers()
    api.expect_request(TOKEN_PATH).respond_with_handler(
        lambda r: replay("oauth_access_token__client_credentials.json"))
    api.expect_request(SEARCH).respond_with_handler(
        lambda r: replay("error_500_internal.json", status=503))
    reddit = connector(api)
    with pytest.raises(Transient, match="503"):
        reddit.fetch(None)
    reddit.close()
    assert len(requests_to(api, SEARCH)) == 3  # prawcore's two retries


def test_malformed_json_and_non_listing_are_bad_responses(api: HTTPServer) -> None:
    api.expect_request(TOKEN_PATH).respond_with_handler(
        lambda r: replay("oauth_access_token__client_credentials.json"))
    api.expect_oneshot_request(SEARCH).respond_with_data(
        '{"kind": "Listing", "data": {"children": [', content_type="application/json")
    api.expect_oneshot_request(SEARCH).respond_with_handler(
        lambda r: json_response({"kind": "t3", "data": {}}))
    reddit = connector(api)
    with pytest.raises(BadResponse, match="valid JSON"):
        reddit.fetch(None)
    with pytest.raises(BadResponse, match="did not return a listing"):
        reddit.fetch(None)
    reddit.close()


def test_settings_are_checked() -> None:
    base = {"client_id_env": "RD_ID"}
    with pytest.raises(ValueError, match="not both"):
        RedditSettings.model_validate(dict(base, password_env="P", username_env="U",
                                           refresh_token_env="R"))
    with pytest.raises(ValueError, match="username_env"):
        RedditSettings.model_validate(dict(base, password_env="P"))
    with pytest.raises(ValueError, match="not a subreddit"):
        RedditSettings.model_validate(dict(base, subreddits=["bad name"]))
    with pytest.raises(ValueError):
        RedditSettings.model_validate(dict(base, oauth_url="ftp://x"))
    with pytest.raises(ValueError, match="Extra inputs"):
        RedditSettings.model_validate(dict(base, client_secret="inline-secret"))
    assert RedditSettings.model_validate(base).oauth_url == "https://oauth.reddit.com"


def test_refresh_token_login(api: HTTPServer) -> None:
    fake = FakeReddit(api)
    api.clear_all_handlers()
    api.expect_request(TOKEN_PATH).respond_with_handler(
        lambda r: replay("oauth_access_token__refresh_token.json"))
    fake.serve_listings()
    reddit = connector(api, environ={"RD_ID": "app-id", "RD_SECRET": "app-secret",
                                     "RD_REFRESH": "refresh-me"},
                       username_env=None, password_env=None, refresh_token_env="RD_REFRESH")
    try:
        assert len(reddit.fetch(None).mentions) == 6
    finally:
        reddit.close()
    [token] = requests_to(api, TOKEN_PATH)
    assert token.form.to_dict() == {"grant_type": "refresh_token",
                                    "refresh_token": "refresh-me"}


@pytest.mark.parametrize("reset", ["300", "100000000000000"])
def test_used_up_request_budget_is_rate_limited_not_slept(api: HTTPServer, reset: str) -> None:
    fake = FakeReddit(api)
    api.clear_all_handlers()
    api.expect_request(TOKEN_PATH).respond_with_handler(
        lambda r: replay("oauth_access_token__client_credentials.json"))
    # Reddit says the window's requests are used up for 300 s: prawcore would sleep that long.
    api.expect_request(SEARCH).respond_with_handler(lambda r: json_response(
        {"kind": "Listing", "data": {"after": None, "children": fake.search}},
        headers={"x-ratelimit-remaining": "0.0", "x-ratelimit-used": "600",
                 "x-ratelimit-reset": reset}))
    fake.serve_listings()
    reddit = connector(api, subreddits=["kakapo"])
    started = time.monotonic()
    with pytest.raises(RateLimited, match="used up") as err:
        reddit.fetch(None)
    reddit.close()
    assert time.monotonic() - started < 3
    assert err.value.until is not None
    assert err.value.until >= datetime.now(UTC) + timedelta(seconds=290)
    # A reset of three million years (it had overflowed: "internal error: OverflowError")
    # is waited an hour at most.
    assert err.value.until <= datetime.now(UTC) + timedelta(hours=1, seconds=5)
    assert requests_to(api, COMMENTS) == []


#: Rate-limit headers prawcore cannot parse (it raised ValueError or KeyError on each).
UNREADABLE_BUDGETS = [
    {"x-ratelimit-remaining": "soon", "x-ratelimit-used": "1", "x-ratelimit-reset": "300"},
    {"x-ratelimit-remaining": "", "x-ratelimit-used": "", "x-ratelimit-reset": ""},
    {"x-ratelimit-remaining": "599.0", "x-ratelimit-used": "1", "x-ratelimit-reset": "1.5e"},
    {"x-ratelimit-remaining": "599.0"},  # a proxy kept one of the three
]


@pytest.mark.parametrize("headers", UNREADABLE_BUDGETS)
def test_unreadable_rate_limit_headers_are_ignored_and_the_pass_reads(
    api: HTTPServer, caplog: pytest.LogCaptureFixture, headers: dict[str, str],
) -> None:
    fake = FakeReddit(api)
    recorded = by_created(fake.search)
    fake.search, fake.headers = recorded[:3], headers
    reddit = connector(api, subreddits=["kakapo"], watch_submissions=False)
    try:
        with caplog.at_level(logging.WARNING, logger="connectors.reddit"):
            first = reddit.fetch(None)
            fake.search = recorded
            second = reddit.fetch(first.next_cursor)
    finally:
        reddit.close()
    # prawcore raised on every answer with them: each pass failed and the source stalled.
    search_hits = {c["data"]["name"] for c in recorded[:3]}
    assert {m.external_id for m in first.mentions if m.kind == "submission"} == search_hits
    assert len([m for m in first.mentions if m.kind == "comment"]) == 7  # kakapo's newest
    assert sorted(m.external_id for m in second.mentions) == [
        "t3_3qc02b", "t3_3x4kt2", "t3_4at068"]
    assert len(requests_to(api, SEARCH)) + len(requests_to(api, COMMENTS)) >= 4
    # Said once, with what Reddit sent, not at every answer.
    [warning] = [r.getMessage() for r in caplog.records if r.name == "connectors.reddit"]
    assert "rate-limit headers that cannot be read" in warning
    assert repr(headers["x-ratelimit-remaining"]) in warning
