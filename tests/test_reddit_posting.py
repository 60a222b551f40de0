"""Reddit replies and private messages: the requests sent are compared with the requests praw
sent to the real Reddit in the recorded cassettes; RATELIMIT, length limits, read-only."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from connectors.reddit import RedditConnector
from mentionwatch.connector import StoredMentionRef
from mentionwatch.errors import (
    AuthFailed,
    RateLimited,
    SendError,
    SendUnconfirmed,
    Transient,
)
from tests.apiserver import _api_server, api_fixture, json_response, load, requests_to  # noqa: F401 (fixture `api`)
from tests.reddit_api import COMMENT, COMPOSE, SENT, TOKEN_PATH, FakeReddit, replay
from tests.test_reddit import ENV, connector


def recorded_request(name: str) -> dict[str, Any]:
    request: dict[str, Any] = load("reddit", name)["request"]
    return request


def ref(external_id: str, author: str = "subreddit_stats",
        conversation: str | None = None) -> StoredMentionRef:
    return StoredMentionRef(external_id=external_id, url=None, author_handle=author,
                            author_external_id=None, conversation_id=conversation,
                            kind="comment" if external_id.startswith("t1_") else "submission",
                            raw={"name": external_id})


def test_reply_to_a_comment_sends_what_reddit_expects(api: HTTPServer) -> None:
    FakeReddit(api)
    expected = recorded_request("api_comment__reply_to_comment.json")
    reddit = connector(api)
    try:
        result = reddit.reply(ref(expected["body_form"]["thing_id"]),
                              expected["body_form"]["text"])
    finally:
        reddit.close()
    [sent] = requests_to(api, COMMENT, "POST")
    assert sent.args.to_dict() == expected["query"] == {"raw_json": "1"}
    assert sent.form.to_dict() == expected["body_form"] == {
        "api_type": "json", "thing_id": "t1_d1616q2", "text": "Comment reply"}
    assert sent.headers["Authorization"] == expected["headers"]["Authorization"]
    assert sent.headers["Content-Type"] == expected["headers"]["Content-Type"]
    base = api.url_for("/").rstrip("/")
    assert result.external_id == "t1_d1680wu"
    assert result.url == f"{base}/r/<TEST_SUBREDDIT>/comments/4b1tfm/_/d1680wu/"
    # The token was fetched once, with the script app's password grant.
    assert len(requests_to(api, TOKEN_PATH)) == 1


def test_reply_to_a_submission(api: HTTPServer) -> None:
    FakeReddit(api)
    expected = recorded_request("api_comment__reply_to_submission.json")
    reddit = connector(api)
    try:
        result = reddit.reply(ref("t3_4b1tfm"), "Test reply")
    finally:
        reddit.close()
    [sent] = requests_to(api, COMMENT, "POST")
    assert sent.form.to_dict() == expected["body_form"]
    assert result.external_id == "t1_d162ara"


def test_private_message_sends_what_reddit_expects(api: HTTPServer) -> None:
    FakeReddit(api)
    expected = recorded_request("api_compose__message_to_user.json")
    reddit = connector(api, message_subject="PRAW test")
    try:
        result = reddit.send_private(ref("t1_d1616q2", author="subreddit_stats"),
                                     "This is a test from PRAW")
    finally:
        reddit.close()
    [sent] = requests_to(api, COMPOSE, "POST")
    assert sent.args.to_dict() == expected["query"]
    assert sent.form.to_dict() == expected["body_form"] == {
        "api_type": "json", "subject": "PRAW test", "text": "This is a test from PRAW",
        "to": "subreddit_stats"}
    assert sent.headers["Authorization"] == expected["headers"]["Authorization"]
    # /api/compose/ returns no id; the sent box gives it.
    assert len(requests_to(api, SENT, "GET")) == 1
    base = api.url_for("/").rstrip("/")
    assert result.external_id == "t4_30rhflk"
    assert result.url == f"{base}/message/messages/30rhflk"


def test_subject_names_the_brand_and_from_subreddit_is_sent(api: HTTPServer) -> None:
    FakeReddit(api)
    reddit = connector(api, message_from_subreddit="acme")
    try:
        reddit.send_private(ref("t3_4b1tfm", author="alice"), "Hello")
    finally:
        reddit.close()
    [sent] = requests_to(api, COMPOSE, "POST")
    assert sent.form["subject"] == "About your post mentioning Sirocco"
    assert sent.form["from_sr"] == "acme" and sent.form["to"] == "alice"


def test_ratelimit_on_posting_is_rate_limited_for_the_stated_minutes(api: HTTPServer) -> None:
    api.expect_request(TOKEN_PATH).respond_with_json(
        load("reddit", "oauth_access_token__client_credentials.json")["response"]["body"])
    body = {"json": {"errors": [["RATELIMIT", "you are doing that too much. try again in 9 "
                                 "minutes.", "ratelimit"]]}}
    api.expect_request(COMMENT, method="POST").respond_with_handler(
        lambda r: json_response(body))
    api.expect_request(COMPOSE, method="POST").respond_with_handler(
        lambda r: json_response(body))
    reddit = connector(api)
    before = datetime.now(UTC)
    try:
        with pytest.raises(RateLimited, match="try again in 9 minutes") as err:
            reddit.reply(ref("t1_d1616q2"), "Thanks for the report")
        with pytest.raises(RateLimited):
            reddit.send_private(ref("t1_d1616q2"), "Thanks for the report")
    finally:
        reddit.close()
    assert err.value.until is not None
    assert before + timedelta(minutes=9) <= err.value.until <= \
        datetime.now(UTC) + timedelta(minutes=9, seconds=1)
    # praw did not sleep and retry: one request each.
    assert len(requests_to(api, COMMENT)) == 1 and len(requests_to(api, COMPOSE)) == 1


def test_other_api_errors_are_send_errors(api: HTTPServer) -> None:
    api.expect_request(TOKEN_PATH).respond_with_json(
        load("reddit", "oauth_access_token__client_credentials.json")["response"]["body"])
    api.expect_request(COMMENT, method="POST").respond_with_json(
        {"json": {"errors": [["THREAD_LOCKED", "that comment is locked", "parent"]]}})
    reddit = connector(api)
    try:
        with pytest.raises(SendError, match="THREAD_LOCKED: that comment is locked"):
            reddit.reply(ref("t1_d1616q2"), "hello")
    finally:
        reddit.close()


@pytest.mark.parametrize("answer", [
    b"<html>upstream reset</html>",  # a success status with a body that is not JSON
    b'{"json": {"errors": [], "data": {"things": []}}}',  # no comment in the answer
])
def test_a_reply_whose_answer_does_not_show_it_may_have_gone_out(api: HTTPServer,
                                                                  answer: bytes) -> None:
    api.expect_request(TOKEN_PATH).respond_with_json(
        load("reddit", "oauth_access_token__client_credentials.json")["response"]["body"])
    api.expect_request(COMMENT, method="POST").respond_with_data(
        answer, status=200, content_type="application/json")
    reddit = connector(api)
    try:
        with pytest.raises(SendUnconfirmed, match=r"(may have been posted|did not return it)"):
            reddit.reply(ref("t1_d1616q2"), "Thanks for the report")
    finally:
        reddit.close()
    assert len(requests_to(api, COMMENT)) == 1


def test_a_server_error_while_posting_is_not_posted_again(api: HTTPServer) -> None:
    FakeReddit(api)
    api.clear_all_handlers()
    api.expect_request(TOKEN_PATH, method="POST").respond_with_handler(
        lambda r: replay("oauth_access_token__client_credentials.json"))
    # Reddit answers 500 now and then after the comment was made: prawcore would try the POST
    # twice more (a second and third copy of the reply), sleeping 2-4 s on the way.
    api.expect_request(COMMENT, method="POST").respond_with_handler(
        lambda r: replay("error_500_internal.json"))
    api.expect_request(COMPOSE, method="POST").respond_with_handler(
        lambda r: replay("error_500_internal.json"))
    reddit = connector(api)
    started = time.monotonic()
    try:
        with pytest.raises(Transient, match="500 on /api/comment/"):
            reddit.reply(ref("t1_d1616q2"), "Thanks for the report")
        with pytest.raises(Transient, match="500 on /api/compose/"):
            reddit.send_private(ref("t1_d1616q2"), "Thanks for the report")
    finally:
        reddit.close()
    assert len(requests_to(api, COMMENT)) == 1 and len(requests_to(api, COMPOSE)) == 1
    assert time.monotonic() - started < 2


def test_a_401_while_posting_is_sent_once_more_with_a_new_token(api: HTTPServer) -> None:
    fake = FakeReddit(api)
    reddit = connector(api, message_subject="PRAW test")
    try:
        reddit.reply(ref("t1_d1616q2"), "First reply")
        # The token expires early: Reddit answers 401 and took nothing. The reply had failed
        # ("Reddit refused the access token") since posting calls are sent once.
        fake.expire_token()
        result = reddit.reply(ref("t1_d1616q2"), "Comment reply")
        fake.expire_token()
        message = reddit.send_private(ref("t1_d1616q2"), "This is a test from PRAW")
    finally:
        reddit.close()
    assert result.external_id == "t1_d1680wu" and message.external_id == "t4_30rhflk"
    assert fake.tokens == ["<ACCESS_TOKEN>", "<ACCESS_TOKEN>2", "<ACCESS_TOKEN>3"]
    assert [r.headers["Authorization"] for r in requests_to(api, COMMENT)] == [
        "bearer <ACCESS_TOKEN>", "bearer <ACCESS_TOKEN>", "bearer <ACCESS_TOKEN>2"]
    assert [r.headers["Authorization"] for r in requests_to(api, COMPOSE)] == [
        "bearer <ACCESS_TOKEN>2", "bearer <ACCESS_TOKEN>3"]


def test_a_401_after_a_new_token_is_not_tried_again(api: HTTPServer) -> None:
    fake = FakeReddit(api)
    reddit = connector(api)
    api.clear_all_handlers()
    api.expect_request(TOKEN_PATH, method="POST").respond_with_handler(fake._token)
    api.expect_request(COMMENT, method="POST").respond_with_handler(
        lambda r: replay("error_401_invalid_token.json"))
    try:
        with pytest.raises(AuthFailed, match="refused the access token"):
            reddit.reply(ref("t1_d1616q2"), "Thanks for the report")
    finally:
        reddit.close()
    assert len(requests_to(api, COMMENT)) == 2 and len(fake.tokens) == 2


def test_limits_are_checked_before_anything_is_sent(api: HTTPServer) -> None:
    FakeReddit(api)
    reddit = connector(api)
    try:
        with pytest.raises(SendError, match="10001 characters; Reddit allows 10000"):
            reddit.reply(ref("t1_d1616q2"), "x" * 10_001)
        with pytest.raises(SendError, match="10001 characters"):
            reddit.send_private(ref("t1_d1616q2"), "x" * 10_001)
        with pytest.raises(SendError, match="empty"):
            reddit.reply(ref("t1_d1616q2"), "   ")
        with pytest.raises(SendError, match="no author"):
            reddit.send_private(ref("t1_d1616q2", author="[deleted]"), "hi")
    finally:
        reddit.close()
    long_subject = connector(api, message_subject="s" * 101)
    try:
        with pytest.raises(SendError, match="subject is 101 characters; Reddit allows 100"):
            long_subject.send_private(ref("t1_d1616q2"), "hi")
    finally:
        long_subject.close()
    # Exactly at the limit is fine.
    reddit = connector(api)
    try:
        assert reddit.reply(ref("t1_d1616q2"), "y" * 10_000).external_id == "t1_d1680wu"
    finally:
        reddit.close()
    assert [len(r.form["text"]) for r in requests_to(api, COMMENT)] == [10_000]
    assert requests_to(api, COMPOSE) == []


def test_read_only_source_cannot_post(api: HTTPServer) -> None:
    FakeReddit(api)
    reddit: RedditConnector = connector(
        api, environ={"RD_ID": ENV["RD_ID"], "RD_SECRET": ENV["RD_SECRET"]},
        username_env=None, password_env=None)
    try:
        batch = reddit.fetch(None)  # reading works with app-only credentials
        with pytest.raises(SendError, match="cannot post"):
            reddit.reply(ref("t1_d1616q2"), "hello")
    finally:
        reddit.close()
    assert len(batch.mentions) == 6
    [token] = requests_to(api, TOKEN_PATH)
    assert token.form["grant_type"] == "client_credentials"
    assert requests_to(api, COMMENT) == []
