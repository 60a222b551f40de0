"""A deadline on each whole response body, on every HTTP stack the connectors use.

Timeouts (httpx's and requests') bound the connection and each read, not the response: a
server sending a byte every few seconds held a pass for hours (`run` never polled that source
again and waited for it at SIGTERM; a cron `poll` never exited). A body still arriving
`BODY_DEADLINE_FACTOR` x `[poll] timeout` after its headers ends as a read timeout, which
every connector already reports as one: `body_deadline` for httpx clients (the shared one, and
atproto's), `DeadlineAdapter` for requests (tweepy for X, prawcore for Reddit, Mastodon.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

#: A response's body must have arrived this many times `[poll] timeout` after its headers.
BODY_DEADLINE_FACTOR = 3
_CHUNK = 64 * 1024


def body_deadline(seconds: float) -> Callable[[httpx.Response], None]:
    """A response hook that ends a body still arriving `seconds` after the headers, as a read
    timeout. httpx's timeouts bound each read, so a server sending a byte every few seconds
    had kept a pass going for hours: `run` never polled that source again and waited on it
    at SIGTERM, and a cron `poll` never exited. (A hook, not a transport: httpx ignores the
    proxy environment variables for a client given its own transport.)"""
    def hook(response: httpx.Response) -> None:
        response.stream = _DeadlineStream(response.stream, time.monotonic() + seconds,
                                          seconds, response.request)
    return hook


class _DeadlineStream(httpx.SyncByteStream):
    def __init__(self, inner: Any, deadline: float, seconds: float,
                 request: httpx.Request) -> None:
        self.inner, self.deadline, self.seconds, self.request = inner, deadline, seconds, request

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            if time.monotonic() > self.deadline:
                raise httpx.ReadTimeout(f"the response took longer than {self.seconds:g} s",
                                        request=self.request)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter that reads each body within `seconds` of its headers. A caller that
    asks to stream gets the body unread, and bounds it itself."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def send(
        self, request: requests.PreparedRequest, stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True, cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        response = super().send(request, stream=True, timeout=timeout, verify=verify,
                                cert=cert, proxies=proxies)
        if not stream:
            read_within(response, self.seconds)
        return response


def bounded_session(seconds: float) -> requests.Session:
    """A requests session whose every response body must arrive within `seconds`."""
    session = requests.Session()
    adapter = DeadlineAdapter(seconds)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def read_within(response: requests.Response, seconds: float) -> None:
    """Read `response`'s body into it (what `response.content` then returns), or raise
    `requests.ReadTimeout` once that has taken more than `seconds`."""
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    try:
        for chunk in _arriving(response):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise requests.ReadTimeout(f"the response took longer than {seconds:g} s",
                                           request=response.request, response=response)
    except BaseException:
        response.close()
        raise
    response._content = b"".join(chunks)
    response._content_consumed = True


def _arriving(response: requests.Response) -> Iterator[bytes]:
    """The body as the network delivers it, decoded: `read1` returns what one read got
    (`iter_content` would wait for a whole chunk, however slowly it comes). urllib3's errors
    become requests' own, as `iter_content` makes them."""
    raw = response.raw
    try:
        while chunk := raw.read1(_CHUNK, decode_content=True):
            yield chunk
    except ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except ReadTimeoutError as exc:
        raise requests.ConnectionError(exc) from exc
    except SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc
