"""HPACK (RFC 7541) decoding of response header blocks: the whole format, dynamic table included.

Servers index their response fields, so after the first response most blocks are a few index
bytes that decode to the same fields as long as the dynamic table does not change: such blocks
are cached (the cache is dropped on every table change). Huffman-coded strings are decoded with
the ``hpack`` package's table decoder (the Huffman code of RFC 7541 Appendix B).
"""

from __future__ import annotations

from collections import deque
from typing import Final

from hpack.huffman_table import decode_huffman

from .base import Headers
from .frames import COMPRESSION_ERROR, ProtocolError
from .hpack_encode import STATIC_TABLE

__all__ = ["HeaderDecoder", "response_head"]

Field = tuple[str, str]

_STATIC_SIZE: Final = len(STATIC_TABLE)
_ENTRY_OVERHEAD: Final = 32
_CACHE_LIMIT: Final = 256


def _error(message: str) -> ProtocolError:
    return ProtocolError(f"HPACK: {message}", COMPRESSION_ERROR)


class HeaderDecoder:
    """Decodes the header blocks of one connection, in the order they arrived.

    Args:
        max_table_size: our ``SETTINGS_HEADER_TABLE_SIZE`` (the most the peer may use).
        max_list_size: the most decoded bytes (names, values, 32 per field) a block may hold.
    """

    __slots__ = ("_cache", "_entries", "_max_list_size", "_max_size", "_size", "max_table_size")

    def __init__(self, max_table_size: int = 4096, max_list_size: int = 65_536) -> None:
        self.max_table_size = max_table_size
        self._max_size = max_table_size  # the size the encoder chose, at most max_table_size
        self._max_list_size = max_list_size
        self._entries: deque[Field] = deque()  # newest first
        self._size = 0
        self._cache: dict[bytes, list[Field]] = {}

    def decode(self, block: bytes) -> list[Field]:
        """The fields of ``block``, names and values decoded as latin-1. Do not modify the list.

        Raises:
            ProtocolError: COMPRESSION_ERROR, a malformed block.
        """
        fields = self._cache.get(block)
        if fields is not None:
            return fields
        fields, changed = self._decode(block)
        if changed:
            self._cache.clear()
        else:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[block] = fields
        return fields

    def _decode(self, data: bytes) -> tuple[list[Field], bool]:
        fields: list[Field] = []
        changed = False
        total = 0
        pos = 0
        end = len(data)
        while pos < end:
            byte = data[pos]
            if byte & 0x80:  # indexed field
                index, pos = _integer(data, pos, 7)
                field = self._lookup(index)
            elif byte & 0x40:  # literal with incremental indexing
                field, pos = self._literal(data, pos, 6)
                self._insert(field)
                changed = True
            elif byte & 0x20:  # dynamic table size update
                if fields:
                    raise _error("table size update after a field")
                size, pos = _integer(data, pos, 5)
                if size > self.max_table_size:
                    raise _error(f"table size {size} over the limit {self.max_table_size}")
                self._max_size = size
                self._evict(0)
                changed = True
                continue
            else:  # literal without indexing / never indexed
                field, pos = self._literal(data, pos, 4)
            total += len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
            if total > self._max_list_size:
                raise _error(f"header list over {self._max_list_size} bytes")
            fields.append(field)
        return fields, changed

    def _lookup(self, index: int) -> Field:
        if 0 < index <= _STATIC_SIZE:
            return STATIC_TABLE[index - 1]
        dynamic = index - _STATIC_SIZE - 1
        if index == 0 or dynamic >= len(self._entries):
            raise _error(f"index {index} is not in the table")
        return self._entries[dynamic]

    def _literal(self, data: bytes, pos: int, prefix_bits: int) -> tuple[Field, int]:
        index, pos = _integer(data, pos, prefix_bits)
        if index:
            name = self._lookup(index)[0]
        else:
            name, pos = _string(data, pos)
        value, pos = _string(data, pos)
        return (name, value), pos

    def _insert(self, field: Field) -> None:
        size = len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
        if size > self._max_size:  # too large for the table: it ends up empty (RFC 7541 §4.4)
            self._entries.clear()
            self._size = 0
            return
        self._evict(size)
        self._entries.appendleft(field)
        self._size += size

    def _evict(self, room: int) -> None:
        """Drop the oldest entries until ``room`` more bytes fit."""
        entries = self._entries
        while entries and self._size + room > self._max_size:
            name, value = entries.pop()
            self._size -= len(name) + len(value) + _ENTRY_OVERHEAD


def response_head(fields: list[Field]) -> tuple[int, Headers]:
    """The status and the regular fields of a response header block.

    Raises:
        ProtocolError: no valid ``:status``, or another pseudo-header.
    """
    status = -1
    headers: Headers = []
    for name, value in fields:
        if name[:1] != ":":
            headers.append((name, value))
        elif name == ":status" and status < 0 and len(value) == 3 and value.isdigit():
            status = int(value)
        else:
            raise ProtocolError(f"invalid response pseudo-header {name}: {value!r}")
    if status < 0:
        raise ProtocolError("response without :status")
    return status, headers


def _integer(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """An integer with an N-bit prefix at ``data[pos]`` (RFC 7541 §5.1); the value and the
    position after it."""
    limit = (1 << prefix_bits) - 1
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise _error("truncated integer")
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise _error("integer too large")


def _string(data: bytes, pos: int) -> tuple[str, int]:
    """A string literal (RFC 7541 §5.2) as latin-1; the string and the position after it."""
    huffman = data[pos] & 0x80
    size, pos = _integer(data, pos, 7)
    stop = pos + size
    if stop > len(data):
        raise _error("truncated string")
    raw = data[pos:stop]
    if huffman:
        try:
            raw = bytes(decode_huffman(raw))
        except Exception as exc:  # hpack raises its HPACKDecodingError
            raise _error(f"invalid Huffman string ({exc})") from None
    return raw.decode("latin-1"), stop
