"""The hand-written HTTP/2 frame codec, checked against hyperframe (h2's frame layer)."""

from __future__ import annotations

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from undying.server.invoker.transport import frames as f
from undying.server.invoker.transport.frames import FrameReader, ProtocolError


def parse_all(data: bytes) -> list[Frame]:
    """Frames serialised by us, parsed by hyperframe."""
    out = []
    while data:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        out.append(frame)
        data = data[9 + length :]
    return out


def server_settings(**values: int) -> bytes:
    frame = SettingsFrame(0)
    frame.settings = {getattr(SettingsFrame, k): v for k, v in values.items()}
    return bytes(frame.serialize())


def test_serialised_frames_parse_with_hyperframe() -> None:
    data = b"".join(
        [
            f.settings_frame([(f.ENABLE_PUSH, 0), (f.INITIAL_WINDOW_SIZE, 2**21)]),
            f.SETTINGS_ACK,
            f.window_update_frame(0, 5 * 2**20),
            f.window_update_frame(7, 1),
            f.rst_stream_frame(3, f.CANCEL),
            f.ping_frame(b"12345678"),
            f.ping_frame(b"abcdefgh", ack=True),
            f.goaway_frame(9, f.PROTOCOL_ERROR, b"why"),
            f.frame_header(3, f.DATA, f.END_STREAM, 5) + b"abc",
        ]
    )
    settings, ack, conn_wu, stream_wu, rst, ping, pong, goaway, data_frame = parse_all(data)
    assert isinstance(settings, SettingsFrame)
    assert settings.settings == {SettingsFrame.ENABLE_PUSH: 0, 4: 2**21}
    assert isinstance(ack, SettingsFrame) and "ACK" in ack.flags
    assert isinstance(conn_wu, WindowUpdateFrame)
    assert (conn_wu.stream_id, conn_wu.window_increment) == (0, 5 * 2**20)
    assert isinstance(stream_wu, WindowUpdateFrame) and stream_wu.stream_id == 7
    assert isinstance(rst, RstStreamFrame) and (rst.stream_id, rst.error_code) == (3, 8)
    assert isinstance(ping, PingFrame) and ping.opaque_data == b"12345678" and not ping.flags
    assert isinstance(pong, PingFrame) and "ACK" in pong.flags
    assert isinstance(goaway, GoAwayFrame)
    assert (goaway.last_stream_id, goaway.error_code, goaway.additional_data) == (9, 1, b"why")
    assert isinstance(data_frame, DataFrame) and data_frame.data == b"abc"
    assert "END_STREAM" in data_frame.flags


@pytest.mark.parametrize("end_stream", [False, True])
def test_large_header_block_is_split_into_continuation_frames(end_stream: bool) -> None:
    block = bytes(range(256)) * 100  # 25_600 bytes
    frames = parse_all(f.headers_frames(3, block, end_stream, 10_000))
    assert [type(frame) for frame in frames] == [
        HeadersFrame,
        ContinuationFrame,
        ContinuationFrame,
    ]
    assert b"".join(frame.data for frame in frames) == block
    assert all(frame.stream_id == 3 for frame in frames)
    assert ("END_STREAM" in frames[0].flags) == end_stream
    assert [("END_HEADERS" in frame.flags) for frame in frames] == [False, False, True]
    (single,) = parse_all(f.headers_frames(1, b"abc", end_stream, 10_000))
    assert isinstance(single, HeadersFrame) and "END_HEADERS" in single.flags


def hyperframe_stream() -> tuple[bytes, list[f.Frame]]:
    """A server's byte stream made by hyperframe, and the frames the reader should make of it."""
    data = DataFrame(1, b"hello", flags=["END_STREAM"])
    padded = DataFrame(3, b"padded", flags=["PADDED"], pad_length=5)
    headers = HeadersFrame(3, b"\x88", flags=["END_HEADERS", "PADDED", "PRIORITY"], pad_length=2)
    headers.depends_on, headers.stream_weight = 1, 15
    split = HeadersFrame(5, b"abc", flags=["END_STREAM"])
    continuation = ContinuationFrame(5, b"def")
    last = ContinuationFrame(5, b"ghi", flags=["END_HEADERS"])
    ping = PingFrame(0, b"pingping")
    priority = PriorityFrame(7)
    unknown = b"\x00\x00\x02\xfa\x00\x00\x00\x00\x01zz"  # type 0xfa: ignored
    window = WindowUpdateFrame(0, window_increment=1000)
    rst = RstStreamFrame(1, error_code=8)
    goaway = GoAwayFrame(0, last_stream_id=5, error_code=0, additional_data=b"bye")
    stream = b"".join(
        bytes(frame.serialize())
        for frame in [data, padded, headers, split, continuation, last, ping, priority]
    )
    stream += unknown
    stream += b"".join(bytes(frame.serialize()) for frame in [window, rst, goaway])
    expected: list[f.Frame] = [
        (f.SETTINGS, 0, 0, b""),
        (f.DATA, f.END_STREAM, 1, b"hello"),
        (f.DATA, f.PADDED, 3, b"\x05padded\x00\x00\x00\x00\x00"),
        (f.HEADERS, f.END_HEADERS | f.PADDED | f.PRIORITY_FLAG, 3, b"\x88"),
        (f.HEADERS, f.END_STREAM | f.END_HEADERS, 5, b"abcdefghi"),
        (f.PING, 0, 0, b"pingping"),
        (f.WINDOW_UPDATE, 0, 0, (1000).to_bytes(4, "big")),
        (f.RST_STREAM, 0, 1, (8).to_bytes(4, "big")),
        (f.GOAWAY, 0, 0, b"\x00\x00\x00\x05\x00\x00\x00\x00bye"),
    ]
    return server_settings() + stream, expected


