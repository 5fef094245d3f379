"""Protocol details of the HTTP/2 client: flow control, settings, header blocks, violations.

The peer is the ``h2`` library (an independent implementation) driven by the test, with raw
frames written past it where a misbehaving server is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import h2.events
import pytest
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import PushPromiseFrame
from transport_servers import RawH2Connection, RawH2Server, listening_socket, run

from undying.errors import DeploymentError
from undying.server.invoker.transport import Endpoint, H2Client, H2Settings
from undying.server.invoker.transport import frames as f
from undying.server.invoker.transport.h2connection import H2Connection

INVOKE = "/invoke/Greeter/greet"
MiB = 1024 * 1024


class RecordingConnection(RawH2Connection):
    """Also keeps every h2 event and signals each one."""

    def __init__(self, server: RawH2Server) -> None:
        super().__init__(server)
        self.events: list[h2.events.Event] = []
        self.changed = asyncio.Event()
        receive = self.h2.receive_data

        def recording(data: bytes) -> list[h2.events.Event]:
            events: list[h2.events.Event] = receive(data)
            self.events += events
            self.changed.set()
            return events

        self.h2.receive_data = recording  # type: ignore[method-assign]
        self.acknowledging = True
        acknowledge = self.h2.acknowledge_received_data

        def maybe_acknowledge(size: int, stream_id: int) -> None:
            if self.acknowledging:
                acknowledge(size, stream_id)

        self.h2.acknowledge_received_data = maybe_acknowledge  # type: ignore[method-assign]

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    async def until(self, kind: type[Any], count: int = 1) -> list[Any]:
        while len(self.of(kind)) < count:
            self.changed.clear()
            await self.changed.wait()
        return self.of(kind)

    async def send_all(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        """Send ``data`` within the client's flow-control windows, waiting for them."""
        pos = 0
        while pos < len(data):
            window = min(self.h2.local_flow_control_window(stream_id), 16_384)
            if window <= 0:
                self.changed.clear()
                await self.changed.wait()
                continue
            self.h2.send_data(stream_id, data[pos : pos + window])
            self.flush()
            pos += window
        if end:
            self.h2.end_stream(stream_id)
            self.flush()


class RecordingServer(RawH2Server):
    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Endpoint]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: RecordingConnection(self), sock=listening_socket()
        )
        try:
            yield Endpoint("http", "127.0.0.1", server.sockets[0].getsockname()[1])
        finally:
            server.close()
            for conn in self.connections:
                if conn.transport is not None:
                    conn.transport.abort()
            await server.wait_closed()


async def first_request(server: RawH2Server) -> tuple[RecordingConnection, int]:
    request = await server.requests.get()
    assert isinstance(request.conn, RecordingConnection)
    return request.conn, request.stream_id


def test_window_updates_are_batched() -> None:
    body = bytes(range(256)) * (16 * 1024)  # 4 MiB: twice the stream window

    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            conn, sid = await first_request(server)
            conn.respond(sid, end=False)
            sending = asyncio.create_task(conn.send_all(sid, body, end=True))
            received = bytearray()
            while chunk := await stream.receive():
                received += chunk
            await sending
            assert received == body
            updates = conn.of(h2.events.WindowUpdated)
            # One per MiB on the stream, one per 2.5 MiB on the connection (h2 without
            # batching sends two per 16 KiB frame: 512).
            assert 4 <= len(updates) <= 8, [(u.stream_id, u.delta) for u in updates]
            await client.aclose()

    run(main())


@pytest.mark.parametrize(("max_frame", "largest"), [(None, 16_384), (40_000, 40_000)])
def test_peer_max_frame_size_is_respected(max_frame: int | None, largest: int) -> None:
    body = b"q" * 200_000

    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            conn, sid = await first_request(server)
            new_settings = {SettingCodes.INITIAL_WINDOW_SIZE: MiB}
            if max_frame is not None:
                new_settings[SettingCodes.MAX_FRAME_SIZE] = max_frame
            conn.h2.update_settings(new_settings)
            conn.h2.increment_flow_control_window(MiB)
            conn.respond(sid, end=False)
            await stream.response()  # the settings came first
            await stream.send(body)
            await stream.end()
            await conn.requests[sid].ended.wait()
            assert conn.requests[sid].body == body
            sizes = [event.flow_controlled_length for event in conn.of(h2.events.DataReceived)]
            assert max(sizes) == largest
            stream.reset()
            await client.aclose()

    run(main())


