"""The outbox: approved replies are sent exactly once, a crash mid-call leaves `unknown`
(never re-sent), failures can be approved again; every step is audited. A real HTTP server on
127.0.0.1 stands in for the source; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from mentionwatch import outbox
from mentionwatch.audit import recent
from mentionwatch.config import Config
from mentionwatch.connector import Batch, ConnectorSettings, MentionIn, PostResult
from mentionwatch.errors import SendError
from mentionwatch.judgement import Judgement
from mentionwatch.models import Mention, OutboxAction
from mentionwatch.pipeline import build_connector, sync_sources
from mentionwatch.store import Store
from tests.conftest import make_config


class PostboxSettings(ConnectorSettings):
    url: str
    die_after_post: bool = False


class PostboxConnector:
    """A test-only source whose replies are POSTed to a local server."""

    kind: ClassVar[str] = "postbox"
    platform: ClassVar[str] = "postbox"
    Settings: ClassVar[type[ConnectorSettings]] = PostboxSettings
    can_reply: ClassVar[bool] = True
    can_send_private: ClassVar[bool] = True
    reply_limit: ClassVar[int | None] = 280
    default_interval: ClassVar[int] = 60

    def __init__(self, settings: PostboxSettings, context: Any) -> None:
        self.settings = settings

    def fetch(self, cursor: str | None) -> Batch:
        return Batch([])

    def _post(self, kind: str, mention: Any, text: str) -> PostResult:
        response = httpx.post(self.settings.url, json={"kind": kind, "to": mention.external_id,
                                                       "text": text}, timeout=5)
        if self.settings.die_after_post:
            os.kill(os.getpid(), 9)  # the call went out; the result is never recorded
        if response.status_code != 200:
            raise SendError(f"postbox refused ({response.status_code})")
        return PostResult(response.json()["id"], f"https://postbox.test/{response.json()['id']}")

    def reply(self, mention: Any, text: str) -> PostResult:
        return self._post("reply", mention, text)

    def send_private(self, mention: Any, text: str) -> PostResult:
        return self._post("private", mention, text)

    def close(self) -> None:
        pass


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/post"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append(body)
        payload = json.dumps({"id": f"p{len(self.server.received)}"}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def setup_mention(store: Store, config: Config, *, flag: str = "complaint",
                  external_id: str = "m1") -> int:
    sync_sources(config, store)
    result = store.store_batch("box", Batch([MentionIn(
        external_id=external_id, text="acme is down",
        url=f"https://postbox.test/{external_id}")]), want_ids=True)
    [mention_id] = result.mention_ids
    with store.engine.begin() as conn:
        store.write_judgements(conn, [(mention_id, Judgement(
            flag=flag, priority=0.5, sentiment=-0.5,
            public_draft="Sorry! Please DM us.", private_draft="Hi, what's your email?",
            private_channel="dm"))])
    return mention_id


def connector_for(config: Config) -> Any:
    return lambda source: build_connector(source, config)


def test_approved_reply_is_sent_once_and_audited(postbox: None, receiver: Receiver,
                                                 store: Store, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    mid = setup_mention(store, config)
    outbox.approve(store, mid, "reply", operator="dana")
    outbox.approve(store, mid, "private", operator="dana", text="Hi, please email us.")
    results = outbox.send_pending(config, store, connector_for=connector_for(config))
    assert sorted((r.action, r.state) for r in results) == [("private", "sent"),
                                                            ("reply", "sent")]
    assert sorted((r["kind"], r["text"]) for r in receiver.received) == [
        ("private", "Hi, please email us."), ("reply", "Sorry! Please DM us.")]
    # Nothing is sent twice: a second pass sends nothing, a second approval is refused.
    assert outbox.send_pending(config, store, connector_for=connector_for(config)) == []
    with pytest.raises(outbox.OutboxError, match="already has a reply in state 'sent'"):
        outbox.approve(store, mid, "reply", operator="dana")
    assert len(receiver.received) == 2
    with store.session(readonly=True) as s:
        mention = s.get(Mention, mid)
        assert mention is not None
        assert mention.status == "replied" and mention.first_response_at is not None
    events = [e.event for e in recent(store, mention_id=mid)]
    assert {"approve", "edit", "send_sent", "moved_private"} <= set(events)
    assert {e.actor for e in recent(store, mention_id=mid) if e.event == "approve"} == {"dana"}
    # Our own posted reply, read back from the source later, is never a new mention.
    again = store.store_batch("box", Batch([MentionIn(external_id="p1", text="acme sorry")]))
    assert again.stored == 0


def test_a_refused_send_fails_and_can_be_approved_again(postbox: None, receiver: Receiver,
                                                        store: Store, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    mid = setup_mention(store, config)
    receiver.status = 503
    outbox.approve(store, mid, "reply", operator="sam")
    [failed] = outbox.send_pending(config, store, connector_for=connector_for(config))
    assert failed.state == "failed" and "refused (503)" in (failed.message or "")
    receiver.status = 200
    outbox.approve(store, mid, "reply", operator="sam", text="Sorry about that, DM us?")
    [sent] = outbox.send_pending(config, store, connector_for=connector_for(config))
    assert sent.state == "sent"
    assert [r["text"] for r in receiver.received] == ["Sorry! Please DM us.",
                                                      "Sorry about that, DM us?"]


def test_no_draft_and_unknown_mention_are_clear_errors(postbox: None, store: Store,
                                                       receiver: Receiver, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    setup_mention(store, config)
    with pytest.raises(outbox.OutboxError, match="No mention with id 999"):
        outbox.approve(store, 999, "reply", operator="x")


CRASHING_SENDER = textwrap.dedent("""
    import sys
    from mentionwatch import registry, outbox
    from mentionwatch.config import load_config
    from mentionwatch.pipeline import build_connector
    from mentionwatch.store import Store
    registry.BUILTIN["postbox"] = "tests.test_outbox:PostboxConnector"
    config = load_config(sys.argv[1])
    store = Store.open(config.database_url())
    outbox.send_pending(config, store,
                        connector_for=lambda s: build_connector(s, config))
