"""`mentionwatch poll` with a Reddit source against the fake Reddit on 127.0.0.1, on SQLite
and PostgreSQL: mentions stored, own accounts and deleted items left out, cursor kept across a
failure, resumed afterwards, a 429 recorded as "rate limited until"; replies and messages
through the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from mentionwatch.cli import cli
from mentionwatch.config import Config
from mentionwatch.models import Mention
from mentionwatch.outbox import SendOutcome
from mentionwatch.store import Store
from tests.apiserver import _api_server, api_fixture, requests_to  # noqa: F401 (fixture `api`)
from tests.reddit_api import COMMENT, COMMENTS, COMPOSE, SEARCH, TOKEN_PATH, FakeReddit, replay
from tests.test_reddit import BRAND_R, ENV


def write_config(path: Path, db_url: str, api: HTTPServer) -> Path:
    base = api.url_for("/").rstrip("/")
    lines = [
        "[brand]",
        f"name = {json.dumps(BRAND_R['name'])}",
        f"terms = {json.dumps(BRAND_R['terms'])}",
        'own_accounts = { reddit = ["MC_Kloppedie", "u/acme_bot"] }',
        "[database]",
        f"url = {json.dumps(db_url)}",
        "[[sources]]",
        'name = "reddit"',
        'kind = "reddit"',
        f"base_url = {json.dumps(base)}",
        f"oauth_url = {json.dumps(base)}",
        'client_id_env = "RD_ID"',
        'client_secret_env = "RD_SECRET"',
        'username_env = "RD_USER"',
        'password_env = "RD_PASS"',
        'user_agent = "python:mentionwatch-tests:1.0 (by /u/acme_bot)"',
        'search = ["praw"]',
        'subreddits = ["kakapo"]',
        "watch_submissions = false",
        "page_size = 3",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_poll_stores_reddit_mentions_resumes_and_survives_failures(
    api: HTTPServer, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    fake = FakeReddit(api)
    search = sorted(fake.search, key=lambda c: c["data"]["created_utc"])
    comments = sorted(fake.comments, key=lambda c: c["data"]["created_utc"])
    # The first pass sees the three oldest hits and the comments up to acme_bot's reply.
    fake.search, fake.comments = search[:3], comments[:8]
    # A comment written from mentionwatch's own account (acme_bot) is never a new mention.
    own_reply = next(c for c in comments if c["data"]["name"] == "t1_dfkuf3q")
    own_reply["data"].update(author="acme_bot", body="Sirocco says hi")
    config = write_config(tmp_path / "mentionwatch.toml", db_url, api)
    runner = CliRunner()
    store = Store.open(db_url)
    try:
        result = runner.invoke(cli, ["--config", str(config), "poll", "--all"])
        assert result.exit_code == 0, result.output
        with store.session(readonly=True) as s:
            rows = list(s.scalars(select(Mention).order_by(Mention.external_id)).unique())
        # Search: the three hits; comments: the newest page (3) holds acme_bot's reply (our
        # own account), Surgeon-San's (names Sirocco) and one by MC_Kloppedie (own account).
        assert [m.external_id for m in rows] == [
            "t1_dfktga0", "t3_1qvzkd", "t3_3b4erh", "t3_3gpbiu"]
        assert "sirocco" in (rows[0].text or "").lower()
        assert "secret" not in result.output and "hunter2" not in result.output
        row = store.source_row("reddit")
        assert row is not None and row.cursor
        cursor = json.loads(row.cursor)
        assert set(cursor) == {"search:praw", "comments:kakapo"}

        # Malformed JSON: the pass fails, the cursor stays, the error is recorded.
        api.clear_all_handlers()
        api.expect_request(TOKEN_PATH).respond_with_handler(
            lambda r: replay("oauth_access_token__client_credentials.json"))
        api.expect_request(SEARCH).respond_with_data("{not json", content_type="application/json")
        result = runner.invoke(cli, ["--config", str(config), "poll", "--all"])
        assert result.exit_code == 1
        row = store.source_row("reddit")
        assert row is not None and json.loads(row.cursor or "") == cursor
        assert row.last_error and "valid JSON" in row.last_error
        assert store.count_mentions("reddit") == 4

        # Back to normal with newer items: only those are added, from the stored cursor.
        api.clear_all_handlers()
        fake = FakeReddit(api)
        fake.search, fake.comments = search, comments
        api.clear_log()
        result = runner.invoke(cli, ["--config", str(config), "poll", "--all"])
        assert result.exit_code == 0, result.output
        with store.session(readonly=True) as s:
            names = set(s.scalars(select(Mention.external_id)))
        assert names == {"t1_dfktga0", "t3_1qvzkd", "t3_3b4erh", "t3_3gpbiu",
                         "t3_3qc02b", "t3_3x4kt2", "t3_4at068", "t1_dg8ievl"}
        assert [r.args.get("after") for r in requests_to(api, SEARCH)] == [None, "t3_3qc02b"]
        # Comments: three pages of new ones, the fourth reaches the cursor.
        assert len(requests_to(api, COMMENTS)) == 4

        # 429: the source is marked rate limited until retry-after, and skipped until then.
        api.clear_all_handlers()
        api.expect_request(TOKEN_PATH).respond_with_handler(
            lambda r: replay("oauth_access_token__client_credentials.json"))
        api.expect_request(SEARCH).respond_with_handler(
            lambda r: replay("error_429_too_many_requests__html_retry_after.json"))
        before = datetime.now(UTC)
        result = runner.invoke(cli, ["--config", str(config), "poll", "--all"])
        assert result.exit_code == 1
        row = store.source_row("reddit")
        assert row is not None and row.rate_limited_until is not None
        until = row.rate_limited_until.replace(tzinfo=row.rate_limited_until.tzinfo or UTC)
        assert before + timedelta(seconds=3) <= until <= before + timedelta(seconds=10)
        api.clear_log()
        result = runner.invoke(cli, ["--config", str(config), "poll", "--all"])
        assert requests_to(api, SEARCH) == []  # skipped while rate limited
        assert store.count_mentions("reddit") == 8
    finally:
        store.close()


@contextmanager
def polled(api: HTTPServer, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[Config, Store, FakeReddit, int]]:
    """A store that polled the fake Reddit once: the config, the store, the fake and the id
    of a comment mention to answer."""
    from mentionwatch.config import load_config
    from mentionwatch.pipeline import poll

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    fake = FakeReddit(api)
    config = load_config(str(write_config(tmp_path / "mw.toml", db_url, api)))
    store = Store.open(db_url)
    try:
        poll(config, store)
        with store.session(readonly=True) as s:
            mention = s.scalar(select(Mention.id).where(Mention.kind == "comment"))
        assert mention is not None
        yield config, store, fake, mention
    finally:
        store.close()


def send(config: Config, store: Store) -> list[SendOutcome]:
    """One pass of the outbox's sender against the fake Reddit."""
    from mentionwatch import outbox
    from mentionwatch.pipeline import build_connector

    return outbox.send_pending(config, store,
                               connector_for=lambda src: build_connector(src, config))


