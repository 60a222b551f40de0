"""The X connector against a real HTTP server on 127.0.0.1 replaying recorded API v2 answers:
reading (expansions, pagination, cursor, errors), writing (exact requests), length, budget."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from connectors.twitter import (
    QueryCursor,
    TwitterConnector,
    TwitterCursor,
    _weigh,
    check_reply_length,
    next_read_at,
    read_allowance,
    weighted_length,
)
from mentionwatch.connector import StoredMentionRef
from mentionwatch.errors import (
    AuthFailed,
    BadResponse,
    ConfigError,
    RateLimited,
    SendError,
    Transient,
)
from mentionwatch.pipeline import build_connector
from tests.conftest import make_config
from tests.twitter_api import (
    BOT_ID,
    BRAND_ID,
    DM_PERSON_ID,
    FakeX,
    body,
    enrich,
    fake_x,
    problem,
    recording,
    serve,
)

SEARCH = "/2/tweets/search/recent"
MENTIONS = f"/2/users/{BRAND_ID}/mentions"
SECRETS = {
    "TW_BEARER": "bearer-SECRET-aaaa", "TW_CK": "ck-SECRET-bbbb", "TW_CS": "cs-SECRET-cccc",
    "TW_AT": "at-SECRET-dddd", "TW_AS": "as-SECRET-eeee",
}


@pytest.fixture(scope="module")
def x_server() -> Iterator[HTTPServer]:
    yield from serve()


@pytest.fixture
def fakex(x_server: HTTPServer) -> Iterator[FakeX]:
    yield from fake_x(x_server)


def source(fakex: FakeX, **extra: Any) -> dict[str, Any]:
    return {"name": "x", "kind": "twitter", "base_url": fakex.base_url,
            "bearer_token_env": "TW_BEARER", "account": "Twitter",
            "account_user_id": BRAND_ID, **extra}


def posting(**extra: Any) -> dict[str, Any]:
    return {"consumer_key_env": "TW_CK", "consumer_secret_env": "TW_CS",
            "access_token_env": "TW_AT", "access_token_secret_env": "TW_AS", **extra}


def connector(fakex: FakeX, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> TwitterConnector:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    config = make_config("sqlite:///unused.db", [source(fakex, **extra)])
    built = build_connector(config.sources[0], config, environ=SECRETS)
    assert isinstance(built, TwitterConnector)
    return built


def mention_ref(**extra: Any) -> StoredMentionRef:
    values: dict[str, Any] = {
        "external_id": "1578516295611748353", "url": None, "author_handle": "feed_person",
        "author_external_id": DM_PERSON_ID, "conversation_id": None, "kind": "reply", "raw": {},
    }
    values.update(extra)
    return StoredMentionRef(**values)


# --------------------------------------------------------------------------- reading


def test_search_with_expansions_and_pagination(fakex: FakeX, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    conn = connector(fakex, monkeypatch, mentions=False, language="en")
    batch = conn.fetch(None)
    calls = fakex.requests_to(SEARCH)
    assert len(calls) == 2
    first, second = calls
    assert first.args["query"] == (
        '(acme OR @acme OR #acmefail OR "acme fiber" OR slack) -"acme anvil" -from:acme '
        "-from:acmehelp -from:twitter -is:retweet lang:en"
    )
    assert first.args["expansions"] == "author_id"
    assert {"public_metrics", "created_at", "conversation_id", "entities",
            "referenced_tweets"} <= set(first.args["tweet.fields"].split(","))
    assert "public_metrics" in first.args["user.fields"]
    assert "start_time" in first.args and "since_id" not in first.args
    assert "next_token" not in first.args
    page1 = recording("v2_search_recent__async")["response"]["body"]
    assert second.args["next_token"] == page1["meta"]["next_token"]
    assert second.args["start_time"] == first.args["start_time"]
    assert first.headers["Authorization"] == "Bearer bearer-SECRET-aaaa"
    # 20 posts read, the 3 plain reposts dropped; the author came in the same call.
    assert batch.items_read == 20
    assert len(batch.mentions) == 17
    assert not any(m.text.startswith("RT @") for m in batch.mentions)
    newest = batch.mentions[0]
    assert newest.external_id == "1578522108187283456"
    assert newest.author is not None and newest.author.handle == "TweepyDev"
    assert (newest.author.followers, newest.author.external_id) == (120, BOT_ID)
    assert newest.url == "https://x.com/TweepyDev/status/1578522108187283456"
    assert newest.created_at == datetime(2022, 10, 7, 23, 6, 12, 771000, tzinfo=UTC)
    assert (newest.likes, newest.reposts, newest.replies, newest.language) == (7, 3, 1, "en")
    assert newest.raw["tweet"]["id"] == newest.external_id
    cursor = json.loads(batch.next_cursor or "")
    assert cursor["queries"]["search"] == {"since_id": page1["meta"]["newest_id"]}
    assert cursor["usage"]["read"] == 20


def test_mentions_timeline_keeps_replies_and_drops_own_posts(
    fakex: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connector(fakex, monkeypatch, search=False)
    batch = conn.fetch(None)
    calls = fakex.requests_to(MENTIONS)
    assert len(calls) == 2
    page1 = recording("v2_users_mentions")["response"]["body"]
    assert calls[1].args["pagination_token"] == page1["meta"]["next_token"]
    # Page 2 is the brand account's own posts: read (and counted), never a mention.
    assert batch.items_read == 12
    assert len(batch.mentions) == 10
    assert all(m.author and m.author.handle != "Twitter" for m in batch.mentions)
    reply = batch.mentions[0]
    assert reply.kind == "reply" and reply.is_reply_to_brand
    assert reply.in_reply_to_id == "1577730467436138524"
    assert reply.conversation_id == "1577730467436138524"
    # t.co links are replaced by what they stand for.
    assert reply.text.endswith("respond to my ticket. "
                               "https://example.com/expanded/1578516295611748353/0")
    assert "t.co" not in reply.text
    others = [m for m in batch.mentions if m.external_id != reply.external_id]
    assert not any(m.is_reply_to_brand for m in others)
    # Display names are decoded but stay inert text (tags are kept as characters).
    assert others[0].author is not None
    assert others[0].author.display_name == "Commenter <b>&</b>"
    assert json.loads(batch.next_cursor or "")["queries"]["mentions"] == {
        "since_id": page1["meta"]["newest_id"]}


def test_user_id_is_looked_up_once_from_the_handle(fakex: FakeX,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connector(fakex, monkeypatch, search=False, account_user_id=None)
    batch = conn.fetch(None)
    assert len(fakex.requests_to("/2/users/by/username/Twitter")) == 1
    assert json.loads(batch.next_cursor or "")["user_id"] == BRAND_ID
    conn.fetch(batch.next_cursor)
    assert len(fakex.requests_to("/2/users/by/username/Twitter")) == 1


def test_resume_from_since_id(fakex: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connector(fakex, monkeypatch)
    first = conn.fetch(None)
    fakex.seen.clear()
    fakex.add_newer_mentions()
    # A new connector (as after a restart) with only the stored cursor.
    again = connector(fakex, monkeypatch).fetch(first.next_cursor)
    mentions_call, search_call = fakex.requests_to(MENTIONS)[0], fakex.requests_to(SEARCH)[0]
    assert mentions_call.args["since_id"] == "1578516295611748353"
    assert "start_time" not in mentions_call.args
    assert search_call.args["since_id"] == "1578522194770296832"
    assert [m.external_id for m in again.mentions] == ["1578522401263919106",
                                                         "1578522395434192896"]
    cursor = json.loads(again.next_cursor or "")
    assert cursor["queries"]["mentions"]["since_id"] == "1578522401263919106"
    assert cursor["queries"]["search"]["since_id"] == "1578522194770296832"
    assert cursor["usage"]["read"] == 32 + 2


def test_a_since_id_older_than_recent_search_reaches_is_dropped(
    fakex: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = "1519056945277198339"  # a post from April 2022
    # X's answer to a since_id older than 7 days (shape as reported in rooteco/tweetscape#421).
    fakex.script("GET", SEARCH, 400, {
        "errors": [{"parameters": {"since_id": [old]},
                    "message": f"Invalid 'since_id':'{old}'. 'since_id' must be a tweet id "
                    "created after 2022-05-03T03:35:00Z."}],
        "title": "Invalid Request", "detail": "One or more parameters to your request was "
        "invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"})
    conn = connector(fakex, monkeypatch, mentions=False)
    # It had failed this pass and every later one, the cursor never moving.
    batch = conn.fetch(TwitterCursor(queries={"search": QueryCursor(since_id=old)}).dumps())
    refused, again, rest = fakex.requests_to(SEARCH)
    assert refused.args["since_id"] == old
    assert "since_id" not in again.args and "start_time" in again.args
    start = datetime.strptime(again.args["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(days=6, hours=23) < datetime.now(UTC) - start <= timedelta(days=7)
    assert rest.args["start_time"] == again.args["start_time"] and "next_token" in rest.args
    assert len(batch.mentions) == 17
    assert "older than the 7 days recent search reaches" in batch.notes[0]
    page1 = recording("v2_search_recent__async")["response"]["body"]
    assert json.loads(batch.next_cursor or "")["queries"]["search"] == {
        "since_id": page1["meta"]["newest_id"]}


def test_a_page_token_x_no_longer_takes_is_dropped(fakex: FakeX,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # A backlog stopped at a page token X then refused (it was issued for the query before
    # the brand terms changed): the pass had failed with the same 400 every time, for good.
    mentions_since = "1578000000000000000"
    stuck = TwitterCursor(queries={
        "mentions": QueryCursor(since_id=mentions_since, next_token="7140dibdnow9c7btw3z",
                                newest_id="1578600000000000000"),
        "search": QueryCursor(next_token="b26v89c19zqg8o3fo7geso",
                              start_time="2022-10-07T00:00:00Z"),
    })
    now = datetime.now(UTC)
    batch = connector(fakex, monkeypatch).fetch(stuck.dumps())
    refused, again, *_ = fakex.requests_to(MENTIONS)
    assert refused.args["pagination_token"] == "7140dibdnow9c7btw3z"
    assert again.args["since_id"] == mentions_since and "pagination_token" not in again.args
    refused, again, *_ = fakex.requests_to(SEARCH)
    assert refused.args["next_token"] == "b26v89c19zqg8o3fo7geso"
    # No since_id: from the backlog's start, but no further back than recent search reaches.
    assert "next_token" not in again.args and "since_id" not in again.args
    start = datetime.strptime(again.args["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(days=6, hours=23) < now - start <= timedelta(days=7)
    assert [n for n in batch.notes if "page token" in n] == [
        f"mentions: X no longer takes the page token this backlog stopped at; read again "
        f"from post {mentions_since}",
        f"search: X no longer takes the page token this backlog stopped at; read again from "
        f"{start:%Y-%m-%d %H:%M} UTC"]
    # Read as from a cursor that never had the tokens; the backlog is done.
    fresh = connector(fakex, monkeypatch).fetch(TwitterCursor(queries={
        "mentions": QueryCursor(since_id=mentions_since)}).dumps())
    assert [m.external_id for m in batch.mentions] == [m.external_id for m in fresh.mentions]
    assert len(batch.mentions) == 27
    cursor = json.loads(batch.next_cursor or "")["queries"]
    assert cursor == json.loads(fresh.next_cursor or "")["queries"]
    assert set(cursor["mentions"]) == set(cursor["search"]) == {"since_id"}


def test_rate_limit_carries_the_reset_time(fakex: FakeX, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    fakex.script("GET", MENTIONS, 429, problem(429, "Too Many Requests", "Too Many Requests"),
                 headers={"x-rate-limit-reset": "1893456000", "x-rate-limit-remaining": "0"})
    with pytest.raises(RateLimited) as caught:
        connector(fakex, monkeypatch).fetch(None)
    assert caught.value.until == datetime(2030, 1, 1, tzinfo=UTC)
    assert len(fakex.seen) == 1  # no retry loop, no sleeping


def test_rate_limit_without_reset_header_waits_one_window(
    fakex: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakex.script("GET", MENTIONS, 429, problem(429, "Too Many Requests", "Too Many Requests"))
    before = datetime.now(UTC)
    with pytest.raises(RateLimited, match=r"until about .* \(X gave no reset time; its "
                       r"windows are 15 minutes\)") as caught:
        connector(fakex, monkeypatch).fetch(None)
    assert caught.value.until is not None
    assert before + timedelta(minutes=15) <= caught.value.until <= \
        datetime.now(UTC) + timedelta(minutes=15)
    assert len(fakex.seen) == 1


@pytest.mark.parametrize("reset", ["soon", "1.5e", ""])
def test_rate_limit_with_a_reset_that_is_not_a_time(
    fakex: FakeX, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, reset: str,
) -> None:
    for _ in range(2):
        fakex.script("GET", MENTIONS, 429, problem(429, "Too Many Requests",
                                                   "Too Many Requests"),
                     headers={"x-rate-limit-reset": reset})
    conn = connector(fakex, monkeypatch)
    before = datetime.now(UTC)
    with caplog.at_level(logging.WARNING, logger="connectors.twitter"):
        for _ in range(2):
            # tweepy's int() raised ValueError: "X answered with invalid JSON; will retry".
            with pytest.raises(RateLimited, match="X gave no reset time") as caught:
                conn.fetch(None)
    assert caught.value.until is not None
    assert before + timedelta(minutes=15) <= caught.value.until <= \
        datetime.now(UTC) + timedelta(minutes=15)
    assert caught.value.hint is None  # reading: nothing to send again
    assert len(fakex.seen) == 2
    [warning] = [r.getMessage() for r in caplog.records if r.name == "connectors.twitter"]
    assert f"x-rate-limit-reset: {reset!r}" in warning


def test_401_names_the_setting_and_never_the_token(fakex: FakeX,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fakex.script("GET", MENTIONS, 401, problem(401, "Unauthorized", "Unauthorized"))
    with pytest.raises(AuthFailed) as caught:
        connector(fakex, monkeypatch).fetch(None)
    text = str(caught.value)
    assert "bearer_token_env" in text and "$TW_BEARER" in text and "401" in text
    assert SECRETS["TW_BEARER"] not in text and SECRETS["TW_BEARER"] not in repr(caught.value)
    assert len(fakex.seen) == 1


def test_403_on_read_is_an_auth_failure(fakex: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    fakex.script("GET", MENTIONS, 403, {
        "title": "Client Forbidden", "reason": "client-not-enrolled", "type":
        "https://api.twitter.com/2/problems/client-forbidden",
        "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use "
        "keys and tokens from a Twitter developer App that is attached to a Project."})
    with pytest.raises(AuthFailed, match="attached to a Project") as refused:
        connector(fakex, monkeypatch).fetch(None)
    assert ".." not in str(refused.value)  # X's own full stop, then ours, had made two


@pytest.mark.parametrize(("status", "raw", "error"), [
    (503, json.dumps(problem(503, "Service Unavailable", "Service Unavailable")).encode(),
     Transient),
    (200, b'{"data": [{"id": "1", "text": "cut off', BadResponse),
    (200, b'{"data": {"unexpected": true}}', BadResponse),
])
def test_server_errors_and_bad_bodies(fakex: FakeX, monkeypatch: pytest.MonkeyPatch,
                                      status: int, raw: bytes, error: type[Exception]) -> None:
    fakex.script("GET", SEARCH, status, raw=raw)
    conn = connector(fakex, monkeypatch, mentions=False)
    with pytest.raises(error):
        conn.fetch(None)
    # The next pass works and starts from the lookback window again: nothing was lost.
    batch = conn.fetch(None)
    assert len(batch.mentions) == 17


def test_connection_refused_and_timeouts_are_transient(fakex: FakeX,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    config = make_config("sqlite:///unused.db", [
        {**source(fakex), "base_url": f"http://127.0.0.1:{port}"}])
    conn = build_connector(config.sources[0], config, environ=SECRETS)
    with pytest.raises(Transient, match="cannot reach"):
        conn.fetch(None)
    # A server that accepts and never answers: the adapter's timeout applies.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        config = make_config("sqlite:///unused.db", [
            {**source(fakex), "base_url": f"http://127.0.0.1:{silent.getsockname()[1]}"}],
            poll={"timeout": "1s"})
        conn = build_connector(config.sources[0], config, environ=SECRETS)
        with pytest.raises(Transient, match="within 1 s"):
            conn.fetch(None)


def test_debug_logs_never_carry_credentials(fakex: FakeX, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    conn = connector(fakex, monkeypatch, **posting())
    conn.fetch(None)
    conn.reply(mention_ref(), "Sorry to hear that, we are on it.")
    conn.send_private(mention_ref(), "Could you send us your account number?")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "mentions" in logged or caplog.records  # logging really was on
    for secret in SECRETS.values():
        assert secret not in logged
    assert fakex.requests_to("/2/tweets")[0].headers["Authorization"].startswith("OAuth ")


# --------------------------------------------------------------------------- writing


def test_reply_sends_exactly_the_expected_request(fakex: FakeX,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connector(fakex, monkeypatch, **posting())
    result = conn.reply(mention_ref(), "Sorry about that! We have sent you a DM.")
    (call,) = fakex.seen
    assert (call.method, call.path) == ("POST", "/2/tweets")
    assert call.json == {"text": "Sorry about that! We have sent you a DM.",
                         "reply": {"in_reply_to_tweet_id": "1578516295611748353"}}
    auth = call.headers["Authorization"]
    assert auth.startswith("OAuth ")
    assert 'oauth_consumer_key="ck-SECRET-bbbb"' in auth and 'oauth_token="at-SECRET-dddd"' in auth
    assert "oauth_signature=" in auth
    # Secrets are used to sign, never sent.
    assert "cs-SECRET-cccc" not in auth and "as-SECRET-eeee" not in auth
    assert result.external_id == "1456012973835788293"
    assert result.url == "https://x.com/Twitter/status/1456012973835788293"


def test_reply_with_an_oauth2_user_token(fakex: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {**SECRETS, "TW_USER": "user-token-ffff"}
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    config = make_config("sqlite:///unused.db", [
        source(fakex, oauth2_user_token_env="TW_USER")])
    conn = build_connector(config.sources[0], config, environ=secrets)
    conn.reply(mention_ref(), "Thanks for telling us.")
    assert fakex.seen[0].headers["Authorization"] == "Bearer user-token-ffff"


def test_direct_message_request(fakex: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connector(fakex, monkeypatch, **posting())
    result = conn.send_private(mention_ref(), "Hi, could you DM us your order number?")
    (call,) = fakex.seen
    assert (call.method, call.path) == (
        "POST", f"/2/dm_conversations/with/{DM_PERSON_ID}/messages")
    assert call.json == {"text": "Hi, could you DM us your order number?"}
    assert call.headers["Authorization"].startswith("OAuth ")
    assert result.external_id == "1585800613253812228"
    assert result.url == "https://x.com/messages/750362064426721281-1072250532645998596"


def test_closed_dms_say_so(fakex: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    fakex.script("POST", f"/2/dm_conversations/with/{DM_PERSON_ID}/messages", 403,
                 problem(403, "Forbidden", "You cannot send messages to this user."))
    conn = connector(fakex, monkeypatch, **posting())
    with pytest.raises(SendError) as caught:
        conn.send_private(mention_ref(), "Hello")
    assert "direct messages are closed" in str(caught.value)
    assert "Reply in public" in str(caught.value)


def test_missing_dm_permission_is_an_auth_failure(fakex: FakeX,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fakex.script("POST", f"/2/dm_conversations/with/{DM_PERSON_ID}/messages", 403,
                 problem(403, "Forbidden", "Your client app is not configured with the "
                         "appropriate oauth1 app permissions for this endpoint."))
    conn = connector(fakex, monkeypatch, **posting())
    with pytest.raises(AuthFailed, match="consumer_key_env"):
        conn.send_private(mention_ref(), "Hello")


def test_posting_without_credentials_is_refused_before_any_request(
    fakex: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connector(fakex, monkeypatch)
    with pytest.raises(AuthFailed, match="posting to X is not configured"):
        conn.reply(mention_ref(), "hi")
    with pytest.raises(SendError, match="No X user id"):
        conn.send_private(mention_ref(author_external_id=None), "hi")
    assert fakex.seen == []


def test_too_long_reply_is_refused_before_sending(fakex: FakeX,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connector(fakex, monkeypatch, **posting())
    with pytest.raises(SendError) as caught:
        conn.reply(mention_ref(), "申" * 141)
    assert "282 characters" in str(caught.value) and "limit is 280" in str(caught.value)
    assert fakex.seen == []
    conn.reply(mention_ref(), "申" * 140)
    assert len(fakex.seen) == 1


def test_server_error_while_posting_is_transient(fakex: FakeX,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fakex.script("POST", "/2/tweets", 503, problem(503, "Service Unavailable", "busy"))
    fakex.script("POST", "/2/tweets", 429, problem(429, "Too Many Requests", "slow down"),
                 headers={"x-rate-limit-reset": "1893456000"})
    conn = connector(fakex, monkeypatch, **posting())
    with pytest.raises(Transient) as failed:
        conn.reply(mention_ref(), "hi")
    # Not "will retry": an unanswered post is left for a person to check, never re-sent.
    assert "may have gone out: check the account" in failed.value.message
    assert "will retry" not in failed.value.message
    with pytest.raises(RateLimited):
        conn.reply(mention_ref(), "hi")
    assert len(fakex.seen) == 2


# ------------------------------------------------------------------- weighted length


@pytest.mark.parametrize(("text", "length"), [
    ("hello", 5),
    ("see https://example.com/a/very/long/path/that/goes/on/and/on?x=1 now", 4 + 23 + 4),
    ("www.acme.example.com and acme.com/help", 23 + 5 + 23),
    ("see www.acme.example please", 4 + 23 + 7),  # no known TLD: "www." alone makes it one
    ("docs at acme.io", 8 + 23),
    ("日本語", 6),
    ("한국어 ok", 6 + 1 + 2),  # Hangul weighs 2 each; space and Latin 1
    ("café", 4),  # NFC: é is one code point
    ("cafe\u0301", 4),  # decomposed é is normalised first
    ("👍", 2),
    ("👨\u200d👩\u200d👧\u200d👦", 2),  # a family joined by ZWJ is one emoji
    ("👍🏽", 2),  # skin tone modifier joins the emoji
    # Quotes and dashes (U+2010-201F) weigh 1; the ellipsis U+2026 is outside the light
    # ranges and weighs 2, as X counts it.
    ("“quoted” — dash…", 17),
])
def test_weighted_length(text: str, length: int) -> None:
    assert weighted_length(text) == length


def _weigh_each(text: str) -> int:
    """X's weighing read code point by code point, as twitter-text describes it: the oracle
    for the whole-string version the connector uses."""
    light_ranges = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
    total, joined = 0, False
    for char in text:
        cp = ord(char)
        if joined or cp in (0xFE0E, 0xFE0F, 0x20E3) or 0x1F3FB <= cp <= 0x1F3FF \
                or 0xE0020 <= cp <= 0xE007F:
            joined = False
        elif cp == 0x200D:
            joined = True
        else:
            total += 1 if any(lo <= cp <= hi for lo, hi in light_ranges) else 2
    return total


# Characters near every boundary the weighing has: the light ranges' ends, the joiners,
# skin tones, tags, and emoji, CJK and Hangul around them.
_EDGES = "".join(map(chr, [
    0x41, 0x10FF, 0x1100, 0x1FFF, 0x2000, 0x200C, 0x200D, 0x200E, 0x200F, 0x2010, 0x201F,
    0x2020, 0x2026, 0x2031, 0x2032, 0x2037, 0x2038, 0x20E3, 0x2764, 0xFE0E, 0xFE0F, 0x4E2D,
    0xAC00, 0x1F3FA, 0x1F3FB, 0x1F3FF, 0x1F400, 0x1F44D, 0x1F468, 0xE001F, 0xE0020, 0xE007F,
    0xE0080]))


@settings(max_examples=400, deadline=None)
# A list joined, not st.text(alphabet=...): that would fold the edges into one uniform
# character set, where they are a few among a million.
@given(st.lists(st.sampled_from(_EDGES) | st.characters(codec="utf-8"), max_size=40)
       .map("".join))
def test_weighted_length_counts_as_code_point_by_code_point(text: str) -> None:
    assert _weigh(text) == _weigh_each(text)


def test_length_limit_boundaries() -> None:
    assert check_reply_length("a" * 280) == 280
    with pytest.raises(SendError, match="Shorten it by 1"):
        check_reply_length("a" * 281)
    url = "https://example.com/" + "x" * 300
    assert check_reply_length("a" * 257 + url) == 280
    with pytest.raises(SendError):
        check_reply_length("  ")


# ------------------------------------------------------------------------ read budget


def test_read_allowance_spreads_the_cap_over_the_month() -> None:
    cap = 10_000
    start = datetime(2025, 4, 1, tzinfo=UTC)  # a 30-day month
    assert read_allowance(cap, 0, start) == 333  # one day's share to begin with
    assert read_allowance(cap, 0, start + timedelta(days=14)) == 5_000
    assert read_allowance(cap, 5_000, start + timedelta(days=14)) == 0
    assert read_allowance(cap, 9_990, datetime(2025, 4, 30, 23, tzinfo=UTC)) == 10
    assert read_allowance(cap, 10_000, datetime(2025, 4, 30, 23, tzinfo=UTC)) == 0
    # Running ahead of the pace waits until the pace catches up; a spent cap waits a month.
    resume = next_read_at(cap, 5_000, start + timedelta(days=14))
    assert start + timedelta(days=14) < resume < start + timedelta(days=14, hours=1)
    assert read_allowance(cap, 5_000, resume + timedelta(seconds=1)) >= 10
    assert next_read_at(cap, 10_000, start) == datetime(2025, 5, 1, tzinfo=UTC)


def test_budget_pauses_without_calling_x(fakex: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connector(fakex, monkeypatch, monthly_read_cap=3000)
    conn.clock = lambda: datetime(2025, 4, 15, tzinfo=UTC)
    spent = TwitterCursor(period="2025-04", read=1600).dumps()
    batch = conn.fetch(spent)
    assert fakex.seen == []
    assert batch.mentions == [] and batch.next_cursor is None and batch.requests == 0
    assert "1,600 of 3,000" in batch.notes[0]


def test_budget_limits_a_pass_and_continues_the_backlog_next_time(
    fakex: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connector(fakex, monkeypatch, monthly_read_cap=3000, mentions=False)
    conn.clock = lambda: datetime(2025, 4, 15, tzinfo=UTC)
    # Allowance now: 3000 * 15/30 - 1490 = 10 posts: one page of the minimum size.
    batch = conn.fetch(TwitterCursor(period="2025-04", read=1490).dumps())
    (call,) = fakex.seen
    assert call.args["max_results"] == "10"
    cursor = json.loads(batch.next_cursor or "")
    page1 = recording("v2_search_recent__async")["response"]["body"]["meta"]
    assert cursor["queries"]["search"]["next_token"] == page1["next_token"]
    assert "since_id" not in cursor["queries"]["search"]
    assert cursor["usage"] == {"period": "2025-04", "read": 1500}
    assert batch.notes == ["search: more to read next pass"]
    # Later that month the backlog continues from the token, with the same start time.
    conn.clock = lambda: datetime(2025, 4, 20, tzinfo=UTC)
    fakex.seen.clear()
    again = conn.fetch(batch.next_cursor)
    (cont,) = fakex.seen
    assert cont.args["next_token"] == page1["next_token"]
    assert cont.args["start_time"] == call.args["start_time"]
    done = json.loads(again.next_cursor or "")["queries"]["search"]
    assert done == {"since_id": page1["newest_id"]}


def test_new_month_resets_the_count(fakex: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connector(fakex, monkeypatch, monthly_read_cap=3000, search=False)
    conn.clock = lambda: datetime(2025, 5, 1, 1, tzinfo=UTC)
    batch = conn.fetch(TwitterCursor(period="2025-04", read=3000).dumps())
    assert json.loads(batch.next_cursor or "")["usage"] == {"period": "2025-05", "read": 12}


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize(("extra", "message"), [
    ({"lookback": "8d"}, "at most 7 days"),
    ({"account": None, "account_user_id": None}, "needs `account`"),
    ({"consumer_key_env": "TW_CK"}, "all four"),
    ({"base_url": "ftp://x"}, "http"),
    ({"bearer_token": "oops"}, "unknown key"),
])
def test_settings_errors_name_the_key(fakex: FakeX, extra: dict[str, Any], message: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        make_config("sqlite:///unused.db", [source(fakex, **extra)])


def test_missing_secret_is_a_config_error(fakex: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TW_BEARER", raising=False)
    with pytest.raises(ConfigError, match=r"\$TW_BEARER is not set"):
        make_config("sqlite:///unused.db", [source(fakex)])


def _quote_and_repost_page() -> dict[str, Any]:
    page = enrich(body("v2_users_mentions__async"), "newer")
    page["meta"].pop("next_token")
    quote, repost = page["data"]
    quote["referenced_tweets"] = [{"type": "quoted", "id": "1577730467436138524"}]
    repost["referenced_tweets"] = [{"type": "retweeted", "id": "1577730467436138524"}]
    return page


@pytest.mark.parametrize(("include_retweets", "kinds"), [
    (False, ["quote"]),
    (True, ["quote", "repost"]),
])
def test_quote_posts_are_kept_and_reposts_only_on_request(
    fakex: FakeX, monkeypatch: pytest.MonkeyPatch, include_retweets: bool, kinds: list[str],
) -> None:
    fakex.script("GET", MENTIONS, 200, _quote_and_repost_page())
    conn = connector(fakex, monkeypatch, search=False, include_retweets=include_retweets)
    batch = conn.fetch(None)
    assert [m.kind for m in batch.mentions] == kinds
    assert batch.items_read == 2
