"""The HTTP/1.1 client: a keep-alive pool per deployment address, streamed responses.

Each request is written in full at once (``REQUEST_RESPONSE`` mode needs nothing else), either
with a content-length or chunked as Restate does; the response body is read as it arrives,
parsed by httptools. Requests are never pipelined: one connection carries one exchange at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import Final, cast

import httptools

from undying.errors import DeploymentError

from .base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    Endpoint,
    Headers,
    Response,
    connect,
    connection_lost_error,
)

__all__ = ["H1Client", "H1Response"]

_Key = tuple[str, int]

DEFAULT_IDLE_TIMEOUT: Final = 4.0
_HIGH_WATER: Final = 1024 * 1024
_LOW_WATER: Final = 256 * 1024
_MAX_IDLE_PER_HOST: Final = 64


class H1Response:
    """A response whose headers arrived; read the body with :meth:`receive`.

    The connection goes back to the pool when the body was read to the end (``receive()``
    returned ``b""``) or when :meth:`aclose` finds it fully received; otherwise :meth:`aclose`
    closes the connection. ``async with`` calls :meth:`aclose`.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_complete",
        "_conn",
        "_done",
        "_error",
        "_headers_done",
        "_informational",
        "_keep_alive",
        "_until_close",
        "_waiter",
        "headers",
        "parser",
        "received_any",
        "status",
    )

    def __init__(self, conn: _H1Connection) -> None:
        self._conn = conn
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: Headers = []
        self.received_any = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._headers_done = False
        self._informational = False
        self._until_close = False
        self._complete = False
        self._keep_alive = False
        self._done = False
        self._error: DeploymentError | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def receive(self) -> bytes:
        """The next chunk of the body; ``b""`` at its end."""
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._buffered < _LOW_WATER:
                    self._conn.resume_reading()
                return data
            if self._error is not None:
                raise self._error
            if self._complete:
                self._finish()
                return b""
            await self._wait()

    async def aclose(self) -> None:
        """Stop reading; the connection is closed unless the whole response arrived."""
        self._finish()

    async def __aenter__(self) -> H1Response:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish()

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or ``None``."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def _wait_headers(self) -> None:
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def _wait(self) -> None:
        waiter = self._waiter = self._conn.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._chunks.clear()
        conn = self._conn
        conn.response = None
        if self._complete and self._keep_alive and self._error is None and conn.writes_done:
            conn.release()
        else:
            conn.close()

    def _fail(self, error: DeploymentError) -> None:
        if self._error is None and not self._complete:
            self._error = error
        self._wake()

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.received_any = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an informational response precedes the real one
            self._informational = True
            self.headers = []
            return
        self.status = status
        names = {name for name, _ in self.headers}
        self._until_close = "content-length" not in names and "transfer-encoding" not in names
        self._headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER:
            self._conn.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._complete = True
        self._keep_alive = self.parser.should_keep_alive()
        self._wake()

    def _on_connection_lost(self, error: DeploymentError) -> None:
        if self._headers_done and self._until_close and not self._complete:
            self._complete = True  # the body ran until the connection closed
            self._keep_alive = False
            self._wake()
        elif not self._complete:
            self._fail(error)


