"""Hand a message to the configured SMTP server: STARTTLS, implicit TLS or plain, with an
optional login whose credentials come from environment variables."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage

from mentionwatch.config import SmtpConfig, read_secret
from mentionwatch.errors import SendError


def tls_context(config: SmtpConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if config.ca_file:
        context.load_verify_locations(cafile=str(config.ca_file))
    return context


def send(
    config: SmtpConfig,
    message: EmailMessage,
    recipients: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, tuple[int, bytes]]:
    """Send `message` to `recipients`; return the recipients the server refused (others got it).

    Raises SendError (never containing the password) when nothing was delivered: server
    unreachable, TLS or login failure, every recipient refused.
    """
    host, port = config.host, config.effective_port()
    timeout = config.timeout.total_seconds()
    where = f"{host}:{port}"
    user = read_secret(config.username_env, environ)
    password = read_secret(config.password_env, environ)
    if (config.username_env or config.password_env) and not (user and password):
        raise SendError(
            f"SMTP login for {where} is configured but ${config.username_env} or "
            f"${config.password_env} is not set.",
            hint="Export both variables, or remove username_env/password_env from [alerts.smtp].",
        )
    try:
        client: smtplib.SMTP
        if config.security == "tls":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context(config))
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if config.security == "starttls":
                try:
                    client.starttls(context=tls_context(config))
                except smtplib.SMTPNotSupportedError:
                    raise SendError(f"{where} does not offer STARTTLS.",
                                    hint="Set [alerts.smtp] security = \"tls\" or \"none\" to "
                                    "match the server.") from None
            if user and password:
                try:
                    client.login(user, password)
                except smtplib.SMTPNotSupportedError:
                    raise SendError(
                        f"{where} offers no authentication (SMTP AUTH), but [alerts.smtp] "
                        "configures a login.",
                        hint="Leave username_env and password_env out of [alerts.smtp] if the "
                        "server takes mail without login; many servers offer AUTH only over "
                        "TLS, so check security (\"starttls\" or \"tls\") too.") from None
            return client.send_message(message, to_addrs=list(recipients))
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(f"{where} refused the SMTP login ({exc.smtp_code}).",
                        hint="Check the username and password variables.") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"{where} refused every recipient: {', '.join(exc.recipients)}.") from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        raise SendError(f"{where} answered {exc.smtp_code}: {text[:200]}") from None
    except ssl.SSLError as exc:
        raise SendError(f"TLS with {where} failed: {exc.reason or exc}.",
                        hint="Check [alerts.smtp] security and ca_file.") from None
    except (OSError, smtplib.SMTPException) as exc:
        reason = "timed out" if isinstance(exc, socket.timeout | TimeoutError) else \
            f"{type(exc).__name__}: {exc}"
        raise SendError(f"cannot reach the SMTP server {where} ({reason}).",
                        hint="Check [alerts.smtp] host and port.") from None