def test_small_peer_window_is_waited_for() -> None:
    body = bytes(range(256)) * 200  # 51_200 bytes through a 1000-byte stream window

    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            conn, sid = await first_request(server)
            conn.h2.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
            conn.respond(sid, end=False)
            await stream.response()
            await stream.send(body)
            await stream.end()
            await conn.requests[sid].ended.wait()
            assert conn.requests[sid].body == body
            sizes = [event.flow_controlled_length for event in conn.of(h2.events.DataReceived)]
            assert max(sizes) <= 1000
            stream.reset()
            await client.aclose()

    run(main())


def test_window_shrunk_by_settings_goes_negative_then_recovers() -> None:
    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            conn, sid = await first_request(server)
            conn.acknowledging = False
            conn.respond(sid, end=False)
            await stream.response()
            await stream.send(b"a" * 60_000)  # 5535 of the default 65535 left
            await conn.until(h2.events.DataReceived, 4)
            conn.h2.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 10_000})  # -> -50000
            conn.flush()
            await conn.until(h2.events.SettingsAcknowledged, 2)  # the 1st: initial settings
            sending = asyncio.create_task(stream.send(b"b" * 1000))
            await asyncio.sleep(0.05)
            assert not sending.done()  # the window is below zero until the server reopens it
            conn.h2.increment_flow_control_window(51_000, stream_id=sid)
            conn.flush()
            await sending
            await stream.end()
            await conn.requests[sid].ended.wait()
            assert conn.requests[sid].body == b"a" * 60_000 + b"b" * 1000
            stream.reset()
            await client.aclose()

    run(main())


def test_padded_data_is_delivered_without_padding() -> None:
    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            conn, sid = await first_request(server)
            conn.h2.send_headers(sid, [(":status", "200")])
            conn.h2.send_data(sid, b"padded", pad_length=200)
            conn.h2.send_data(sid, b"", pad_length=10)  # padding only
            conn.h2.send_data(sid, b"end", end_stream=True, pad_length=0)
            conn.flush()
            assert await stream.receive() == b"padded"
            assert await stream.receive() == b"end"
            assert await stream.receive() == b""
            await client.aclose()

    run(main())


def test_continuation_headers_informational_and_trailers() -> None:
    big = "v" * 40_000  # over the 16 KiB frame size both ways: HEADERS + CONTINUATION

    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [("x-big", big)], end_stream=True)
            conn, sid = await first_request(server)
            assert conn.requests[sid].headers["x-big"] == big
            conn.h2.send_headers(sid, [(":status", "103"), ("link", "</a>")])
            conn.h2.send_headers(sid, [(":status", "201"), ("x-big", big), ("x-n", "1")])
            conn.h2.send_data(sid, b"body")
            conn.h2.send_headers(sid, [("x-trailer", "t")], end_stream=True)
            conn.flush()
            status, headers = await stream.response()
            assert status == 201
            assert headers == [("x-big", big), ("x-n", "1")]
            assert await stream.receive() == b"body"
            assert await stream.receive() == b""
            assert stream.finished
            await client.aclose()

    run(main())


def test_refused_stream_is_marked_refused() -> None:
    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            conn, sid = await first_request(server)
            conn.reset(sid, ErrorCodes.REFUSED_STREAM)
            with pytest.raises(DeploymentError, match="REFUSED_STREAM"):
                await stream.response()
            assert stream.refused
            assert client.connection_count(endpoint) == 1
            await client.aclose()

    run(main())


def test_server_ping_is_answered_and_header_table_shrink_is_signalled() -> None:
    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            first = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            conn, sid = await first_request(server)
            conn.h2.ping(b"12345678")
            conn.h2.update_settings({SettingCodes.HEADER_TABLE_SIZE: 0})
            conn.respond(sid)
            assert await first.receive() == b""
            assert (await conn.until(h2.events.PingAckReceived))[0].ping_data == b"12345678"
            await conn.until(h2.events.SettingsAcknowledged, 2)  # the 1st: initial settings
            # The next request starts with a table size update to 0: h2 insists on it.
            second = await client.open_stream(endpoint, INVOKE, [("x-a", "b")], end_stream=True)
            conn, sid = await first_request(server)
            assert conn.requests[sid].headers["x-a"] == "b"
            conn.respond(sid)
            assert await second.receive() == b""
            await client.aclose()

    run(main())


