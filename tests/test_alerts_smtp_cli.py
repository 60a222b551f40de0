"""Alert pieces that need no database: on-call schedule, spike maths, header cleaning; then
STARTTLS/implicit TLS with login against a real aiosmtpd server, and the `alerts` CLI."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from mentionwatch.alerts import send_test
from mentionwatch.alerts.rules import (
    clean_header,
    judge_spike,
    on_call,
    retry_delay,
    spike_history_ready,
    spike_windows,
)
from mentionwatch.cli import cli
from mentionwatch.config import AlertsConfig, parse_config
from mentionwatch.errors import SendError
from tests.smtpsink import SmtpServer, free_port

# ---------------------------------------------------------------- pure parts


def test_on_call_schedule_in_its_time_zone() -> None:
    cfg = AlertsConfig.model_validate({
        "on_call": ["fallback@acme.example"], "timezone": "America/New_York",
        "schedule": [
            {"who": ["day@acme.example"], "days": ["mon", "tue", "wed", "thu", "fri"],
             "start": "08:00", "end": "20:00"},
            {"who": ["night@acme.example"], "days": ["fri"], "start": "20:00", "end": "08:00"},
        ],
    })
    # Friday 2026-11-20 13:00 UTC = 08:00 in New York (EST, UTC-5).
    assert on_call(cfg, datetime(2026, 11, 20, 13, 0, tzinfo=UTC)) == ["day@acme.example"]
    assert on_call(cfg, datetime(2026, 11, 20, 12, 59, tzinfo=UTC)) == ["fallback@acme.example"]
    # Saturday 03:00 in New York belongs to Friday's overnight shift.
    assert on_call(cfg, datetime(2026, 11, 21, 8, 0, tzinfo=UTC)) == ["night@acme.example"]
    # Saturday 09:00: nobody scheduled, the plain list.
    assert on_call(cfg, datetime(2026, 11, 21, 14, 0, tzinfo=UTC)) == ["fallback@acme.example"]


def test_config_refuses_header_breaking_addresses() -> None:
    from pydantic import ValidationError

    for bad in ("a@b.example\r\nBcc: x@y.example", "no-at-sign"):
        with pytest.raises(ValidationError):
            AlertsConfig.model_validate({"on_call": [bad]})
    with pytest.raises(ValidationError):
        AlertsConfig.model_validate({"timezone": "Mars/Olympus"})
    targets = AlertsConfig.model_validate({"response_targets": {"complaint": "30m"}})
    assert targets.response_targets == {"complaint": timedelta(minutes=30),
                                        "crisis": timedelta(minutes=15)}


def test_spike_maths() -> None:
    assert judge_spike(5, [1, 2, 1], k=3.0, min_count=4).spiking  # 5 > 3 x 1.33
    assert not judge_spike(4, [1, 2, 1], k=3.0, min_count=4).spiking  # 4 = 3 x 1.33
    assert not judge_spike(3, [], k=3.0, min_count=4).spiking  # below the minimum
    assert judge_spike(4, [], k=3.0, min_count=4).spiking  # no history: minimum decides
    assert not judge_spike(30, [10, 12, 8], k=3.0, min_count=5).spiking
    # Spikes wait for a day of monitoring before the current window.
    start, hour = datetime(2026, 11, 20, 12, 0, tzinfo=UTC), timedelta(hours=1)
    assert not spike_history_ready(start, hour, None)
    assert not spike_history_ready(start, hour, start)  # the first pass
    assert not spike_history_ready(start + timedelta(hours=24, minutes=59), hour, start)
    assert spike_history_ready(start + timedelta(hours=25), hour, start)
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    current, days = spike_windows(now, timedelta(hours=1), 7, now - timedelta(days=2, hours=2))
    assert current == (now - timedelta(hours=1), now)
    assert days == [(now - timedelta(days=i, hours=1), now - timedelta(days=i)) for i in (1, 2)]


def test_clean_header_and_retry_delay() -> None:
    assert clean_header("a\r\nBcc: x\u2028y\x85z\x00\tq") == "a Bcc: x y z q"
    assert len(clean_header("x" * 500)) == 140
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_delay(50) == timedelta(minutes=30)


# ---------------------------------------------------------------- TLS and login


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(crt), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return crt, key


def _server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


@pytest.fixture
def tls_smtp(cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(tls=_server_context(cert), users={"alerts": "s3cret-pw"}).start()
    try:
        yield server
    finally:
        server.stop()


def _smtp_config(tmp_path: Path, port: int, cert: Path, **smtp: object):  # type: ignore[no-untyped-def]
    section = {"host": "127.0.0.1", "port": port, "security": "starttls", "ca_file": str(cert),
               "username_env": "MW_SMTP_USER", "password_env": "MW_SMTP_PASS", "timeout": "5s",
               **smtp}
    # Each test hands send_test its own login (a wrong one, none): not checked at load here.
    return parse_config({"brand": {"name": "Acme", "terms": ["acme"]},
                         "database": {"url": f"sqlite:///{tmp_path / 'db.sqlite'}"},
                         "alerts": {"on_call": ["oncall@acme.example"], "smtp": section}},
                        Path("test-config.toml"), check_secrets=False)


def test_starttls_and_login(tmp_path: Path, tls_smtp: SmtpServer,
                            cert: tuple[Path, Path]) -> None:
    config = _smtp_config(tmp_path, tls_smtp.port, cert[0])
    env = {"MW_SMTP_USER": "alerts", "MW_SMTP_PASS": "s3cret-pw"}
    assert send_test(config, environ=env) == ["oncall@acme.example"]
    assert tls_smtp.sink.logins == ["alerts"]
    (mail,) = tls_smtp.messages
    assert mail.message["Subject"] == "[mentionwatch] test alert"
    assert "alerts test" in mail.part("plain") and "<p>" in mail.part("html")


def test_wrong_password_is_a_clear_error_without_the_secret(
    tmp_path: Path, tls_smtp: SmtpServer, cert: tuple[Path, Path]
) -> None:
    config = _smtp_config(tmp_path, tls_smtp.port, cert[0])
    with pytest.raises(SendError) as info:
        send_test(config, environ={"MW_SMTP_USER": "alerts", "MW_SMTP_PASS": "wrong-pw-123"})
    assert "refused the SMTP login" in str(info.value)
    assert "wrong-pw-123" not in str(info.value) and "wrong-pw-123" not in repr(info.value)
    assert not tls_smtp.messages


def test_untrusted_certificate_fails(tmp_path: Path, tls_smtp: SmtpServer,
                                     cert: tuple[Path, Path]) -> None:
    config = _smtp_config(tmp_path, tls_smtp.port, cert[0], ca_file=None)
    with pytest.raises(SendError, match=r"TLS with 127\.0\.0\.1"):
        send_test(config, environ={"MW_SMTP_USER": "alerts", "MW_SMTP_PASS": "s3cret-pw"})


def test_implicit_tls(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    from aiosmtpd.controller import Controller

    from tests.smtpsink import Sink

    sink, port = Sink(), free_port()
    # Implicit TLS: the whole connection is TLS from the first byte (port 465 style).
    controller = Controller(sink, hostname="127.0.0.1", port=port,
                            ssl_context=_server_context(cert))
    controller.start()
    try:
        config = _smtp_config(tmp_path, port, cert[0], security="tls", username_env=None,
                              password_env=None)
        send_test(config, to=["someone@acme.example"])
        assert [m.rcpt_tos for m in sink.messages] == [["someone@acme.example"]]
    finally:
        controller.stop()


def test_a_server_without_auth_is_named_as_such(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    """security = "none" and a login configured, the server offers no AUTH: the error says
    so (it had said the server does not offer STARTTLS)."""
    server = SmtpServer().start()
    try:
        config = _smtp_config(tmp_path, server.port, cert[0], security="none")
        with pytest.raises(SendError) as info:
            send_test(config, environ={"MW_SMTP_USER": "alerts", "MW_SMTP_PASS": "s3cret-pw"})
        assert "offers no authentication (SMTP AUTH)" in str(info.value)
        assert "STARTTLS" not in str(info.value)
        assert "username_env and password_env" in (info.value.hint or "")
        assert not server.messages
    finally:
        server.stop()


# ---------------------------------------------------------------- CLI


def _write_config(tmp_path: Path, port: int, feed_url: str = "http://127.0.0.1:9/f.xml") -> Path:
    path = tmp_path / "mentionwatch.toml"
    path.write_text(f"""
