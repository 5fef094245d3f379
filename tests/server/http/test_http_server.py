"""Tests for undying's HTTP/1.1 ASGI server (raw sockets for exact bytes, httpx, curl)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from undying.server.http import HttpServer, Message, Receive, Scope, Send
from undying.server.http import protocol as http_protocol

# ---------------------------------------------------------------------------- harness


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[], Awaitable[None]]], None]:
    """Run an async test body on a fresh loop of the requested kind, then check for leaks."""

    def runner(body: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            await asyncio.wait_for(body(), timeout=20)
            current = asyncio.current_task()
            leftover = [t for t in asyncio.all_tasks() if t is not current]
            assert not leftover, f"tasks left pending: {leftover}"

        factory = uvloop.new_event_loop if request.param == "uvloop" else None
        with asyncio.Runner(loop_factory=factory) as r:
            r.run(main())

    return runner


@contextlib.asynccontextmanager
async def serving(app: Any, **kwargs: Any) -> AsyncIterator[HttpServer]:
    server = HttpServer(app, **kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=2.0)


@dataclass
class Resp:
    status: int
    version: str
    headers: dict[str, str]
    body: bytes
    raw_head: bytes = b""
    header_list: list[tuple[str, str]] = field(default_factory=list)


async def read_response(reader: asyncio.StreamReader, *, head: bool = False) -> Resp:
    raw_head = await reader.readuntil(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")[:-2]
    version, status, *_ = lines[0].split(" ", 2)
    header_list = []
    for line in lines[1:]:
        name, value = line.split(":", 1)
        header_list.append((name.strip().lower(), value.strip()))
    headers = dict(header_list)
    code = int(status)
    if head or code in (204, 304) or 100 <= code < 200:
        body = b""
    elif headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            if size == 0:
                assert await reader.readexactly(2) == b"\r\n"
                break
            chunk = await reader.readexactly(size + 2)
            assert chunk[-2:] == b"\r\n"
            parts.append(chunk[:-2])
        body = b"".join(parts)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return Resp(code, version, headers, body, raw_head, header_list)


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def exchange(port: int, data: bytes, *, head: bool = False) -> Resp:
    async with connect(port) as (reader, writer):
        writer.write(data)
        return await read_response(reader, head=head)


async def read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        parts.append(message["body"])
        if not message.get("more_body", False):
            return b"".join(parts)


async def respond(send: Send, status: int, body: bytes, headers: Any = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with a JSON summary of the request."""
    body = await read_body(receive)
    info = {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "version": scope["http_version"],
        "len": len(body),
        "sha": hashlib.sha256(body).hexdigest(),
        "client_port": scope["client"][1],
    }
    await respond(send, 200, json.dumps(info).encode(), [(b"content-type", b"application/json")])


Runner = Callable[[Callable[[], Awaitable[None]]], None]
DATE_RE = re.compile(rb"date: [^\r]+\r\n")


# ---------------------------------------------------------------------------- basics


def test_get_scope_and_exact_response(run: Runner) -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(dict(scope))
        assert await receive() == {"type": "http.request", "body": b"", "more_body": False}
        await respond(send, 200, b"hello", [(b"content-type", b"text/plain")])

    async def body() -> None:
        async with serving(app) as server:
            port = server.port
            assert port > 0
            request = (
                b"GET /caf%C3%A9/a%2Fb?x=1&y=%20 HTTP/1.1\r\n"
                b"Host: example\r\nX-Custom: One\r\nx-custom: two\r\n\r\n"
            )
            resp = await exchange(port, request)
            assert resp.status == 200 and resp.body == b"hello"
            assert DATE_RE.sub(b"", resp.raw_head) == (
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n"
            )
        (scope,) = scopes
        assert scope["type"] == "http"
        assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
        assert scope["http_version"] == "1.1"
        assert scope["method"] == "GET"
        assert scope["scheme"] == "http"
        assert scope["path"] == "/café/a/b"
        assert scope["raw_path"] == b"/caf%C3%A9/a%2Fb"
        assert scope["query_string"] == b"x=1&y=%20"
        assert scope["root_path"] == ""
        assert scope["headers"] == [
            (b"host", b"example"),
            (b"x-custom", b"One"),
            (b"x-custom", b"two"),
        ]
        assert scope["client"][0] == "127.0.0.1"
        assert scope["server"] == ("127.0.0.1", port)

    run(body)


