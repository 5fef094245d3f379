"""HPACK (RFC 7541) encoding of request header blocks, without a dynamic table.

Fields are sent as static-table indexes where name and value match, otherwise as literals
"without indexing" (the name indexed when the static table has it) with raw strings. Nothing is
ever added to the peer's dynamic table, so its size never matters to us. Encoded names and the
pseudo-header prefix of each ``(method, authority)`` are cached.
"""

from __future__ import annotations

from typing import Final

from .base import Headers

__all__ = ["STATIC_TABLE", "encode_request", "encode_int"]

STATIC_TABLE: Final[tuple[tuple[str, str], ...]] = (
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
)
"""RFC 7541 Appendix A; index ``i`` is ``STATIC_TABLE[i - 1]``."""

_NAME_INDEX: Final = {
    name: index for index, (name, _) in reversed(list(enumerate(STATIC_TABLE, 1)))
}  # the lowest index of each name
_FIELD_INDEX: Final = {field: index for index, field in enumerate(STATIC_TABLE, 1) if field[1]}

# Request fields must not carry these (RFC 9113 §8.2.2).
_CONNECTION_SPECIFIC: Final = frozenset(
    ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade")
)
_CACHE_LIMIT: Final = 1024
_names: dict[str, bytes] = {}
_prefixes: dict[tuple[str, str], bytes] = {}


def encode_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) whose first byte has ``first`` in its high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(data: bytes) -> bytes:
    """A raw (not Huffman coded) string literal (RFC 7541 §5.2)."""
    size = len(data)
    if size < 0x7F:
        return bytes((size,)) + data
    return encode_int(size, 7) + data


def _name(name: str) -> bytes:
    """The first part of a literal field without indexing: the lower-cased name, indexed when
    the static table has it."""
    encoded = _names.get(name)
    if encoded is None:
        lower = name.lower()
        if not lower or lower in _CONNECTION_SPECIFIC or any(c in lower for c in " \t\r\n\0:"):
            raise ValueError(f"invalid request header field name {name!r}")
        index = _NAME_INDEX.get(lower)
        if index:
            encoded = encode_int(index, 4)
        else:
            try:
                encoded = b"\x00" + _string(lower.encode("latin-1"))
            except UnicodeEncodeError:
                raise ValueError(f"invalid request header field name {name!r}") from None
        if len(_names) >= _CACHE_LIMIT:
            _names.clear()
        _names[name] = encoded
    return encoded


def _value(value: str) -> bytes:
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"invalid request header field value {value!r}")
    try:
        return _string(value.encode("latin-1"))
    except UnicodeEncodeError:
        raise ValueError(f"request header field value {value!r} is not latin-1") from None


def _prefix(method: str, authority: str) -> bytes:
    """``:method``, ``:scheme`` and ``:authority`` of a request."""
    key = (method, authority)
    encoded = _prefixes.get(key)
    if encoded is None:
        index = _FIELD_INDEX.get((":method", method))
        encoded = (
            (encode_int(index, 7, 0x80) if index else _literal_pseudo(":method", method))
            + encode_int(_FIELD_INDEX[(":scheme", "http")], 7, 0x80)
            + _literal_pseudo(":authority", authority)
        )
        if len(_prefixes) >= _CACHE_LIMIT:
            _prefixes.clear()
        _prefixes[key] = encoded
    return encoded


def _literal_pseudo(name: str, value: str) -> bytes:
    return encode_int(_NAME_INDEX[name], 4) + _value(value)


_PATH: Final = encode_int(_NAME_INDEX[":path"], 4)


def encode_request(method: str, authority: str, path: str, headers: Headers) -> bytes:
    """The header block of an ``http`` request; ``headers`` names are lower-cased here.

    Raises:
        ValueError: a field name or value that HTTP/2 does not allow.
    """
    parts = [_prefix(method, authority), _PATH, _value(path)]
    names = _names
    for name, value in headers:
        encoded = names.get(name)
        parts.append(encoded if encoded is not None else _name(name))
        parts.append(_value(value))
    return b"".join(parts)
