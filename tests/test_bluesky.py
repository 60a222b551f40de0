"""Bluesky connector (atproto SDK) against a fake PDS/AppView on 127.0.0.1 serving XRPC
responses shaped as the lexicons document them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.bluesky import (
    _GRAPHEME,
    BlueskyConnector,
    BlueskySettings,
    grapheme_count,
    post_url,
)
from mentionwatch.config import SourceConfig
from mentionwatch.connector import ConnectorContext, StoredMentionRef
from mentionwatch.errors import (
    AuthFailed,
    BadResponse,
    RateLimited,
    SendError,
    SendUnconfirmed,
    Transient,
)
from tests.apiserver import (  # noqa: F401 (fixture `api`)
    _api_server,
    api_fixture,
    json_response,
    load,
    requests_to,
)
from tests.conftest import BRAND, make_config

PASSWORD = "abcd-efgh-ijkl-mnop"
ENV = {"BSKY_PW": PASSWORD}
ME = "did:plc:acmeacmeacmeacmeacmeacme"
X = "/xrpc/"
SESSION = X + "com.atproto.server.createSession"
SEARCH = X + "app.bsky.feed.searchPosts"
NOTIFS = X + "app.bsky.notification.listNotifications"
PROFILES = X + "app.bsky.actor.getProfiles"
CREATE = X + "com.atproto.repo.createRecord"
CONVO = X + "chat.bsky.convo.getConvoForMembers"
SEND = X + "chat.bsky.convo.sendMessage"


def fake_bluesky(api: HTTPServer) -> None:
    api.expect_request(SESSION, method="POST").respond_with_json(load("bluesky",
                                                                      "createSession.json"))
    api.expect_request(SEARCH, query_string={"q": "acme", "sort": "latest", "limit": "100",
                                             "cursor": "2", "since": "2026-11-19T07:55:00.000Z"}
                       ).respond_with_json(load("bluesky", "searchPosts_page2.json"))
    api.expect_request(SEARCH).respond_with_json(load("bluesky", "searchPosts_page1.json"))
    api.expect_request(NOTIFS).respond_with_json(load("bluesky", "listNotifications.json"))
    api.expect_request(PROFILES).respond_with_json(load("bluesky", "getProfiles.json"))
    api.expect_request(CREATE, method="POST").respond_with_json(load("bluesky",
                                                                     "createRecord.json"))
    api.expect_request(CONVO).respond_with_json(load("bluesky", "getConvoForMembers.json"))
    api.expect_request(SEND, method="POST").respond_with_json(load("bluesky", "sendMessage.json"))


def _connector(api: HTTPServer, environ: dict[str, str] | None = None,
               **settings: Any) -> BlueskyConnector:
    config = make_config("sqlite://", [], brand=dict(BRAND, own_accounts={}))
    data = {"handle": "acme.bsky.social", "app_password_env": "BSKY_PW",
            "service_url": api.url_for("/").rstrip("/"), "queries": ["acme"], **settings}
    ctx = ConnectorContext(source=SourceConfig(name="bsky", kind="bluesky"), brand=config.brand,
                           poll=config.poll, environ=ENV if environ is None else environ)
    return BlueskyConnector(BlueskySettings.model_validate(data), ctx)


def test_search_and_notifications_normalised_own_posts_skipped(api: HTTPServer) -> None:
    fake_bluesky(api)
    bsky = _connector(api)
    batch = bsky.fetch(None)

    [login] = requests_to(api, SESSION)
    assert login.get_json() == {"identifier": "acme.bsky.social", "password": PASSWORD}
    [search] = requests_to(api, SEARCH)
    assert search.args.to_dict() == {"q": "acme", "sort": "latest", "limit": "100"}
    assert search.headers["Authorization"].startswith("Bearer ")
    [notifs] = requests_to(api, NOTIFS)
    assert notifs.args.getlist("reasons") == ["mention", "reply", "quote"]
    by_id = {m.external_id: m for m in batch.mentions}
    assert sorted(by_id) == [
        "at://did:plc:alicealicealicealicealic/app.bsky.feed.post/3lbaaaaaaaa2c",
        "at://did:plc:alicealicealicealicealic/app.bsky.feed.post/3lbnotif00000",
        "at://did:plc:bobbobbobbobbobbobbobbob/app.bsky.feed.post/3lbaaaaaaaa2b",
        "at://did:plc:bobbobbobbobbobbobbobbob/app.bsky.feed.post/3lbnotif00001",
    ]  # the brand's own post (3lbaaaaaaaa2a) is not on page 1 and never kept
    first = by_id["at://did:plc:alicealicealicealicealic/app.bsky.feed.post/3lbaaaaaaaa2c"]
    assert first.url == "https://bsky.app/profile/alice.bsky.social/post/3lbaaaaaaaa2c"
    assert first.author is not None and first.author.followers == 15000
    assert (first.likes, first.reposts, first.replies, first.language) == (7, 1, 2, "en")
    assert first.created_at == datetime(2026, 11, 19, 8, 30, tzinfo=UTC)
    reply = by_id["at://did:plc:bobbobbobbobbobbobbobbob/app.bsky.feed.post/3lbnotif00001"]
    assert reply.is_reply_to_brand and reply.kind == "mention"
    assert reply.conversation_id == f"at://{ME}/app.bsky.feed.post/3lbroot000000"
    assert json.loads(batch.next_cursor or "") == {
        "notifications": "2026-11-19T08:40:00.000Z", "search:acme": "2026-11-19T08:30:00.000Z"}


def test_search_pages_with_cursor_and_since_from_the_stored_cursor(api: HTTPServer) -> None:
    fake_bluesky(api)
    bsky = _connector(api, notifications=False)
    batch = bsky.fetch('{"search:acme": "2026-11-19T08:00:00.000Z"}')
    reqs = requests_to(api, SEARCH)
    assert [r.args.get("cursor") for r in reqs] == [None, "2"]
    # Five minutes (lookback_seconds) behind the cursor: the search index takes posts late.
    assert {r.args["since"] for r in reqs} == {"2026-11-19T07:55:00.000Z"}
    # Page 2 held only the brand's own post: skipped.
    assert len(batch.mentions) == 2
    assert json.loads(batch.next_cursor or "")["search:acme"] == "2026-11-19T08:30:00.000Z"


def _post(rkey: str, created: str, indexed: str) -> dict[str, Any]:
    post = copy.deepcopy(load("bluesky", "searchPosts_page1.json")["posts"][0])
    post["uri"] = post["uri"].rsplit("/", 1)[0] + "/" + rkey
    post["record"]["createdAt"], post["indexedAt"] = created, indexed
    return post


def test_a_post_the_search_index_takes_in_late_is_still_found(api: HTTPServer) -> None:
    index: list[dict[str, Any]] = []

    def search(request: Request) -> Response:
        # As documented: `since` (inclusive) and the order are on sortAt, the earlier of
        # createdAt and indexedAt.
        def sort_at(p: dict[str, Any]) -> str:
            return min(p["record"]["createdAt"], p["indexedAt"])
        since = request.args.get("since", "")
        posts = sorted((p for p in index if sort_at(p) >= since), key=sort_at, reverse=True)
        return json_response({"posts": posts})

    api.expect_request(SEARCH).respond_with_handler(search)
    fake_bluesky(api)
    index.append(_post("3lbfirst", "2026-11-19T08:30:00.000Z", "2026-11-19T08:30:02.000Z"))
    first = _connector(api, notifications=False).fetch(None)
    # Made before the first post was indexed, and a little before the first post itself,
    # but indexed after that pass: a since of the newest indexedAt (08:30:02) lost both.
    index.append(_post("3lbbetween", "2026-11-19T08:30:01.000Z", "2026-11-19T08:30:05.000Z"))
    index.append(_post("3lbearlier", "2026-11-19T08:29:30.000Z", "2026-11-19T08:31:00.000Z"))
    second = _connector(api, notifications=False).fetch(first.next_cursor)
    assert json.loads(first.next_cursor or "")["search:acme"] == "2026-11-19T08:30:00.000Z"
    assert requests_to(api, SEARCH)[-1].args["since"] == "2026-11-19T08:25:00.000Z"
    found = {m.external_id.rsplit("/", 1)[1] for m in second.mentions}
    assert {"3lbbetween", "3lbearlier"} <= found


def test_notifications_stop_at_the_cursor(api: HTTPServer) -> None:
    fake_bluesky(api)
    batch = _connector(api, queries=["acme"], fetch_profiles=False).fetch(
        '{"notifications": "2026-11-19T07:00:00.000Z", "search:acme": "2026-11-19T09:00:00.000Z"}')
    notif_ids = [m.external_id for m in batch.mentions if m.kind == "mention"]
    assert notif_ids == ["at://did:plc:bobbobbobbobbobbobbobbob/app.bsky.feed.post/3lbnotif00001"]
    assert len(requests_to(api, NOTIFS)) == 1


def _ref(notification: int = 0) -> StoredMentionRef:
    item = load("bluesky", "listNotifications.json")["notifications"][notification]
    return StoredMentionRef(item["uri"], None, item["author"]["handle"], item["author"]["did"],
                            None, "mention", item)


def test_reply_uses_thread_root_and_parent_strong_refs(api: HTTPServer) -> None:
    fake_bluesky(api)
    result = _connector(api).reply(_ref(0), "Sorry Bob, we are on it.")
    assert result.external_id == f"at://{ME}/app.bsky.feed.post/3lbreply00001"
    assert result.url == "https://bsky.app/profile/acme.bsky.social/post/3lbreply00001"
    [create] = requests_to(api, CREATE, "POST")
    body = create.get_json()
    assert body["repo"] == ME and body["collection"] == "app.bsky.feed.post"
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post" and record["text"] == "Sorry Bob, we are on it."
    ref = "com.atproto.repo.strongRef"  # the SDK types each ref, as the lexicon allows
    assert record["reply"] == {
        "$type": "app.bsky.feed.post#replyRef",
        "root": {"$type": ref, "uri": f"at://{ME}/app.bsky.feed.post/3lbroot000000",
                 "cid": "bafyreiroot"},
        "parent": {"$type": ref,
                   "uri": "at://did:plc:bobbobbobbobbobbobbobbob/app.bsky.feed.post/3lbnotif00001",
                   "cid": "bafyreinotif1"},
    }
    # A top-level mention is both root and parent.
    _connector(api).reply(_ref(1), "Hi Alice")
    top = requests_to(api, CREATE, "POST")[-1].get_json()["record"]["reply"]
    assert top["root"] == top["parent"] == {
        "$type": "com.atproto.repo.strongRef",
        "uri": "at://did:plc:alicealicealicealicealic/app.bsky.feed.post/3lbnotif00000",
        "cid": "bafyreinotif0"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("a \r\n\t.@#\x00\x7f") | st.characters(max_codepoint=127),
                max_size=60).map("".join))
def test_ascii_graphemes_are_counted_as_the_cluster_search_counts(text: str) -> None:
    # ASCII takes a short cut (every character is one cluster but CR LF): the same count.
    assert grapheme_count(text) == len(_GRAPHEME.findall(text))


def test_reply_over_300_graphemes_is_refused_before_sending(api: HTTPServer) -> None:
    fake_bluesky(api)
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467"  # one grapheme, five code points
    assert grapheme_count(family * 300) == 300
    assert grapheme_count("e\u0301") == 1 and grapheme_count("\U0001F1E9\U0001F1EA") == 1
    # Scripts whose clusters join several code points (Devanagari, Hangul jamo), skin tones.
    assert grapheme_count("नमस्ते") == 3
    assert grapheme_count("\u1100\u1161\u11a8") == 1
    assert grapheme_count("\U0001F44D\U0001F3FD ok") == 4
    bsky = _connector(api)
    accented = "e\u0301" * 300  # 600 code points, 900 bytes, 300 graphemes: allowed
    bsky.reply(_ref(1), accented)
    with pytest.raises(SendError, match="3000-byte"):
        bsky.reply(_ref(1), family * 200)  # 200 graphemes but 3600 bytes
    with pytest.raises(SendError, match="allows 300"):
        bsky.reply(_ref(1), "a" * 301)
    assert len(requests_to(api, CREATE, "POST")) == 1


def test_private_follow_up_through_chat(api: HTTPServer) -> None:
    fake_bluesky(api)
    result = _connector(api).send_private(_ref(1), "Please DM us your account number.")
    assert result.external_id == "3lbmsg000001"
    [convo] = requests_to(api, CONVO)
    assert convo.args.getlist("members") == ["did:plc:alicealicealicealicealic"]
    assert convo.headers["atproto-proxy"] == "did:web:api.bsky.chat#bsky_chat"
    [send] = requests_to(api, SEND, "POST")
    assert send.get_json() == {"convoId": "3lbconvo00001",
                               "message": {"$type": "chat.bsky.convo.defs#messageInput",
                                           "text": "Please DM us your account number."}}


def test_private_follow_up_refused_when_author_disallows_or_server_refuses(
    api: HTTPServer,
) -> None:
    fake_bluesky(api)
    with pytest.raises(SendError, match="does not accept direct messages"):
        _connector(api).send_private(_ref(0), "hi")  # bob: allowIncoming = none
    assert requests_to(api, SEND, "POST") == []
    api.clear_all_handlers()
    api.expect_request(SESSION, method="POST").respond_with_json(load("bluesky",
                                                                      "createSession.json"))
    api.expect_request(PROFILES).respond_with_json({"profiles": []})
    api.expect_request(CONVO).respond_with_json(load("bluesky", "error_dm_disabled.json"),
                                                status=400)
    with pytest.raises(SendError, match="disabled incoming messages"):
        _connector(api).send_private(_ref(1), "hi")


def test_a_post_whose_answer_cannot_be_read_may_have_gone_out(api: HTTPServer) -> None:
    api.expect_request(CREATE, method="POST").respond_with_data(b"<html>", status=200)
    api.expect_request(SEND, method="POST").respond_with_json({"convoId": "3lbconvo00001"})
    fake_bluesky(api)
    with pytest.raises(SendUnconfirmed, match="may have gone out"):
        _connector(api).reply(_ref(1), "hi")
    with pytest.raises(SendUnconfirmed, match="may have gone out"):
        _connector(api).send_private(_ref(1), "hi")
    # An unreadable answer before anything is sent is only a bad response.
    api.clear()
    api.expect_request(CONVO).respond_with_data(b"<html>", status=200)
    fake_bluesky(api)
    with pytest.raises(BadResponse) as before:
        _connector(api).send_private(_ref(1), "hi")
    assert not isinstance(before.value, SendError)
    assert requests_to(api, SEND, "POST") == []


def test_auth_failure_names_the_setting(api: HTTPServer) -> None:
    api.expect_request(SESSION, method="POST").respond_with_json(
        load("bluesky", "error_401.json"), status=401)
    with pytest.raises(AuthFailed) as info:
        _connector(api).fetch(None)
    assert "app_password_env" in str(info.value) and "$BSKY_PW" in str(info.value)
    assert PASSWORD not in str(info.value)
    with pytest.raises(AuthFailed, match="BSKY_PW"):
        _connector(api, environ={})


def test_rate_limit_uses_ratelimit_reset(api: HTTPServer) -> None:
    api.expect_request(SESSION, method="POST").respond_with_json(load("bluesky",
                                                                      "createSession.json"))
    api.expect_request(SEARCH).respond_with_json(
        load("bluesky", "error_429.json"), status=429,
        headers={"ratelimit-limit": "3000", "ratelimit-remaining": "0",
                 "ratelimit-reset": "4102444000", "ratelimit-policy": "3000;w=300"})
    with pytest.raises(RateLimited) as info:
        _connector(api).fetch(None)
    assert info.value.until == datetime.fromtimestamp(4102444000, UTC)


@pytest.mark.parametrize(("status", "body", "error"), [
    (200, b"{\"posts\": [", BadResponse),
    (200, b"{\"cursor\": \"x\"}", BadResponse),
    (500, b"{\"error\": \"InternalServerError\"}", Transient),
    (502, b"bad gateway", Transient),
])
def test_bad_json_and_server_errors(api: HTTPServer, status: int, body: bytes,
                                    error: type[Exception]) -> None:
    api.expect_request(SESSION, method="POST").respond_with_json(load("bluesky",
                                                                      "createSession.json"))
    api.expect_request(SEARCH).respond_with_data(body, status=status,
                                                 content_type="application/json")
    with pytest.raises(error):
        _connector(api, notifications=False).fetch(None)


def test_a_slow_answer_is_bounded_by_the_poll_timeout(api: HTTPServer) -> None:
    import time

    from werkzeug import Response

    def slow(request: Any) -> Response:
        time.sleep(2.5)
        return Response(json.dumps({"posts": []}), content_type="application/json")

    api.expect_request(SESSION, method="POST").respond_with_json(load("bluesky",
                                                                      "createSession.json"))
    api.expect_request(SEARCH).respond_with_handler(slow)
    config = make_config("sqlite://", [], brand=dict(BRAND, own_accounts={}),
                         poll={"timeout": "1s"})
    data = {"handle": "acme.bsky.social", "app_password_env": "BSKY_PW",
            "service_url": api.url_for("/").rstrip("/"), "queries": ["acme"],
            "notifications": False}
    ctx = ConnectorContext(source=SourceConfig(name="bsky", kind="bluesky"), brand=config.brand,
                           poll=config.poll, environ=ENV)
    started = time.monotonic()
    # [poll] timeout = "1s": atproto's own 5 s would have waited for the answer.
    with pytest.raises(Transient, match="connection failed or busy"):
        BlueskyConnector(BlueskySettings.model_validate(data), ctx).fetch(None)
    assert time.monotonic() - started < 2.4


def test_post_url() -> None:
    assert post_url("a.bsky.social", "at://did:plc:x/app.bsky.feed.post/3k") == \
        "https://bsky.app/profile/a.bsky.social/post/3k"


def test_a_post_in_an_odd_shape_is_skipped_and_the_others_kept(api: HTTPServer) -> None:
    page = load("bluesky", "searchPosts_page1.json")
    odd = page["posts"][0]
    odd["record"]["text"] = 5  # a record is free-form: reading it had failed the pass
    api.expect_request(SEARCH).respond_with_json(page)
    fake_bluesky(api)
    batch = _connector(api, notifications=False).fetch(None)
    assert [m.external_id for m in batch.mentions] == [p["uri"] for p in page["posts"][1:]]
    assert "1 item(s) in a shape mentionwatch cannot read skipped" in batch.notes


def test_poll_stores_bluesky_mentions_on_both_databases(
    api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import select

    from mentionwatch.models import Mention
    from mentionwatch.pipeline import poll
    from mentionwatch.store import Store

    monkeypatch.setenv("BSKY_PW", PASSWORD)
    fake_bluesky(api)
    source = {"name": "bsky", "kind": "bluesky", "handle": "acme.bsky.social",
              "app_password_env": "BSKY_PW", "service_url": api.url_for("/").rstrip("/"),
              "queries": ["acme"]}
    config = make_config(db_url, [source], brand=dict(BRAND, own_accounts={"bluesky": [
        "bob.example.com"]}))
    store = Store.open(db_url)
    try:
        report = poll(config, store, environ=ENV)
        # bob.example.com is listed as one of the brand's own accounts: not a mention.
        assert [(o.status, o.stored) for o in report.outcomes] == [("ok", 2)]
        with store.session(readonly=True) as s:
            rows = list(s.scalars(select(Mention).order_by(Mention.external_id)).unique())
        assert [m.url for m in rows] == [
            "https://bsky.app/profile/alice.bsky.social/post/3lbaaaaaaaa2c",
            "https://bsky.app/profile/alice.bsky.social/post/3lbnotif00000"]
        row = store.source_row("bsky")
        assert row is not None and json.loads(row.cursor or "")["search:acme"] == \
            "2026-11-19T08:30:00.000Z"
    finally:
        store.close()


def test_a_long_language_tag_is_stored_as_its_language(
    api: HTTPServer, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import select

    from mentionwatch.models import Mention
    from mentionwatch.pipeline import poll
    from mentionwatch.store import Store

    monkeypatch.setenv("BSKY_PW", PASSWORD)
    page = load("bluesky", "searchPosts_page1.json")
    # A valid BCP 47 tag the author's app set; the column holds 20 characters, and on
    # PostgreSQL the post had failed every pass that read it ("value too long").
    page["posts"][0]["record"]["langs"] = ["en-GB-oxendict-x-private1"]
    api.expect_request(SEARCH).respond_with_json(page)
    fake_bluesky(api)
    source = {"name": "bsky", "kind": "bluesky", "handle": "acme.bsky.social",
              "app_password_env": "BSKY_PW", "service_url": api.url_for("/").rstrip("/"),
              "queries": ["acme"], "notifications": False}
    config = make_config(db_url, [source], brand=dict(BRAND, own_accounts={}))
    store = Store.open(db_url)
    try:
        [outcome] = poll(config, store, environ=ENV).outcomes
        assert (outcome.status, outcome.stored) == ("ok", len(page["posts"])), outcome.message
        with store.session(readonly=True) as s:
            language = s.scalar(select(Mention.language).where(
                Mention.external_id == page["posts"][0]["uri"]))
        assert language == "en"
    finally:
        store.close()


def test_session_is_reused_across_passes_and_processes(api: HTTPServer, tmp_path: Any) -> None:
    import stat

    from connectors.bluesky import _session_file

    fake_bluesky(api)
    first = _connector(api)
    first.fetch(None)
    first.fetch(None)
    first.close()
    # A new connector (as in the next `mentionwatch poll` process) signs in from the file.
    second = _connector(api)
    second.fetch(None)
    second.close()
    assert len(requests_to(api, SESSION)) == 1
    path = _session_file(api.url_for("/").rstrip("/"), "acme.bsky.social")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD not in path.read_text()
    # A broken or unusable saved session falls back to one password sign-in.
    path.write_text("not a session")
    third = _connector(api)
    third.fetch(None)
    assert len(requests_to(api, SESSION)) == 2
