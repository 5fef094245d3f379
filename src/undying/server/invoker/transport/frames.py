"""The HTTP/2 frame layer (RFC 9113 §4, §6), sans-IO, for the client side of a connection.

:class:`FrameReader` splits received bytes into frames and checks what can be checked without
connection state (sizes, stream 0 rules, CONTINUATION sequences, padding); the functions below
serialise the frames a client sends. Every peer violation raises :class:`ProtocolError`.
"""

from __future__ import annotations

import struct
from typing import Final, NoReturn

__all__ = [
    "PREFACE",
    "Frame",
    "FrameReader",
    "ProtocolError",
    "error_name",
]

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6).
DATA: Final = 0x0
HEADERS: Final = 0x1
PRIORITY: Final = 0x2
RST_STREAM: Final = 0x3
SETTINGS: Final = 0x4
PUSH_PROMISE: Final = 0x5
PING: Final = 0x6
GOAWAY: Final = 0x7
WINDOW_UPDATE: Final = 0x8
CONTINUATION: Final = 0x9

# Flags.
END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
PADDED: Final = 0x8
PRIORITY_FLAG: Final = 0x20

# Settings (RFC 9113 §6.5.2).
HEADER_TABLE_SIZE: Final = 0x1
ENABLE_PUSH: Final = 0x2
MAX_CONCURRENT_STREAMS: Final = 0x3
INITIAL_WINDOW_SIZE: Final = 0x4
MAX_FRAME_SIZE: Final = 0x5
MAX_HEADER_LIST_SIZE: Final = 0x6

# Error codes (RFC 9113 §7).
NO_ERROR: Final = 0x0
PROTOCOL_ERROR: Final = 0x1
INTERNAL_ERROR: Final = 0x2
FLOW_CONTROL_ERROR: Final = 0x3
STREAM_CLOSED: Final = 0x5
FRAME_SIZE_ERROR: Final = 0x6
REFUSED_STREAM: Final = 0x7
CANCEL: Final = 0x8
COMPRESSION_ERROR: Final = 0x9

_ERROR_NAMES: Final = (
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
)

MAX_WINDOW: Final = 2**31 - 1
MAX_STREAM_ID: Final = 2**31 - 1
DEFAULT_WINDOW: Final = 65_535
DEFAULT_MAX_FRAME_SIZE: Final = 16_384
DEFAULT_HEADER_TABLE_SIZE: Final = 4096
MAX_MAX_FRAME_SIZE: Final = 2**24 - 1
MAX_HEADER_BLOCK: Final = 256 * 1024
"""Largest header block (HEADERS + CONTINUATION fragments) accepted from the peer."""

Frame = tuple[int, int, int, bytes]
"""``(type, flags, stream id, payload)``."""

_HEADER: Final = struct.Struct(">BHBBL")  # length as 8 + 16 bits, type, flags, stream id
_pack_header: Final = _HEADER.pack
_U32: Final = struct.Struct(">L")
_SETTING: Final = struct.Struct(">HL")
_GOAWAY: Final = struct.Struct(">LL")


def error_name(code: int) -> str:
    """The name of an HTTP/2 error code, as in messages: ``CANCEL``, ``0x1a``."""
    if 0 <= code < len(_ERROR_NAMES):
        return _ERROR_NAMES[code]
    return f"{code:#x}"


