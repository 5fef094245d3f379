"""One HTTP request/response exchange, exposed to the ASGI app as ``receive``/``send``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._common import CONTINUE_100, date_line, logger, simple_response, status_line
from .types import ASGIApp, Message, Scope

if TYPE_CHECKING:
    from .protocol import HttpConnection

# Response body framing modes.
_NO_BODY = 0  # HEAD, 1xx, 204, 304: body bytes from the app are dropped
_LENGTH = 1  # content-length delimited
_CHUNKED = 2  # transfer-encoding: chunked
_CLOSE = 3  # delimited by closing the connection (HTTP/1.0 streaming)


class RequestCycle:
    """State of a single request: buffered request body, response progress, ASGI callables.

    Created by :class:`~undying.server.http.protocol.HttpConnection` once a request's headers
    are parsed; the connection runs at most one cycle's application at a time.
    """

    __slots__ = (
        "_app_chunked",
        "_flush_handle",
        "_has_date",
        "_head",
        "_length",
        "_mode",
        "_sent",
        "_status",
        "_waiters",
        "body",
        "body_done",
        "buffered",
        "conn",
        "continue_sent",
        "discard",
        "discarded",
        "disconnected",
        "expect_100",
        "head",
        "http11",
        "keep_alive",
        "message_complete",
        "response_complete",
        "response_started",
        "scope",
    )

    def __init__(
        self,
        conn: HttpConnection,
        scope: Scope,
        *,
        keep_alive: bool,
        expect_100: bool,
        head: bool,
        http11: bool,
    ) -> None:
        self.conn = conn
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_100 = expect_100
        self.head = head
        self.http11 = http11
        # request side
        self.body: list[bytes] = []
        self.buffered = 0
        self.message_complete = False  # the parser has seen the whole request
        self.body_done = False  # the app has been given the last body chunk
        self.continue_sent = False
        self.discard = False  # response done: drop the rest of the request body
        self.discarded = 0
        self.disconnected = False
        self._waiters: list[asyncio.Future[None]] = []
        # response side
        self.response_started = False
        self.response_complete = False
        self._head: list[bytes] | None = None  # status + header lines not yet written
        self._flush_handle: asyncio.Handle | None = None
        self._status = 0
        self._length = -1  # content-length given by the app, -1 if none
        self._app_chunked = False
        self._has_date = False
        self._mode = _NO_BODY
        self._sent = 0

    # ------------------------------------------------------------------ events from the parser

    def wake(self) -> None:
        """Wake every ``receive()`` currently waiting on this cycle."""
        waiters = self._waiters
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            waiters.clear()

    def start_discard(self) -> None:
        """The response is complete but the body is not: drop what is buffered and what follows."""
        self.discard = True
        self.body.clear()
        self.buffered = 0

    def mark_disconnected(self) -> None:
        """The connection is gone: pending and later ``receive()`` calls see ``http.disconnect``."""
        self.disconnected = True
        handle = self._flush_handle
        if handle is not None:
            handle.cancel()
            self._flush_handle = None
        self._head = None
        self.wake()

    # ------------------------------------------------------------------ ASGI entry points

    async def run(self, app: ASGIApp) -> None:
        """Run the ASGI app for this request and clean up after it, whatever it does."""
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self.response_complete:
                self.conn.close()
            raise
        except Exception:
            logger.exception("Exception in ASGI application")
            self._fail_response()
        else:
            if not self.response_complete and not self.disconnected:
                logger.error("ASGI application returned without completing the response")
                self._fail_response()

    async def receive(self) -> Message:
        """ASGI ``receive``: request body chunks, then ``http.disconnect``."""
        while True:
            if self.disconnected or self.response_complete:
                return {"type": "http.disconnect"}
            if self.body_done:
                # Body fully delivered: block until the response is done or the client leaves.
                await self._wait()
                continue
            body = self.body
            if body or self.message_complete:
                data = body[0] if len(body) == 1 else b"".join(body)
                body.clear()
                self.buffered = 0
                more = not self.message_complete
                if not more:
                    self.body_done = True
                conn = self.conn
                if conn.reading_paused:
                    conn.update_reading()
                return {"type": "http.request", "body": data, "more_body": more}
            if self.expect_100 and not self.continue_sent and not self.response_started:
                self.continue_sent = True
                self.conn.write(CONTINUE_100)
            await self._wait()

    async def _wait(self) -> None:
        waiter: asyncio.Future[None] = self.conn.loop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def send(self, message: Message) -> None:
        """ASGI ``send``: ``http.response.start`` then one or more ``http.response.body``."""
        mtype = message["type"]
        if mtype == "http.response.body":
            if not self.response_started or self.response_complete:
                if self.disconnected:
                    return
                if self.response_complete:
                    raise RuntimeError("ASGI response body sent after the response completed")
                raise RuntimeError("ASGI response body sent before http.response.start")
            more = bool(message.get("more_body", False))
            if self.disconnected:
                if not more:
                    self.response_complete = True
                return
            await self._send_body(message.get("body", b""), more)
        elif mtype == "http.response.start":
            if self.response_started:
                raise RuntimeError("ASGI http.response.start sent twice")
            if self.disconnected:
                self.response_started = True
                return
            self._start_response(message)
        else:
            raise RuntimeError(f"unexpected ASGI message type {mtype!r} for an http scope")

    # ------------------------------------------------------------------ response writing

    def _start_response(self, message: Message) -> None:
        status = message["status"]
        lines = [status_line(status)]
        self._status = status
        for name, value in message.get("headers", ()):
            if b"\n" in value or b"\r" in value or b"\n" in name or b"\r" in name:
                raise RuntimeError(f"invalid characters in response header {name!r}")
            lname = name.lower()
            if lname == b"content-length":
                try:
                    self._length = int(value)
                except ValueError:
                    raise RuntimeError(f"invalid content-length {value!r}") from None
            elif lname == b"transfer-encoding":
                self._app_chunked = b"chunked" in value.lower()
            elif lname == b"connection":
                # The server manages this header itself (it may have to close anyway).
                if b"close" in value.lower():
                    self.keep_alive = False
                continue
            elif lname == b"date":
                self._has_date = True
            lines.append(b"%s: %s\r\n" % (name, value))
        self._head = lines
        self.response_started = True
        # If the app sends the first body chunk right away (the usual case), headers and body
        # go out in one write and a single-chunk body gets a content-length; if it awaits
        # something else first, the headers are flushed on the next loop iteration.
        self._flush_handle = self.conn.loop.call_soon(self._flush_head_soon)

    def _flush_head_soon(self) -> None:
        self._flush_handle = None
        if self._head is not None:
            self.conn.write(self._finish_head(None, True))

    def _finish_head(self, first_body: bytes | None, more: bool) -> bytes:
        """Decide the body framing and return the serialized status line and headers."""
        lines = self._head
        assert lines is not None
        self._head = None
        handle = self._flush_handle
        if handle is not None:
            handle.cancel()
            self._flush_handle = None
        status = self._status
        if self.head or status < 200 or status == 204 or status == 304:
            self._mode = _NO_BODY
            if self.head and first_body and not more and self._length < 0 and not self._app_chunked:
                # The app produced the GET body: advertise its length, as GET would.
                lines.append(b"content-length: %d\r\n" % len(first_body))
        elif self._length >= 0:
            self._mode = _LENGTH
        elif self._app_chunked:
            self._mode = _CHUNKED
        elif first_body is not None and not more:
            self._mode = _LENGTH
            self._length = len(first_body)
            lines.append(b"content-length: %d\r\n" % self._length)
        elif self.http11:
            self._mode = _CHUNKED
            lines.append(b"transfer-encoding: chunked\r\n")
        else:
            self._mode = _CLOSE
            self.keep_alive = False
        conn = self.conn
        if self.keep_alive and (
            conn.closing
            or (self.expect_100 and not self.continue_sent and not self.message_complete)
        ):
            self.keep_alive = False
        if not self.keep_alive:
            if self.http11:
                lines.append(b"connection: close\r\n")
        elif not self.http11:
            lines.append(b"connection: keep-alive\r\n")
        if not self._has_date:
            lines.append(date_line())
        lines.append(conn.server_line)
        lines.append(b"\r\n")
        return b"".join(lines)

    async def _send_body(self, body: bytes, more: bool) -> None:
        conn = self.conn
        if self._head is None:
            head = b""
        else:
            if 0 <= self._length < len(body):  # fail before the head is committed: 500
                raise RuntimeError("ASGI response body longer than its content-length")
            head = self._finish_head(body, more)
        mode = self._mode
        if mode == _LENGTH:
            sent = self._sent + len(body)
            if sent > self._length:
                raise RuntimeError("ASGI response body longer than its content-length")
            self._sent = sent
            data = head + body if head else body
        elif mode == _CHUNKED:
            if body:
                data = b"%s%x\r\n%s\r\n" % (head, len(body), body)
                if not more:
                    data += b"0\r\n\r\n"
            elif not more:
                data = head + b"0\r\n\r\n"
            else:
                data = head
        elif mode == _CLOSE:
            data = head + body if head else body
        else:
            data = head
        if data:
            conn.write(data)
        if not more:
            short = mode == _LENGTH and self._sent < self._length
            if short:
                self.keep_alive = False
            self.response_complete = True
            conn.response_done(self)
            if short:
                raise RuntimeError("ASGI response body shorter than its content-length")
        if conn.write_paused:
            await conn.drain()

    def _fail_response(self) -> None:
        """The app failed: answer 500 if nothing was written yet, else close the connection."""
        if self.response_complete or self.disconnected:
            return
        conn = self.conn
        if self.response_started and self._head is None:
            # Part of the response is already on the wire; the only honest option is to close.
            conn.close()
            return
        handle = self._flush_handle
        if handle is not None:
            handle.cancel()
            self._flush_handle = None
        self._head = None
        self.response_started = True
        keep_alive = (
            self.keep_alive
            and not conn.closing
            and not (self.expect_100 and not self.continue_sent and not self.message_complete)
        )
        self.keep_alive = keep_alive
        conn.write(
            simple_response(
                500,
                "Internal Server Error",
                keep_alive=keep_alive,
                http11=self.http11,
                head=self.head,
                server_line=conn.server_line,
            )
        )
        self.response_complete = True
        conn.response_done(self)
