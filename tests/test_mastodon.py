"""Mastodon connector (Mastodon.py) against a fake Mastodon server on 127.0.0.1.

The fake answers the documented REST endpoints from fixture entities and applies
`since_id` / `min_id` / `max_id` / `limit` the way Mastodon does (newest first)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request

from connectors.mastodon import MastodonConnector, MastodonSettings, status_length
from mentionwatch.config import Config, SourceConfig
from mentionwatch.connector import ConnectorContext, StoredMentionRef
from mentionwatch.errors import (
    AuthFailed,
    BadResponse,
    RateLimited,
    SendError,
    SendUnconfirmed,
    Transient,
)
from mentionwatch.models import Mention
from mentionwatch.pipeline import poll
from mentionwatch.store import Store
from tests.apiserver import _api_server, api_fixture, json_response, load, requests_to  # noqa: F401 (fixture `api`)
from tests.conftest import BRAND, make_config

TOKEN = "masto-secret-token"
ENV = {"MASTO_TOKEN": TOKEN}
BRAND_M = dict(BRAND, own_accounts={"mastodon": ["acmehelp"]})
NOTIFS = "/api/v1/notifications"
TAG = "/api/v1/timelines/tag/acmefail"
SEARCH = "/api/v2/search"
STATUSES = "/api/v1/statuses"


def _id(value: str) -> tuple[int, str]:
    return (len(value), value)


def paged(items: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    """Mastodon's id paging: newer than since_id/min_id, older than max_id, newest first."""
    args = request.args
    out = sorted(items, key=lambda i: _id(i["id"]), reverse=True)
    if args.get("max_id"):
        out = [i for i in out if _id(i["id"]) < _id(args["max_id"])]
    if args.get("since_id"):
        out = [i for i in out if _id(i["id"]) > _id(args["since_id"])]
    if args.get("min_id"):
        # min_id returns the page immediately newer than min_id (still newest first here).
        out = [i for i in out if _id(i["id"]) > _id(args["min_id"])]
        out = out[-int(args.get("limit", "20")):]
    return out[:int(args.get("limit", "20"))]


class FakeMastodon:
    def __init__(self, api: HTTPServer) -> None:
        self.notifications = load("mastodon", "notifications.json")
        self.tag = load("mastodon", "tag_acmefail.json")
        self.search = load("mastodon", "search_acme.json")
        api.expect_request("/api/v1/accounts/verify_credentials").respond_with_json(
            load("mastodon", "verify_credentials.json"))
        api.expect_request(NOTIFS).respond_with_handler(
            lambda r: json_response(paged(self.notifications, r)))
        api.expect_request(TAG).respond_with_handler(lambda r: json_response(paged(self.tag, r)))
        api.expect_request(SEARCH).respond_with_handler(
            lambda r: json_response(dict(self.search, statuses=paged(self.search["statuses"], r))))
        api.expect_request("/api/v2/instance/").respond_with_json(
            load("mastodon", "instance_v2.json"))
        api.expect_request(STATUSES, method="POST").respond_with_json(
            load("mastodon", "status_created.json"))


def _connector(api: HTTPServer, environ: dict[str, str] | None = None,
               **settings: Any) -> MastodonConnector:
    config = make_config("sqlite://", [], brand=BRAND_M)
    data = {"api_base_url": api.url_for("/").rstrip("/"), "access_token_env": "MASTO_TOKEN",
            "hashtags": ["#acmefail"], "search": ["acme"], **settings}
    ctx = ConnectorContext(source=SourceConfig(name="masto", kind="mastodon"),
                           brand=config.brand, poll=config.poll,
                           environ=ENV if environ is None else environ)
    return MastodonConnector(MastodonSettings.model_validate(data), ctx)


