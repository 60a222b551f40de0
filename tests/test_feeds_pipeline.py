"""RSS and Google Alerts end to end: real HTTP server, real pipeline, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mentionwatch.models import Mention, RuleMatch, Source
from mentionwatch.pipeline import poll
from mentionwatch.rules_engine import load_judge
from mentionwatch.store import Store
from tests.conftest import FIXTURES, make_config
from tests.feedserver import FeedServer, rss

GOOGLE_ALERTS = FIXTURES / "feeds" / "google_alerts" / "google_alerts_atom__feedjira_slack.xml"


def _items(n: int, start: int = 0, extra: str = "") -> list[dict[str, str]]:
    return [
        {"title": f"Acme post {i}", "link": f"http://blog.example/{i}?utm_source=rss",
         "guid": f"g{i}", "description": f"Acme is down again {i} {extra}",
         "pubDate": "Sun, 22 Nov 2026 07:00:00 GMT"}
        for i in range(start, start + n)
    ]


def _rows(store: Store) -> list[Mention]:
    with store.session(readonly=True) as s:
        return list(s.scalars(select(Mention).order_by(Mention.external_id)).unique())


def _source(store: Store, name: str) -> Source:
    row = store.source_row(name)
    assert row is not None
    return row


def test_rss_poll_stores_only_brand_mentions_as_plain_text(store: Store, feeds: FeedServer,
                                                           db_url: str) -> None:
    body = rss([
        {"title": "Acme &lt;b&gt;outage&lt;/b&gt;", "link": "http://blog.example/1",
         "guid": "a1", "description": "&lt;p&gt;My &lt;b&gt;Acme&lt;/b&gt; fiber is down &amp;amp; "
         "nobody answers \x1b[31mred\x1b[0m&lt;/p&gt;"},
        {"title": "Gardening tips", "link": "http://blog.example/2", "guid": "a2",
         "description": "Nothing to see"},
        {"title": "Acme anvil sale", "link": "http://blog.example/3", "guid": "a3",
         "description": "An old acme anvil"},
    ])
    url = feeds.add("/feed.xml", body)
    config = make_config(db_url, [{"name": "blog", "kind": "rss", "url": url}])
    report = poll(config, store)
    assert [(o.name, o.status, o.stored) for o in report.outcomes] == [("blog", "ok", 1)]
    [mention] = _rows(store)
    assert mention.external_id == "a1"
    assert mention.title == "Acme outage"
    # HTML stripped, entities decoded twice (feeds double-escape), ANSI escapes removed.
    assert mention.text == "My Acme fiber is down & nobody answers red"
    assert json.loads(mention.matched_terms or "[]") == ["acme", "acme fiber"]
    assert mention.raw and mention.raw["id"] == "a1"
    assert mention.source.name == "blog"
    # The User-Agent says who we are.
    assert feeds.seen("/feed.xml")[0].headers["User-Agent"].startswith("mentionwatch/")


def test_second_poll_is_conditional_and_304_stores_nothing(store: Store, feeds: FeedServer,
                                                          db_url: str) -> None:
    url = feeds.add("/feed.xml", rss(_items(3)))
    config = make_config(db_url, [{"name": "blog", "kind": "rss", "url": url}])
    assert poll(config, store).stored == 3
    first = feeds.seen("/feed.xml")[0].headers
    assert "If-None-Match" not in first
    report = poll(config, store, force=True)
    second = feeds.seen("/feed.xml")[1].headers
    assert second["If-None-Match"] == feeds.routes["/feed.xml"].headers.get(
        "ETag", second["If-None-Match"])
    assert second["If-Modified-Since"] == "Sun, 22 Nov 2026 08:00:00 GMT"
    assert [(o.status, o.stored) for o in report.outcomes] == [("not_modified", 0)]
    source = _source(store, "blog")
    assert source.consecutive_failures == 0 and source.last_error is None
    assert len(_rows(store)) == 3


def test_rereads_and_cross_source_copies_are_stored_once(store: Store, feeds: FeedServer,
                                                        db_url: str) -> None:
    a = feeds.add("/a.xml", rss(_items(5)), etag=False)
    # The same articles reached through another feed, with other tracking parameters and a
    # fragment: the canonical URL makes them duplicates.
    other = [dict(i, guid="other-" + i["guid"], link=i["link"].replace("utm_source=rss",
                                                                      "utm_medium=x#c"))
             for i in _items(5)]
    b = feeds.add("/b.xml", rss(other + _items(1, start=10)), etag=False)
    config = make_config(db_url, [{"name": "a", "kind": "rss", "url": a},
                                  {"name": "b", "kind": "rss", "url": b}])
    poll(config, store, names=["a"])
    report = poll(config, store, names=["b"])
    assert [(o.stored, o.duplicates) for o in report.outcomes] == [(1, 5)]
    again = poll(config, store, force=True)
    assert again.stored == 0
    assert len(_rows(store)) == 6
    urls = {m.canonical_url for m in _rows(store)}
    assert "http://blog.example/0" in urls


def test_google_alerts_links_unwrapped_and_titles_cleaned(store: Store, feeds: FeedServer,
                                                          db_url: str) -> None:
    url = feeds.add_file("/alerts/feeds/1/2", GOOGLE_ALERTS)
    config = make_config(db_url, [{"name": "ga", "kind": "google_alerts", "url": url}])
    report = poll(config, store)
    assert report.outcomes[0].status == "ok", report.outcomes[0].message
    rows = _rows(store)
    assert len(rows) == report.outcomes[0].stored > 5
    for m in rows:
        assert m.url and not m.url.startswith("https://www.google.com/url")
        assert "<b>" not in (m.title or "") and "&#39;" not in (m.title or "")
        assert "&nbsp;" not in m.text and "<b>" not in m.text
        # The author is the publishing site, not the empty <author> or the alert's title.
        assert m.author_handle and "." in m.author_handle
    assert any("'s stock" in m.text for m in rows)  # &amp;#39; decoded twice


def test_a_failing_source_is_recorded_and_others_carry_on(store: Store, feeds: FeedServer,
                                                         db_url: str) -> None:
    good = feeds.add("/good.xml", rss(_items(2)))
    html = feeds.add("/html", "<html><body>Not a feed</body></html>",
                     headers={"Content-Type": "text/html"})
    broken = feeds.add("/500.xml", "oops", status=500)
    missing = feeds.base_url + "/nope.xml"
    config = make_config(db_url, [
        {"name": "good", "kind": "rss", "url": good},
        {"name": "html", "kind": "rss", "url": html},
        {"name": "broken", "kind": "rss", "url": broken},
        {"name": "missing", "kind": "rss", "url": missing},
        {"name": "closed", "kind": "rss", "url": "http://127.0.0.1:9/feed.xml"},
    ])
    report = poll(config, store)
    by_name = {o.name: o for o in report.outcomes}
    assert by_name["good"].status == "ok" and by_name["good"].stored == 2
    assert "not a feed" in (by_name["html"].message or "")
    assert "server error 500" in (by_name["broken"].message or "")
    assert "404 Not Found" in (by_name["missing"].message or "")
    assert "connection failed" in (by_name["closed"].message or "")
    for name in ("html", "broken", "missing", "closed"):
        source = _source(store, name)
        assert by_name[name].status == "failed"
        assert source.consecutive_failures == 1
        assert source.last_error == by_name[name].message
        assert source.next_attempt_at is not None and source.cursor is None
    # A failed source is backing off: an ordinary pass skips it, a requested one polls it.
    later = poll(config, store)
    assert {o.name: o.status for o in later.outcomes}["broken"] == "skipped"
    feeds.add("/500.xml", rss(_items(1, start=50)))
    recovered = poll(config, store, names=["broken"])
    assert recovered.outcomes[0].status == "ok"
    assert _source(store, "broken").consecutive_failures == 0


def test_bozo_feed_keeps_the_entries_it_could_read(store: Store, feeds: FeedServer,
                                                   db_url: str) -> None:
    body = rss(_items(2)).replace("</channel></rss>", "<item><title>Acme & broken")
    url = feeds.add("/bozo.xml", body)
    config = make_config(db_url, [{"name": "bozo", "kind": "rss", "url": url}])
    outcome = poll(config, store).outcomes[0]
    assert outcome.status == "ok"
    assert outcome.stored >= 2
    assert "malformed" in (outcome.message or "")


def test_retry_after_is_bounded_and_a_503_with_it_waits_like_a_429(
        store: Store, feeds: FeedServer, db_url: str) -> None:
    far = feeds.add("/far.xml", "slow down", status=429,
                    headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    huge = feeds.add("/huge.xml", "slow down", status=429,
                     headers={"Retry-After": "999999999999"})
    busy = feeds.add("/busy.xml", "back soon", status=503, headers={"Retry-After": "120"})
    down = feeds.add("/down.xml", "down", status=503)
    config = make_config(db_url, [{"name": n, "kind": "rss", "url": u, "interval": "15m"}
                                  for n, u in [("far", far), ("huge", huge), ("busy", busy),
                                               ("down", down)]])
    before = datetime.now(UTC)
    by_name = {o.name: o for o in poll(config, store).outcomes}
    after = datetime.now(UTC)
    assert {o.status for o in by_name.values()} == {"failed"}
    # 2099 is capped at 24 hours, and the error says the server asked for longer.
    far_row = _source(store, "far")
    assert far_row.rate_limited_until is not None
    assert before + timedelta(hours=24) <= far_row.rate_limited_until <= after + timedelta(hours=24)
    assert "asked to wait until 2099-10-21 07:28 UTC" in (by_name["far"].message or "")
    assert "at most 24 hours" in (far_row.last_error or "")
    # A number beyond the calendar is as if there were no header: the interval, no crash.
    huge_row = _source(store, "huge")
    assert "internal error" not in (huge_row.last_error or "")
    assert "rate limited (429)" in (huge_row.last_error or "")
    assert huge_row.rate_limited_until is not None
    assert huge_row.rate_limited_until <= after + timedelta(minutes=15)
    # A 503 that says when to come back is honoured; one that does not backs off as before.
    busy_row = _source(store, "busy")
    assert "503" in (busy_row.last_error or "")
    assert busy_row.rate_limited_until is not None
    assert before + timedelta(seconds=119) <= busy_row.rate_limited_until
    assert busy_row.rate_limited_until <= after + timedelta(seconds=121)
    down_row = _source(store, "down")
    assert down_row.rate_limited_until is None and "server error 503" in (down_row.last_error or "")


def test_an_empty_feed_body_is_a_failure_not_ok(store: Store, feeds: FeedServer,
                                                db_url: str) -> None:
    empty = feeds.add("/empty.xml", "")
    blank = feeds.add("/blank.xml", "  \r\n\t \n")
    config = make_config(db_url, [{"name": "empty", "kind": "rss", "url": empty},
                                  {"name": "blank", "kind": "rss", "url": blank}])
    by_name = {o.name: o for o in poll(config, store).outcomes}
    for name, url in (("empty", empty), ("blank", blank)):
        assert by_name[name].status == "failed"
        assert f"the feed answered 200 with an empty body. Check that {url} still serves" in (
            by_name[name].message or "")
        assert _source(store, name).consecutive_failures == 1


def test_a_redirect_that_fails_names_the_host_that_refused(store: Store, feeds: FeedServer,
                                                          db_url: str) -> None:
    # 127.0.0.2 is loopback too, and nothing listens on port 9 there.
    url = feeds.add("/moved.xml", "", status=302,
                    headers={"Location": "http://127.0.0.2:9/feed.xml"})
    config = make_config(db_url, [{"name": "moved", "kind": "rss", "url": url}])
    [outcome] = poll(config, store).outcomes
    here = feeds.base_url.removeprefix("http://")
    assert (outcome.message or "").startswith(
        f"127.0.0.2:9 (redirected from {here}): connection failed")


def test_crash_mid_pass_leaves_nothing_then_next_pass_stores_each_once(
    store: Store, feeds: FeedServer, db_url: str
) -> None:
    from mentionwatch.pipeline import poll_source

    url = feeds.add("/feed.xml", rss(_items(1200)))
    config = make_config(db_url, [{"name": "blog", "kind": "rss", "url": url}])
    from mentionwatch.pipeline import sync_sources

    sync_sources(config, store)
    outcome = poll_source(config.sources[0], config, store, fail_after=700)
    assert outcome.status == "failed" and "injected failure" in (outcome.message or "")
    assert _rows(store) == []
    assert _source(store, "blog").cursor is None  # the cursor did not advance
    outcome = poll_source(config.sources[0], config, store, force=True)
    assert (outcome.status, outcome.stored) == ("ok", 1200)
    rows = _rows(store)
    assert len(rows) == len({m.external_id for m in rows}) == 1200
    assert json.loads(_source(store, "blog").cursor or "{}")["etag"]


def test_own_accounts_and_future_dates(store: Store, feeds: FeedServer, db_url: str) -> None:
    body = rss([
        {"title": "Acme news", "guid": "own", "link": "http://a/1", "author": "acme_official",
         "description": "Acme announces"},
        {"title": "Acme later", "guid": "future", "link": "http://a/2",
         "pubDate": "Sat, 01 Jan 2100 00:00:00 GMT", "description": "Acme"},
    ])
    url = feeds.add("/f.xml", body)
    config = make_config(db_url, [{"name": "f", "kind": "rss", "url": url}],
                         brand={"name": "Acme", "terms": ["acme"],
                                "own_accounts": {"web": ["acme_official"]}})
    poll(config, store)
    [row] = _rows(store)
    assert row.external_id == "future"
    assert row.created_at <= row.fetched_at


@pytest.mark.parametrize("path", sorted(
    p.relative_to(FIXTURES / "feeds") for p in (FIXTURES / "feeds").rglob("*.xml")
), ids=str)
def test_every_corpus_feed_is_ingested_or_a_readable_error(path: Path, feeds: FeedServer,
                                                           tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    url = feeds.add_file("/" + str(path), FIXTURES / "feeds" / path)
    # google_alerts kind trusts the feed's own filtering, so every entry is stored.
    config = make_config(db_url, [{"name": "corpus", "kind": "google_alerts", "url": url}])
    store = Store.open(db_url)
    try:
        outcome = poll(config, store).outcomes[0]
        assert outcome.status in ("ok", "failed")
        if outcome.status == "failed":
            assert outcome.message and "internal error" not in outcome.message
        else:
            rows = _rows(store)
            assert len(rows) == outcome.stored
            for m in rows:
                assert "\x1b" not in m.text and "<script" not in m.text.lower()
    finally:
        store.close()


def test_a_link_longer_than_the_canonical_column_is_stored_without_a_canonical_url(
    store: Store, feeds: FeedServer, db_url: str
) -> None:
    long_link = "http://blog.example/" + "a" * 2100  # a tracking link; the column holds 2000
    url = feeds.add("/long.xml", rss([
        {"title": "Acme long", "guid": "long", "link": long_link, "description": "Acme"},
        {"title": "Acme short", "guid": "short", "link": "http://blog.example/s",
         "description": "Acme"}]))
    config = make_config(db_url, [{"name": "blog", "kind": "rss", "url": url}])
    [outcome] = poll(config, store).outcomes
    # On PostgreSQL the long one had failed the whole pass ("value too long"), every pass.
    assert (outcome.status, outcome.stored) == ("ok", 2), outcome.message
    rows = {m.external_id: m for m in _rows(store)}
    assert rows["long"].url == long_link and rows["long"].canonical_url is None
    assert rows["short"].canonical_url == "http://blog.example/s"


def test_feed_items_without_an_author_are_not_one_repeat_complainer(
        store: Store, feeds: FeedServer, db_url: str) -> None:
    # The feed's title once stood in for every item's missing author, so the second
    # complaint in a feed was a "repeat complainer" (severity 0.8, an on-call alert).
    def item(i: int) -> dict[str, str]:
        return {"title": f"Acme outage {i}", "link": f"http://forum.example/t/{i}",
                "guid": f"t{i}", "pubDate": "Sun, 22 Nov 2026 07:00:00 GMT",
                "description": f"My Acme fiber is down again, day {i} without internet and "
                               "nobody answers the phone. Absolutely fed up."}

    url = feeds.add("/forum.xml", rss([item(1)]), etag=False)
    config = make_config(db_url, [{"name": "forum", "kind": "rss", "url": url}])
    judge = load_judge(config)
    poll(config, store, judge=judge)
    feeds.add("/forum.xml", rss([item(1), item(2)]), etag=False)
    poll(config, store, judge=judge, force=True)
    rows = _rows(store)
    assert [(m.external_id, m.flag, m.author_handle) for m in rows] == [
        ("t1", "complaint", None), ("t2", "complaint", None)]
    with store.session(readonly=True) as s:
        rules = set(s.scalars(select(RuleMatch.rule)))
    assert "outage" in rules
    assert "repeat-complainer" not in rules