""")


def test_a_sender_killed_after_the_call_leaves_unknown_never_resent(
        postbox: None, receiver: Receiver, store: Store, db_url: str, tmp_path: Path) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url,
                                   "die_after_post": True}])
    mid = setup_mention(store, config)
    action_id = outbox.approve(store, mid, "reply", operator="dana")
    config_file = tmp_path / "mw.toml"
    config_file.write_text(
        f'[brand]\nname = "Acme"\nterms = ["acme"]\n[database]\nurl = "{db_url}"\n'
        f'[[sources]]\nname = "box"\nkind = "postbox"\nurl = "{receiver.url}"\n'
        'die_after_post = true\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTIONWATCH_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run([sys.executable, "-c", CRASHING_SENDER, str(config_file)], env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == -9  # killed between the call and the commit
    assert len(receiver.received) == 1
    with store.session(readonly=True) as s:
        action = s.get(OutboxAction, action_id)
        assert action is not None and action.state == "sending"
    # The next sender finds the orphan: unknown for a person to check, and never re-sent.
    outbox.send_pending(config, store, connector_for=connector_for(config),
                        stale=timedelta(0))
    with store.session(readonly=True) as s:
        action = s.get(OutboxAction, action_id)
        assert action is not None and action.state == "unknown"
        assert "check at the source" in (action.last_error or "")
    assert len(receiver.received) == 1
    with pytest.raises(outbox.OutboxError, match="state 'unknown'"):
        outbox.approve(store, mid, "reply", operator="dana")
    assert "send_unknown" in [e.event for e in recent(store, mention_id=mid)]


def test_feeds_cannot_be_approved_for_posting(store: Store, db_url: str) -> None:
    config = make_config(db_url, [{"name": "blog", "kind": "rss",
                                   "url": "http://127.0.0.1:9/f.xml"}])
    sync_sources(config, store)
    [mid] = store.store_batch("blog", Batch([MentionIn(external_id="b1", text="acme")]),
                              want_ids=True).mention_ids
    with pytest.raises(outbox.OutboxError, match="rss sources cannot be answered") as info:
        outbox.approve(store, mid, "reply", operator="x", text="hi")
    assert f"replied-elsewhere {mid}" in str(info.value)
    outbox.mark(store, mid, "replied_elsewhere", operator="x")
    with store.session(readonly=True) as s:
        mention = s.get(Mention, mid)
        assert mention is not None and mention.status == "replied_elsewhere"
        assert mention.first_response_at is not None


def test_a_send_that_failed_is_said_to_cron_and_to_scripts(
        postbox: None, receiver: Receiver, store: Store, db_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mentionwatch.cli import cli

    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    first, second = setup_mention(store, config), setup_mention(store, config, external_id="m2")
    config_file = tmp_path / "mw.toml"
    config_file.write_text(
        f'[brand]\nname = "Acme"\nterms = ["acme"]\n[database]\nurl = "{db_url}"\n'
        f'[[sources]]\nname = "box"\nkind = "postbox"\nurl = "{receiver.url}"\n',
        encoding="utf-8")
    runner = CliRunner()
    receiver.status = 503
    outbox.approve(store, first, "reply", operator="dana")
    # After a cron poll: a line on stderr (cron mails it), where it had been silent.
    polled = runner.invoke(cli, ["--config", str(config_file), "poll"])
    assert polled.exit_code == 0, polled.output
    assert (f"WARNING outbox: the reply to mention {first} (action 1) is failed: postbox "
            "refused (503)") in polled.stderr
    # `outbox send` (and `approve --send`) exit 1 when something did not go out.
    outbox.approve(store, second, "reply", operator="dana")
    sent = runner.invoke(cli, ["--config", str(config_file), "outbox", "send"])
    assert sent.exit_code == 1 and "failed: postbox refused (503)" in sent.output
    receiver.status = 200
    outbox.retry(store, 2, operator="dana")
    again = runner.invoke(cli, ["--config", str(config_file), "outbox", "send"])
    assert again.exit_code == 0 and "sent" in again.output


def test_outbox_list_shows_an_approved_text_inert(postbox: None, receiver: Receiver,
                                                  store: Store, db_url: str,
                                                  tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mentionwatch.cli import cli

    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    mention = setup_mention(store, config)
    # What an $EDITOR session or a paste can leave in a draft: a title-setting OSC, a clear.
    outbox.approve(store, mention, "reply", operator="dana",
                   text="Sorry \x1b]0;owned\x07\x1b[2Jabout that")
    config_file = tmp_path / "mw.toml"
    config_file.write_text(
        f'[brand]\nname = "Acme"\nterms = ["acme"]\n[database]\nurl = "{db_url}"\n'
        f'[[sources]]\nname = "box"\nkind = "postbox"\nurl = "{receiver.url}"\n',
        encoding="utf-8")
    listed = CliRunner().invoke(cli, ["--config", str(config_file), "outbox", "list"],
                                env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "Sorry about that" in listed.output and "\x1b" not in listed.output


def test_what_goes_out_in_the_brands_name_has_no_escapes(postbox: None, receiver: Receiver,
                                                         store: Store, db_url: str) -> None:
    config = make_config(db_url, [{"name": "box", "kind": "postbox", "url": receiver.url}])
    mention = setup_mention(store, config)
    # A paste from a terminal, or an $EDITOR session, can leave escapes and controls.
    outbox.approve(store, mention, "reply", operator="dana",
                   text="Sorry \x1b[31mabout\x1b[0m that\x07\nWe're on it.")
    outbox.send_pending(config, store, connector_for=connector_for(config))
    assert [r["text"] for r in receiver.received] == ["Sorry about that\nWe're on it."]