class ProtocolError(Exception):
    """The peer broke the protocol: a connection error with HTTP/2 error ``code``."""

    def __init__(self, message: str, code: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


# -- serialisation ---------------------------------------------------------------------------------


def frame_header(length: int, ftype: int, flags: int, stream_id: int) -> bytes:
    """The 9-byte header of a frame whose payload is ``length`` bytes."""
    return _pack_header(length >> 16, length & 0xFFFF, ftype, flags, stream_id)


def settings_frame(settings: list[tuple[int, int]]) -> bytes:
    payload = b"".join(_SETTING.pack(key, value) for key, value in settings)
    return frame_header(len(payload), SETTINGS, 0, 0) + payload


SETTINGS_ACK: Final = frame_header(0, SETTINGS, ACK, 0)


def window_update_frame(stream_id: int, increment: int) -> bytes:
    return frame_header(4, WINDOW_UPDATE, 0, stream_id) + _U32.pack(increment)


def rst_stream_frame(stream_id: int, code: int) -> bytes:
    return frame_header(4, RST_STREAM, 0, stream_id) + _U32.pack(code)


def ping_frame(opaque: bytes, *, ack: bool = False) -> bytes:
    return frame_header(8, PING, ACK if ack else 0, 0) + opaque


def goaway_frame(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    payload = _GOAWAY.pack(last_stream_id, code) + debug
    return frame_header(len(payload), GOAWAY, 0, 0) + payload


def headers_frames(stream_id: int, block: bytes, end_stream: bool, max_frame_size: int) -> bytes:
    """A HEADERS frame carrying ``block``, split into CONTINUATION frames when too large."""
    flags = END_STREAM if end_stream else 0
    if len(block) <= max_frame_size:
        return frame_header(len(block), HEADERS, flags | END_HEADERS, stream_id) + block
    parts: list[bytes] = []
    ftype = HEADERS
    for pos in range(0, len(block), max_frame_size):
        fragment = block[pos : pos + max_frame_size]
        if pos + max_frame_size >= len(block):
            flags |= END_HEADERS
        parts += (frame_header(len(fragment), ftype, flags, stream_id), fragment)
        ftype, flags = CONTINUATION, 0
    return b"".join(parts)


# -- parsing -------------------------------------------------------------------------------------


def parse_settings(payload: bytes) -> list[tuple[int, int]]:
    """The ``(identifier, value)`` pairs of a SETTINGS payload (its size was checked)."""
    return [_SETTING.unpack_from(payload, pos) for pos in range(0, len(payload), 6)]


def parse_goaway(payload: bytes) -> tuple[int, int, bytes]:
    """``(last stream id, error code, debug data)`` of a GOAWAY payload."""
    last, code = _GOAWAY.unpack_from(payload)
    return last & MAX_STREAM_ID, code, payload[8:]


def parse_u32(payload: bytes) -> int:
    """The 32-bit value of a RST_STREAM or WINDOW_UPDATE payload."""
    value: int = _U32.unpack(payload)[0]
    return value


def strip_padding(payload: bytes, ftype: str) -> bytes:
    """The payload of a PADDED frame without its pad length byte and padding."""
    if not payload or payload[0] >= len(payload):
        raise ProtocolError(f"{ftype} frame padding is longer than the frame")
    return payload[1 : len(payload) - payload[0]]


class FrameReader:
    """Splits the bytes a server sends into frames.

    Checks the frame size against ours, that the first frame is SETTINGS (the server's
    connection preface), the fixed sizes and stream 0 rules of control frames, and assembles
    HEADERS + CONTINUATION into one HEADERS frame with the whole header block (priority fields
    and padding removed). DATA frames are returned as received (the padding counts for flow
    control: see :func:`strip_padding`). PRIORITY and unknown frame types are dropped.
    """

    __slots__ = (
        "_block",
        "_block_flags",
        "_block_sid",
        "_block_size",
        "_have",
        "_need",
        "_parts",
        "_slow",
        "_started",
        "max_frame_size",
    )

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._parts: list[bytes] = []  # a frame that arrived in pieces
        self._have = 0
        self._need = 0
        self._started = False  # the server's SETTINGS arrived
        self._slow = True  # every frame goes through _control (preface, header block)
        self._block_sid = 0  # the stream whose header block is open, 0 when none
        self._block_flags = 0
        self._block: list[bytes] = []
        self._block_size = 0

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by ``data``.

        Raises:
            ProtocolError: the peer broke the framing rules.
        """
        if self._parts:
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            data = b"".join(self._parts)
            self._parts = []
        frames: list[Frame] = []
        append = frames.append
        unpack = _HEADER.unpack_from
        max_size = self.max_frame_size
        pos = 0
        end = len(data)
        while end - pos >= 9:
            high, low, ftype, flags, sid = unpack(data, pos)
            length = high << 16 | low
            if length > max_size:
                self._oversized(data, length)
            stop = pos + 9 + length
            if stop > end:
                self._parts = [data[pos:]]
                self._have = end - pos
                self._need = 9 + length
                return frames
            payload = data[pos + 9 : stop]
            pos = stop
            sid &= MAX_STREAM_ID
            if ftype == DATA and sid and not self._slow:
                append((DATA, flags, sid, payload))
            elif (frame := self._control(ftype, flags, sid, payload)) is not None:
                append(frame)
        if pos < end:
            self._parts = [data[pos:]]
            self._have = end - pos
            self._need = 9
        return frames

    def _oversized(self, data: bytes, length: int) -> NoReturn:
        if not self._started and data.startswith(b"HTTP/"):
            line = data.split(b"\r\n", 1)[0][:80].decode("latin-1")
            raise ProtocolError(f"it answered in HTTP/1: {line!r}")
        raise ProtocolError(
            f"frame of {length} bytes is over the maximum frame size {self.max_frame_size}",
            FRAME_SIZE_ERROR,
        )

    def _control(self, ftype: int, flags: int, sid: int, payload: bytes) -> Frame | None:
        """Checks for every frame but DATA on an open connection (the fast path)."""
        if not self._started:
            if ftype != SETTINGS or flags & ACK:
                raise ProtocolError("the server's connection preface is not a SETTINGS frame")
            self._started = True
            self._slow = False
        if self._block_sid:
            if ftype != CONTINUATION or sid != self._block_sid:
                raise ProtocolError("header block interrupted by another frame")
            return self._add_fragment(flags, payload)
        size = len(payload)
        if ftype == HEADERS:
            if not sid:
                raise ProtocolError("HEADERS frame on stream 0")
            if flags & PADDED:
                payload = strip_padding(payload, "HEADERS")
            if flags & PRIORITY_FLAG:
                if len(payload) < 5:
                    raise ProtocolError("HEADERS frame shorter than its priority", FRAME_SIZE_ERROR)
                payload = payload[5:]
            if flags & END_HEADERS:
                return (HEADERS, flags, sid, payload)
            self._block_sid = sid
            self._block_flags = flags
            self._block = []
            self._block_size = 0
            self._slow = True
            return self._add_fragment(0, payload)
        if ftype == DATA:  # only stream 0 or a DATA frame inside the preface get here
            raise ProtocolError("DATA frame on stream 0")
        if ftype in (SETTINGS, PING, GOAWAY):
            if sid:
                raise ProtocolError(f"{_NAMES[ftype]} frame on stream {sid}")
            if ftype == SETTINGS:
                if flags & ACK and size:
                    raise ProtocolError("SETTINGS ACK with a payload", FRAME_SIZE_ERROR)
                if size % 6:
                    raise ProtocolError(f"SETTINGS frame of {size} bytes", FRAME_SIZE_ERROR)
            elif ftype == PING and size != 8:
                raise ProtocolError(f"PING frame of {size} bytes", FRAME_SIZE_ERROR)
            elif ftype == GOAWAY and size < 8:
                raise ProtocolError(f"GOAWAY frame of {size} bytes", FRAME_SIZE_ERROR)
            return (ftype, flags, sid, payload)
        if ftype in (RST_STREAM, WINDOW_UPDATE):
            if size != 4:
                raise ProtocolError(f"{_NAMES[ftype]} frame of {size} bytes", FRAME_SIZE_ERROR)
            if ftype == RST_STREAM and not sid:
                raise ProtocolError("RST_STREAM frame on stream 0")
            return (ftype, flags, sid, payload)
        if ftype == PUSH_PROMISE:
            raise ProtocolError("PUSH_PROMISE received although push is disabled")
        if ftype == CONTINUATION:
            raise ProtocolError("CONTINUATION frame without a header block")
        if ftype == PRIORITY and not sid:
            raise ProtocolError("PRIORITY frame on stream 0")
        return None  # PRIORITY, unknown types: ignored

    def _add_fragment(self, flags: int, fragment: bytes) -> Frame | None:
        self._block.append(fragment)
        self._block_size += len(fragment)
        if self._block_size > MAX_HEADER_BLOCK:
            raise ProtocolError(f"header block over {MAX_HEADER_BLOCK} bytes")
        if not flags & END_HEADERS:
            return None
        sid = self._block_sid
        block = b"".join(self._block)
        self._block_sid = 0
        self._block = []
        self._slow = False
        return (HEADERS, self._block_flags | END_HEADERS, sid, block)


_NAMES: Final = {
    RST_STREAM: "RST_STREAM",
    SETTINGS: "SETTINGS",
    PING: "PING",
    GOAWAY: "GOAWAY",
    WINDOW_UPDATE: "WINDOW_UPDATE",
}
