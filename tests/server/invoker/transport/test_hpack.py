"""The hand-written HPACK request encoder and response decoder, against the ``hpack`` package."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from undying.server.invoker.transport.frames import ProtocolError
from undying.server.invoker.transport.hpack_decode import HeaderDecoder
from undying.server.invoker.transport.hpack_encode import STATIC_TABLE, encode_int, encode_request


def test_static_table_matches_hpack() -> None:
    from hpack.table import HeaderTable

    expected = [(name.decode(), value.decode()) for name, value in HeaderTable.STATIC_TABLE]
    assert list(STATIC_TABLE) == expected


def decoded(block: bytes) -> list[tuple[str, str]]:
    fields = hpack.Decoder().decode(block, raw=True)
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in fields]


def test_request_blocks_decode_with_hpack() -> None:
    headers = [
        ("content-type", "application/vnd.restate.invocation.v5"),
        ("Accept", "application/vnd.restate.invocation.v5"),
        ("x-restate-invocation-id", "inv_1fz0123456789"),
        ("x-long", "v" * 300),
        ("x-empty", ""),
        ("x-latin", "caf\xe9"),
    ]
    block = encode_request("POST", "127.0.0.1:9080", "/invoke/Greeter/greet", headers)
    assert decoded(block) == [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "127.0.0.1:9080"),
        (":path", "/invoke/Greeter/greet"),
        ("content-type", "application/vnd.restate.invocation.v5"),
        ("accept", "application/vnd.restate.invocation.v5"),
        ("x-restate-invocation-id", "inv_1fz0123456789"),
        ("x-long", "v" * 300),
        ("x-empty", ""),
        ("x-latin", "caf\xe9"),
    ]
    assert decoded(encode_request("GET", "h:1", "/discover", []))[:2] == [
        (":method", "GET"),
        (":scheme", "http"),
    ]
    assert decoded(encode_request("PATCH", "h:1", "/", []))[0] == (":method", "PATCH")
    # Nothing is indexed: a decoder's dynamic table stays empty.
    decoder = hpack.Decoder()
    decoder.decode(block, raw=True)
    assert len(decoder.header_table.dynamic_entries) == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("connection", "close"),
        ("Transfer-Encoding", "chunked"),
        ("", "x"),
        ("bad name", "x"),
        (":path", "/"),
        ("x-ok", "line\r\nbreak"),
        ("x-ok", "nul\0"),
        ("x-ok", "snow\u2603"),
    ],
)
def test_invalid_request_fields_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="request header field"):
        encode_request("POST", "h:1", "/", [(name, value)])


@pytest.mark.parametrize("value", [0, 1, 14, 15, 16, 127, 128, 1337, 2**20, 2**31 - 1])
@pytest.mark.parametrize("prefix", [4, 5, 6, 7])
def test_integers_round_trip_with_hpack(value: int, prefix: int) -> None:
    from hpack.hpack import decode_integer

    encoded = encode_int(value, prefix)
    assert decode_integer(encoded, prefix) == (value, len(encoded))


field_names = st.sampled_from(
    ["content-type", "date", "server", "x-restate-server", "x-a", "x-b", "set-cookie", ":status"]
)
field_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
header_lists = st.lists(st.tuples(field_names, field_values), max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    blocks=st.lists(
        st.tuples(header_lists, st.booleans(), st.sampled_from([None, 0, 100, 256, 4096])),
        min_size=1,
        max_size=12,
    )
)
def test_decoder_follows_hpack_encoder(
    blocks: list[tuple[list[tuple[str, str]], bool, int | None]],
) -> None:
    """Indexing, eviction, Huffman and table size updates, over a sequence of blocks."""
    encoder = hpack.Encoder()
    decoder = HeaderDecoder()
    for headers, huffman, table_size in blocks:
        if table_size is not None:
            encoder.header_table_size = table_size  # the next block starts with an update
        for _ in range(2):  # the second time most fields are indexed (and the block cached)
            block = encoder.encode(headers, huffman=huffman)
            assert decoder.decode(block) == headers


def test_never_indexed_and_sensitive_fields() -> None:
    encoder = hpack.Encoder()
    block = encoder.encode([("authorization", "secret", True), ("x-token", "t", True)])
    assert HeaderDecoder().decode(block) == [("authorization", "secret"), ("x-token", "t")]


def test_cache_follows_table_changes() -> None:
    decoder = HeaderDecoder()
    insert_a = b"\x40\x01a\x01A"  # literal with incremental indexing: a: A
    insert_b = b"\x40\x01b\x01B"
    newest = b"\xbe"  # index 62: the newest dynamic entry
    assert decoder.decode(insert_a) == [("a", "A")]
    assert decoder.decode(newest) == [("a", "A")]
    assert decoder.decode(newest) == [("a", "A")]  # cached
    assert decoder.decode(insert_b) == [("b", "B")]
    assert decoder.decode(newest) == [("b", "B")]
    assert decoder.decode(b"\xbf") == [("a", "A")]
    assert decoder.decode(b"\x20") == []  # size update to 0 empties the table
    with pytest.raises(ProtocolError, match="index 62 is not in the table"):
        decoder.decode(newest)


def test_entries_are_evicted_by_size() -> None:
    decoder = HeaderDecoder(max_table_size=100)
    decoder.decode(b"\x3f\x45")  # size update to 100 (31 + 69)
    field = b"\x40\x01a" + bytes([30]) + b"x" * 30  # 1 + 30 + 32 = 63 bytes
    decoder.decode(field)
    decoder.decode(b"\x40\x01b\x01B")  # 34 more: 97 <= 100, both fit
    assert decoder.decode(b"\xbe\xbf") == [("b", "B"), ("a", "x" * 30)]
    decoder.decode(b"\x40\x01c\x01C")  # 'a' goes
    assert decoder.decode(b"\xbe\xbf") == [("c", "C"), ("b", "B")]
    with pytest.raises(ProtocolError):
        decoder.decode(b"\xc0")
    big = b"\x40\x01d" + bytes([0x7F, 0x00]) + b"y" * 127  # larger than the table: empties it
    assert decoder.decode(big) == [("d", "y" * 127)]
    with pytest.raises(ProtocolError, match="not in the table"):
        decoder.decode(b"\xbe")


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"\x80", "index 0"),
        (b"\xff\x80\x80\x80\x80\x80\x01", "integer too large"),
        (b"\xff", "truncated integer"),
        (b"\x00\x05ab", "truncated string"),
        (b"\x3f\xe2\x1f", "over the limit"),  # size update to 4097
        (b"\x88\x20", "table size update after a field"),
        (b"\x00\x81\xff\x00", "invalid Huffman string"),
    ],
)
def test_malformed_blocks_are_compression_errors(block: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        HeaderDecoder().decode(block)
    assert info.value.code == 0x9


def test_header_list_size_is_bounded() -> None:
    decoder = HeaderDecoder(max_list_size=1000)
    decoder.decode(b"\x40\x01a" + bytes([0x7F, 0x81, 0x02]) + b"z" * 384)  # a: 384 bytes
    with pytest.raises(ProtocolError, match="header list over 1000 bytes"):
        decoder.decode(b"\xbe\xbe\xbe")