def test_first_pass_reads_mentions_tags_and_search_and_skips_own_and_boosts(
    api: HTTPServer,
) -> None:
    FakeMastodon(api)
    masto = _connector(api)
    batch = masto.fetch(None)
    host = api.url_for("/").split("//")[1].rstrip("/")

    [notif_req] = requests_to(api, NOTIFS)
    assert notif_req.args.getlist("types[]") == ["mention"]
    assert notif_req.args["limit"] == "40" and "since_id" not in notif_req.args
    assert notif_req.headers["Authorization"] == f"Bearer {TOKEN}"
    [search_req] = requests_to(api, SEARCH)
    assert search_req.args["q"] == "acme" and search_req.args["type"] == "statuses"
    assert "resolve" not in search_req.args

    by_id = {m.external_id: m for m in batch.mentions}
    # Own account (acme), own_accounts (acmehelp) and a boost are not mentions; s1 once.
    assert sorted(by_id) == ["113500000000000010", "113500000000000020",
                             "113500000000000025", "113500000000000030"]
    first = by_id["113500000000000010"]
    assert first.kind == "mention"
    assert first.text == ("@acme my fiber has been down for 3 days & nobody answers the "
                          "phone. #acmefail")
    assert first.author is not None
    assert first.author.handle == f"alice@{host}"
    assert first.author.display_name == "Alice :verified:"
    assert first.author.followers == 12000
    assert first.url == "https://social.example/@alice/113500000000000010"
    assert (first.likes, first.reposts, first.replies) == (4, 2, 1)
    assert first.created_at == datetime(2026, 11, 19, 8, 10, tzinfo=UTC)
    assert first.raw["account"]["acct"] == "alice"
    bob = by_id["113500000000000020"]
    assert bob.is_reply_to_brand and bob.author and bob.author.handle == "bob@other.example"
    assert "<script>" not in bob.text
    carol = by_id["113500000000000025"]
    assert (carol.kind, carol.title, carol.language) == ("post", "ISP rant", "de")

    import json
    assert json.loads(batch.next_cursor or "") == {
        "notifications": "400030", "search:acme": "113500000000000025",
        "tag:acmefail": "113500000000000025"}


def test_pages_back_to_the_cursor_then_resumes(api: HTTPServer) -> None:
    fake = FakeMastodon(api)
    masto = _connector(api, page_size=2, hashtags=[], search=[])
    batch = masto.fetch('{"notifications": "400005"}')
    reqs = requests_to(api, NOTIFS)
    assert [(r.args.get("since_id"), r.args.get("max_id")) for r in reqs] == [
        ("400005", None), ("400005", "400020")]
    assert len(batch.mentions) == 3
    assert batch.next_cursor == '{"notifications": "400030"}'

    fake.notifications += load("mastodon", "notifications_later.json")
    again = masto.fetch(batch.next_cursor)
    assert requests_to(api, NOTIFS)[-1].args["since_id"] == "400030"
    assert [m.external_id for m in again.mentions] == ["113500000000000040"]
    assert again.next_cursor == '{"notifications": "400040"}'
    # Nothing new: cursor unchanged.
    assert masto.fetch(again.next_cursor).next_cursor == again.next_cursor