def test_server_header_and_app_date(run: Runner) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 404, b"", [(b"date", b"yesterday")])

    async def body() -> None:
        async with serving(app, server_header="undying") as server:
            resp = await exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert resp.status == 404
            assert resp.header_list == [
                ("date", "yesterday"),
                ("content-length", "0"),
                ("server", "undying"),
            ]

    run(body)


def test_post_content_length_and_chunked_request(run: Runner) -> None:
    messages: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        parts = []
        while True:
            message = await receive()
            messages.append(message)
            parts.append(message["body"])
            if not message["more_body"]:
                break
        await respond(send, 200, b"got:" + b"".join(parts))

    async def body() -> None:
        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello")
            await writer.drain()
            writer.write(b" world")
            resp = await read_response(reader)
            assert resp.body == b"got:hello world"
            # chunked, split awkwardly across writes
            writer.write(b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r")
            await writer.drain()
            writer.write(b"\nhello\r\n6\r\n world\r\n")
            await writer.drain()
            writer.write(b"0\r\n\r\n")
            resp = await read_response(reader)
            assert resp.body == b"got:hello world"
        assert all(m["type"] == "http.request" for m in messages)

    run(body)


def test_chunked_streaming_response_exact_bytes(run: Runner) -> None:
    async def body() -> None:
        release = asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await release.wait()  # headers must reach the client before any body is produced
            for part in (b"ab", b"", b"cde"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert DATE_RE.sub(b"", head) == (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            )
            release.set()
            assert await reader.read() == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"

    run(body)


def test_single_body_message_gets_content_length(run: Runner) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"xyz"})

    async def body() -> None:
        async with serving(app) as server:
            resp = await exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert resp.headers["content-length"] == "3" and resp.body == b"xyz"
            assert "transfer-encoding" not in resp.headers

    run(body)


def test_keep_alive_reuse_with_httpx(run: Runner) -> None:
    async def body() -> None:
        async with serving(echo_app) as server, httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{server.port}"
            ports = set()
            for i in range(5):
                r = await client.post(f"{url}/p/{i}?q={i}", content=b"x" * i)
                assert r.status_code == 200
                info = r.json()
                assert info["path"] == f"/p/{i}" and info["query"] == f"q={i}"
                assert info["len"] == i
                ports.add(info["client_port"])
            assert len(ports) == 1

            async def gen() -> AsyncIterator[bytes]:
                for _ in range(4):
                    yield b"0123456789" * 1000

            r = await client.post(f"{url}/stream", content=gen())
            assert r.json()["len"] == 40000
            assert r.json()["sha"] == hashlib.sha256(b"0123456789" * 4000).hexdigest()

    run(body)


