"""H1Client against hypercorn (echo app) and a raw HTTP/1.1 server scripted by the test."""

from __future__ import annotations

import asyncio
import json
import os
import socket

import pytest
from transport_servers import (
    MANIFEST_TYPE,
    RawH1Connection,
    RawH1Request,
    RawH1Server,
    hypercorn_server,
    run,
)

from undying.errors import DeploymentError
from undying.server.invoker.transport import Endpoint, H1Client, H1Response

INVOKE = "/invoke/Greeter/greet"
CONTENT_TYPE = [("content-type", "application/vnd.restate.invocation.v5")]


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def read_all(response: H1Response) -> bytes:
    chunks = []
    while chunk := await response.receive():
        chunks.append(chunk)
    return b"".join(chunks)


def answer(conn: RawH1Connection, request: RawH1Request) -> None:
    """Content-length response echoing the request's method, path and body."""
    body = json.dumps({"method": request.method, "path": request.path}).encode() + request.body
    conn.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


def test_chunked_request_and_chunked_streamed_response(loop: str) -> None:
    body = b"".join(b"frame %d;" % i for i in range(1000))

    async def main() -> None:
        async with hypercorn_server() as endpoint:
            client = H1Client()
            response = await client.stream(
                endpoint, "POST", INVOKE, CONTENT_TYPE, body, chunked=True
            )
            assert response.status == 200
            assert response.header("transfer-encoding") == "chunked"
            assert response.header("content-type") == CONTENT_TYPE[0][1]
            assert response.header("x-path") == INVOKE
            assert await read_all(response) == body
            assert client.idle_count(endpoint) == 1
            await client.aclose()

    run(main(), loop)


def test_request_is_chunked_without_content_length() -> None:
    async def main() -> None:
        server = RawH1Server(answer)
        async with server.serving() as endpoint:
            client = H1Client()
            async with await client.stream(
                endpoint, "POST", INVOKE, CONTENT_TYPE, b"payload", chunked=True
            ) as response:
                assert await read_all(response) == b'{"method": "POST", "path": "%s"}payload' % (
                    INVOKE.encode()
                )
            [request] = server.requests
            assert request.chunked
            assert request.body == b"payload"
            names = [name for name, _ in request.headers]
            assert "content-length" not in names
            assert ("host", endpoint.authority) in request.headers
            assert ("content-type", CONTENT_TYPE[0][1]) in request.headers
            # An empty chunked body is just the last chunk.
            async with await client.stream(endpoint, "POST", INVOKE, [], b"", chunked=True) as r:
                await read_all(r)
            assert server.requests[1].chunked and server.requests[1].body == b""
            await client.aclose()

    run(main())


def test_content_length_response_and_large_body(loop: str) -> None:
    body = os.urandom(5 * 1024 * 1024 + 7)  # over the reading high-water mark

    async def main() -> None:
        async with hypercorn_server() as endpoint:
            client = H1Client()
            response = await client.stream(endpoint, "POST", "/x/fixed", [], body)
            assert response.header("content-length") == str(len(body))
            assert await read_all(response) == body
            await client.aclose()

    run(main(), loop)


def test_response_delimited_by_connection_close() -> None:
    def respond(conn: RawH1Connection, request: RawH1Request) -> None:
        conn.write(b"HTTP/1.1 200 OK\r\nx-kind: eof\r\n\r\nuntil ")
        conn.write(b"the end")
        conn.close()

    async def main() -> None:
        server = RawH1Server(respond)
        async with server.serving() as endpoint:
            client = H1Client()
            response = await client.request(endpoint, "GET", "/discover", [])
            assert (response.status, response.body) == (200, b"until the end")
            assert response.header("x-kind") == "eof"
            assert client.idle_count(endpoint) == 0
            await client.aclose()

    run(main())


def test_keep_alive_connection_is_reused(loop: str) -> None:
    async def main() -> None:
        server = RawH1Server(answer)
        async with server.serving() as endpoint:
            client = H1Client()
            for i in range(5):
                response = await client.request(endpoint, "POST", INVOKE, [], b"%d" % i)
                assert response.body.endswith(b"%d" % i)
            assert len(server.connections) == 1
            # Two at once need two connections; both are pooled afterwards.
            first = await client.stream(endpoint, "GET", "/a", [])
            second = await client.stream(endpoint, "GET", "/b", [])
            assert b'"/a"' in await read_all(first)
            assert b'"/b"' in await read_all(second)
            assert len(server.connections) == 2
            assert client.idle_count(endpoint) == 2
            await client.aclose()

    run(main(), loop)