def test_invalid_request_header_fails_only_that_request() -> None:
    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            with pytest.raises(DeploymentError, match="cannot open a stream .*'connection'"):
                await client.open_stream(endpoint, INVOKE, [("connection", "close")])
            stream = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            conn, sid = await first_request(server)
            assert sid == 1
            conn.respond(sid, b"ok")
            assert await stream.receive() == b"ok"
            await client.aclose()

    run(main())


def violation(frame: bytes, message: str, code: int) -> None:
    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            conn, sid = await first_request(server)
            conn.respond(sid, end=False)
            conn.write_raw(frame.replace(b"SID!", sid.to_bytes(4, "big")))
            goaway = (await conn.until(h2.events.ConnectionTerminated))[0]
            assert goaway.error_code == code
            with pytest.raises(DeploymentError, match=f"HTTP/2 protocol error .*{message}"):
                while await stream.receive():  # data that came before the error, then it
                    pass
            assert client.connection_count(endpoint) == 0
            await client.aclose()

    run(main())


def test_push_promise_is_a_connection_error() -> None:
    frame = bytes(PushPromiseFrame(1, promised_stream_id=2, flags=["END_HEADERS"]).serialize())
    violation(frame, "PUSH_PROMISE", ErrorCodes.PROTOCOL_ERROR)


def test_data_beyond_the_stream_window_is_a_flow_control_error() -> None:
    chunk = b"x" * 16_384
    frame = f.frame_header(len(chunk), f.DATA, 0, 1)[:5] + b"SID!" + chunk
    violation(frame * 128 + frame[:9].replace(b"\x40\x00", b"\x00\x01", 1) + b"x", "window", 3)


def test_frames_on_unopened_streams_are_errors() -> None:
    data = f.frame_header(1, f.DATA, 0, 9) + b"x"
    violation(data, "DATA frame on stream 9, which was never opened", ErrorCodes.PROTOCOL_ERROR)
    reset = f.rst_stream_frame(4, 0)
    violation(reset, "RST_STREAM frame on stream 4", ErrorCodes.PROTOCOL_ERROR)


def test_response_without_status_is_an_error() -> None:
    block = b"\x00\x01a\x01b"  # a: b
    frame = f.frame_header(len(block), f.HEADERS, f.END_HEADERS, 3) + block

    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            stream = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            conn, _ = await first_request(server)
            await first_request(server)
            conn.write_raw(frame)
            with pytest.raises(DeploymentError, match="response without :status"):
                await stream.response()
            await client.aclose()

    run(main())


def test_goaway_error_code_is_reported() -> None:
    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [])
            conn, _ = await first_request(server)
            conn.write_raw(f.goaway_frame(0, 0xB, b"calm down"))
            with pytest.raises(DeploymentError, match="GOAWAY, error code ENHANCE_YOUR_CALM"):
                await stream.response()
            assert stream.refused
            assert client.connection_count(endpoint) == 0
            await client.aclose()

    run(main())


def test_stream_ids_running_out_moves_to_a_new_connection() -> None:
    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            stream = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            conn, sid = await first_request(server)
            conn.respond(sid)
            assert await stream.receive() == b""
            stream._conn._next_sid = 2**31 - 1  # the last one
            last = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            assert last.stream_id == 2**31 - 1
            conn, sid = await first_request(server)
            conn.respond(sid, b"last")
            assert await last.receive() == b"last"
            with pytest.raises(DeploymentError, match="ran out of stream ids"):
                stream._conn.open_stream("POST", INVOKE, [])
            fresh = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            assert fresh.stream_id == 1 and len(server.connections) == 2
            fresh.reset()
            await client.aclose()

    run(main())


def test_server_preface_other_than_settings() -> None:
    async def main() -> None:
        handled = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(f.ping_frame(b"12345678"))
            await reader.read()  # until the client closes
            writer.close()
            await writer.wait_closed()
            handled.set()

        server = await asyncio.start_server(handle, sock=listening_socket())
        endpoint = Endpoint("http", "127.0.0.1", server.sockets[0].getsockname()[1])
        client = H2Client()
        with pytest.raises(DeploymentError, match="does not speak HTTP/2 .*not a SETTINGS frame"):
            await client.open_stream(endpoint, INVOKE, [])
        await client.aclose()
        await handled.wait()
        server.close()
        await server.wait_closed()

    run(main())


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        pass


