"""Small helpers shared by the HTTP/1.1 server modules (status lines, date header, errors)."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate
from http import HTTPStatus

import httptools

logger = logging.getLogger("undying.http")

# Pause reading from the socket once this much request body is buffered and unread.
BODY_HIGH_WATER = 1024 * 1024
# An unread request body left over after the response is discarded up to this many bytes;
# beyond that the connection is closed instead of reading (and dropping) the rest.
DISCARD_LIMIT = 1024 * 1024

# After a response that ends the connection, how long to keep draining client input.
LINGER = 2.0

CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"


def split_target(url: bytes, method: str) -> tuple[bytes, bytes]:
    """Split a request target into (raw path, query string without the ``?``)."""
    if method == "CONNECT":  # authority-form: host:port
        return url, b""
    if url[:1] != b"/" and url != b"*":  # absolute-form, as sent to proxies
        parsed = httptools.parse_url(url)
        return parsed.path or b"/", parsed.query or b""
    qpos = url.find(b"?")
    if qpos < 0:
        return url, b""
    return url[:qpos], url[qpos + 1 :]


def _make_status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode("ascii"))


_STATUS_LINES: dict[int, bytes] = {s.value: _make_status_line(s.value) for s in HTTPStatus}


def status_line(status: int) -> bytes:
    """Return the ``HTTP/1.1 <code> <reason>\\r\\n`` line for ``status``."""
    line = _STATUS_LINES.get(status)
    if line is None:
        if type(status) is not int or not 100 <= status <= 999:
            raise RuntimeError(f"invalid HTTP status code {status!r}")
        line = _make_status_line(status)
    return line


class _DateCache:
    __slots__ = ("line", "second")

    def __init__(self) -> None:
        self.second = -1
        self.line = b""


_date_cache = _DateCache()


def date_line() -> bytes:
    """Return a ``date: ...\\r\\n`` header line, reformatted at most once per second."""
    now = time.time()
    second = int(now)
    cache = _date_cache
    if second != cache.second:
        cache.line = b"date: %s\r\n" % formatdate(second, usegmt=True).encode("ascii")
        cache.second = second
    return cache.line


def simple_response(
    status: int,
    text: str,
    *,
    keep_alive: bool,
    http11: bool = True,
    head: bool = False,
    server_line: bytes = b"",
) -> bytes:
    """Build a complete plain-text response (used for errors produced by the server)."""
    body = text.encode("utf-8")
    parts = [
        status_line(status),
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\n" % len(body),
    ]
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    elif not http11:
        parts.append(b"connection: keep-alive\r\n")
    parts.append(date_line())
    parts.append(server_line)
    parts.append(b"\r\n")
    if not head:
        parts.append(body)
    return b"".join(parts)
