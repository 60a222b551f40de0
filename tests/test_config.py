"""Config loading: search order, validation messages naming file and key, secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mentionwatch import registry
from mentionwatch.config import load_config, resolve_sqlite_url
from mentionwatch.connector import ConnectorSettings
from mentionwatch.errors import ConfigError
from mentionwatch.resources import example_config_path

GOOD = """
[brand]
name = "Acme"
terms = ["acme"]

[[sources]]
name = "blog"
kind = "rss"
url = "https://example.org/feed.xml"
"""


def write(tmp_path: Path, text: str, name: str = "mentionwatch.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(path: Path, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == 2
    return str(info.value)


def test_example_config_is_valid_and_complete() -> None:
    config = load_config(example_config_path(), environ={})
    assert config.brand.name == "Acme"
    assert {s.kind for s in config.sources} >= {"rss", "google_alerts"}
    assert config.alerts.on_call


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd_file = write(tmp_path, GOOD)
    other = write(tmp_path, GOOD.replace('"Acme"', '"Other"'), "other.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MENTIONWATCH_CONFIG", raising=False)
    assert load_config().path == cwd_file
    monkeypatch.setenv("MENTIONWATCH_CONFIG", str(other))
    assert load_config().brand.name == "Other"
    assert load_config(cwd_file).brand.name == "Acme"  # --config wins


def test_missing_config_says_how_to_create_one(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MENTIONWATCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert "mentionwatch init" in str(info.value)


def test_a_config_path_that_is_not_a_file_says_what_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {tmp_path / "nope.toml": "does not exist", tmp_path: "is a directory",
             Path(os.devnull): "is not a regular file"}
    for path, what in cases.items():
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert f"Config file {path} {what}" in str(info.value)
        monkeypatch.setenv("MENTIONWATCH_CONFIG", str(path))
        with pytest.raises(ConfigError) as info:
            load_config()
        assert f"points at {path}, which {what}" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "colour = 'red'\n", "sources[0] (blog).colour: unknown key"),
        (GOOD.replace('terms = ["acme"]', 'terms = "acme"'), "brand.terms: "),
        (GOOD.replace('terms = ["acme"]', ""), "brand.terms: required key is missing"),
        (GOOD.replace("https://example.org/feed.xml", "ftp://x"),
         "sources[0] (blog).url: expected an http:// or https:// URL"),
        (GOOD.replace('kind = "rss"', 'kind = "myspace"'),
         "sources[0] (blog).kind: unknown source kind 'myspace'"),
        (GOOD + '\n[poll]\ntimeout = "soon"\n', "poll.timeout: 'soon' is not a duration"),
        # Beyond 10 years date arithmetic overflowed: the second poll crashed in due_state.
        (GOOD + 'interval = "99999999d"\n',
         "sources[0] (blog).interval: '99999999d' is too long; durations are at most 3650d"),
        # A zero timeout failed every feed with a ConnectError; a zero interval made `run`
        # poll every second.
        (GOOD + '\n[poll]\ntimeout = "0s"\n', "poll.timeout: a timeout must be more than 0s"),
        (GOOD + '\n[alerts.smtp]\nhost = "smtp.example"\ntimeout = "0s"\n',
         "alerts.smtp.timeout: a timeout must be more than 0s"),
        (GOOD + 'interval = "0s"\n', "sources[0] (blog).interval: '0s' is too short; a source "
         "is polled at most every 10s"),
        (GOOD + 'interval = "9.5s"\n', "sources[0] (blog).interval: '9.5s' is too short"),
        (GOOD + '\n[database]\nurl = "mentionwatch.db"\n', "database.url: expected an SQLAlchemy"),
        (GOOD + GOOD.split("\n", 5)[-1].replace("[[sources]]", "[[sources]]"),
         "two sources are named 'blog'"),
        ("[brand\nname=1", "not valid TOML"),
        (GOOD + "\n[brnad]\nname='x'\n", "brnad: unknown key"),
    ],
)
def test_bad_config_names_file_key_and_expectation(tmp_path: Path, text: str,
                                                   expected: str) -> None:
    path = write(tmp_path, text)
    message = error_for(path)
    assert str(path) in message
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Each had been coerced without a word: "4" read as 4, "yes" and "false" as booleans,
        # 5.0 as 5, and a bare 15 as fifteen seconds (meant: minutes? a source polled 60
        # times as often as intended, against its rate limit).
        (GOOD + '\n[poll]\nconcurrency = "4"\n',
         "poll.concurrency: expected a number, got the text '4': write concurrency = 4 "
         "(no quotes)"),
        (GOOD + 'interval = 15\n',
         "sources[0] (blog).interval: a duration needs its unit, got 15: write interval = "
         '"15m" for minutes, "15s" for seconds'),
        (GOOD + 'interval = "15"\n', "sources[0] (blog).interval: a duration needs its unit"),
        (GOOD + 'enabled = "yes"\n',
         "sources[0] (blog).enabled: expected true or false, got 'yes': write enabled = true "
         "(no quotes)"),
        (GOOD + '\n[alerts]\nenabled = "false"\n',
         "alerts.enabled: expected true or false, got 'false': write enabled = false"),
        (GOOD + '\n[alerts]\nspike_min_count = 5.0\n',
         "alerts.spike_min_count: expected a whole number, got 5.0: write spike_min_count = 5"),
        (GOOD + '\n[alerts]\npriority_threshold = "0.8"\n',
         "alerts.priority_threshold: expected a number, got the text '0.8': write "
         "priority_threshold = 0.8"),
        (GOOD + '\n[alerts]\nresponse_targets = { complaint = 60 }\n',
         "alerts.response_targets.complaint: a duration needs its unit, got 60"),
        (GOOD + '\n[alerts.smtp]\nport = "587"\n', "alerts.smtp.port: expected a number"),
        (GOOD + '\n[rules]\ndefaults = "no"\n',
         "rules.defaults: expected true or false, got 'no': write defaults = false"),
        (GOOD + '\n[reports]\ndigest_since = 86400\n',
         "reports.digest_since: a duration needs its unit"),
        # A connector's own settings, as strictly.
        (GOOD + '\n[[sources]]\nname = "hn"\nkind = "hackernews"\nmax_pages = "5"\n',
         "sources[1] (hn).max_pages: expected a number, got the text '5': write max_pages = 5"),
        (GOOD + '\n[[sources]]\nname = "hn"\nkind = "hackernews"\nfirst_lookback = 3600\n',
         "sources[1] (hn).first_lookback: a duration needs its unit"),
    ],
)
def test_config_values_of_the_wrong_type_are_refused_with_what_to_write(
        tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    message = error_for(path)
    assert f"{path}: {expected}" in message


def test_strict_values_keep_the_documented_forms(tmp_path: Path) -> None:
    """Durations as strings with units, paths as strings, numbers and booleans bare; a
    whole number where a fraction may be. Only the wrong type is refused."""
    assert "expected true or false" in error_for(write(tmp_path, GOOD + 'enabled = "on"\n',
                                                       "on.toml"))
    text = GOOD + ('interval = "15m"\nenabled = true\n\n[poll]\nconcurrency = 4\n'
                   'timeout = "1m30s"\n\n[rules]\ndirs = ["packs"]\n\n[alerts]\nspike_k = 3\n'
                   'response_targets = { complaint = "30m" }\n')
    config = load_config(write(tmp_path, text))
    assert config.sources[0].interval is not None
    assert config.sources[0].interval.total_seconds() == 900
    assert config.poll.concurrency == 4 and config.poll.timeout.total_seconds() == 90
    assert config.rules.dirs == [Path("packs")]
    assert config.alerts.spike_k == 3.0
    assert config.alerts.response_targets["complaint"].total_seconds() == 1800
    assert config.alerts.response_targets["crisis"].total_seconds() == 900


class SecretSettings(ConnectorSettings):
    token_env: str
    optional_env: str | None = None


class SecretConnector:
    """A test-only kind whose settings name a secret."""

    Settings = SecretSettings


def test_missing_secret_for_enabled_source(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN, "secretive", f"{__name__}:SecretConnector")
    registry.available_kinds.cache_clear()
    registry.connector_class.cache_clear()
    text = GOOD + """