def test_reader_splits_frames_whatever_the_reads() -> None:
    data, expected = hyperframe_stream()
    assert FrameReader().feed(data) == expected
    for size in (1, 2, 5, 9, 10, 17, 64):
        reader = FrameReader()
        frames = []
        for pos in range(0, len(data), size):
            frames += reader.feed(data[pos : pos + size])
        assert frames == expected, size
    for cut in range(len(data)):
        reader = FrameReader()
        assert reader.feed(data[:cut]) + reader.feed(data[cut:]) == expected, cut


def test_padding_is_stripped_and_checked() -> None:
    assert f.strip_padding(b"\x02abcxx", "DATA") == b"abc"
    assert f.strip_padding(b"\x00abc", "DATA") == b"abc"
    assert f.strip_padding(b"\x03abc", "DATA") == b""  # all padding: allowed
    for bad in (b"", b"\x04abc", b"\x05abc"):
        with pytest.raises(ProtocolError, match="padding"):
            f.strip_padding(bad, "DATA")


def bad(frame: bytes) -> str:
    reader = FrameReader()
    reader.feed(server_settings())
    with pytest.raises(ProtocolError) as info:
        reader.feed(frame)
    return f"{info.value} ({f.error_name(info.value.code)})"


def test_reader_rejects_protocol_violations() -> None:
    header = f.frame_header
    assert "FRAME_SIZE_ERROR" in bad(header(16_385, f.DATA, 0, 1) + b"x" * 16_385)
    assert "DATA frame on stream 0" in bad(header(1, f.DATA, 0, 0) + b"x")
    assert "HEADERS frame on stream 0" in bad(header(1, f.HEADERS, f.END_HEADERS, 0) + b"x")
    assert "push is disabled" in bad(bytes(PushPromiseFrame(1, promised_stream_id=2).serialize()))
    assert "PING frame of 4 bytes (FRAME_SIZE_ERROR)" in bad(header(4, f.PING, 0, 0) + b"1234")
    assert "PING frame on stream 1" in bad(header(8, f.PING, 0, 1) + b"12345678")
    assert "SETTINGS frame on stream 3" in bad(header(0, f.SETTINGS, 0, 3))
    assert "SETTINGS frame of 5 bytes" in bad(header(5, f.SETTINGS, 0, 0) + b"12345")
    assert "SETTINGS ACK with a payload" in bad(header(6, f.SETTINGS, f.ACK, 0) + b"123456")
    assert "GOAWAY frame of 4 bytes" in bad(header(4, f.GOAWAY, 0, 0) + b"1234")
    assert "WINDOW_UPDATE frame of 3 bytes" in bad(header(3, f.WINDOW_UPDATE, 0, 0) + b"123")
    assert "RST_STREAM frame on stream 0" in bad(header(4, f.RST_STREAM, 0, 0) + b"1234")
    assert "without a header block" in bad(header(1, f.CONTINUATION, f.END_HEADERS, 1) + b"x")
    assert "PRIORITY frame on stream 0" in bad(header(5, f.PRIORITY, 0, 0) + b"12345")
    interrupted = header(1, f.HEADERS, 0, 1) + b"x" + f.ping_frame(b"12345678")
    assert "header block interrupted" in bad(interrupted)
    other_stream = header(1, f.HEADERS, 0, 1) + b"x" + header(1, f.CONTINUATION, 0, 3) + b"y"
    assert "header block interrupted" in bad(other_stream)
    short_priority = header(2, f.HEADERS, f.END_HEADERS | f.PRIORITY_FLAG, 1) + b"xx"
    assert "shorter than its priority" in bad(short_priority)
    fragment = b"x" * 16_384
    flood = header(len(fragment), f.HEADERS, 0, 1) + fragment
    flood += (header(len(fragment), f.CONTINUATION, 0, 1) + fragment) * 16
    assert "header block over" in bad(flood)


def test_server_preface_must_be_settings() -> None:
    with pytest.raises(ProtocolError, match="preface is not a SETTINGS frame"):
        FrameReader().feed(f.ping_frame(b"12345678"))
    with pytest.raises(ProtocolError, match="preface is not a SETTINGS frame"):
        FrameReader().feed(f.SETTINGS_ACK)
    with pytest.raises(ProtocolError, match="preface is not a SETTINGS frame"):
        FrameReader().feed(f.frame_header(1, f.DATA, 0, 1) + b"x")
    with pytest.raises(ProtocolError, match=r"answered in HTTP/1: 'HTTP/1.1 400 Bad Request'"):
        FrameReader().feed(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")


def test_larger_max_frame_size_is_accepted_when_ours() -> None:
    reader = FrameReader(max_frame_size=65_536)
    payload = b"z" * 65_536
    frames = reader.feed(server_settings() + f.frame_header(len(payload), f.DATA, 0, 1) + payload)
    assert frames[-1] == (f.DATA, 0, 1, payload)


def test_error_names() -> None:
    assert f.error_name(0) == "NO_ERROR"
    assert f.error_name(8) == "CANCEL"
    assert f.error_name(0xD) == "HTTP_1_1_REQUIRED"
    assert f.error_name(0x1A) == "0x1a"
