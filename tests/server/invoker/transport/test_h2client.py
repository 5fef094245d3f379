"""H2Client against hypercorn (echo app) and a raw h2 server driven step by step by the test."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket

import pytest
from h2.errors import ErrorCodes
from transport_servers import (
    MANIFEST_TYPE,
    HypercornProcess,
    RawH1Request,
    RawH1Server,
    RawH2Server,
    hypercorn_server,
    run,
)

from undying.errors import DeploymentError
from undying.server.invoker.transport import Endpoint, H2Client, H2Settings, H2Stream

INVOKE = "/invoke/Greeter/greet"
CONTENT_TYPE = [("content-type", "application/vnd.restate.invocation.v5")]


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def read_exactly(stream: H2Stream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.receive()
        assert chunk, "stream ended early"
        data += chunk
    return data


async def echo_rounds(stream: H2Stream, rounds: int, tag: bytes = b"") -> None:
    for i in range(rounds):
        message = tag + b"message %d" % i
        await stream.send(message)
        assert await read_exactly(stream, len(message)) == message


def test_ping_pong_over_one_stream(loop: str) -> None:
    async def main() -> None:
        async with hypercorn_server() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, CONTENT_TYPE)
            # The echo app answers before the request ends: headers come first.
            status, headers = await stream.response()
            assert status == 200
            assert ("content-type", CONTENT_TYPE[0][1]) in headers
            assert ("x-path", INVOKE) in headers
            await echo_rounds(stream, 200)
            await stream.end()
            assert await stream.receive() == b""
            assert stream.finished
            await client.aclose()

    run(main(), loop)


def test_endpoint_path_prefix_is_kept() -> None:
    async def main() -> None:
        async with hypercorn_server() as endpoint:
            client = H2Client()
            prefixed = Endpoint.parse(f"{endpoint}/some/prefix/")
            async with await client.open_stream(prefixed, INVOKE, [], end_stream=True) as stream:
                _, headers = await stream.response()
                assert ("x-path", "/some/prefix" + INVOKE) in headers
                assert await stream.receive() == b""
            await client.aclose()

    run(main())


def test_many_concurrent_streams_share_one_connection(loop: str) -> None:
    async def main() -> None:
        async with hypercorn_server() as endpoint:  # hypercorn allows 100 streams
            client = H2Client()
            streams = [await client.open_stream(endpoint, INVOKE, []) for _ in range(100)]
            assert client.connection_count(endpoint) == 1

            async def exchange(i: int, stream: H2Stream) -> None:
                await echo_rounds(stream, 5, b"%d: " % i)
                await stream.end()
                assert await stream.receive() == b""

            await asyncio.gather(*(exchange(i, s) for i, s in enumerate(streams)))
            assert client.connection_count(endpoint) == 1
            await client.aclose()

    run(main(), loop)


def test_second_connection_only_past_max_concurrent_streams() -> None:
    async def main() -> None:
        async with hypercorn_server(h2_max_concurrent_streams=10) as endpoint:
            client = H2Client()
            streams = [await client.open_stream(endpoint, INVOKE, []) for _ in range(25)]
            assert client.connection_count(endpoint) == 3
            for stream in streams:
                await echo_rounds(stream, 1)
                await stream.end()
                assert await stream.receive() == b""
            # All finished: the next streams reuse the open connections.
            more = await asyncio.gather(
                *(client.open_stream(endpoint, INVOKE, []) for _ in range(10))
            )
            assert client.connection_count(endpoint) == 3
            for stream in more:
                stream.reset()
            await client.aclose()

    run(main())


def test_large_bodies_both_ways(loop: str) -> None:
    size = 9 * 1024 * 1024 + 123  # beyond both the stream (2 MiB) and connection (5 MiB) windows
    body = os.urandom(size)

    async def main() -> None:
        async with hypercorn_server() as endpoint:
            client = H2Client()
            streams = [await client.open_stream(endpoint, INVOKE, []) for _ in range(2)]

            async def read_all(stream: H2Stream) -> bytes:
                digest = hashlib.sha256()
                total = 0
                while chunk := await stream.receive():
                    digest.update(chunk)
                    total += len(chunk)
                assert total == size
                return digest.digest()

            async def write_all(stream: H2Stream) -> None:
                await stream.send(body)
                await stream.end()

            readers = [asyncio.create_task(read_all(s)) for s in streams]
            await asyncio.gather(*(write_all(s) for s in streams))
            expected = hashlib.sha256(body).digest()
            assert await asyncio.gather(*readers) == [expected, expected]
            await client.aclose()

    run(main(), loop)


def test_reset_streams_give_their_connection_window_back() -> None:
    # Unread data of a stream holds part of the connection window (at most the stream window);
    # a reset stream acknowledges what it never read, so the other streams get the window back.
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            streams = [await client.open_stream(endpoint, INVOKE, []) for _ in range(3)]
            requests = [await server.requests.get() for _ in range(3)]
            conn = requests[0].conn
            for request in requests:
                conn.respond(request.stream_id, end=False)
                window = conn.h2.local_flow_control_window(request.stream_id)
                conn.send_data(request.stream_id, b"z" * window)
            assert conn.h2.outbound_flow_control_window == 0  # 2 + 2 + 1 MiB: all of it
            busy = await client.open_stream(endpoint, INVOKE, [])
            busy_request = await server.requests.get()
            for stream in streams:
                stream.reset()
            while conn.h2.outbound_flow_control_window < 5 * 1024 * 1024:
                conn.window_opened.clear()
                await conn.window_opened.wait()
            payload = os.urandom(2 * 1024 * 1024)  # a whole stream window
            conn.respond(busy_request.stream_id, end=False)
            conn.send_data(busy_request.stream_id, payload, end=True)
            assert await read_exactly(busy, len(payload)) == payload
            assert await busy.receive() == b""
            await client.aclose()

    run(main())


def test_half_close_then_keep_receiving(loop: str) -> None:
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, CONTENT_TYPE)
            request = await server.requests.get()
            assert request.headers[":path"] == INVOKE
            assert request.headers[":method"] == "POST"
            assert request.headers["content-type"] == CONTENT_TYPE[0][1]
            request.conn.respond(request.stream_id, end=False)
            assert (await stream.response())[0] == 200
            await stream.send(b"start")
            await stream.end()
            await request.ended.wait()
            assert request.body == b"start"
            # The deployment keeps talking after our half-close.
            request.conn.send_data(request.stream_id, b"suspension")
            request.conn.send_data(request.stream_id, b"-end", end=True)
            assert await read_exactly(stream, 14) == b"suspension-end"
            assert await stream.receive() == b""
            assert client.connection_count(endpoint) == 1
            await client.aclose()

    run(main(), loop)


def test_client_settings_as_restate() -> None:
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            request = await server.requests.get()
            remote = request.conn.h2.remote_settings
            assert remote.initial_window_size == 2 * 1024 * 1024
            assert remote.max_frame_size == 16 * 1024
            assert remote.enable_push == 0
            assert request.conn.h2.outbound_flow_control_window == 5 * 1024 * 1024
            assert request.headers[":authority"] == endpoint.authority
            assert request.headers[":scheme"] == "http"
            stream.reset()
            await client.aclose()

    run(main())


def test_cancelled_receive_loses_nothing() -> None:
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            waiting = asyncio.create_task(stream.receive())
            request = await server.requests.get()  # lets the task block in receive()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            request.conn.respond(request.stream_id, b"kept", end=False)
            assert await stream.receive() == b"kept"
            stream.reset()
            await client.aclose()

    run(main())


def test_goaway_after_keep_alive_max_requests(loop: str) -> None:
    async def main() -> None:
        async with hypercorn_server(keep_alive_max_requests=4) as endpoint:
            client = H2Client()
            # Buffered requests are retried once by the client, so every one of them succeeds.
            for i in range(20):
                body = b"request %d" % i
                response = await client.request(endpoint, "POST", INVOKE, [], body)
                assert (response.status, response.body) == (200, body)
            # Streams fail (retryably) when their connection goes, and the next ones succeed.
            failures = 0
            for _ in range(20):
                try:
                    async with await client.open_stream(endpoint, INVOKE, []) as stream:
                        await echo_rounds(stream, 2)
                        await stream.end()
                        assert await stream.receive() == b""
                except DeploymentError as exc:
                    assert "GOAWAY" in str(exc)
                    failures += 1
            assert 1 <= failures <= 5

            await client.aclose()

    run(main(), loop)


def test_concurrent_streams_over_connections_that_go_away(loop: str) -> None:
    # hypercorn cannot finish any stream once it said GOAWAY: the streams still running on
    # that connection fail (the invoker retries them); streams beyond it are refused.
    async def main() -> None:
        async with hypercorn_server(keep_alive_max_requests=20) as endpoint:
            client = H2Client()
            failures = 0

            async def worker(i: int) -> None:
                nonlocal failures
                done = 0
                while done < 10:
                    try:
                        async with await client.open_stream(endpoint, INVOKE, []) as stream:
                            await echo_rounds(stream, 1, b"%d" % i)
                            await stream.end()
                            assert await stream.receive() == b""
                            done += 1
                    except DeploymentError:
                        failures += 1
                        assert failures < 100

            await asyncio.gather(*(worker(i) for i in range(8)))
            assert failures > 0
            await client.aclose()

    run(main(), loop)


def test_goaway_fails_only_streams_above_last_stream_id() -> None:
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            streams = [await client.open_stream(endpoint, INVOKE, []) for _ in range(3)]
            requests = [await server.requests.get() for _ in range(3)]
            first = requests[0]
            first.conn.goaway(last_stream_id=first.stream_id)
            for stream in streams[1:]:
                with pytest.raises(DeploymentError, match=r"GOAWAY, error code NO_ERROR"):
                    await stream.response()
                assert stream.refused
            # New streams go to a new connection...
            fresh = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            assert len(server.connections) == 2
            fresh_request = await server.requests.get()
            fresh_request.conn.respond(fresh_request.stream_id, b"fresh")
            assert await fresh.receive() == b"fresh"
            # ... while the stream below the last stream id carries on, both ways.
            await streams[0].send(b"still here")
            first.conn.respond(first.stream_id, b"answer", end=False)
            assert await streams[0].receive() == b"answer"
            await streams[0].end()
            await first.ended.wait()
            assert first.body == b"still here"
            first.conn.send_data(first.stream_id, b"", end=True)
            assert await streams[0].receive() == b""
            # The drained connection is closed by the client once its last stream is done.
            await first.conn.closed.wait()
            await client.aclose()

    run(main())


def test_stream_reset_by_the_deployment(loop: str) -> None:
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            doomed = await client.open_stream(endpoint, INVOKE, [])
            other = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            doomed_request = await server.requests.get()
            other_request = await server.requests.get()
            doomed_request.conn.respond(doomed_request.stream_id, b"partial", end=False)
            doomed_request.conn.reset(doomed_request.stream_id, ErrorCodes.INTERNAL_ERROR)
            assert await doomed.receive() == b"partial"  # data before the reset is delivered
            with pytest.raises(DeploymentError, match=r"reset by the deployment .*INTERNAL_ERROR"):
                await doomed.receive()
            with pytest.raises(DeploymentError, match="reset by the deployment"):
                await doomed.send(b"more")
            # The connection and the other stream are unaffected.
            other_request.conn.respond(other_request.stream_id, b"ok")
            assert await other.receive() == b"ok"
            assert await other.receive() == b""
            assert client.connection_count(endpoint) == 1
            await client.aclose()

    run(main(), loop)


def test_reset_no_error_after_complete_response_is_clean() -> None:
    # node:http2 ends a stream this way when the response is over before the request.
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            request = await server.requests.get()
            request.conn.respond(request.stream_id, b"done")
            request.conn.reset(request.stream_id, ErrorCodes.NO_ERROR)
            assert await stream.receive() == b"done"
            assert await stream.receive() == b""
            await stream.send(b"ignored")
            await stream.end()
            assert stream.finished
            await client.aclose()

    run(main())


def test_client_reset_cancels_the_stream() -> None:
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            request = await server.requests.get()
            stream.reset()
            assert await request.conn.resets.get() == (request.stream_id, ErrorCodes.CANCEL)
            with pytest.raises(DeploymentError, match="cancelled by the client"):
                await stream.receive()
            async with await client.open_stream(endpoint, INVOKE, [], end_stream=True) as again:
                request = await server.requests.get()
                request.conn.respond(request.stream_id, b"x")
                assert await again.receive() == b"x"
            assert len(server.connections) == 1
            await client.aclose()

    run(main())


def test_protocol_error_fails_the_connection() -> None:
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            request = await server.requests.get()
            # A DATA frame on stream 0 is a connection error.
            request.conn.write_raw(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
            with pytest.raises(DeploymentError, match="HTTP/2 protocol error"):
                await stream.response()
            assert client.connection_count(endpoint) == 0
            await client.aclose()

    run(main())


def test_connection_dropped_mid_stream_then_recovery(loop: str) -> None:
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            request = await server.requests.get()
            request.conn.respond(request.stream_id, b"a", end=False)
            assert await stream.receive() == b"a"
            request.conn.abort()
            with pytest.raises(DeploymentError, match="connection to 127.0.0.1:.* (reset|closed)"):
                await stream.receive()
            with pytest.raises(DeploymentError):
                await stream.send(b"x")
            assert client.connection_count(endpoint) == 0
            again = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            request = await server.requests.get()
            request.conn.respond(request.stream_id, b"b")
            assert await again.receive() == b"b"
            assert len(server.connections) == 2
            await client.aclose()

    run(main(), loop)


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        client = H2Client()
        endpoint = Endpoint("http", "127.0.0.1", port)
        with pytest.raises(DeploymentError, match=f"connection to 127.0.0.1:{port} refused"):
            await client.open_stream(endpoint, INVOKE, [])
        # Concurrent openers share one failed attempt.
        results = await asyncio.gather(
            *(client.open_stream(endpoint, INVOKE, []) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, DeploymentError) for r in results)
        await client.aclose()

    run(main())


def test_http1_only_deployment_is_reported() -> None:
    def respond(conn: object, request: RawH1Request) -> None:
        raise AssertionError("the h2 preface is not an HTTP/1.1 request")

    async def main() -> None:
        server = RawH1Server(respond)
        async with server.serving() as endpoint:
            client = H2Client()
            with pytest.raises(DeploymentError, match=r"speak HTTP/2 with prior knowledge"):
                await client.open_stream(endpoint, INVOKE, [])
            await client.aclose()

    run(main())


def test_unanswered_keepalive_ping_fails_the_connection() -> None:
    async def main() -> None:
        server = RawH2Server()
        async with server.serving() as endpoint:
            settings = H2Settings(keepalive_interval=0.05, keepalive_timeout=0.1)
            client = H2Client(settings=settings)
            stream = await client.open_stream(endpoint, INVOKE, [])
            request = await server.requests.get()
            request.conn.stop_reading()
            with pytest.raises(DeploymentError, match="did not answer a keep-alive PING"):
                await stream.response()
            await client.aclose()

    run(main())


def test_idle_connections_are_not_reused_after_idle_timeout() -> None:
    async def main() -> None:
        async with hypercorn_server() as endpoint:
            for idle_timeout, connections in ((None, 1), (0.0, 3)):
                client = H2Client(idle_timeout=idle_timeout)
                opened = []
                for _ in range(3):
                    async with await client.open_stream(
                        endpoint, INVOKE, [], end_stream=True
                    ) as stream:
                        opened.append(stream._conn)
                        assert await stream.receive() == b""
                assert len(set(map(id, opened))) == connections
                await client.aclose()

    run(main())


def test_discovery_over_h2(loop: str) -> None:
    async def main() -> None:
        async with hypercorn_server() as endpoint:
            client = H2Client()
            accept = "application/vnd.restate.endpointmanifest.v3+json"
            response = await client.request(endpoint, "GET", "/discover", [("accept", accept)])
            assert response.status == 200
            assert response.header("content-type") == MANIFEST_TYPE
            assert json.loads(response.body)["accept"] == accept
            with pytest.raises(DeploymentError, match="over the limit of 10 bytes"):
                await client.request(endpoint, "GET", "/discover", [], max_body_size=10)
            await client.aclose()

    run(main(), loop)


def test_deployment_killed_then_back() -> None:
    process = HypercornProcess()
    endpoint = process.start()

    async def main() -> None:
        client = H2Client(connect_timeout=5.0)
        try:
            stream = await client.open_stream(endpoint, INVOKE, [])
            await echo_rounds(stream, 2)
            process.kill()
            with pytest.raises(DeploymentError, match="connection to 127.0.0.1"):
                await stream.receive()
            with pytest.raises(DeploymentError, match="refused"):
                await client.open_stream(endpoint, INVOKE, [])
            process.start()
            async with await client.open_stream(endpoint, INVOKE, []) as stream:
                await echo_rounds(stream, 2)
                await stream.end()
                assert await stream.receive() == b""
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        process.kill()
