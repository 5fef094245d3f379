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

from undying.errors import DeploymentError

from .base import Headers
from .frames import DATA, END_STREAM, NO_ERROR, REFUSED_STREAM, error_name, frame_header

if TYPE_CHECKING:
    from .h2connection import H2Connection

__all__ = ["H2Stream", "error_name"]

_END_STREAM_DATA = frame_header(0, DATA, END_STREAM, 0)[:5]  # + the stream id
_DATA_FLUSH_SIZE = 256 * 1024  # hand the socket this much at once rather than wait for the turn


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
        "_recv_unacked",
        "_recv_waiter",
        "_recv_window",
        "_remote_closed",
        "_reset",
        "_send_window",
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
        self._chunks: deque[tuple[bytes, int]] = deque()  # (data, flow-controlled size)
        self._recv_waiter: asyncio.Future[None] | None = None
        self._window_waiter: asyncio.Future[None] | None = None
        self._send_window = conn._peer_initial_window
        self._recv_window = conn.settings.initial_stream_window  # the peer may send this much
        self._recv_unacked = 0  # consumed, not yet given back with a WINDOW_UPDATE
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
            if self._chunks:
                data, size = self._chunks.popleft()
                self._conn._consumed(self, size)
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
        size = len(data)
        if self._error is not None:
            raise self._error
        if self._reset or not size:
            return
        if size <= self._send_window and size <= conn._send_window and size <= conn._max_send:
            # The common case: one frame.
            self._send_window -= size
            conn._send_window -= size
            conn._queue_data(frame_header(size, DATA, 0, self.stream_id), data)
        else:
            await self._send_frames(memoryview(data))
        if not conn._writable.is_set():
            await conn._writable.wait()
        if self._error is not None:
            raise self._error

    async def _send_frames(self, view: memoryview) -> None:
        conn = self._conn
        sid = self.stream_id
        pos = 0
        total = len(view)
        queued = 0
        while pos < total:
            if self._error is not None:
                raise self._error
            if self._reset:
                return
            window = min(self._send_window, conn._send_window)
            if window <= 0:
                conn._flush()
                waiter = self._window_waiter = conn._loop.create_future()
                conn._blocked.add(self)
                try:
                    await waiter
                finally:
                    self._window_waiter = None
                    conn._blocked.discard(self)
                continue
            size = min(window, conn._max_send, total - pos)
            self._send_window -= size
            conn._send_window -= size
            conn._queue_data(frame_header(size, DATA, 0, sid), view[pos : pos + size])
            pos += size
            queued += size
            if queued >= _DATA_FLUSH_SIZE:
                queued = 0
                conn._flush()
                if not conn._writable.is_set():
                    await conn._writable.wait()

    async def end(self) -> None:
        """Half-close the request (an empty DATA frame with END_STREAM); keep reading after it."""
        if self._local_closed or self._reset:
            return
        if self._error is not None:
            raise self._error
        self._local_closed = True
        conn = self._conn
        conn._queue(_END_STREAM_DATA + self.stream_id.to_bytes(4, "big"))
        conn._maybe_release(self)

    def reset(self) -> None:
        """Abandon the stream: RST_STREAM(CANCEL) unless it is over, drop unread data."""
        conn = self._conn
        if not self._reset and not (self._local_closed and self._remote_closed):
            self._reset = True
            if self._error is None:
                self._error = DeploymentError("the stream was cancelled by the client")
                conn._cancel_stream(self.stream_id)
        self._reset = True
        if self._chunks:
            unread = sum(size for _, size in self._chunks)
            self._chunks.clear()
            conn._consumed(self, unread)
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
        waiter = self._window_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_sender(self) -> None:
        waiter = self._window_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: DeploymentError) -> None:
        if self._error is None and not self._reset:
            self._error = error
        self._wake()

    def _on_reset(self, code: int) -> None:
        if self._remote_closed and code == NO_ERROR:
            # The deployment finished its response and no longer wants our request body.
            self._reset = True
        else:
            self.refused = code == REFUSED_STREAM
            self._fail(
                DeploymentError(f"stream reset by the deployment (error code {error_name(code)})")
            )
            self._reset = True
        self._wake()