def test_a_rate_limited_reply_says_how_to_send_it_again(
    api: HTTPServer, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mentionwatch import outbox
    from tests.apiserver import json_response

    with polled(api, db_url, tmp_path, monkeypatch) as (config, store, _, mention):
        action = outbox.approve(store, mention, "reply", operator="dana", text="Thanks!")
        api.clear_all_handlers()
        api.expect_request(TOKEN_PATH, method="POST").respond_with_handler(
            lambda r: replay("oauth_access_token__client_credentials.json"))
        api.expect_request(COMMENT, method="POST").respond_with_handler(lambda r: json_response(
            {"json": {"errors": [["RATELIMIT", "you are doing that too much. try again in 9 "
                                  "minutes.", "ratelimit"]]}}))
        [result] = send(config, store)
        # Failed, and nothing sends a failed action by itself: the hint had promised a retry.
        assert result.state == "failed" and "try again in 9 minutes" in (result.message or "")
        assert "is retried then" not in (result.message or "")
        assert "mentionwatch outbox retry" in (result.message or "")
        assert send(config, store) == [] and len(requests_to(api, COMMENT)) == 1
        outbox.retry(store, action, operator="dana")
        assert [r.state for r in send(config, store)] == ["failed"]
        assert len(requests_to(api, COMMENT)) == 2


def test_what_reddit_made_is_sent_despite_unreadable_rate_limit_headers(
    api: HTTPServer, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mentionwatch import outbox

    with polled(api, db_url, tmp_path, monkeypatch) as (config, store, fake, mention):
        outbox.approve(store, mention, "reply", operator="dana", text="Comment reply")
        outbox.approve(store, mention, "private", operator="dana", text="Hello from Sirocco")
        # Over the recorded ones, which prawcore reads after the call: it raised ValueError.
        fake.headers = {"x-ratelimit-remaining": "soon", "x-ratelimit-used": "1",
                        "x-ratelimit-reset": "1.5e"}
        sent = send(config, store)
        # Reddit made the comment and the message, and the answers show them: both had
        # ended `unknown` ("internal error: ValueError"), for a person to check by hand.
        assert [(r.action, r.state, r.message) for r in sent] == [
            ("reply", "sent", None), ("private", "sent", None)]
        assert {a.posted_id for a in outbox.actions(store)} == {"t1_d1680wu", "t4_30rhflk"}
        assert len(requests_to(api, COMMENT)) == len(requests_to(api, COMPOSE)) == 1