class _H1Connection(asyncio.Protocol):
    def __init__(self, client: H1Client, key: _Key, authority: str) -> None:
        self.client = client
        self.key = key
        self.authority = authority
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.response: H1Response | None = None
        self.reused = False
        self.idle_since = 0.0
        self._reading = True

    @property
    def writes_done(self) -> bool:
        return self.transport is not None and self.transport.get_write_buffer_size() == 0

    def send(self, parts: list[bytes]) -> H1Response:
        assert self.transport is not None and self.response is None
        response = self.response = H1Response(self)
        self.transport.writelines(parts)
        return response

    def release(self) -> None:
        self.client._release(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def pause_reading(self) -> None:
        if self._reading and self.transport is not None:
            self._reading = False
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._reading and self.transport is not None:
            self._reading = True
            self.transport.resume_reading()

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None or response._complete:  # bytes nobody asked for: out of step
            self.close()
            return
        try:
            response.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            response._fail(
                DeploymentError(f"malformed HTTP/1.1 response from {self.authority}: {exc}")
            )
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        response = self.response
        if response is not None:
            if response.received_any:
                error = connection_lost_error(self.authority, exc)
            else:
                reason = "reset" if isinstance(exc, ConnectionResetError) else "closed"
                error = DeploymentError(
                    f"connection to {self.authority} {reason} by the deployment before it answered"
                )
            response._on_connection_lost(error)


class H1Client:
    """Sends HTTP/1.1 requests to deployments over pooled keep-alive connections.

    Args:
        connect_timeout: seconds to open a connection.
        idle_timeout: a pooled connection idle for longer than this is closed instead of reused
            (servers close idle connections: hypercorn and node after 5 s).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self._idle: dict[_Key, list[_H1Connection]] = {}
        self._closed = False

    async def stream(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        headers: Headers,
        body: bytes | None = None,
        *,
        chunked: bool = False,
    ) -> H1Response:
        """Send a request and wait for the response headers; the body is read from the result.

        ``body`` is sent whole, with ``transfer-encoding: chunked`` if ``chunked`` (Restate's
        way for invocations), else with a content-length (none when ``body`` is ``None``).
        A request on a reused connection that the deployment closed without answering a byte
        (a keep-alive race) is sent once more on a new connection; any other failure raises.

        Raises:
            DeploymentError: connection failure, or the connection broke before the headers.
        """
        parts = _encode_request(endpoint, method, path, headers, body, chunked)
        for attempt in range(2):
            conn = await self._checkout(endpoint)
            response = conn.send(parts)
            try:
                await response._wait_headers()
            except DeploymentError:
                response._finish()
                if attempt == 0 and conn.reused and not response.received_any:
                    continue
                raise
            except BaseException:
                response._finish()
                raise
            return response
        raise AssertionError("unreachable")  # pragma: no cover

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
        """Send a request with a content-length body (none if empty), read the whole response.

        Bound the call with ``asyncio.timeout``. Meant for idempotent requests (discovery): one
        whose response breaks off is sent once more.

        Raises:
            DeploymentError: transport failure, or a body over ``max_body_size``.
        """
        for attempt in range(2):
            response = await self.stream(endpoint, method, path, headers, body if body else None)
            try:
                async with response:
                    content = await _read_body(response, max_body_size)
            except DeploymentError:
                if attempt == 0:
                    continue
                raise
            if content is None:
                raise DeploymentError(
                    f"response body from {endpoint} is over the limit of {max_body_size} bytes"
                )
            return Response(response.status, response.headers, content)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the pooled connections (responses being read keep theirs until done)."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    def idle_count(self, endpoint: Endpoint) -> int:
        """How many idle connections to ``endpoint`` are pooled (for tests, metrics)."""
        return len(self._idle.get((endpoint.host, endpoint.port), ()))

    async def _checkout(self, endpoint: Endpoint) -> _H1Connection:
        if self._closed:
            raise RuntimeError("H1Client is closed")
        key = (endpoint.host, endpoint.port)
        conns = self._idle.get(key)
        if conns:
            oldest = asyncio.get_running_loop().time() - self.idle_timeout
            while conns:
                conn = conns.pop()
                if conn.transport is not None and not conn.transport.is_closing():
                    if conn.idle_since >= oldest:
                        conn.reused = True
                        return conn
                    conn.close()
        return await connect(
            endpoint, lambda: _H1Connection(self, key, endpoint.authority), self.connect_timeout
        )

    def _release(self, conn: _H1Connection) -> None:
        conns = self._idle.setdefault(conn.key, [])
        if self._closed or len(conns) >= _MAX_IDLE_PER_HOST or conn.transport is None:
            conn.close()
            return
        conn.resume_reading()
        conn.idle_since = conn.loop.time()
        conns.append(conn)


def _encode_request(
    endpoint: Endpoint,
    method: str,
    path: str,
    headers: Headers,
    body: bytes | None,
    chunked: bool,
) -> list[bytes]:
    lines = [f"{method} {endpoint.target(path)} HTTP/1.1"]
    if not any(name.lower() == "host" for name, _ in headers):
        lines.append(f"host: {endpoint.authority}")
    for name, value in headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    if chunked:
        lines.append("transfer-encoding: chunked")
    elif body is not None:
        lines.append(f"content-length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if chunked:
        if body:
            return [head, b"%x\r\n" % len(body), body, b"\r\n0\r\n\r\n"]
        return [head, b"0\r\n\r\n"]
    return [head, body] if body else [head]


async def _read_body(response: H1Response, max_body_size: int) -> bytes | None:
    """The rest of the response body, or ``None`` when it is over ``max_body_size``."""
    chunks: list[bytes] = []
    size = 0
    while data := await response.receive():
        size += len(data)
        if size > max_body_size:
            return None
        chunks.append(data)
    return b"".join(chunks)