[[sources]]
name = "x"
kind = "secretive"
token_env = "MW_TEST_TOKEN"
"""
    path = write(tmp_path, text)
    message = error_for(path, environ={})
    assert "sources[1] (x).token_env: environment variable $MW_TEST_TOKEN is not set" in message
    config = load_config(path, environ={"MW_TEST_TOKEN": "s3cret-value"})
    # The secret itself is never part of the config object.
    assert "s3cret-value" not in repr(config)
    disabled = write(tmp_path, text + "enabled = false\n", "disabled.toml")
    assert load_config(disabled, environ={}).sources[1].enabled is False
    registry.available_kinds.cache_clear()
    registry.connector_class.cache_clear()


def test_missing_smtp_secret_is_a_config_error(tmp_path: Path) -> None:
    """As a source's: unset, every alert would stay pending for ever behind a log line."""
    smtp = '\n[alerts.smtp]\nusername_env = "MW_SMTP_USER"\npassword_env = "MW_SMTP_PASS_MISSING"\n'
    path = write(tmp_path, GOOD + smtp)
    message = error_for(path, environ={"MW_SMTP_USER": "alerts"})
    assert ("alerts.smtp.password_env: environment variable $MW_SMTP_PASS_MISSING is not set"
            in message)
    assert "Export MW_SMTP_PASS_MISSING" in message
    assert "alerts.smtp.username_env: environment variable $MW_SMTP_USER is not set" in \
        error_for(path, environ={"MW_SMTP_PASS_MISSING": "pw"})
    config = load_config(path, environ={"MW_SMTP_USER": "alerts", "MW_SMTP_PASS_MISSING": "pw"})
    assert config.alerts.smtp.password_env == "MW_SMTP_PASS_MISSING"
    # Half a login is a mistake too; alerts switched off need no mail server.
    half = write(tmp_path, GOOD + '\n[alerts.smtp]\nusername_env = "MW_SMTP_USER"\n', "half.toml")
    assert "alerts.smtp.password_env: required with username_env" in \
        error_for(half, environ={"MW_SMTP_USER": "alerts"})
    off = write(tmp_path, GOOD + "\n[alerts]\nenabled = false\n" + smtp, "off.toml")
    assert load_config(off, environ={}).alerts.enabled is False


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    path = write(tmp_path, GOOD + '\n[database]\nurl = "sqlite:///data/mw.db"\n')
    monkeypatch.chdir("/")
    assert load_config(path).database_url() == f"sqlite:///{tmp_path / 'data' / 'mw.db'}"
    assert resolve_sqlite_url("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_sqlite_url("postgresql://h/db", tmp_path) == "postgresql://h/db"


def test_a_relative_path_in_a_sqlite_file_uri_is_relative_to_the_config_file(
        tmp_path: Path) -> None:
    """SQLAlchemy's documented form `sqlite:///file:PATH?OPTIONS&uri=true` keeps its form and
    options; only a relative PATH is made absolute (it had become "/folder/file:PATH")."""
    base = tmp_path / "a b%c"
    assert resolve_sqlite_url("sqlite:///file:data/mw.db?mode=ro&uri=true", base) == \
        f"sqlite:///file:{base.resolve()}/data/mw.db?mode=ro&uri=true".replace("%", "%2525")
    for absolute in ("sqlite:///file:/abs/mw.db?mode=ro&uri=true",
                     "sqlite:///file:///abs/mw.db?uri=true", "sqlite:///file::memory:?uri=true",
                     "sqlite:///file:mw.db?mode=ro"):  # the last: refused when opened
        assert resolve_sqlite_url(absolute, base) == absolute
