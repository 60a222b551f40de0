"""Pure helpers: text cleaning, canonical URLs, brand matching, durations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mentionwatch.brand import BrandMatcher
from mentionwatch.durations import parse_duration
from mentionwatch.text import clean_text
from mentionwatch.urls import canonical_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>Acme <b>down</b></p><p>again</p>", "Acme down\n\nagain"),
        ("Acme &amp;amp; co &#39;x&#39;", "Acme & co 'x'"),
        ("red \x1b[31mALERT\x1b[0m done", "red ALERT done"),
        ("title\x1b]0;pwned\x07 set", "title set"),
        ("bell\x07 and \x9b31m c1", "bell and c1"),
        ("<script>alert(1)</script>safe", "safe"),
        ("rtl \u202eevil\u202c", "rtl evil"),
        ("[bold red]markup[/] stays", "[bold red]markup[/] stays"),
        ("{{ brand }} and %s stay", "{{ brand }} and %s stay"),
        ("a\r\nb\t\tc   d", "a\nb c d"),
        ("Acme <![0 broken <b>declaration</b>", "Acme <![0 broken declaration"),
        # Invisible characters that split a word ("d\u200bown" hid "down" from the rules).
        ("Acme is d\u200bown, s\u00adlow, a\u2060gain\ufeff", "Acme is down, slow, again"),
        # ...but not the joiners an emoji sequence needs.
        ("family \U0001F468\u200d\U0001F469\u200d\U0001F467",
         "family \U0001F468\u200d\U0001F469\u200d\U0001F467"),
        # A byte that was not UTF-8, as Python reads it, and half an emoji: U+FFFD.
        ("acme down \udcff and \ud83d cut", "acme down \ufffd and \ufffd cut"),
        (None, ""),
    ],
)
def test_clean_text(raw: str | None, expected: str) -> None:
    assert clean_text(raw) == expected


@given(st.text())
def test_clean_text_output_is_inert_and_stable(value: str) -> None:
    cleaned = clean_text(value)
    assert not any(ord(c) < 32 and c not in "\n" for c in cleaned)
    cleaned.encode("utf-8")  # storable: no lone surrogate
    assert not any(0x7F <= ord(c) <= 0x9F for c in cleaned)
    assert clean_text(cleaned, is_html=False) == cleaned or "&" in cleaned


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.google.com/url?rct=j&sa=t&url=https://news.example.com/a?id=1&ct=ga",
         "https://news.example.com/a?id=1"),
        ("HTTPS://Example.COM:443/p?utm_source=x&b=2&a=1&fbclid=z#frag",
         "https://example.com/p?a=1&b=2"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("mailto:someone@example.com", None),
        ("not a url", None),
        ("http://[::1", None),
        (None, None),
    ],
)
def test_canonical_url(url: str | None, expected: str | None) -> None:
    assert canonical_url(url) == expected


def test_brand_matcher_word_boundaries_and_exclusions() -> None:
    m = BrandMatcher(["acme", "@acme", "#acmefail", "acme fiber"], ["acme anvil"])
    assert m.find("My ACME Fiber is down #AcmeFail") == ["acme fiber", "#acmefail"]
    assert m.find("@acme help") == ["@acme"]
    assert m.find("Acme's router") == ["acme"]
    assert m.find("acmeville and acmes") == []
    assert m.find("an old acme anvil") == []
    assert m.find("acme anvil, and acme is down") == ["acme"]
    assert BrandMatcher([]).find("acme") == []
    assert BrandMatcher(["café"]).find("Café crème") == ["café"]
    # Japanese and Chinese write a Latin brand name straight against their own words (these
    # posts were never stored).
    assert BrandMatcher(["acme"]).find("Acmeのルーターが壊れました。") == ["acme"]
    assert BrandMatcher(["acme", "acme fiber"]).find("我的Acme Fiber路由器坏了") == [
        "acme fiber"]
    assert BrandMatcher(["🚀rocket"]).find("go 🚀rocket go") == ["🚀rocket"]


def test_brand_matcher_finds_names_as_rule_terms_are_found() -> None:
    # The brand filter uses the rule packs' term matcher: names in scripts written without
    # spaces, names touching an emoji, case-folded and composed text, phrases over lines.
    assert BrandMatcher(["小米"]).find("我喜欢小米手机") == ["小米"]
    assert BrandMatcher(["acme"]).find("so done with acme😡") == ["acme"]
    assert BrandMatcher(["Straße Bank"]).find("STRASSE BANK ist down") == ["straße bank"]
    assert BrandMatcher(["café"]).find("Cafe\u0301 down") == ["café"]  # e + combining accent
    assert BrandMatcher(["Acme Fiber"]).find("my acme\n  fiber line") == ["acme fiber"]
    # A name is not found inside its own contraction, nor as part of a longer word.
    assert BrandMatcher(["can"]).find("I can't log in") == []
    assert BrandMatcher(["小米"]).find("小米手机") == ["小米"]
    # Overlapping names: the longest found at a place counts, once.
    m = BrandMatcher(["acme", "acme fiber", "fiber"])
    assert m.find("ACME FIBER down, acme too") == ["acme fiber", "acme"]
    # Exclusions are matched the same way: a curly apostrophe, a line break, case.
    m = BrandMatcher(["acme"], ["acme’s law", "acme anvil"])
    assert m.find("Acme's law says so") == []
    assert m.find("an ACME\nanvil fell") == []
    assert m.find("an acme anvil fell on acme") == ["acme"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800), (30, 30), ("45", 45)],
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["soon", "15x", "", "-5", True, -1])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)  # type: ignore[arg-type]
