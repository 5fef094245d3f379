"""One HTTP/2 request/response exchange: the stream a deployment attempt runs on.

Received data is acknowledged to the peer (its flow-control windows reopen) only when the
consumer takes it with :meth:`H2Stream.receive`, so a slow consumer stops the deployment instead
of filling memory; :meth:`H2Stream.send` waits for the deployment's windows in turn.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING

import h2.exceptions
from h2.errors import ErrorCodes

from undying.errors import DeploymentError

from .base import Headers

if TYPE_CHECKING:
    from .h2connection import H2Connection

__all__ = ["H2Stream"]


def error_name(code: int) -> str:
    """The name of an HTTP/2 error code, as in messages: ``CANCEL``, ``0x1a``."""
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"{code:#x}"


class H2Stream:
    """One request/response exchange on an :class:`H2Connection`.

    A single task consumes (:meth:`response`, :meth:`receive`) and a single task produces
    (:meth:`send`, :meth:`end`); the two may be different tasks. Close every stream: read it to
    the end after :meth:`end`, or call :meth:`reset` / :meth:`aclose` (``async with`` does).
    """

    __slots__ = (
        "_chunks",
        "_conn",
        "_error",
        "_headers",
        "_local_closed",
        "_recv_waiter",
        "_remote_closed",
        "_reset",
        "_status",
        "_window_waiter",
        "refused",
        "stream_id",
    )

    def __init__(self, conn: H2Connection, stream_id: int, *, end_stream: bool) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self.refused = False
        """True when the deployment certainly did not process this stream (GOAWAY, REFUSED)."""
        self._status: int | None = None
        self._headers: Headers = []
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._recv_waiter: asyncio.Future[None] | None = None
        self._window_waiter: asyncio.Future[None] | None = None
        self._local_closed = end_stream
        self._remote_closed = False
        self._reset = False
        self._error: DeploymentError | None = None

    # -- consumer side ---------------------------------------------------------------------------

    async def response(self) -> tuple[int, Headers]:
        """Wait for the response headers; return the status and the headers."""
        while self._status is None:
            if self._error is not None:
                raise self._error
            await self._wait_event()
        return self._status, self._headers

    async def receive(self) -> bytes:
        """The next chunk of the response body; ``b""`` once the deployment ended it.

        Data that arrived before a failure is delivered before the failure is raised.
        """
        while True:
            chunks = self._chunks
            if chunks:
                data, size = chunks.popleft()
                if size:
                    self._conn._acknowledge(self.stream_id, size)
                return data
            if self._error is not None:
                raise self._error
            if self._remote_closed:
                return b""
            await self._wait_event()

    async def _wait_event(self) -> None:
        waiter = self._recv_waiter = self._conn._loop.create_future()
        try:
            await waiter
        finally:
            self._recv_waiter = None

    # -- producer side ---------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Write ``data`` to the request body, as DATA frames within the peer's windows.

        Returns once every byte is handed to the connection (waiting for flow-control windows
        and for the socket buffer to drain as needed). Data sent after the deployment finished
        its response and closed the stream is discarded.
        """
        if self._local_closed:
            raise RuntimeError("send() after end() on an HTTP/2 stream")
        conn = self._conn
        h2c = conn._h2
        sid = self.stream_id
        pos = 0
        total = len(data)
        while pos < total:
            if self._error is not None:
                raise self._error
            if self._reset:
                return
            window = h2c.local_flow_control_window(sid)
            if window <= 0:
                conn._flush()
                waiter = self._window_waiter = conn._loop.create_future()
                try:
                    await waiter
                finally:
                    self._window_waiter = None
                continue
            size = min(window, h2c.max_outbound_frame_size, total - pos)
            try:
                h2c.send_data(sid, data if size == total else data[pos : pos + size])
            except h2.exceptions.ProtocolError as exc:
                raise DeploymentError(f"cannot send on HTTP/2 stream {sid}: {exc}") from exc
            pos += size
        conn._flush()
        if not conn._writable.is_set():
            await conn._writable.wait()
        if self._error is not None:
            raise self._error

    async def end(self) -> None:
        """Half-close the request (an empty DATA frame with END_STREAM); keep reading after it."""
        if self._local_closed or self._reset:
            return
        if self._error is not None:
            raise self._error
        self._local_closed = True
        try:
            self._conn._h2.end_stream(self.stream_id)
        except h2.exceptions.ProtocolError as exc:
            raise DeploymentError(f"cannot end HTTP/2 stream {self.stream_id}: {exc}") from exc
        self._conn._flush()
        self._conn._maybe_release(self)

    def reset(self) -> None:
        """Abandon the stream: RST_STREAM(CANCEL) unless it is over, drop unread data."""
        conn = self._conn
        if not self._reset and not (self._local_closed and self._remote_closed):
            self._reset = True
            if self._error is None:
                self._error = DeploymentError("the stream was cancelled by the client")
                conn._cancel_stream(self.stream_id)
        self._reset = True
        unread = sum(size for _, size in self._chunks)
        self._chunks.clear()
        if unread:
            conn._acknowledge(self.stream_id, unread)
        self._wake()
        conn._maybe_release(self)

    async def aclose(self) -> None:
        """Same as :meth:`reset`; a no-op on a stream that is over."""
        self.reset()

    async def __aenter__(self) -> H2Stream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.reset()

    @property
    def responded(self) -> bool:
        """True once the response headers arrived."""
        return self._status is not None

    @property
    def finished(self) -> bool:
        """True once both sides ended the stream, or it was reset."""
        return self._reset or (self._local_closed and self._remote_closed)

    # -- called by the connection ----------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._wake_sender()

    def _wake_sender(self) -> None:
        waiter = self._window_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: DeploymentError) -> None:
        if self._error is None and not self._reset:
            self._error = error
        self._wake()

    def _on_reset(self, code: int) -> None:
        if self._remote_closed and code == ErrorCodes.NO_ERROR:
            # The deployment finished its response and no longer wants our request body.
            self._reset = True
        else:
            self.refused = code == ErrorCodes.REFUSED_STREAM
            self._fail(
                DeploymentError(f"stream reset by the deployment (error code {error_name(code)})")
            )
            self._reset = True
        self._wake()