def test_rate_limit_raises_with_reset_time(api: HTTPServer) -> None:
    reset = datetime.now(UTC) + timedelta(minutes=5)
    api.expect_request("/api/v1/accounts/verify_credentials").respond_with_json(
        load("mastodon", "error_429.json"), status=429,
        headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                 "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    with pytest.raises(RateLimited) as info:
        _connector(api).fetch(None)
    assert info.value.until is not None
    assert abs((info.value.until - reset).total_seconds()) < 5


@pytest.mark.parametrize("reset", ["999999999999", "99999999999999999999"])
def test_a_rate_limit_reset_beyond_the_calendar_counts_as_not_sent(api: HTTPServer,
                                                                   reset: str) -> None:
    # It had escaped as "internal error: ValueError: year 33658 is out of range".
    api.expect_request("/api/v1/accounts/verify_credentials").respond_with_json(
        load("mastodon", "error_429.json"), status=429,
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    with pytest.raises(RateLimited) as info:
        _connector(api).fetch(None)
    assert info.value.until is None


def test_auth_failure_names_the_setting_and_hides_the_token(api: HTTPServer) -> None:
    api.expect_request("/api/v1/accounts/verify_credentials").respond_with_json(
        load("mastodon", "error_401.json"), status=401)
    with pytest.raises(AuthFailed) as info:
        _connector(api).fetch(None)
    assert "access_token_env" in str(info.value) and "$MASTO_TOKEN" in str(info.value)
    assert "The access token is invalid" in str(info.value)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    with pytest.raises(AuthFailed, match="MASTO_TOKEN"):
        _connector(api, environ={})


@pytest.mark.parametrize(("status", "body", "error"), [
    (200, b"[{\"id\": ", BadResponse),
    (200, b"{\"id\": \"1\"}", BadResponse),
    (503, b"<html>down</html>", Transient),
])
def test_bad_json_and_server_errors(api: HTTPServer, status: int, body: bytes,
                                    error: type[Exception]) -> None:
    api.expect_request("/api/v1/accounts/verify_credentials").respond_with_json(
        load("mastodon", "verify_credentials.json"))
    api.expect_request(NOTIFS).respond_with_data(body, status=status,
                                                 content_type="application/json")
    with pytest.raises(error):
        _connector(api, hashtags=[], search=[]).fetch('{"notifications": "1"}')


def _ref(mention_id: str = "113500000000000010") -> StoredMentionRef:
    raw = next(n["status"] for n in load("mastodon", "notifications.json")
               if n["status"]["id"] == mention_id)
    return StoredMentionRef(mention_id, raw["url"], "alice@social.example", raw["account"]["id"],
                            mention_id, "mention", raw)


def test_reply_sends_exact_request(api: HTTPServer) -> None:
    FakeMastodon(api)
    result = _connector(api, visibility="unlisted").reply(_ref(), "Sorry about this.")
    assert result.external_id == "113500000000000050"
    assert result.url == "https://social.example/@acme/113500000000000050"
    [post] = requests_to(api, STATUSES, "POST")
    assert post.form.to_dict(flat=False) == {
        "status": ["@alice Sorry about this."],
        "in_reply_to_id": ["113500000000000010"],
        "visibility": ["unlisted"],
        "sensitive": ["0"],  # Mastodon.py always sends it; false is the documented default
    }
    assert post.headers["Idempotency-Key"] == "mentionwatch-reply-113500000000000010"
    assert post.headers["Authorization"] == f"Bearer {TOKEN}"


def test_private_follow_up_is_direct_and_mentions_only_the_author(api: HTTPServer) -> None:
    FakeMastodon(api)
    masto = _connector(api)
    masto.send_private(_ref(), "Could you send us your account number? help@acme.example")
    [post] = requests_to(api, STATUSES, "POST")
    assert post.form.to_dict(flat=False) == {
        "status": ["@alice Could you send us your account number? help@acme.example"],
        "visibility": ["direct"],
        "sensitive": ["0"],
    }
    assert post.headers["Idempotency-Key"] == "mentionwatch-private-113500000000000010"
    with pytest.raises(SendError, match=r"@bob@other\.example"):
        masto.send_private(_ref(), "@alice cc @bob@other.example, please DM us")
    assert len(requests_to(api, STATUSES, "POST")) == 1


def test_length_is_checked_against_the_instance_limit(api: HTTPServer) -> None:
    FakeMastodon(api)
    masto = _connector(api)
    assert masto.max_characters() == 120  # from configuration.statuses.max_characters
    with pytest.raises(SendError, match="allows 120"):
        masto.reply(_ref(), "x" * 120)
    assert requests_to(api, STATUSES, "POST") == []
    # A long link counts as 23 characters, as on Mastodon.
    masto.reply(_ref(), "See https://status.acme.example/" + "a" * 200 + " " + "y" * 80)
    assert len(requests_to(api, STATUSES, "POST")) == 1
    assert status_length("@bob@other.example hi") == len("@bob hi")


def test_refused_post_is_a_send_error_with_the_server_message(api: HTTPServer) -> None:
    FakeMastodon(api)
    api.clear_all_handlers()
    api.expect_request("/api/v2/instance/").respond_with_json(load("mastodon", "instance_v2.json"))
    api.expect_request(STATUSES, method="POST").respond_with_json(
        load("mastodon", "error_422.json"), status=422)
    with pytest.raises(SendError, match="character limit"):
        _connector(api).reply(_ref(), "hello")


@pytest.mark.parametrize("answer", [b"<html>Bad gateway</html>", b'{"content": "hi"}'])
def test_a_post_whose_answer_does_not_show_it_may_have_gone_out(api: HTTPServer,
                                                                 answer: bytes) -> None:
    FakeMastodon(api)
    api.clear_all_handlers()
    api.expect_request("/api/v2/instance/").respond_with_json(load("mastodon", "instance_v2.json"))
    api.expect_request(STATUSES, method="POST").respond_with_data(
        answer, status=200, content_type="application/json")
    # Not "refused" (a failed action can be retried): the outbox leaves it unknown.
    with pytest.raises(SendUnconfirmed, match="check the account before sending again"):
        _connector(api).reply(_ref(), "hello")


@contextmanager
def _polled(api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Config, Store, int]]:
    """A store that polled the fake instance once: its config, the store and its first
    mention's id."""
    monkeypatch.setenv("MASTO_TOKEN", TOKEN)
    FakeMastodon(api)
    source = {"name": "masto", "kind": "mastodon", "api_base_url": api.url_for("/").rstrip("/"),
              "access_token_env": "MASTO_TOKEN", "hashtags": ["acmefail"]}
    config = make_config(db_url, [source], brand=BRAND_M)
    store = Store.open(db_url)
    try:
        assert poll(config, store, environ=ENV).outcomes[0].stored == 4
        with store.session(readonly=True) as s:
            mention_id = s.scalar(select(Mention.id).order_by(Mention.id))
        assert mention_id is not None
        yield config, store, mention_id
    finally:
        store.close()


def _send(config: Config, store: Store) -> list[Any]:
    """Run the sender once against the fake instance."""
    from mentionwatch import outbox
    from mentionwatch.pipeline import build_connector

    return outbox.send_pending(config, store, connector_for=lambda src: build_connector(
        src, config, environ=ENV))


@pytest.mark.parametrize("headers", [
    {"X-RateLimit-Remaining": "299", "X-RateLimit-Reset": "soon"},
    {"X-RateLimit-Reset": "2026-11-19T09:10:00Z", "Date": "yesterday, around noon"},
])
def test_an_accepted_post_with_unreadable_rate_limit_headers_is_sent(
    api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str],
) -> None:
    from mentionwatch import outbox

    with _polled(api, db_url, monkeypatch) as (config, store, mention_id):
        outbox.approve(store, mention_id, "reply", operator="dana", text="Sorry!")
        api.clear_all_handlers()
        api.expect_request("/api/v2/instance/").respond_with_json(
            load("mastodon", "instance_v2.json"))
        # Mastodon.py cannot read the headers and raised its rate-limit error: the reply had
        # been recorded as failed, and `outbox retry` would have posted it a second time.
        api.expect_request(STATUSES, method="POST").respond_with_json(
            load("mastodon", "status_created.json"), headers=headers)
        [sent] = _send(config, store)
        assert (sent.state, sent.url) == ("sent", "https://social.example/@acme/113500000000000050")
        [action] = outbox.actions(store)
        assert action.posted_id == "113500000000000050"
        # Accepted, but the body does not show the post: unknown, never failed.
        api.clear_all_handlers()
        api.expect_request("/api/v2/instance/").respond_with_json(
            load("mastodon", "instance_v2.json"))
        api.expect_request(STATUSES, method="POST").respond_with_data(
            b"<html>ok</html>", status=200, content_type="text/html", headers=headers)
        with pytest.raises(SendUnconfirmed, match="may have gone out"):
            _connector(api).reply(_ref(), "hello")


