"""A real SMTP server on 127.0.0.1 for alert tests (aiosmtpd), recording every message.

aiosmtpd's Controller cannot take port 0 (its readiness check connects to the port), so a
free port is picked first.
"""

from __future__ import annotations

import email
import socket
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=default)
        assert isinstance(msg, EmailMessage)
        return msg

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None and body.get_content_subtype() == subtype, f"no {subtype} part"
        return str(body.get_content())


class Sink:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content or envelope.content))
        self.arrived.set()
        return "250 OK"


class SmtpServer:
    """Start with `start()`, stop with `stop()`; the port can be fixed to test a restart."""

    def __init__(self, port: int | None = None, *, tls: ssl.SSLContext | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.sink = Sink()
        self.tls = tls
        self.users = users
        self.controller: Controller | None = None

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str,
              auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.users is not None:
            user = auth_data.login.decode()
            if self.users.get(user) == auth_data.password.decode():
                self.sink.logins.append(user)
                return AuthResult(success=True)
        # handled=False: otherwise the client hangs until its timeout.
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.tls is not None:
            kwargs.update(tls_context=self.tls, require_starttls=True)
        if self.users is not None:
            kwargs.update(authenticator=self._auth, auth_require_tls=self.tls is not None,
                          auth_required=True)
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        return self.sink.messages
