"""HTTP/1.1 connection handling on ``asyncio.Protocol`` with the ``httptools`` C parser."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast
from urllib.parse import unquote_to_bytes

import httptools

from ._common import (
    BODY_HIGH_WATER,
    DISCARD_LIMIT,
    LINGER,
    logger,
    simple_response,
    split_target,
)
from .cycle import RequestCycle
from .state import ServerState

_METHODS = {
    m.encode("ascii"): m
    for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
}


class _HeadersTooLarge(Exception):
    pass


def _peer(addr: Any) -> tuple[str, int] | None:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return (str(addr[0]), int(addr[1]))
    return None


class HttpConnection(asyncio.Protocol):
    """One client connection: parses requests, runs them one at a time, writes responses."""

    __slots__ = (
        "_active",
        "_client",
        "_close_when_drained",
        "_expect_100",
        "_hdr_raw",
        "_hdr_size",
        "_hdr_too_large",
        "_headers",
        "_idle_handle",
        "_idle_since",
        "_ignore_input",
        "_in_headers",
        "_max_header_bytes",
        "_msg_seq",
        "_parser",
        "_parsing",
        "_pending_error",
        "_queue",
        "_server",
        "_state",
        "_transport",
        "_url",
        "_drain_waiters",
        "closed",
        "closing",
        "loop",
        "reading_paused",
        "server_line",
        "write_paused",
    )

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self.loop = state.loop
        self.server_line = state.server_line
        self._max_header_bytes = state.max_header_bytes
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._client: tuple[str, int] | None = None
        self._server: tuple[str, int] | None = None
        # header parsing state of the message being parsed
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._hdr_size = 0
        self._hdr_raw = 0
        self._hdr_too_large = False
        self._in_headers = False
        self._msg_seq = 0
        self._expect_100 = False
        # request cycles
        self._parsing: RequestCycle | None = None  # whose body the parser is reading
        self._active: RequestCycle | None = None  # whose app owns the response stream
        self._queue: deque[RequestCycle] = deque()  # pipelined, waiting for their turn
        self._ignore_input = False
        self._close_when_drained = False
        self._pending_error = 0
        # connection state
        self.closing = False  # no new requests; close once the active one completes
        self.closed = False  # close() or abort() was called, or the connection was lost
        self.reading_paused = False
        self.write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._idle_handle: asyncio.TimerHandle | None = None
        self._idle_since = 0.0

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register the connection and arm the idle (header read) timeout."""
        self._transport = cast(asyncio.Transport, transport)
        self._client = _peer(transport.get_extra_info("peername"))
        self._server = _peer(transport.get_extra_info("sockname"))
        state = self._state
        state.connections.add(self)
        if state.closing:
            self.close()
            return
        self._set_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake everything waiting on this connection and unregister it."""
        self.closed = True
        self._ignore_input = True
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        for cycle in (self._active, self._parsing, *self._queue):
            if cycle is not None:
                cycle.mark_disconnected()
        self._queue.clear()
        self._parsing = None
        self._wake_drain()
        state = self._state
        state.connections.discard(self)
        if state.closing and not state.connections:
            state.all_closed.set()

    def eof_received(self) -> bool | None:
        """A half-close from the client is treated as a disconnect (the transport closes)."""
        return None

    def pause_writing(self) -> None:
        """Transport write buffer is full: ``send()`` starts awaiting :meth:`drain`."""
        self.write_paused = True

    def resume_writing(self) -> None:
        """Transport write buffer drained."""
        self.write_paused = False
        self._wake_drain()

    def data_received(self, data: bytes) -> None:
        """Feed bytes to the parser; parser callbacks below do the real work."""
        if self._ignore_input:
            return
        in_headers = self._in_headers
        seq = self._msg_seq
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._after_upgrade(data, exc)
        except httptools.HttpParserError as exc:
            self._on_parse_error(exc)
            return
        if in_headers and self._in_headers and seq == self._msg_seq and not self._ignore_input:
            # A header block spanning several reads: bound what the parser accumulates.
            self._hdr_raw += len(data)
            if self._hdr_raw > self._max_header_bytes:
                self._fail(431)

    def _after_upgrade(self, data: bytes, exc: httptools.HttpParserUpgrade) -> None:
        # Upgrades (h2c, websocket) are not supported: the request was served as plain HTTP,
        # parsing just continues after it. CONNECT requests end the connection instead.
        while not self._ignore_input:
            offset = exc.args[0] if exc.args else len(data)
            data = data[offset:]
            if not data:
                return
            try:
                self._parser.feed_data(data)
                return
            except httptools.HttpParserUpgrade as again:
                exc = again
            except httptools.HttpParserError as err:
                self._on_parse_error(err)
                return

    def _on_parse_error(self, exc: Exception) -> None:
        if self._hdr_too_large:
            self._fail(431)
            return
        if self._ignore_input:
            return
        if isinstance(exc, httptools.HttpParserCallbackError):
            logger.error("internal error in HTTP parser callback", exc_info=exc.__context__)
        else:
            logger.debug("malformed HTTP request from %s: %s", self._client, exc)
        self._fail(400)

    # ------------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        """httptools: a new request starts."""
        self._url = b""
        self._headers = []
        self._hdr_size = 0
        self._hdr_raw = 0
        self._in_headers = True
        self._msg_seq += 1
        self._expect_100 = False

    def on_url(self, url: bytes) -> None:
        """httptools: (a piece of) the request target."""
        self._url += url
        self._hdr_size += len(url)
        if self._hdr_size > self._max_header_bytes:
            self._hdr_too_large = True
            raise _HeadersTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        """httptools: one complete header field."""
        self._hdr_size += len(name) + len(value) + 4
        if self._hdr_size > self._max_header_bytes:
            self._hdr_too_large = True
            raise _HeadersTooLarge
        if not self._in_headers:
            return  # a chunked-body trailer field: not merged into the request headers
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect_100 = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        """httptools: the request head is complete; create its cycle and run or queue it."""
        self._in_headers = False
        if self.closing or self._ignore_input:
            # Shutting down: requests that were not yet started are not served.
            self._ignore_input = True
            return
        parser = self._parser
        method_b = parser.get_method()
        method = _METHODS.get(method_b) or method_b.decode("ascii")
        version = parser.get_http_version()
        raw_path, query = split_target(self._url, method)
        if b"%" in raw_path:
            path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
        else:
            path = raw_path.decode("utf-8", "replace")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version,
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": self._headers,
            "client": self._client,
            "server": self._server,
        }
        http11 = version == "1.1"
        cycle = RequestCycle(
            self,
            scope,
            keep_alive=parser.should_keep_alive() and method != "CONNECT",
            expect_100=self._expect_100 and http11,
            head=method == "HEAD",
            http11=http11,
        )
        self._parsing = cycle
        if self._active is None and not self._queue:
            self._start(cycle)
        else:
            self._queue.append(cycle)
            self.update_reading()

    def on_body(self, body: bytes) -> None:
        """httptools: a piece of the request body."""
        cycle = self._parsing
        if cycle is None:
            return
        if cycle.discard:
            cycle.discarded += len(body)
            if cycle.discarded > DISCARD_LIMIT:
                self.finish()
            return
        cycle.body.append(body)
        cycle.buffered += len(body)
        if cycle.buffered > BODY_HIGH_WATER and not self.reading_paused:
            self.update_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        """httptools: the request (including its body) is complete."""
        cycle = self._parsing
        if cycle is None:
            return
        self._parsing = None
        cycle.message_complete = True
        if not cycle.keep_alive:
            self._ignore_input = True
        if cycle.discard:
            # Its response went out already; the leftover body is now consumed.
            self._advance()
        else:
            cycle.wake()

    # ------------------------------------------------------------------ request scheduling

    def _start(self, cycle: RequestCycle) -> None:
        self._active = cycle
        state = self._state
        task = self.loop.create_task(cycle.run(state.app))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    def response_done(self, cycle: RequestCycle) -> None:
        """Called by a cycle once its response is completely written."""
        cycle.wake()
        if self._active is cycle:
            self._active = None
        if self.closed:
            return
        if not cycle.keep_alive or self.closing:
            self.finish()
            return
        if not cycle.message_complete:
            if cycle.expect_100 and not cycle.continue_sent:
                # The client may or may not send the body now; the stream cannot be trusted.
                self.finish()
                return
            cycle.start_discard()
            self._set_idle()  # the client gets the idle timeout to finish sending it
            self.update_reading()
            return
        self._advance()

    def _advance(self) -> None:
        """The previous exchange is over: start the next pipelined request or go idle."""
        if self.closed:
            return
        if self.closing:
            self.finish()
            return
        queue = self._queue
        if queue:
            self._start(queue.popleft())
            self.update_reading()
            return
        if self._close_when_drained:
            self._write_error_and_close(self._pending_error)
            return
        self._set_idle()
        if self.reading_paused:
            self.update_reading()

    def _fail(self, status: int) -> None:
        """Unusable input: answer ``status`` (if nothing else is pending) and close."""
        self._ignore_input = True
        self._in_headers = False
        cycle = self._parsing
        self._parsing = None
        if cycle is not None:
            # The error is inside a request body; that request cannot be answered sensibly.
            status = 0
            if cycle is self._active:
                self.close()
                return
            if cycle in self._queue:
                self._queue.remove(cycle)
        if self._active is None and not self._queue:
            self._write_error_and_close(status)
        else:
            self._close_when_drained = True
            self._pending_error = status

    def _write_error_and_close(self, status: int) -> None:
        if status and not self.closed:
            text = "Request Header Fields Too Large" if status == 431 else "Bad Request"
            self.write(
                simple_response(status, text, keep_alive=False, server_line=self.server_line)
            )
        self.finish()

    # ------------------------------------------------------------------ flow control

    def update_reading(self) -> None:
        """Pause reading while requests are queued or too much unread body is buffered."""
        parsing = self._parsing
        pause = bool(self._queue) or (parsing is not None and parsing.buffered > BODY_HIGH_WATER)
        if pause == self.reading_paused or self.closed:
            return
        transport = self._transport
        assert transport is not None
        self.reading_paused = pause
        if pause:
            transport.pause_reading()
        else:
            transport.resume_reading()

    async def drain(self) -> None:
        """Wait until the transport's write buffer drains (or the connection is gone)."""
        if self.closed or not self.write_paused:
            return
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _wake_drain(self) -> None:
        waiters = self._drain_waiters
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            waiters.clear()

    # ------------------------------------------------------------------ idle timeout

    def _set_idle(self) -> None:
        self._idle_since = self.loop.time()
        if self._idle_handle is None:
            self._idle_handle = self.loop.call_later(
                self._state.keep_alive_timeout, self._check_idle
            )

    def _check_idle(self) -> None:
        self._idle_handle = None
        if self._active is not None or self.closed:
            return
        remaining = self._idle_since + self._state.keep_alive_timeout - self.loop.time()
        if remaining <= 0:
            self.close()
        else:
            self._idle_handle = self.loop.call_later(remaining, self._check_idle)

    # ------------------------------------------------------------------ output and shutdown

    def write(self, data: bytes) -> None:
        """Write to the transport unless the connection is already closed."""
        if not self.closed:
            transport = self._transport
            assert transport is not None
            transport.write(data)

    def close(self) -> None:
        """Close after flushing what was written; pending ``receive()`` calls get disconnect."""
        if self.closed:
            return
        self.closed = True
        self._ignore_input = True
        transport = self._transport
        if transport is not None:
            transport.close()
        self._wake_drain()

    def finish(self) -> None:
        """Close after a complete response without risking a reset that would destroy it.

        Closing a socket with unread input makes the kernel send RST, and a client still
        sending (a pipelined request, a body we did not want) may then lose our response.
        So: half-close (FIN after the buffered response), read and drop whatever still
        arrives, and close when the client does or after a short linger period.
        """
        if self.closed:
            return
        transport = self._transport
        if transport is None or not transport.can_write_eof():
            self.close()
            return
        self.closed = True
        self._ignore_input = True
        transport.write_eof()
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self._idle_since = self.loop.time()
        self._idle_handle = self.loop.call_later(LINGER, self._linger_expired)
        self._wake_drain()

    def _linger_expired(self) -> None:
        self._idle_handle = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() == 0:
            transport.close()
        elif self.loop.time() - self._idle_since < self._state.keep_alive_timeout:
            # The response itself is still being flushed to a slow reader.
            self._idle_handle = self.loop.call_later(LINGER, self._linger_expired)
        else:
            transport.abort()

    def abort(self) -> None:
        """Close immediately, dropping unsent data."""
        transport = self._transport
        self.close()
        if transport is not None:
            transport.abort()

    def shutdown(self) -> None:
        """Server stop: close now if idle, else after the in-flight response."""
        self.closing = True
        if self._active is None and not self._queue:
            self.close()