def test_pipelining_in_order_one_at_a_time(run: Runner) -> None:
    log: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        log.append("start " + scope["path"])
        data = await read_body(receive)
        if scope["path"] == "/1":
            for _ in range(5):
                await asyncio.sleep(0)  # yield: a concurrently started request would interleave
        log.append("end " + scope["path"])
        await respond(send, 200, scope["path"].encode() + b":" + data)

    async def body() -> None:
        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(
                b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                b"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"1\r\nz\r\n0\r\n\r\n"
                b"GET /4 HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            bodies = [(await read_response(reader)).body for _ in range(4)]
            assert bodies == [b"/1:", b"/2:abc", b"/3:z", b"/4:"]
        assert log == [f"{what} /{i}" for i in range(1, 5) for what in ("start", "end")]

    run(body)


def test_unread_body_is_discarded_for_next_request(run: Runner) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/skip":
            await respond(send, 200, b"skipped")
        else:
            await respond(send, 200, b"read:" + await read_body(receive))

    async def body() -> None:
        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(b"POST /skip HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            writer.write(b"a" * 50000)
            assert (await read_response(reader)).body == b"skipped"
            writer.write(b"a" * 50000)
            writer.write(b"POST /skip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"3\r\nabc\r\n")
            assert (await read_response(reader)).body == b"skipped"
            writer.write(b"0\r\n\r\nPOST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
            assert (await read_response(reader)).body == b"read:ok"

    run(body)


def test_chunked_trailers_are_not_merged_into_headers(run: Runner) -> None:
    async def body() -> None:
        scopes: list[Scope] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scopes.append(scope)
            await respond(send, 200, await read_body(receive))

        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\n\r\n"
                b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            assert (await read_response(reader)).body == b"abc"
            assert (await read_response(reader)).status == 200
        assert scopes[0]["headers"] == [(b"host", b"x"), (b"transfer-encoding", b"chunked")]

    run(body)


def test_absolute_form_and_asterisk_targets(run: Runner) -> None:
    async def body() -> None:
        scopes: list[Scope] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scopes.append(scope)
            await respond(send, 204, b"")

        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(b"GET http://example.com:81/a%20b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(reader)).status == 204
            writer.write(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = await read_response(reader)
            assert resp.status == 204 and "content-length" not in resp.headers
        assert [(s["method"], s["path"], s["raw_path"], s["query_string"]) for s in scopes] == [
            ("GET", "/a b", b"/a%20b", b"q=1"),
            ("OPTIONS", "*", b"*", b""),
        ]

    run(body)


# ---------------------------------------------------------------------------- connection handling


def test_connection_close_request_and_app(run: Runner) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"connection", b"close")] if scope["path"] == "/app-close" else []
        await respond(send, 200, b"bye", headers)

    async def body() -> None:
        async with serving(app) as server:
            for request in (
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /app-close HTTP/1.1\r\nHost: x\r\n\r\n",
            ):
                async with connect(server.port) as (reader, writer):
                    writer.write(request + b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
                    resp = await read_response(reader)
                    assert resp.body == b"bye" and resp.headers["connection"] == "close"
                    assert await reader.read() == b""  # closed, second request not served

    run(body)


def test_app_supplied_framing_headers(run: Runner) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/te":
            headers = [(b"Transfer-Encoding", b"chunked")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"abc"})
        else:
            await respond(send, 200, b"x", [(b"content-length", b"nope")])

    async def body() -> None:
        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(b"GET /te HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = await read_response(reader)
            assert resp.body == b"abc"
            assert [n for n, _ in resp.header_list].count("transfer-encoding") == 1
            writer.write(b"GET /bad-length HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(reader)).status == 500

    run(body)


def test_linger_ends_when_client_keeps_socket_open(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_protocol, "LINGER", 0.05)

    async def body() -> None:
        server = HttpServer(echo_app)
        await server.start()
        async with connect(server.port) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert (await read_response(reader)).status == 200
            assert await reader.read() == b""
            # The client neither closes nor sends: the server's linger period runs out and
            # it closes on its own, well before the stop grace period would.
            await asyncio.wait_for(server.stop(grace=30), timeout=10)

    run(body)


def test_http10(run: Runner) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["http_version"] == "1.0"
        await send({"type": "http.response.start", "status": 200})
        if scope["path"] == "/stream":
            await send({"type": "http.response.body", "body": b"ab", "more_body": True})
            await send({"type": "http.response.body", "body": b"cd", "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.body", "body": b"ok"})

    async def body() -> None:
        async with serving(app) as server:
            async with connect(server.port) as (reader, writer):
                writer.write(b"GET / HTTP/1.0\r\n\r\n")
                resp = await read_response(reader)
                assert resp.version == "HTTP/1.1" and resp.body == b"ok"
                assert "connection" not in resp.headers
                assert await reader.read() == b""
            async with connect(server.port) as (reader, writer):
                for _ in range(2):
                    writer.write(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                    resp = await read_response(reader)
                    assert resp.body == b"ok" and resp.headers["connection"] == "keep-alive"
                writer.write(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                resp = await read_response(reader)  # no length: read until close
                assert resp.body == b"abcd"
                assert "transfer-encoding" not in resp.headers

    run(body)


def test_head_has_no_body(run: Runner) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/app-length":
            await respond(send, 200, b"12345", [(b"content-length", b"5")])
        else:
            await respond(send, 200, b"123")

    async def body() -> None:
        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(
                b"HEAD /app-length HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /app-length HTTP/1.1\r\nHost: x\r\n\r\n"
                b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            resp = await read_response(reader, head=True)
            assert resp.headers["content-length"] == "5" and resp.body == b""
            resp = await read_response(reader)  # parses right after the head: no stray body
            assert resp.body == b"12345"
            resp = await read_response(reader, head=True)
            assert resp.headers["content-length"] == "3" and resp.body == b""
            resp = await read_response(reader)
            assert resp.body == b"123"

    run(body)


def test_idle_keep_alive_timeout(run: Runner) -> None:
    async def body() -> None:
        async with (
            serving(echo_app, keep_alive_timeout=0.2) as server,
            connect(server.port) as (reader, writer),
        ):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(reader)).status == 200
            assert await asyncio.wait_for(reader.read(), timeout=5) == b""

    run(body)


def test_upgrade_request_is_served_as_http11(run: Runner) -> None:
    async def body() -> None:
        async with serving(echo_app) as server, connect(server.port) as (reader, writer):
            writer.write(
                b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
                b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            assert json.loads((await read_response(reader)).body)["path"] == "/u"
            assert json.loads((await read_response(reader)).body)["path"] == "/next"

    run(body)


# ---------------------------------------------------------------------------- errors


def test_malformed_request_gets_400(run: Runner) -> None:
    async def body() -> None:
        async with serving(echo_app) as server:
            for bad in (
                b"GARBAGE\r\n\r\n",
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            ):
                async with connect(server.port) as (reader, writer):
                    writer.write(bad)
                    resp = await read_response(reader)
                    assert resp.status == 400 and resp.headers["connection"] == "close"
                    assert await reader.read() == b""

    run(body)


def test_oversize_headers_get_431(run: Runner) -> None:
    async def body() -> None:
        async with serving(echo_app, max_header_bytes=8192) as server:
            # one big header in one write
            resp = await exchange(
                server.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n"
            )
            assert resp.status == 431
            # a header block trickled in over many writes never completes
            async with connect(server.port) as (reader, writer):
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
                await writer.drain()
                with contextlib.suppress(ConnectionError):
                    for _ in range(100):
                        writer.write(b"b" * 1000)
                        await writer.drain()
                resp = await read_response(reader)
                assert resp.status == 431
            # a long URL
            resp = await exchange(server.port, b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\n\r\n")
            assert resp.status == 431
            # just under the limit is fine
            ok = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 7000 + b"\r\n\r\n"
            assert (await exchange(server.port, ok)).status == 200

    run(body)


def test_parse_error_after_pipelined_request(run: Runner) -> None:
    async def body() -> None:
        async with serving(echo_app) as server, connect(server.port) as (reader, writer):
            writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n")
            assert json.loads((await read_response(reader)).body)["path"] == "/first"
            resp = await read_response(reader)
            assert resp.status == 400 and resp.headers["connection"] == "close"
            assert await reader.read() == b""

    run(body)


def test_malformed_chunked_body(run: Runner) -> None:
    async def body() -> None:
        seen: list[Message] = []
        done = asyncio.get_running_loop().create_future()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"] == "/read":
                seen.append(await receive())
                seen.append(await receive())
                await respond(send, 200, b"unheard")
                done.set_result(None)
            else:
                await respond(send, 200, b"answered")

        async with serving(app) as server:
            chunked = b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            # the request being served has a broken body: connection closed, app disconnected
            async with connect(server.port) as (reader, writer):
                writer.write(chunked + b"3\r\nabc\r\n")
                await writer.drain()
                writer.write(b"zz\r\n")
                assert await reader.read() == b""
            await done
            assert seen == [
                {"type": "http.request", "body": b"abc", "more_body": True},
                {"type": "http.disconnect"},
            ]
            # a pipelined request with a broken body: the earlier one is answered, then close
            async with connect(server.port) as (reader, writer):
                writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" + chunked + b"zz\r\n")
                assert (await read_response(reader)).body == b"answered"
                assert await reader.read() == b""

    run(body)


def test_connect_request_closes_connection(run: Runner) -> None:
    async def body() -> None:
        scopes: list[Scope] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scopes.append(scope)
            await respond(send, 405, b"no tunnels")

        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
            resp = await read_response(reader)
            assert resp.status == 405 and resp.headers["connection"] == "close"
            assert await reader.read() == b""
        assert scopes[0]["method"] == "CONNECT" and scopes[0]["path"] == "example.com:443"

    run(body)


def test_large_unread_body_closes_connection(run: Runner) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, b"not reading that")

    async def body() -> None:
        async with serving(app) as server, connect(server.port) as (reader, writer):
            # A client that sends its whole body before looking at the response. Past the
            # discard limit the server half-closes but keeps draining input for a while, so
            # the client's writes do not fail and it gets to read the response (no RST).
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
            for _ in range(100):
                writer.write(b"z" * 65536)
                await writer.drain()
            assert (await read_response(reader)).body == b"not reading that"
            assert await reader.read() == b""

    run(body)


def test_app_errors(run: Runner, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == "/raise":
            raise ValueError("boom")
        if path == "/return":
            return
        if path == "/start-then-raise":
            await send({"type": "http.response.start", "status": 200})
            raise ValueError("boom")
        if path == "/mid-raise":
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise ValueError("boom")
        if path == "/short":
            await respond(send, 200, b"abc", [(b"content-length", b"10")])
            return
        if path == "/long":
            await respond(send, 200, b"abc", [(b"content-length", b"2")])
            return
        if path == "/twice":
            await respond(send, 200, b"ok")
            await respond(send, 200, b"again")
            return
        if path == "/bad-message":
            await send({"type": "http.response.trailers"})
            return
        if path == "/bad-header":
            await respond(send, 200, b"", [(b"x-injected", b"a\r\nx-evil: 1")])
            return
        await respond(send, 200, b"fine")

    async def body() -> None:
        async with serving(app) as server, connect(server.port) as (reader, writer):
            for path in (
                b"/raise",
                b"/return",
                b"/start-then-raise",
                b"/long",
                b"/bad-message",
                b"/bad-header",
            ):
                writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                resp = await read_response(reader)
                assert resp.status == 500 and resp.body == b"Internal Server Error"
                assert "connection" not in resp.headers
            writer.write(b"HEAD /raise HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = await read_response(reader, head=True)
            assert resp.status == 500
            writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(reader)).body == b"fine"  # still usable
            writer.write(b"GET /twice HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(reader)).body == b"ok"  # the second response is refused
            writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(reader)).body == b"fine"
            for path in (b"/mid-raise", b"/short"):
                async with connect(server.port) as (reader2, writer2):
                    writer2.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                    data = await reader2.read()  # the server closes the connection
                    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
                    assert data.endswith((b"7\r\npartial\r\n", b"\r\n\r\nabc"))

    with caplog.at_level("ERROR", logger="undying.http"):
        run(body)
    assert all(r.name == "undying.http" for r in caplog.records)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Exception in ASGI application" in m for m in messages) == 9
    assert sum("returned without completing" in m for m in messages) == 1


# ---------------------------------------------------------------------------- 100-continue


def test_expect_100_reject_without_reading(run: Runner) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 413, b"too big")  # without ever calling receive()

    async def body() -> None:
        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            resp = await read_response(reader)
            assert resp.status == 413 and resp.body == b"too big"
            assert resp.headers["connection"] == "close"
            assert await reader.read() == b""  # no "100 Continue" anywhere, then closed

    run(body)


def test_expect_100_continue_sent_when_app_reads(run: Runner) -> None:
    async def body() -> None:
        async with serving(echo_app) as server, connect(server.port) as (reader, writer):
            writer.write(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
            )
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"hello")
            resp = await read_response(reader)
            assert json.loads(resp.body)["len"] == 5
            assert "connection" not in resp.headers  # still keep-alive
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(reader)).status == 200

    run(body)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_expect_100_with_big_body(run: Runner, tmp_path: Path) -> None:
    payload = bytes(range(256)) * (4 * 4096)  # 4 MiB
    data_file = tmp_path / "payload.bin"
    data_file.write_bytes(payload)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/reject":
            await respond(send, 413, b"rejected")
        else:
            await echo_app(scope, receive, send)

    async def curl(url: str) -> tuple[bytes, str]:
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--http1.1", "-H", "Expect: 100-continue",
            "--expect100-timeout", "60", "--data-binary", f"@{data_file}",
            "-w", "\n%{http_code}", url,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        text, _, code = out.rpartition(b"\n")
        return text, code.decode()

    async def body() -> None:
        async with serving(app) as server:
            text, code = await curl(f"http://127.0.0.1:{server.port}/upload")
            assert code == "200"
            info = json.loads(text)
            assert info["len"] == len(payload)
            assert info["sha"] == hashlib.sha256(payload).hexdigest()
            text, code = await curl(f"http://127.0.0.1:{server.port}/reject")
            assert (text, code) == (b"rejected", "413")

    run(body)


# ---------------------------------------------------------------------------- flow control


def test_request_body_backpressure(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    total = 32 * 1024 * 1024
    paused: list[asyncio.Event] = []
    original = http_protocol.HttpConnection.update_reading

    def spy(self: http_protocol.HttpConnection) -> None:
        original(self)
        if self.reading_paused:
            for event in paused:
                event.set()

    monkeypatch.setattr(http_protocol.HttpConnection, "update_reading", spy)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await paused[0].wait()  # the server stopped reading although we read nothing yet
        got = 0
        while True:
            message = await receive()
            sizes.append(len(message["body"]))
            got += len(message["body"])
            if not message["more_body"]:
                break
        await respond(send, 200, str(got).encode())

    async def body() -> None:
        paused.append(asyncio.Event())
        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
            block = b"x" * (1024 * 1024)
            for _ in range(total // len(block)):
                writer.write(block)
                await writer.drain()
            assert (await read_response(reader)).body == str(total).encode()
        # never much more than the 1 MiB high-water mark plus one socket read is buffered
        assert sum(sizes) == total
        assert max(sizes) <= 1024 * 1024 + 512 * 1024

    run(body)


def test_response_write_backpressure(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    chunk = b"w" * 65536
    sent: list[int] = []
    paused: list[asyncio.Event] = []
    original = http_protocol.HttpConnection.pause_writing

    def spy(self: http_protocol.HttpConnection) -> None:
        original(self)
        for event in paused:
            event.set()

    monkeypatch.setattr(http_protocol.HttpConnection, "pause_writing", spy)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        for i in range(400):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent.append(i)
        await send({"type": "http.response.body", "body": b""})

    async def body() -> None:
        paused.append(asyncio.Event())
        async with serving(app) as server, connect(server.port) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await paused[0].wait()
            assert len(sent) < 400  # the app is held back while the client does not read
            resp = await read_response(reader)
            assert len(resp.body) == 400 * len(chunk)

    run(body)


def test_large_streaming_response(run: Runner) -> None:
    chunk = b"y" * 65536

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        for _ in range(200):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def body() -> None:
        async with serving(app) as server, httpx.AsyncClient() as client:
            total = 0
            async with client.stream("GET", f"http://127.0.0.1:{server.port}/") as r:
                async for part in r.aiter_raw():
                    total += len(part)
            assert total == 200 * len(chunk)

    run(body)


# ---------------------------------------------------------------------------- disconnects and stop


def test_client_disconnect_mid_body(run: Runner) -> None:
    async def body() -> None:
        outcome: list[Any] = []
        done = asyncio.get_running_loop().create_future()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            outcome.append((await receive())["body"])
            outcome.append(await receive())
            await respond(send, 200, b"nobody listens")  # must not raise
            done.set_result(None)

        async with serving(app) as server:
            async with connect(server.port) as (_, writer):
                writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
                await writer.drain()
            await done
        assert outcome == [b"abc", {"type": "http.disconnect"}]

    run(body)


def test_disconnect_while_waiting_after_body(run: Runner) -> None:
    async def body() -> None:
        got: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await read_body(receive)
            got.set_result(await receive())  # long-poll style wait for the client to go away

        async with serving(app) as server:
            async with connect(server.port) as (_, writer):
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await writer.drain()
            assert await got == {"type": "http.disconnect"}

    run(body)


def test_graceful_stop_lets_inflight_request_finish(run: Runner) -> None:
    async def body() -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"] == "/slow":
                started.set()
                await release.wait()
            await respond(send, 200, b"done " + scope["path"].encode())

        server = HttpServer(app)
        await server.start()
        async with connect(server.port) as (r1, w1), connect(server.port) as (r2, w2):
            w2.write(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(r2)).body == b"done /fast"  # now idle keep-alive
            w1.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            await started.wait()
            stopping = asyncio.create_task(server.stop(grace=10))
            assert await r2.read() == b""  # idle connection closed promptly
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", server.port)
            assert not stopping.done()
            release.set()
            resp = await read_response(r1)
            assert resp.body == b"done /slow" and resp.headers["connection"] == "close"
            assert await r1.read() == b""
        await stopping  # the clients closed after the server's FIN: no linger left to wait for

    run(body)


def test_stop_drops_queued_and_new_requests(run: Runner) -> None:
    async def body() -> None:
        started, release = asyncio.Event(), asyncio.Event()
        paths: list[str] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            paths.append(scope["path"])
            started.set()
            await release.wait()
            await respond(send, 200, b"done")

        server = HttpServer(app)
        await server.start()
        async with connect(server.port) as (reader, writer):
            writer.write(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
            await started.wait()
            stopping = asyncio.create_task(server.stop(grace=10))
            writer.write(b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            release.set()
            resp = await read_response(reader)
            assert resp.body == b"done" and resp.headers["connection"] == "close"
            assert await reader.read() == b""
        await stopping
        assert paths == ["/1"]

    run(body)


def test_stop_after_grace_cancels_app(run: Runner) -> None:
    async def body() -> None:
        started = asyncio.Event()
        cancelled: list[bool] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        server = HttpServer(app)
        await server.start()
        async with connect(server.port) as (reader, writer):
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
            await started.wait()
            await server.stop(grace=0.05)
            assert await reader.read() == b""
        assert cancelled == [True]

    run(body)


def test_stop_is_idempotent_and_port_requires_start(run: Runner) -> None:
    async def body() -> None:
        server = HttpServer(echo_app)
        with pytest.raises(RuntimeError):
            _ = server.port
        await server.stop()
        await server.start()
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{server.port}/")
            assert r.status_code == 200
        await asyncio.gather(server.stop(), server.stop())
        await server.stop()

    run(body)