@pytest.mark.parametrize("headers", [
    {"X-RateLimit-Remaining": "299", "X-RateLimit-Reset": "soon"},
    {"X-RateLimit-Reset": "2026-11-19T09:10:00Z", "Date": "yesterday, around noon"},
])
def test_a_read_with_unreadable_rate_limit_headers_is_read(
    api: HTTPServer, headers: dict[str, str], caplog: pytest.LogCaptureFixture,
) -> None:
    # Mastodon.py raised its rate-limit error on these whatever the status: every pass of
    # the source failed ("rate-limit headers that cannot be read"), for as long as the
    # server or its proxy sent them.
    api.expect_request("/api/v1/accounts/verify_credentials").respond_with_json(
        load("mastodon", "verify_credentials.json"), headers=headers)
    api.expect_request(NOTIFS).respond_with_json(load("mastodon", "notifications.json"),
                                                 headers=headers)
    FakeMastodon(api)
    masto = _connector(api, hashtags=[], search=[])
    with caplog.at_level(logging.WARNING, logger="connectors.mastodon"):
        first = masto.fetch(None)
        assert masto.fetch(first.next_cursor) is not None
    assert first.mentions
    warned = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(warned) == 1 and "going on without it" in warned[0]


def test_poll_stores_mentions_and_never_our_own_posts(
    api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MASTO_TOKEN", TOKEN)
    fake = FakeMastodon(api)
    source = {"name": "masto", "kind": "mastodon", "api_base_url": api.url_for("/").rstrip("/"),
              "access_token_env": "MASTO_TOKEN", "hashtags": ["acmefail"]}
    config = make_config(db_url, [source], brand=BRAND_M)
    store = Store.open(db_url)
    try:
        report = poll(config, store, environ=ENV)
        assert [(o.status, o.stored) for o in report.outcomes] == [("ok", 4)]
        # Our reply comes back in the hashtag timeline next pass: it is ours, so not stored.
        ours = copy.deepcopy(load("mastodon", "status_created.json"))
        ours["content"] += " #acmefail"
        fake.tag.append(ours)
        fake.notifications += load("mastodon", "notifications_later.json")
        report = poll(config, store, environ=ENV, force=True)
        assert [(o.status, o.stored) for o in report.outcomes] == [("ok", 1)]
        with store.session(readonly=True) as s:
            ids = sorted(s.scalars(select(Mention.external_id)))
        assert "113500000000000050" not in ids and "113500000000000040" in ids
        row = store.source_row("masto")
        assert row is not None and row.cursor and '"notifications": "400040"' in row.cursor
    finally:
        store.close()


HOSTILE_REASON = "Bad \x1b]0;owned\x07\x1b[2J thing"  # sets the window title, clears


def test_a_hostile_reason_phrase_is_stored_and_shown_inert(
    api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from werkzeug import Response

    from mentionwatch import outbox
    from mentionwatch.models import OutboxAction

    with _polled(api, db_url, monkeypatch) as (config, store, mention_id):
        outbox.approve(store, mention_id, "reply", operator="dana", text="Sorry!")
        api.clear_all_handlers()
        api.expect_request("/api/v1/accounts/verify_credentials").respond_with_json(
            load("mastodon", "verify_credentials.json"))
        api.expect_request("/api/v2/instance/").respond_with_json(
            load("mastodon", "instance_v2.json"))
        # Answers with no error text: Mastodon.py passes the server's reason phrase on.
        api.expect_request(STATUSES, method="POST").respond_with_response(Response(
            b"{}", status=f"422 {HOSTILE_REASON}", content_type="application/json"))
        api.expect_request(NOTIFS).respond_with_response(Response(
            b"{}", status=f"418 {HOSTILE_REASON}", content_type="application/json"))
        [sent] = _send(config, store)
        [polled] = poll(config, store, environ=ENV, force=True).outcomes
        assert sent.state == "failed" and "thing" in (sent.message or "")
        assert polled.status == "failed" and "thing" in (polled.message or "")
        row = store.source_row("masto")
        with store.session(readonly=True) as s:
            error = s.scalar(select(OutboxAction.last_error))
        for shown in (sent.message, polled.message, row.last_error if row else "", error):
            assert shown and "\x1b" not in shown and "\x07" not in shown


def test_approval_counts_the_author_the_reply_adds_against_the_instance_limit(
    api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mentionwatch import outbox

    with _polled(api, db_url, monkeypatch) as (config, store, mention_id):
        # The pass stored the instance's own limit (120 on this one) with the source.
        row = store.source_row("masto")
        assert row is not None and row.state is not None and row.state["max_characters"] == 120
        # 115 characters, and the connector puts "@alice " in front: 122 on Mastodon. It was
        # approved against 500 without the prefix, and then failed at sending.
        with pytest.raises(outbox.OutboxError, match=(
                r"The reply is 122 characters as mastodon counts them; the limit is 120\. "
                r"Shorten it by 2")):
            outbox.approve(store, mention_id, "reply", operator="dana", text="x" * 115)
        # A link counts 23, as on Mastodon: 650 characters, 38 as posted. It was refused as
        # over 500.
        link = "Status: https://status.acme.example/" + "a" * 614
        outbox.approve(store, mention_id, "reply", operator="dana", text=link)
        [sent] = _send(config, store)
        assert sent.state == "sent"
        assert requests_to(api, STATUSES, "POST")[-1].form["status"] == "@alice " + link


def test_a_private_follow_up_is_held_to_the_instance_limit_at_approval(
    api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mentionwatch import outbox
    from mentionwatch.outbox import save_draft_edits

    with _polled(api, db_url, monkeypatch) as (config, store, mention_id):
        # A direct post, "@alice " in front, on an instance that takes 120: approved, it had
        # failed only when sent.
        with pytest.raises(outbox.OutboxError, match=(
                r"The private follow-up is 122 characters as mastodon counts them; the limit "
                r"is 120\. Shorten it by 2")):
            outbox.approve(store, mention_id, "private", operator="dana", text="x" * 115)
        # The drafted text is measured too, not only a typed one.
        save_draft_edits(store, {mention_id: {"private": "y" * 118}}, operator="dana")
        with pytest.raises(outbox.OutboxError, match=r"follow-up is 125 characters"):
            outbox.approve(store, mention_id, "private", operator="dana")
        outbox.approve(store, mention_id, "private", operator="dana", text="z" * 113)
        [sent] = _send(config, store)
        assert sent.state == "sent"
        assert requests_to(api, STATUSES, "POST")[-1].form["status"] == "@alice " + "z" * 113


def test_private_limits_of_each_kind() -> None:
    from mentionwatch.rules_engine import measure_private

    assert measure_private("mastodon", "Hi.", _ref(), {"max_characters": 120}) == (
        len("@alice Hi."), 120)
    assert measure_private("twitter", "x" * 10_001) == (10_001, 10_000)
    assert measure_private("reddit", "x" * 20) == (20, 10_000)
    # Bluesky chat counts graphemes: a family emoji is one of its 1,000.
    assert measure_private("bluesky", "\U0001F468\u200D\U0001F469\u200D\U0001F467" * 3) == (
        3, 1000)
    assert measure_private("rss", "x" * 5)[1] is None  # a feed sends nothing


def test_a_reply_that_names_the_author_is_posted_and_counted_as_it_is(api: HTTPServer) -> None:
    from mentionwatch.rules_engine import measure_reply

    FakeMastodon(api)
    masto = _connector(api)
    # The stored handle of a local author carries the instance: the reply had gone out as
    # "@alice @alice@social.example Sorry ..." (the author named twice, 7 characters more).
    text = "@alice@social.example Sorry about this."
    masto.reply(_ref(), text)
    assert requests_to(api, STATUSES, "POST")[-1].form["status"] == text
    assert measure_reply("mastodon", text, _ref()) == (len("@alice Sorry about this."), 500)
    assert measure_reply("mastodon", "Sorry.", _ref(), {"max_characters": 120}) == (
        len("@alice Sorry."), 120)
    # `rules check` measures a draft for its sample author the same way.
    sample = StoredMentionRef("1", None, "a" * 15, None, None, "post", {})
    assert measure_reply("mastodon", "x" * 490, sample) == (490 + 17, 500)


def test_the_instance_limit_is_read_once_a_day_and_a_failure_falls_back(
    api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _polled(api, db_url, monkeypatch) as (config, store, _mention_id):
        before = store.source_row("masto")
        assert before is not None and before.state is not None
        assert poll(config, store, environ=ENV, force=True).outcomes[0].status == "ok"
        after = store.source_row("masto")
        assert after is not None and after.state == before.state  # not read again today
    # An older server: no v2, v1 says.
    api.clear_all_handlers()
    api.expect_request("/api/v2/instance/").respond_with_json({"error": "Not found"},
                                                              status=404)
    api.expect_request("/api/v1/instance/").respond_with_json(
        {"configuration": {"statuses": {"max_characters": 1000}}})
    assert _connector(api).max_characters() == 1000
    # The instance cannot be asked: the pass says so and goes on; a reply is left to the
    # instance to judge (it refuses one over its limit, and then nothing was posted). It had
    # been a server error while sending, so the reply was unknown, never sent.
    FakeMastodon(api)
    api.clear_all_handlers()
    api.expect_request("/api/v2/instance/").respond_with_data(b"down", status=503)
    FakeMastodon(api)
    masto = _connector(api, hashtags=[], search=[])
    batch = masto.fetch(None)
    assert batch.state is None
    assert batch.notes == ["the instance's length limit could not be read (Mastodon "
                           f"({masto.host}): server error 503.); replies are checked "
                           "against 500"]
    assert masto.reply(_ref(), "y" * 130).external_id == "113500000000000050"


async def test_the_tui_counts_the_reply_as_approval_does(
    api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual.widgets import Label

    from mentionwatch.outbox import save_draft_edits
    from mentionwatch.tui.app import TriageApp

    with _polled(api, db_url, monkeypatch) as (config, store, mention_id):
        save_draft_edits(store, {mention_id: {"reply": "x" * 115, "private": "p" * 120}},
                         operator="dana")
        app = TriageApp(config, store, refresh_every=3600)
        async with app.run_test(size=(160, 45)) as pilot:
            app.show(mention_id)
            await pilot.pause()
            label = str(app.query_one("#public-label", Label).content)
            private = str(app.query_one("#private-label", Label).content)
        # It had said "public reply  115/500", and nothing of the follow-up's length.
        assert "public reply  122/120  over by 2" in label
        assert "private follow-up (dm)  127/120  over by 7" in private