[brand]
name = "Acme"
terms = ["acme"]

[database]
url = "sqlite:///{tmp_path / 'mw.db'}"

[alerts]
on_call = ["oncall@acme.example"]
from_address = "mentionwatch@acme.example"
failures_to_report = 1

[alerts.smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = "5s"

[[sources]]
name = "feed"
kind = "rss"
url = "{feed_url}"
""", encoding="utf-8")
    return path


def test_cli_alerts_test_list_and_status(tmp_path: Path) -> None:
    server = SmtpServer().start()
    runner = CliRunner()
    try:
        path = _write_config(tmp_path, server.port)
        result = runner.invoke(cli, ["--config", str(path), "alerts", "test"])
        assert result.exit_code == 0, result.output
        assert "Test email sent to oncall@acme.example" in result.output
        assert len(server.messages) == 1
    finally:
        server.stop()
    # Server gone: a failing alert shows in `status` and `alerts list`.
    from sqlalchemy import update

    from mentionwatch.alerts import run_alerts
    from mentionwatch.config import load_config
    from mentionwatch.models import Mention
    from mentionwatch.store import Store
    from tests.test_alerts import add_mention

    config = load_config(path)
    store = Store.open(config.database_url())
    try:
        mid = add_mention(store, "m1", "acme ate my homework", rules=(("rage", True),))
        with store.session() as s:
            s.execute(update(Mention).where(Mention.id == mid).values(priority=0.1))
        assert run_alerts(config, store).error
    finally:
        store.close()
    listing = runner.invoke(cli, ["--config", str(path), "alerts", "list"])
    assert listing.exit_code == 0, listing.output
    assert "pending" in listing.output and "rule" in listing.output
    status = runner.invoke(cli, ["--config", str(path), "status"])
    assert status.exit_code == 0, status.output
    assert "Alert emails failing: 1 pending after 1 attempts" in status.output
    as_json = runner.invoke(cli, ["--config", str(path), "alerts", "list", "--json"])
    assert '"trigger": "rule"' in as_json.output


def test_missing_smtp_password_variable_stops_poll_and_status(tmp_path: Path) -> None:
    """The real command, as cron runs it: exit 2 and one message naming the setting (poll
    and status had exited 0, poll logging a retry warning, alerts pending for ever)."""
    from tests.test_cli import run

    path = _write_config(tmp_path, free_port())
    path.write_text(path.read_text(encoding="utf-8").replace(
        'security = "none"', 'security = "none"\nusername_env = "MW_SMTP_USER"\n'
        'password_env = "MW_SMTP_PASS_MISSING"'), encoding="utf-8")
    for command in (["poll"], ["status"], ["alerts", "send"]):
        result = run(["--config", str(path), *command], tmp_path, env={"MW_SMTP_USER": "alerts"})
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert ("alerts.smtp.password_env: environment variable $MW_SMTP_PASS_MISSING is not "
                "set") in result.stderr
        assert "Export MW_SMTP_PASS_MISSING" in result.stderr
        assert "Traceback" not in result.stderr and not result.stdout


def test_alerts_send_says_what_waits_in_back_off(tmp_path: Path) -> None:
    """`sent 0` with alerts in SMTP back-off had read as if nothing were waiting: say how many
    wait for a retry, when the next attempt is, and the last error."""
    from mentionwatch.alerts import run_alerts
    from mentionwatch.config import load_config
    from mentionwatch.store import Store
    from tests.test_alerts import add_mention

    path = _write_config(tmp_path, free_port())  # nothing listens there
    config = load_config(path)
    store = Store.open(config.database_url())
    try:
        for i in range(4):
            add_mention(store, f"m{i}", f"acme ate my homework {i}", rules=(("rage", True),))
        assert run_alerts(config, store).error
    finally:
        store.close()
    result = CliRunner().invoke(cli, ["--config", str(path), "alerts", "send"])
    assert result.exit_code == 0, result.output
    assert "recorded 0, sent 0 in 0 email(s), held for digest 0" in result.stdout
    waiting = " ".join(result.stderr.split())
    assert "4 alert(s) wait for a retry after a failed send; next attempt at 20" in waiting
    assert re.search(r"UTC \(in (29|30)s\)", waiting)  # 30 s back-off after one failure
    assert "cannot reach the SMTP server 127.0.0.1" in waiting


def test_alerts_send_says_what_waits_for_the_digest(tmp_path: Path) -> None:
    from mentionwatch.config import load_config
    from mentionwatch.store import Store
    from tests.test_alerts import add_mention

    server = SmtpServer().start()
    try:
        path = _write_config(tmp_path, server.port)
        store = Store.open(load_config(path).database_url())
        runner = CliRunner()
        try:
            add_mention(store, "m1", "acme ate my homework", rules=(("rage", True),))
            first = runner.invoke(cli, ["--config", str(path), "alerts", "send"])
            assert "sent 1 in 1 email(s)" in first.stdout and "wait" not in first.output
            add_mention(store, "m2", "acme ate my lunch", rules=(("rage", True),))
            runner.invoke(cli, ["--config", str(path), "alerts", "send"])  # holds it
        finally:
            store.close()
        again = runner.invoke(cli, ["--config", str(path), "alerts", "send"])
        assert again.exit_code == 0, again.output
        assert "held for digest 0" in again.stdout
        assert re.search(r"1 alert\(s\) wait for the digest, sent at 20\S+ \S+ UTC \(in [45]m\)",
                         " ".join(again.stdout.split()))
        assert len(server.messages) == 1
    finally:
        server.stop()
