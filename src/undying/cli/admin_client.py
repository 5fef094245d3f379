"""A small synchronous client of the admin API, the way the official ``restate`` CLI talks to it.

Plain HTTP/1.1 on one keep-alive connection (stdlib :mod:`http.client`: nothing to import
beyond it, so the CLI starts fast). The first request is ``GET /version``; every other path is
then prefixed with ``/v{N}``, the highest admin API version both sides speak (2-4), or left
unprefixed when the server does not say which versions it serves. SQL goes to ``POST /query``
with ``accept: application/json`` (rows as JSON objects, NULL columns left out) or, for
:meth:`AdminClient.query_arrow`, as an Arrow IPC stream.

>>> admin = AdminClient("http://127.0.0.1:9070")                  # doctest: +SKIP
>>> admin.query("SELECT id, status FROM sys_invocation LIMIT 1")   # doctest: +SKIP
[{'id': 'inv_1…', 'status': 'completed'}]

Errors: :class:`~undying.errors.AdminUnreachable` when nothing answers,
:class:`~undying.errors.AdminRequestFailed` for an error status (with the server's message).
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit

from undying._version import __version__
from undying.errors import AdminApiError, AdminRequestFailed, AdminUnreachable

__all__ = [
    "DEFAULT_ADMIN_URL",
    "SUPPORTED_API_VERSIONS",
    "AdminClient",
    "Response",
    "path_segment",
]

#: Where ``undying serve`` puts its admin API by default.
DEFAULT_ADMIN_URL: Final = "http://127.0.0.1:9070"
#: Admin API versions this client speaks (as the official CLI 1.7.12).
SUPPORTED_API_VERSIONS: Final = range(2, 5)
_USER_AGENT: Final = f"undying-cli/{__version__}"


def path_segment(value: str) -> str:
    """``value`` escaped for use as one path segment (``/`` included)."""
    return quote(value, safe="")


@dataclass(frozen=True)
class Response:
    """An answer of the admin API."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class AdminClient:
    """The admin API at ``base_url``.

    Args:
        base_url: ``http(s)://host:port`` with an optional path prefix.
        timeout: seconds to wait for a connection or an answer.
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AdminApiError(
                f"the admin URL {base_url!r} is not an http(s) URL, e.g. {DEFAULT_ADMIN_URL}"
            )
        self.base_url = base_url.strip().rstrip("/")
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        try:
            self._port = parts.port or (443 if self._https else 80)
        except ValueError:
            raise AdminApiError(f"the admin URL {base_url!r} has an invalid port") from None
        self._root = parts.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None
        self._used = False
        self._version: dict[str, Any] | None = None
        self._prefix: str | None = None

    # -- the version handshake -----------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        """``GET /version`` (fetched once): the server's version, API versions, ingress URL.

        An empty dict when the server does not serve ``/version``.
        """
        if self._version is None:
            resp = self._send("GET", "/version", None, {}, check=False)
            info = resp.json() if resp.status == 200 else None
            self._version = info if isinstance(info, dict) else {}
            self._prefix = self._pick_prefix(self._version)
        return self._version

    @property
    def api_version(self) -> int | None:
        """The admin API version in use (``None``: unprefixed paths)."""
        prefix = self._path_prefix()
        return int(prefix[2:]) if prefix else None

    def _pick_prefix(self, info: dict[str, Any]) -> str:
        low, high = info.get("min_admin_api_version"), info.get("max_admin_api_version")
        if not isinstance(low, int) or not isinstance(high, int):
            return ""
        common = [v for v in SUPPORTED_API_VERSIONS if low <= v <= high]
        if not common:
            raise AdminApiError(
                f"the server at {self.base_url} speaks admin API versions {low}-{high}; this "
                f"CLI speaks {SUPPORTED_API_VERSIONS[0]}-{SUPPORTED_API_VERSIONS[-1]}"
            )
        return f"/v{max(common)}"

    def _path_prefix(self) -> str:
        if self._prefix is None:
            self.version()
        return self._prefix or ""

    # -- requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        accept: str = "*/*",
        check: bool = True,
    ) -> Response:
        """``method path`` (under the version prefix), ``body`` sent as JSON if not ``None``.

        Raises:
            AdminRequestFailed: the answer's status is 400 or above (unless ``check=False``).
            AdminUnreachable: no answer.
        """
        headers = {"accept": accept}
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            headers["content-type"] = "application/json"
        return self._send(method, self._path_prefix() + path, payload, headers, check=check)

    def get_json(self, path: str) -> Any:
        """``GET path``, its JSON answer."""
        return self.request("GET", path).json()

    def health(self) -> bool:
        """Whether ``GET /health`` answers 200."""
        return self.request("GET", "/health", check=False).status == 200

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run ``sql``; the rows, NULL columns absent (Restate's JSON encoding)."""
        answer = self.request("POST", "/query", {"query": sql}, accept="application/json").json()
        rows = answer.get("rows") if isinstance(answer, dict) else None
        if not isinstance(rows, list):
            raise AdminApiError(f"POST /query answered without rows: {str(answer)[:200]}")
        return rows

    def query_arrow(self, sql: str) -> bytes:
        """Run ``sql``; the answer as an Arrow IPC stream (what ``restate sql`` reads)."""
        return self.request("POST", "/query", {"query": sql}).body

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
            self._used = False
        return self._conn

    def _send(
        self,
        method: str,
        path: str,
        payload: bytes | None,
        headers: dict[str, str],
        *,
        check: bool,
    ) -> Response:
        headers = {"user-agent": _USER_AGENT, **headers}
        full_path = self._root + path
        for retry in (False, True):
            conn = self._connect()
            reused = self._used
            try:
                conn.request(method, full_path, body=payload, headers=headers)
                raw = conn.getresponse()
                body = raw.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if reused and not retry:  # the server closed an idle keep-alive connection
                    continue
                raise AdminUnreachable(self.base_url, _reason(e)) from None
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise AdminUnreachable(self.base_url, _reason(e)) from None
            self._used = True
            if raw.will_close:
                self.close()
            resp = Response(raw.status, body, {k.lower(): v for k, v in raw.getheaders()})
            if check and resp.status >= 400:
                raise AdminRequestFailed(
                    resp.status, _error_message(resp), method=method, path=path
                )
            return resp
        raise AssertionError("unreachable")  # pragma: no cover


def _reason(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(error, socket.gaierror):
        return f"unknown host: {error.strerror}"
    if isinstance(error, http.client.RemoteDisconnected | ConnectionResetError):
        return "the connection was closed without an answer"
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return str(text).lower()


def _error_message(resp: Response) -> str:
    """The server's message: ``{"message": …}`` (Restate's error shape), else its text."""
    text = resp.body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return text or f"HTTP {resp.status}"
