"""One HTTP/2 cleartext (prior knowledge) connection to a deployment.

The ``h2`` library keeps the protocol state (sans-IO); :class:`H2Connection` drives it from an
asyncio protocol, so it runs the same on the default loop and on uvloop, and routes events to
the :class:`~.h2stream.H2Stream` of each request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionInputs, ConnectionState, H2ConnectionStateMachine
from h2.errors import ErrorCodes

from undying.errors import DeploymentError

from .base import Endpoint, Headers, connect, connection_lost_error
from .h2stream import H2Stream, error_name

__all__ = ["H2Connection", "H2Settings"]

_MiB: Final = 1024 * 1024
_DEFAULT_WINDOW: Final = 65_535
_PING_DATA: Final = b"undying!"
_GOAWAY_PING_DATA: Final = b"goaway!!"


@dataclass(frozen=True, slots=True)
class H2Settings:
    """Client knobs of an HTTP/2 connection (defaults as in Restate)."""

    initial_stream_window: int = 2 * _MiB
    """How much a deployment may send on one stream before the consumer reads it."""
    connection_window: int = 5 * _MiB
    """The same for all streams of a connection together."""
    max_frame_size: int = 16 * 1024
    """Largest DATA frame accepted (the peer's own setting caps what we send)."""
    max_concurrent_streams: int | None = 128
    """Cap on streams per connection, on top of the peer's ``MAX_CONCURRENT_STREAMS``.

    Some servers advertise no limit but reset streams past their memory budget (Node's http2
    keeps 10 MB per session); like Restate, open another connection after 128."""
    keepalive_interval: float | None = 40.0
    """Send a PING after this long without a frame while streams are open; ``None``: never."""
    keepalive_timeout: float = 20.0
    """Fail the connection when a keep-alive PING is not answered within this long."""


class _GracefulGoawayStateMachine(H2ConnectionStateMachine):
    """h2 treats a received GOAWAY as the end of the whole connection: it refuses to send or
    receive anything afterwards. HTTP/2 says the streams up to the GOAWAY's last stream id may
    still complete, and peers such as node:http2 finish them, so the connection stays open here
    and :class:`H2Connection` stops opening new streams itself.
    """

    _transitions = {
        **H2ConnectionStateMachine._transitions,
        (ConnectionState.CLIENT_OPEN, ConnectionInputs.RECV_GOAWAY): (
            None,
            ConnectionState.CLIENT_OPEN,
        ),
    }


def _decode(headers: list[tuple[bytes, bytes]]) -> tuple[int, Headers]:
    status = 0
    out: Headers = []
    for name, value in headers:
        if name == b":status":
            status = int(value)
        elif not name.startswith(b":"):
            out.append((name.decode("latin-1"), value.decode("latin-1")))
    return status, out


class H2Connection(asyncio.Protocol):
    """One h2c (prior knowledge) connection; open it with :meth:`open`."""

    def __init__(self, endpoint: Endpoint, settings: H2Settings) -> None:
        self.endpoint = endpoint
        self.authority = endpoint.authority
        self.settings = settings
        self.on_unusable: Callable[[H2Connection], None] | None = None
        """Called once when the connection stops taking new streams (the pool drops it)."""
        self._loop = asyncio.get_running_loop()
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self._h2 = h2.connection.H2Connection(config=config)
        self._h2.state_machine = _GracefulGoawayStateMachine()
        codes = h2.settings.SettingCodes
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                codes.ENABLE_PUSH: 0,
                codes.INITIAL_WINDOW_SIZE: settings.initial_stream_window,
                codes.MAX_FRAME_SIZE: settings.max_frame_size,
                codes.MAX_CONCURRENT_STREAMS: 100,
                codes.MAX_HEADER_LIST_SIZE: 65_536,
            },
        )
        self._h2.max_inbound_frame_size = settings.max_frame_size
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, H2Stream] = {}
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
        limit = self._h2.remote_settings.max_concurrent_streams
        own = self.settings.max_concurrent_streams
        if own is not None:
            limit = min(limit, own)
        return len(self._streams) < limit

    def open_stream(
        self, method: str, target: str, headers: Headers, *, end_stream: bool = False
    ) -> H2Stream:
        """Send the request HEADERS of a new stream (the caller checked :attr:`has_capacity`)."""
        if self._error is not None:
            raise self._error
        h2c = self._h2
        try:
            sid = h2c.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self._stop_new_streams()
            raise DeploymentError(f"connection to {self.authority} ran out of stream ids") from None
        fields: list[tuple[bytes, bytes]] = [
            (b":method", method.encode("ascii")),
            (b":scheme", b"http"),
            (b":authority", self.authority.encode("ascii")),
            (b":path", target.encode("ascii")),
        ]
        for name, value in headers:
            fields.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        try:
            h2c.send_headers(sid, fields, end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            raise DeploymentError(f"cannot open a stream to {self.authority}: {exc}") from exc
        stream = H2Stream(self, sid, end_stream=end_stream)
        self._streams[sid] = stream
        self._flush()
        return stream

    def close(self) -> None:
        """Say GOAWAY and close; streams still open fail with ``DeploymentError``."""
        transport = self._transport
        if transport is None:
            return
        if self._error is None:
            try:
                self._h2.close_connection()
            except h2.exceptions.ProtocolError:  # pragma: no cover - already closed
                pass
            self._flush()
        self._fail(DeploymentError(f"connection to {self.authority} closed by the client"))

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self._transport is not None:
            self._transport.write(data)

    def _acknowledge(self, stream_id: int, size: int) -> None:
        if self._transport is None:
            return
        self._h2.acknowledge_received_data(size, stream_id)
        self._flush()

    def _cancel_stream(self, stream_id: int) -> None:
        if self._transport is None:
            return
        try:
            self._h2.reset_stream(stream_id, ErrorCodes.CANCEL)
        except h2.exceptions.ProtocolError:  # the stream is already closed on the h2 side
            return
        self._flush()

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
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        self._h2.initiate_connection()
        extra = self.settings.connection_window - _DEFAULT_WINDOW
        if extra > 0:
            self._h2.increment_flow_control_window(extra)
        self._flush()
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
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._flush()  # h2 queued a GOAWAY for the peer
            if self._ready.done():
                message = f"HTTP/2 protocol error on the connection to {self.authority}: {exc}"
            else:
                message = (
                    f"{self.authority} does not speak HTTP/2 with prior knowledge (h2c); "
                    f"is it an HTTP/1.1-only deployment? ({exc})"
                )
            self._fail(DeploymentError(message))
            return
        streams = self._streams
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                stream = streams.get(event.stream_id)
                size = event.flow_controlled_length
                if stream is None:
                    if size:
                        self._h2.acknowledge_received_data(size, event.stream_id)
                else:
                    stream._chunks.append((event.data, size))
                    stream._wake()
            elif isinstance(event, h2.events.WindowUpdated):
                if event.stream_id == 0:
                    for stream in streams.values():
                        stream._wake_sender()
                elif (stream := streams.get(event.stream_id)) is not None:
                    stream._wake_sender()
            elif isinstance(event, h2.events.ResponseReceived):
                if (stream := streams.get(event.stream_id)) is not None:
                    stream._status, stream._headers = _decode(event.headers)
                    stream._wake()
            elif isinstance(event, h2.events.StreamEnded):
                if (stream := streams.get(event.stream_id)) is not None:
                    stream._remote_closed = True
                    stream._wake()
                    self._maybe_release(stream)
            elif isinstance(event, h2.events.StreamReset):
                if (stream := streams.get(event.stream_id)) is not None:
                    stream._on_reset(event.error_code)
                    self._maybe_release(stream)
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                if not self._ready.done():
                    self._ready.set_result(None)
                if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    for stream in streams.values():
                        stream._wake_sender()
            elif isinstance(event, h2.events.PingAckReceived):
                if self._ping_deadline is not None:
                    self._ping_deadline.cancel()
                    self._ping_deadline = None
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._on_goaway(event)
        self._flush()

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self._stop_new_streams()
        last = event.last_stream_id if event.last_stream_id is not None else 0
        code = error_name(event.error_code if event.error_code is not None else 0)
        error = DeploymentError(
            f"the deployment closed the connection (GOAWAY, error code {code}) "
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
            self._h2.ping(_GOAWAY_PING_DATA)
        self._goaway_received = True

    # -- keep-alive ------------------------------------------------------------------------------

    def _schedule_keepalive(self) -> None:
        interval = self.settings.keepalive_interval
        if interval is not None and self._transport is not None:
            self._keepalive = self._loop.call_later(interval, self._keepalive_tick)

    def _keepalive_tick(self) -> None:
        if self._transport is None:
            return
        if self._streams and not self._received and self._ping_deadline is None:
            self._h2.ping(_PING_DATA)
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
