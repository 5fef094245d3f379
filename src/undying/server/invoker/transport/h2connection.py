"""One HTTP/2 cleartext (prior knowledge) connection to a deployment.

:class:`H2Connection` is the asyncio protocol: it keeps the connection state (streams, both
directions of flow control, the peer's settings), reads frames with :class:`~.frames.FrameReader`
and routes them to the :class:`~.h2stream.H2Stream` of each request. Outgoing frames of one
event-loop turn are written to the socket together. Any protocol violation of the peer is a
connection error: GOAWAY, and every stream fails with ``DeploymentError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, cast

from undying.errors import DeploymentError

from . import frames as f
from .base import Endpoint, Headers, connect, connection_lost_error
from .frames import FrameReader, ProtocolError
from .h2settings import H2Settings
from .h2stream import H2Stream, error_name
from .hpack_decode import HeaderDecoder, response_head
from .hpack_encode import encode_request

__all__ = ["H2Connection", "H2Settings"]

_PING_DATA: Final = b"undying!"
_GOAWAY_PING_DATA: Final = b"goaway!!"
_TABLE_SIZE_ZERO: Final = b"\x20"  # an HPACK dynamic table size update to 0


class H2Connection(asyncio.Protocol):
    """One h2c (prior knowledge) connection; open it with :meth:`open`."""

    def __init__(self, endpoint: Endpoint, settings: H2Settings) -> None:
        self.endpoint = endpoint
        self.authority = endpoint.authority
        self.settings = settings
        self.on_unusable: Callable[[H2Connection], None] | None = None
        """Called once when the connection stops taking new streams (the pool drops it)."""
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, H2Stream] = {}
        self._next_sid = 1
        self._reader = FrameReader(settings.max_frame_size)
        self._decoder = HeaderDecoder()
        self._out: list[bytes | memoryview] = []
        self._flush_pending = False
        # What the peer lets us send.
        self._send_window = f.DEFAULT_WINDOW
        self._peer_initial_window = f.DEFAULT_WINDOW
        self._max_send = f.DEFAULT_MAX_FRAME_SIZE
        self._peer_max_streams = f.MAX_STREAM_ID
        self._blocked: set[H2Stream] = set()  # streams waiting for a window
        self._table_size_update = False
        # What we let the peer send.
        self._recv_window = settings.connection_window
        self._recv_unacked = 0
        self._conn_ack_at = max(settings.connection_window // 2, 1)
        self._stream_ack_at = max(settings.initial_stream_window // 2, 1)
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._writable = asyncio.Event()
        self._writable.set()
        self._error: DeploymentError | None = None
        self._draining = False
        self._goaway_received = False
        self._received = False
        self._keepalive: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self.idle_since = self._loop.time()

    @classmethod
    async def open(
        cls, endpoint: Endpoint, settings: H2Settings, connect_timeout: float
    ) -> H2Connection:
        """Connect and wait for the deployment's SETTINGS, both within ``connect_timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + connect_timeout
        conn = await connect(endpoint, lambda: cls(endpoint, settings), connect_timeout)
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.shield(conn._ready)
        except TimeoutError:
            conn.close()
            raise DeploymentError(
                f"{endpoint.authority} accepted the connection but sent no HTTP/2 SETTINGS "
                f"within {connect_timeout:g} s"
            ) from None
        except BaseException:
            conn.close()
            raise
        return conn

    # -- used by the client and the streams ------------------------------------------------------

    @property
    def usable(self) -> bool:
        """True while new streams may be opened (not draining, not failed)."""
        return not self._draining and self._error is None and self._transport is not None

    @property
    def stream_count(self) -> int:
        """How many streams are open on this connection."""
        return len(self._streams)

    @property
    def has_capacity(self) -> bool:
        """True when a new stream can be opened now without exceeding any stream limit."""
        if not self.usable:
            return False
        limit = self._peer_max_streams
        own = self.settings.max_concurrent_streams
        if own is not None and own < limit:
            limit = own
        return len(self._streams) < limit

    def open_stream(
        self, method: str, target: str, headers: Headers, *, end_stream: bool = False
    ) -> H2Stream:
        """Send the request HEADERS of a new stream (the caller checked :attr:`has_capacity`)."""
        if self._error is not None:
            raise self._error
        sid = self._next_sid
        if sid > f.MAX_STREAM_ID:
            self._stop_new_streams()
            raise DeploymentError(f"connection to {self.authority} ran out of stream ids")
        try:
            block = encode_request(method, self.authority, target, headers)
        except ValueError as exc:
            raise DeploymentError(f"cannot open a stream to {self.authority}: {exc}") from None
        if self._table_size_update:
            self._table_size_update = False
            block = _TABLE_SIZE_ZERO + block
        self._next_sid = sid + 2
        stream = H2Stream(self, sid, end_stream=end_stream)
        self._streams[sid] = stream
        # Written now rather than at the end of the turn: a server must learn of new streams
        # before anything that may follow in this turn (hypercorn fails on a request that
        # arrives in one read with our GOAWAY while it shuts down).
        self._out.append(f.headers_frames(sid, block, end_stream, self._max_send))
        self._flush()
        return stream

    def close(self) -> None:
        """Say GOAWAY and close; streams still open fail with ``DeploymentError``."""
        if self._transport is None:
            return
        if self._error is None:
            self._out.append(f.goaway_frame(0, f.NO_ERROR))
            self._flush()
        self._fail(DeploymentError(f"connection to {self.authority} closed by the client"))

    # -- output ----------------------------------------------------------------------------------

    def _queue(self, frame: bytes) -> None:
        """Send ``frame`` at the end of this event-loop turn, with everything else queued."""
        self._out.append(frame)
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _queue_data(self, header: bytes, payload: bytes | memoryview) -> None:
        out = self._out
        out.append(header)
        out.append(payload)
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write everything queued now."""
        self._flush_pending = False
        out = self._out
        if not out:
            return
        self._out = []
        if self._transport is not None:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _consumed(self, stream: H2Stream, size: int) -> None:
        """The consumer of ``stream`` took ``size`` flow-controlled bytes: reopen the windows
        once half of one is taken (fewer WINDOW_UPDATEs than one per frame). A stream cannot
        stall on this: a consumer that read everything has half its window unacknowledged."""
        if not size or self._transport is None:
            return
        if not stream._remote_closed and not stream._reset:
            unacked = stream._recv_unacked + size
            if unacked >= self._stream_ack_at:
                stream._recv_unacked = 0
                stream._recv_window += unacked
                self._queue(f.window_update_frame(stream.stream_id, unacked))
            else:
                stream._recv_unacked = unacked
        self._consumed_on_connection(size)

    def _consumed_on_connection(self, size: int) -> None:
        # Also when the peer is short of window: unread data of other streams holds the rest,
        # and waiting for half the window to be read here could stall the streams being read.
        if not size:
            return
        unacked = self._recv_unacked + size
        if unacked >= self._conn_ack_at or self._recv_window < self._conn_ack_at:
            self._recv_unacked = 0
            self._recv_window += unacked
            self._queue(f.window_update_frame(0, unacked))
        else:
            self._recv_unacked = unacked

    def _cancel_stream(self, stream_id: int) -> None:
        if self._transport is not None:
            self._queue(f.rst_stream_frame(stream_id, f.CANCEL))

    def _maybe_release(self, stream: H2Stream) -> None:
        released = stream.finished and self._streams.pop(stream.stream_id, None) is not None
        if released and not self._streams:
            self.idle_since = self._loop.time()
            if self._draining:
                self.close()

    def _stop_new_streams(self) -> None:
        if not self._draining:
            self._draining = True
            if self.on_unusable is not None:
                self.on_unusable(self)

    def _fail(self, error: DeploymentError) -> None:
        """The connection is dead: fail every stream and close the socket."""
        if self._error is None:
            self._error = error
        self._stop_new_streams()
        if not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()  # retrieved by open(); avoid "never retrieved" noise
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream._fail(error)
        self._writable.set()
        for handle in (self._keepalive, self._ping_deadline):
            if handle is not None:
                handle.cancel()
        self._out = []
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        settings = self.settings
        preface = [
            f.PREFACE,
            f.settings_frame(
                [
                    (f.ENABLE_PUSH, 0),
                    (f.MAX_CONCURRENT_STREAMS, 100),
                    (f.INITIAL_WINDOW_SIZE, settings.initial_stream_window),
                    (f.MAX_FRAME_SIZE, settings.max_frame_size),
                    (f.MAX_HEADER_LIST_SIZE, 65_536),
                ]
            ),
        ]
        extra = settings.connection_window - f.DEFAULT_WINDOW
        if extra > 0:
            preface.append(f.window_update_frame(0, extra))
        self._transport.write(b"".join(preface))
        self._schedule_keepalive()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._goaway_received and self._error is None:
            self._fail(
                DeploymentError(f"connection to {self.authority} closed by the deployment (GOAWAY)")
            )
        elif self._ready.done():
            self._fail(connection_lost_error(self.authority, exc))
        else:
            reason = f"{exc}" if exc is not None else "closed"
            self._fail(
                DeploymentError(
                    f"connection to {self.authority} {reason} before the HTTP/2 handshake; "
                    "does the deployment speak HTTP/2 with prior knowledge (h2c)?"
                )
            )

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self._received = True
        pending = self._flush_pending
        self._flush_pending = True  # answers go out below, in one write
        try:
            self._on_frames(self._reader.feed(data))
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        self._flush_pending = pending
        self._flush()

    def _on_frames(self, frames: list[f.Frame]) -> None:
        streams = self._streams
        stream: H2Stream | None
        for ftype, flags, sid, payload in frames:
            if ftype == f.DATA:
                size = len(payload)
                if flags & f.PADDED:
                    payload = f.strip_padding(payload, "DATA")
                self._recv_window -= size
                if self._recv_window < 0:
                    raise ProtocolError("DATA beyond the connection window", f.FLOW_CONTROL_ERROR)
                stream = streams.get(sid)
                if stream is None:
                    self._check_known(sid, "DATA")
                    self._consumed_on_connection(size)  # a stream we reset or finished
                    continue
                if stream._status is None or stream._remote_closed:
                    raise ProtocolError(f"DATA on stream {sid} outside of a response body")
                stream._recv_window -= size
                if stream._recv_window < 0:
                    raise ProtocolError(
                        f"DATA beyond the window of stream {sid}", f.FLOW_CONTROL_ERROR
                    )
                if payload:
                    stream._chunks.append((payload, size))
                elif size:
                    self._consumed(stream, size)  # padding only
                if flags & f.END_STREAM:
                    stream._remote_closed = True
                    self._wake_receiver(stream)
                    self._maybe_release(stream)
                else:
                    self._wake_receiver(stream)
            elif ftype == f.HEADERS:
                self._on_headers(flags, sid, payload)
            elif ftype == f.WINDOW_UPDATE:
                self._on_window_update(sid, f.parse_u32(payload) & f.MAX_WINDOW)
            elif ftype == f.RST_STREAM:
                stream = streams.get(sid)
                if stream is None:
                    self._check_known(sid, "RST_STREAM")
                else:
                    stream._on_reset(f.parse_u32(payload))
                    self._maybe_release(stream)
            elif ftype == f.SETTINGS:
                if not flags & f.ACK:
                    self._on_settings(payload)
            elif ftype == f.PING:
                if not flags & f.ACK:
                    self._queue(f.ping_frame(payload, ack=True))
                elif self._ping_deadline is not None:
                    self._ping_deadline.cancel()
                    self._ping_deadline = None
            elif ftype == f.GOAWAY:
                self._on_goaway(*f.parse_goaway(payload))

    @staticmethod
    def _wake_receiver(stream: H2Stream) -> None:
        waiter = stream._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_known(self, sid: int, what: str) -> None:
        """Frames for streams no longer tracked are fine; for streams never opened they are not."""
        if sid >= self._next_sid or not sid & 1:
            raise ProtocolError(f"{what} frame on stream {sid}, which was never opened")

    def _on_headers(self, flags: int, sid: int, block: bytes) -> None:
        fields = self._decoder.decode(block)  # always: it keeps the HPACK state in step
        stream = self._streams.get(sid)
        if stream is None:
            self._check_known(sid, "HEADERS")
            return
        if stream._remote_closed:
            raise ProtocolError(f"HEADERS on stream {sid} after its end")
        if stream._status is None:
            status, headers = response_head(fields)
            if status < 200:  # an informational response precedes the real one
                if flags & f.END_STREAM:
                    raise ProtocolError(f"informational response ends stream {sid}")
                return
            stream._status, stream._headers = status, headers
        elif not flags & f.END_STREAM:
            raise ProtocolError(f"trailers without END_STREAM on stream {sid}")
        if flags & f.END_STREAM:
            stream._remote_closed = True
            stream._wake()
            self._maybe_release(stream)
        else:
            stream._wake()

    def _on_window_update(self, sid: int, increment: int) -> None:
        if not increment:
            raise ProtocolError(f"WINDOW_UPDATE of 0 on stream {sid}")
        if not sid:
            self._send_window += increment
            if self._send_window > f.MAX_WINDOW:
                raise ProtocolError("connection window over 2^31-1", f.FLOW_CONTROL_ERROR)
            for blocked in list(self._blocked):
                blocked._wake_sender()
            return
        stream = self._streams.get(sid)
        if stream is None:
            self._check_known(sid, "WINDOW_UPDATE")
            return
        stream._send_window += increment
        if stream._send_window > f.MAX_WINDOW:
            raise ProtocolError(f"window of stream {sid} over 2^31-1", f.FLOW_CONTROL_ERROR)
        stream._wake_sender()

    def _on_settings(self, payload: bytes) -> None:
        for key, value in f.parse_settings(payload):
            if key == f.INITIAL_WINDOW_SIZE:
                if value > f.MAX_WINDOW:
                    raise ProtocolError(f"INITIAL_WINDOW_SIZE {value}", f.FLOW_CONTROL_ERROR)
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self._streams.values():
                    stream._send_window += delta
                    if stream._send_window > f.MAX_WINDOW:
                        raise ProtocolError("stream window over 2^31-1", f.FLOW_CONTROL_ERROR)
                    stream._wake_sender()
            elif key == f.MAX_FRAME_SIZE:
                if not f.DEFAULT_MAX_FRAME_SIZE <= value <= f.MAX_MAX_FRAME_SIZE:
                    raise ProtocolError(f"MAX_FRAME_SIZE {value}")
                self._max_send = value
            elif key == f.MAX_CONCURRENT_STREAMS:
                self._peer_max_streams = value
            elif key == f.ENABLE_PUSH:
                if value > 1:
                    raise ProtocolError(f"ENABLE_PUSH {value}")
            elif key == f.HEADER_TABLE_SIZE and value < f.DEFAULT_HEADER_TABLE_SIZE:
                # We never index, but a decoder that shrank its table may insist on hearing so.
                self._table_size_update = True
        self._queue(f.SETTINGS_ACK)
        if not self._ready.done():
            self._ready.set_result(None)

    def _on_goaway(self, last: int, code: int, debug: bytes) -> None:
        self._stop_new_streams()
        error = DeploymentError(
            f"the deployment closed the connection (GOAWAY, error code {error_name(code)}) "
            "without processing this stream"
        )
        for sid in [sid for sid in self._streams if sid > last]:
            stream = self._streams.pop(sid)
            stream.refused = True
            stream._fail(error)
        if not self._streams:
            self.close()
        elif not self._goaway_received:
            # Some servers built on h2 (hypercorn) cannot finish any stream after their own
            # GOAWAY and only close the socket when idle (5 s). A PING makes such a server close
            # it now, failing the streams at once; a server that can finish them answers it.
            self._queue(f.ping_frame(_GOAWAY_PING_DATA))
        self._goaway_received = True

    def _protocol_error(self, exc: ProtocolError) -> None:
        if self._ready.done():
            message = f"HTTP/2 protocol error on the connection to {self.authority}: {exc}"
        else:
            message = (
                f"{self.authority} does not speak HTTP/2 with prior knowledge (h2c); "
                f"is it an HTTP/1.1-only deployment? ({exc})"
            )
        if self._transport is not None and self._error is None:
            self._out = [f.goaway_frame(0, exc.code)]
            self._flush()
        self._fail(DeploymentError(message))

    # -- keep-alive ------------------------------------------------------------------------------

    def _schedule_keepalive(self) -> None:
        interval = self.settings.keepalive_interval
        if interval is not None and self._transport is not None:
            self._keepalive = self._loop.call_later(interval, self._keepalive_tick)

    def _keepalive_tick(self) -> None:
        if self._transport is None:
            return
        if self._streams and not self._received and self._ping_deadline is None:
            self._queue(f.ping_frame(_PING_DATA))
            self._flush()
            self._ping_deadline = self._loop.call_later(
                self.settings.keepalive_timeout, self._ping_timed_out
            )
        self._received = False
        self._schedule_keepalive()

    def _ping_timed_out(self) -> None:
        self._ping_deadline = None
        timeout = self.settings.keepalive_timeout
        self._fail(
            DeploymentError(
                f"{self.authority} did not answer a keep-alive PING within {timeout:g} s"
            )
        )