def test_response_closed_early_closes_its_connection() -> None:
    def respond(conn: RawH1Connection, request: RawH1Request) -> None:
        if request.path == "/partial":
            conn.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nsome")
        else:
            answer(conn, request)

    async def main() -> None:
        server = RawH1Server(respond)
        async with server.serving() as endpoint:
            client = H1Client()
            response = await client.stream(endpoint, "GET", "/partial", [])
            await response.aclose()
            assert client.idle_count(endpoint) == 0
            # A response that fully arrived frees its connection even if nobody read it.
            response = await client.stream(endpoint, "GET", "/whole", [])
            await response.aclose()
            assert client.idle_count(endpoint) == 1
            assert len(server.connections) == 2
            await client.aclose()

    run(main())


def test_connection_closed_between_requests() -> None:
    # The deployment closes a keep-alive connection the moment our next request arrives (the
    # keep-alive race): nothing was answered, so the request goes again on a new connection.
    server: RawH1Server

    def respond(conn: RawH1Connection, request: RawH1Request) -> None:
        if request.path == "/drop" or (request.path == "/race" and conn is server.connections[0]):
            conn.close()
        else:
            answer(conn, request)

    async def main() -> None:
        async with server.serving() as endpoint:
            client = H1Client()
            await client.request(endpoint, "GET", "/a", [])
            response = await client.stream(endpoint, "POST", "/race", [], b"x", chunked=True)
            assert b"x" in await read_all(response)
            assert len(server.connections) == 2
            await client.aclose()
            # On a fresh connection the same failure is the caller's to retry.
            client = H1Client()
            with pytest.raises(
                DeploymentError, match="closed by the deployment before it answered"
            ):
                await client.stream(endpoint, "POST", "/drop", [], b"x", chunked=True)
            await client.aclose()

    server = RawH1Server(respond)
    run(main())


def test_connection_closed_mid_body() -> None:
    def respond(conn: RawH1Connection, request: RawH1Request) -> None:
        conn.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten..")
        conn.close()

    async def main() -> None:
        server = RawH1Server(respond)
        async with server.serving() as endpoint:
            client = H1Client()
            response = await client.stream(endpoint, "POST", INVOKE, [], b"x", chunked=True)
            assert await response.receive() == b"only ten.."
            with pytest.raises(DeploymentError, match="closed by the deployment"):
                await response.receive()
            await client.aclose()

    run(main())


def test_malformed_response() -> None:
    def respond(conn: RawH1Connection, request: RawH1Request) -> None:
        conn.write(b"HTTP/1.1 2x0 Nope\r\n\r\n")

    async def main() -> None:
        server = RawH1Server(respond)
        async with server.serving() as endpoint:
            client = H1Client()
            with pytest.raises(DeploymentError, match="malformed HTTP/1.1 response"):
                await client.stream(endpoint, "GET", "/", [])
            await client.aclose()

    run(main())


def test_informational_response_is_skipped() -> None:
    def respond(conn: RawH1Connection, request: RawH1Request) -> None:
        conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope")

    async def main() -> None:
        server = RawH1Server(respond)
        async with server.serving() as endpoint:
            client = H1Client()
            response = await client.request(endpoint, "POST", "/invoke/No/such", [], b"x")
            assert (response.status, response.body) == (404, b"nope")
            await client.aclose()

    run(main())


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        client = H1Client()
        with pytest.raises(DeploymentError, match=f"connection to 127.0.0.1:{port} refused"):
            await client.stream(Endpoint("http", "127.0.0.1", port), "GET", "/", [])
        await client.aclose()

    run(main())


def test_header_injection_is_refused() -> None:
    async def main() -> None:
        client = H1Client()
        with pytest.raises(ValueError, match="line break"):
            await client.stream(Endpoint.parse("http://x"), "GET", "/", [("a", "b\r\nc: d")])
        await client.aclose()

    run(main())


def test_discovery_over_h1(loop: str) -> None:
    async def main() -> None:
        async with hypercorn_server() as endpoint:
            client = H1Client()
            accept = "application/vnd.restate.endpointmanifest.v3+json"
            response = await client.request(endpoint, "GET", "/discover", [("accept", accept)])
            assert response.status == 200
            assert response.header("content-type") == MANIFEST_TYPE
            assert json.loads(response.body)["accept"] == accept
            again = await client.request(endpoint, "GET", "/discover", [])
            assert again.status == 200
            assert client.idle_count(endpoint) == 1
            await client.aclose()

    run(main(), loop)


def test_concurrent_requests_over_hypercorn(loop: str) -> None:
    async def main() -> None:
        async with hypercorn_server() as endpoint:
            client = H1Client()

            async def one(i: int) -> None:
                body = b"%d" % i * 1000
                response = await client.stream(endpoint, "POST", INVOKE, [], body, chunked=True)
                async with response:
                    assert await read_all(response) == body

            await asyncio.gather(*(one(i) for i in range(50)))
            await asyncio.gather(*(one(i) for i in range(50)))
            assert client.idle_count(endpoint) == 50
            await client.aclose()

    run(main(), loop)
