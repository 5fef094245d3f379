"""Sans-IO framing: 8-byte big-endian header (type u16, flags u16, length u32) + payload.

>>> data = encode_frame(0x0003, b"")
>>> decoder = FrameDecoder()
>>> decoder.feed(data)
[Frame(type=3, flags=0, payload=b'')]
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from google.protobuf.message import Message

from undying.errors import ProtocolViolation

__all__ = ["HEADER_SIZE", "Frame", "FrameDecoder", "encode_frame", "encode_message"]

HEADER_SIZE: Final = 8
_HEADER = struct.Struct(">HHI")


class Frame(NamedTuple):
    """One decoded frame: message type code, header flags, raw protobuf payload."""

    type: int
    flags: int
    payload: bytes


def encode_frame(msg_type: int, payload: bytes, flags: int = 0) -> bytes:
    """The bytes of one frame."""
    return _HEADER.pack(msg_type, flags, len(payload)) + payload


def encode_message(msg_type: int, message: Message, flags: int = 0) -> bytes:
    """Serialize ``message`` and frame it."""
    payload = message.SerializeToString()
    return _HEADER.pack(msg_type, flags, len(payload)) + payload


class FrameDecoder:
    """Turns a byte stream into frames, however the bytes are chunked.

    Args:
        max_message_size: largest payload accepted; a bigger one raises ``ProtocolViolation``.
    """

    __slots__ = ("_buf", "_max")

    def __init__(self, max_message_size: int = 32 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_message_size

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return every frame that is now complete."""
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        while end - pos >= HEADER_SIZE:
            msg_type, flags, length = _HEADER.unpack_from(buf, pos)
            if length > self._max:
                raise ProtocolViolation(
                    f"message of type {msg_type:#06x} has {length} bytes, "
                    f"over the limit of {self._max}"
                )
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break
            frames.append(Frame(msg_type, flags, bytes(buf[pos + HEADER_SIZE : stop])))
            pos = stop
        if pos:
            del buf[:pos]
        return frames

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buf)
