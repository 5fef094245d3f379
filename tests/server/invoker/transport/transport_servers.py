"""Servers for the transport tests: hypercorn with an echo app, and scriptable raw servers.

Also used as the app module of a hypercorn subprocess (``transport_servers:echo_app``), so it
imports nothing from pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import h2.config
import h2.connection
import h2.events
import httptools
from hypercorn.asyncio import serve
from hypercorn.config import Config

from undying.server.invoker.transport import Endpoint

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MANIFEST = {"protocolMode": "BIDI_STREAM", "minProtocolVersion": 5, "maxProtocolVersion": 6}
MANIFEST_TYPE = "application/vnd.restate.endpointmanifest.v3+json"

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    """Run ``coro`` on a fresh event loop of the given kind (``asyncio`` or ``uvloop``)."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    with asyncio.Runner() as runner:
        return runner.run(coro)


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI app. ``GET .../discover``: a manifest. ``POST .../fixed``: the body back with a
    content-length once the request ended. Any other path: every request body chunk is echoed
    as soon as it arrives, with the response headers sent before reading anything.
    """
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    path: str = scope["path"]
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    if path.endswith("/discover"):
        body = json.dumps({**MANIFEST, "accept": headers.get("accept", "")}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", MANIFEST_TYPE.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    if path.endswith("/fixed"):
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        length = str(len(body)).encode()
        start_headers = [(b"content-length", length), (b"x-path", path.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", headers.get("content-type", "x/none").encode()),
                (b"x-path", path.encode()),
            ],
        }
    )
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def listening_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def hypercorn_server(**options: Any) -> AsyncIterator[Endpoint]:
    """Serve :func:`echo_app` with hypercorn in this loop; yield its endpoint."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the socket
    config.graceful_timeout = 1.0
    config.accesslog = None
    config.loglevel = "WARNING"
    for key, value in options.items():
        setattr(config, key, value)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(echo_app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        yield Endpoint("http", "127.0.0.1", port)
    except BaseException:
        # Connections the failed test left open can trip hypercorn's shutdown: keep the
        # test's own error rather than that one.
        stop.set()
        with contextlib.suppress(Exception):
            await task
        raise
    stop.set()
    await task


def serve_fd(fd: int) -> None:
    """Serve :func:`echo_app` on the listening socket ``fd`` until killed."""
    config = Config()
    config.bind = [f"fd://{fd}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    asyncio.run(serve(echo_app, config))  # type: ignore[arg-type]


class HypercornProcess:
    """hypercorn serving :func:`echo_app` in a child process, on a port kept across restarts."""

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Endpoint:
        sock = listening_socket(self.port)
        self.port = sock.getsockname()[1]
        fd = sock.fileno()
        # Not `python -m hypercorn`: it runs the server in a grandchild process.
        code = f"import transport_servers; transport_servers.serve_fd({fd})"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=[fd],
            cwd=os.path.dirname(__file__),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sock.close()  # the child holds the listening socket now
        return Endpoint("http", "127.0.0.1", self.port)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None


# -- a raw HTTP/2 server whose every move the test makes ----------------------------------------


@dataclass
class RawRequest:
    conn: RawH2Connection
    stream_id: int
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class RawH2Connection(asyncio.Protocol):
    def __init__(self, server: RawH2Server) -> None:
        self.server = server
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, RawRequest] = {}
        self.resets: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self.window_opened = asyncio.Event()  # a connection-level WINDOW_UPDATE arrived
        self.closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.append(self)
        self.h2.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                headers = {k.decode(): v.decode() for k, v in event.headers}
                request = RawRequest(self, event.stream_id, headers)
                self.requests[event.stream_id] = request
                self.server.requests.put_nowait(request)
            elif isinstance(event, h2.events.DataReceived):
                self.requests[event.stream_id].body += event.data
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.requests[event.stream_id].ended.set()
            elif isinstance(event, h2.events.WindowUpdated) and event.stream_id == 0:
                self.window_opened.set()
            elif isinstance(event, h2.events.StreamReset):
                self.resets.put_nowait((event.stream_id, event.error_code))
        self.flush()

    def respond(self, stream_id: int, body: bytes = b"", *, end: bool = True) -> None:
        self.h2.send_headers(stream_id, [(":status", "200")], end_stream=end and not body)
        if body:
            self.h2.send_data(stream_id, body, end_stream=end)
        self.flush()

    def reset(self, stream_id: int, code: int) -> None:
        self.h2.reset_stream(stream_id, code)
        self.flush()

    def goaway(self, last_stream_id: int) -> None:
        # Through the frame layer: h2 would refuse to send anything after its own GOAWAY.
        from hyperframe.frame import GoAwayFrame

        frame = GoAwayFrame(0)
        frame.last_stream_id = last_stream_id
        assert self.transport is not None
        self.transport.write(frame.serialize())

    def send_data(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        step = self.h2.max_outbound_frame_size
        for pos in range(0, len(data), step):
            self.h2.send_data(stream_id, data[pos : pos + step])
        if end:
            self.h2.end_stream(stream_id)
        self.flush()

    def stop_reading(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    def write_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def abort(self) -> None:
        assert self.transport is not None
        self.transport.abort()


class RawH2Server:
    def __init__(self) -> None:
        self.connections: list[RawH2Connection] = []
        self.requests: asyncio.Queue[RawRequest] = asyncio.Queue()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Endpoint]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: RawH2Connection(self), sock=listening_socket())
        port = server.sockets[0].getsockname()[1]
        try:
            yield Endpoint("http", "127.0.0.1", port)
        finally:
            server.close()
            for conn in self.connections:
                if conn.transport is not None:
                    conn.transport.abort()
            await server.wait_closed()


# -- a raw HTTP/1.1 server ----------------------------------------------------------------------


@dataclass
class RawH1Request:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool


Responder = Callable[["RawH1Connection", RawH1Request], None]


class RawH1Connection(asyncio.Protocol):
    def __init__(self, server: RawH1Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self._headers: list[tuple[str, str]] = []
        self._body = bytearray()
        self._url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.append(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:  # the HTTP/2 preface, for one
            self.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            self.close()

    def on_message_begin(self) -> None:
        self._headers = []
        self._body = bytearray()
        self._url = b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode().lower(), value.decode()))

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        chunked = ("transfer-encoding", "chunked") in self._headers
        request = RawH1Request(
            self.parser.get_method().decode(),
            self._url.decode(),
            self._headers,
            bytes(self._body),
            chunked,
        )
        self.server.requests.append(request)
        self.server.respond(self, request)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()


class RawH1Server:
    """Answers each request by calling ``respond(conn, request)``."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.connections: list[RawH1Connection] = []
        self.requests: list[RawH1Request] = []

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Endpoint]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: RawH1Connection(self), sock=listening_socket())
        port = server.sockets[0].getsockname()[1]
        try:
            yield Endpoint("http", "127.0.0.1", port)
        finally:
            server.close()
            for conn in self.connections:
                if conn.transport is not None:
                    conn.transport.abort()
            await server.wait_closed()
