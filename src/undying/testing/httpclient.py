"""A minimal blocking HTTP/1.1 client on the standard library, for tests and benchmarks.

One connection per request, no redirects, no retries: what the ingress or admin API answered is
exactly what the caller sees (status, every header, raw body, elapsed time).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["HttpResponse", "request", "request_head", "request_json"]


@dataclass(frozen=True)
class HttpResponse:
    """A complete response. Header names are lower-case; repeated headers keep all values."""

    status: int
    reason: str
    header_list: tuple[tuple[str, str], ...]
    body: bytes
    elapsed: float

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        for key, value in self.header_list:
            if key == wanted:
                return value
        return None

    @property
    def headers(self) -> dict[str, str]:
        """Headers as a dict (the first value of a repeated header wins)."""
        out: dict[str, str] = {}
        for key, value in self.header_list:
            out.setdefault(key, value)
        return out

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def __str__(self) -> str:
        body = self.text if len(self.body) <= 2000 else self.text[:2000] + "…"
        return f"HTTP {self.status} {self.reason} {self.headers} {body!r}"


def request(
    method: str,
    url: str,
    *,
    body: bytes | Iterable[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> HttpResponse:
    """Send one request and read the whole response.

    A server may answer before it has read the whole body (e.g. 413) and close the connection;
    if sending the body fails that way, the early response is returned.

    Args:
        method: HTTP method.
        url: absolute ``http://`` URL (path and query are sent as given).
        body: request body: bytes (sent with ``content-length``) or an iterable of chunks (sent
            with ``transfer-encoding: chunked``).
        headers: extra request headers.
        timeout: socket timeout in seconds (connect and each read).

    Raises:
        OSError: connection refused/reset, timeouts (``TimeoutError``).
    """
    host, port, target = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    started = time.monotonic()
    try:
        chunked = body is not None and not isinstance(body, bytes)
        try:
            conn.request(
                method, target, body=body, headers=dict(headers or {}), encode_chunked=chunked
            )
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading; its answer may already be waiting
        return _read(conn, started)
    finally:
        conn.close()


def request_head(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: float = 30.0,
) -> HttpResponse:
    """Send only the request line and headers, then read the response.

    For requests a server must reject from their headers alone, e.g. a ``content-length`` over
    its body limit: the announced body is never sent.
    """
    host, port, target = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        return _read(conn, started)
    finally:
        conn.close()


def _split(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"`url` must be an absolute http:// URL, got {url!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.hostname, parts.port or 80, target


def _read(conn: http.client.HTTPConnection, started: float) -> HttpResponse:
    resp = conn.getresponse()
    data = resp.read()
    return HttpResponse(
        status=resp.status,
        reason=resp.reason,
        header_list=tuple((k.lower(), v) for k, v in resp.getheaders()),
        body=data,
        elapsed=time.monotonic() - started,
    )


def request_json(
    method: str,
    url: str,
    payload: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> HttpResponse:
    """Like :func:`request`, with ``payload`` sent as a JSON body (none if ``payload`` is None)."""
    hdrs = {"accept": "application/json", **(headers or {})}
    body = None
    if payload is not None:
        body = json.dumps(payload).encode()
        hdrs.setdefault("content-type", "application/json")
    return request(method, url, body=body, headers=hdrs, timeout=timeout)
