"""The HTTP/2 cleartext client: a pool of :class:`H2Connection` per deployment address.

All streams to one address share one connection; a second one opens only when the first is full
(the peer's ``MAX_CONCURRENT_STREAMS``), after a GOAWAY, or after the connection died.
"""

from __future__ import annotations

import asyncio
from typing import Final

from undying.errors import DeploymentError

from .base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    Endpoint,
    Headers,
    Response,
)
from .h2connection import H2Connection, H2Settings
from .h2stream import H2Stream

__all__ = ["H2Client"]

_Key = tuple[str, int]

DEFAULT_IDLE_TIMEOUT: Final = 4.0


class H2Client:
    """Opens HTTP/2 streams to deployments; one instance per process.

    Args:
        connect_timeout: seconds to connect and receive the deployment's HTTP/2 SETTINGS.
        settings: windows, frame size, stream cap and keep-alive of each connection.
        idle_timeout: a connection without streams for longer than this is not reused (servers
            close idle connections, hypercorn after 5 s, and a request racing that close fails).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        settings: H2Settings | None = None,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.settings = settings if settings is not None else H2Settings()
        self.idle_timeout = idle_timeout
        self._pools: dict[_Key, list[H2Connection]] = {}
        self._connecting: dict[_Key, asyncio.Future[None]] = {}
        self._closed = False

    async def open_stream(
        self,
        endpoint: Endpoint,
        path: str,
        headers: Headers,
        *,
        method: str = "POST",
        end_stream: bool = False,
    ) -> H2Stream:
        """Send the HEADERS of a new request to ``endpoint.target(path)``; return its stream.

        ``headers`` are the regular header fields (the pseudo-headers are added here).
        With ``end_stream`` the request has no body. Does not wait for the response.

        Raises:
            DeploymentError: no connection could be made.
        """
        conn = await self._connection(endpoint)
        return conn.open_stream(method, endpoint.target(path), headers, end_stream=end_stream)

    async def request(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        headers: Headers,
        body: bytes = b"",
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> Response:
        """Send a whole request and read the whole response; bound it with ``asyncio.timeout``.

        Meant for idempotent requests (discovery): one whose stream breaks is sent once more,
        on another connection. (hypercorn, for one, drops the request that makes a connection
        reach ``keep_alive_max_requests``.)

        Raises:
            DeploymentError: transport failure, or a body over ``max_body_size``.
        """
        for attempt in range(2):
            async with await self.open_stream(
                endpoint, path, headers, method=method, end_stream=not body
            ) as stream:
                try:
                    if body:
                        await stream.send(body)
                        await stream.end()
                    status, response_headers = await stream.response()
                    content = await _read_body(stream, max_body_size)
                except DeploymentError:
                    if attempt == 0:
                        continue
                    raise
            if content is None:
                raise DeploymentError(
                    f"response body from {endpoint} is over the limit of {max_body_size} bytes"
                )
            return Response(status, response_headers, content)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close every connection; streams still open fail with ``DeploymentError``."""
        self._closed = True
        for conns in list(self._pools.values()):
            for conn in list(conns):
                conn.close()
        self._pools.clear()

    def connection_count(self, endpoint: Endpoint) -> int:
        """How many connections to ``endpoint`` are open for new streams (for tests, metrics)."""
        return len(self._pools.get((endpoint.host, endpoint.port), ()))

    async def _connection(self, endpoint: Endpoint) -> H2Connection:
        key = (endpoint.host, endpoint.port)
        while True:
            if self._closed:
                raise RuntimeError("H2Client is closed")
            conns = self._pools.get(key)
            if conns:
                now = asyncio.get_running_loop().time()
                for conn in list(conns):
                    if self._expired(conn, now):
                        conn.close()  # on_unusable removes it from the pool
                    elif conn.has_capacity:
                        return conn
            pending = self._connecting.get(key)
            if pending is not None:
                await asyncio.wait((pending,))
                if not pending.cancelled() and (error := pending.exception()) is not None:
                    raise error
                continue
            conn = await self._connect(key, endpoint)
            if conn.has_capacity:
                return conn

    async def _connect(self, key: _Key, endpoint: Endpoint) -> H2Connection:
        """Open one connection to ``key`` while other callers wait for it."""
        pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._connecting[key] = pending
        try:
            conn = await H2Connection.open(endpoint, self.settings, self.connect_timeout)
        except DeploymentError as exc:
            pending.set_exception(exc)
            pending.exception()  # mark retrieved when nobody waits
            raise
        except BaseException:
            pending.cancel()
            raise
        finally:
            del self._connecting[key]
        if self._closed:
            conn.close()
        else:
            conn.on_unusable = self._forget
            self._pools.setdefault(key, []).append(conn)
        pending.set_result(None)
        return conn

    def _expired(self, conn: H2Connection, now: float) -> bool:
        return (
            self.idle_timeout is not None
            and conn.stream_count == 0
            and now - conn.idle_since > self.idle_timeout
        )

    def _forget(self, conn: H2Connection) -> None:
        key = (conn.endpoint.host, conn.endpoint.port)
        conns = self._pools.get(key)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._pools[key]


async def _read_body(stream: H2Stream, max_body_size: int) -> bytes | None:
    """The rest of the response body, or ``None`` when it is over ``max_body_size``."""
    chunks: list[bytes] = []
    size = 0
    while data := await stream.receive():
        size += len(data)
        if size > max_body_size:
            return None
        chunks.append(data)
    return b"".join(chunks)