def test_frames_of_one_turn_are_written_together() -> None:
    async def main() -> None:
        conn = H2Connection(Endpoint("http", "127.0.0.1", 1), H2Settings())
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(f.settings_frame([]) + f.ping_frame(b"12345678"))
        assert len(transport.writes) == 2  # the preface; then SETTINGS ACK + PING ACK at once
        assert transport.writes[1] == f.SETTINGS_ACK + f.ping_frame(b"12345678", ack=True)
        streams = [conn.open_stream("POST", INVOKE, []) for _ in range(10)]
        assert len(transport.writes) == 12  # HEADERS go out at once
        for stream in streams:
            await stream.send(b"data")
            await stream.end()
        assert len(transport.writes) == 12
        await asyncio.sleep(0)
        assert len(transport.writes) == 13
        reader = f.FrameReader()
        frames = reader.feed(f.settings_frame([]) + transport.writes[-1])[1:]
        assert len(frames) == 20
        assert [(t, fl, sid) for t, fl, sid, _ in frames[:2]] == [
            (f.DATA, 0, 1),
            (f.DATA, f.END_STREAM, 1),
        ]
        conn.close()

    run(main())


def test_unread_streams_do_not_stall_a_busy_one() -> None:
    # Two streams hold 4 of the 5 MiB connection window unread; the third must still be able
    # to move 3 MiB: what its consumer reads goes back to the connection window early enough.
    body = bytes(range(256)) * (12 * 1024)

    async def main() -> None:
        server = RecordingServer()
        async with server.serving() as endpoint:
            client = H2Client()
            idle = [await client.open_stream(endpoint, INVOKE, [], end_stream=True) for _ in "ab"]
            busy = await client.open_stream(endpoint, INVOKE, [], end_stream=True)
            requests = [await first_request(server) for _ in range(3)]
            conn = requests[0][0]
            for _, sid in requests[:2]:
                conn.respond(sid, end=False)
                await conn.send_all(sid, b"z" * (2 * MiB))
            sid = requests[2][1]
            conn.respond(sid, end=False)
            sending = asyncio.create_task(conn.send_all(sid, body, end=True))
            received = bytearray()
            async with asyncio.timeout(10):
                while chunk := await busy.receive():
                    received += chunk
            await sending
            assert received == body
            for stream in idle:
                stream.reset()
            await client.aclose()

    run(main())


def test_empty_data_on_a_released_stream_while_the_window_is_low() -> None:
    async def main() -> None:
        conn = H2Connection(Endpoint("http", "127.0.0.1", 1), H2Settings(connection_window=MiB))
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(f.settings_frame([]))
        done = conn.open_stream("POST", INVOKE, [], end_stream=True)
        holding = conn.open_stream("POST", INVOKE, [], end_stream=True)
        ok = b"\x88"  # :status 200
        conn.data_received(f.frame_header(1, f.HEADERS, f.END_HEADERS | f.END_STREAM, 1) + ok)
        assert done.finished and conn.stream_count == 1
        conn.data_received(f.frame_header(1, f.HEADERS, f.END_HEADERS, 3) + ok)
        chunk = b"x" * 16_384
        conn.data_received((f.frame_header(len(chunk), f.DATA, 0, 3) + chunk) * 40)  # unread
        conn.data_received(f.frame_header(0, f.DATA, f.END_STREAM, 1))  # late, and empty
        await asyncio.sleep(0)
        frames = f.FrameReader().feed(f.settings_frame([]) + b"".join(transport.writes[1:]))
        assert [t for t, *_ in frames if t == f.WINDOW_UPDATE] == []  # never an increment of 0
        assert await holding.receive() == chunk  # the window is low: reopened at once
        await asyncio.sleep(0)
        frames = f.FrameReader().feed(f.settings_frame([]) + transport.writes[-1])
        assert [(t, sid, f.parse_u32(p)) for t, _, sid, p in frames[1:]] == [
            (f.WINDOW_UPDATE, 0, 16_384)
        ]
        conn.close()

    run(main())
