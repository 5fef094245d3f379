"""JSON rows and Arrow streams, value by value."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from undying.server.query.encoding import arrow_stream, format_duration, json_rows


def one(array: Any) -> list[Any]:
    body = json.loads(json_rows(pa.table({"v": array})))
    return [r.get("v", "<omitted>") for r in body["rows"]]


def test_nulls_are_left_out_of_the_row() -> None:
    table = pa.table(
        {"a": pa.array(["x", None], pa.large_string()), "b": pa.array([None, 2], pa.uint64())}
    )
    assert json.loads(json_rows(table)) == {"rows": [{"a": "x"}, {"b": 2}]}
    assert json_rows(pa.table({"a": pa.array([], pa.string())})) == b'{"rows":[]}'


def test_binary_is_lowercase_hex() -> None:
    assert one(pa.array([b"8", b"\xff\x00", None], pa.large_binary())) == [
        "38",
        "ff00",
        "<omitted>",
    ]
    assert one(pa.array([b"AB"], pa.binary())) == ["4142"]


def test_timestamps() -> None:
    ms = pa.array([1795496323982, 1795496323000], pa.timestamp("ms", tz="+00:00"))
    assert one(ms) == ["2026-11-24T04:58:43.982Z", "2026-11-24T04:58:43Z"]
    ns = pa.array([1795496495489442256], pa.timestamp("ns"))
    assert one(ns) == ["2026-11-24T05:01:35.489442256"]
    us = pa.array([1795496495489442], pa.timestamp("us", tz="UTC"))
    assert one(us) == ["2026-11-24T05:01:35.489442Z"]
    india = pa.array([1795496323982], pa.timestamp("ms", tz="+05:30"))
    assert one(india) == ["2026-11-24T10:28:43.982+05:30"]
    before_epoch = pa.array([-1], pa.timestamp("ms", tz="+00:00"))
    assert one(before_epoch) == ["1969-12-31T23:59:59.999Z"]


def test_durations_are_iso_8601() -> None:
    assert one(pa.array([86_400_000, 1500, 0, -2000], pa.duration("ms"))) == [
        "PT86400S",
        "PT1.5S",
        "P0D",
        "-PT2S",
    ]
    assert format_duration(1, 1_000_000_000) == "PT0.000000001S"


def test_intervals_lists_and_structs() -> None:
    interval = pa.array([pa.MonthDayNano([0, 0, 2_000_000_000])], pa.month_day_nano_interval())
    assert one(interval) == ["2.000000000 secs"]
    lists = pa.array([[1, 17], [], None], pa.list_(pa.uint32()))
    assert one(lists) == [[1, 17], [], "<omitted>"]
    nested = pa.array([[b"\x01", None]], pa.list_(pa.binary()))
    assert one(nested) == [["01", None]]
    struct = pa.array([{"a": 1, "b": None}], pa.struct([("a", pa.int64()), ("b", pa.string())]))
    assert one(struct) == [{"a": 1}]


def test_numbers_and_booleans() -> None:
    assert one(pa.array([True, False])) == [True, False]
    assert one(pa.array([2**64 - 1], pa.uint64())) == [2**64 - 1]
    assert one(pa.array([1.5], pa.float64())) == [1.5]


def test_arrow_stream_is_a_readable_ipc_stream_even_when_empty() -> None:
    table = pa.table({"id": pa.array(["a", "b"], pa.large_string())})
    data = arrow_stream(table)
    assert data[:4] == b"\xff\xff\xff\xff" and data[-8:] == b"\xff\xff\xff\xff\x00\x00\x00\x00"
    assert pa.ipc.open_stream(data).read_all().equals(table)
    empty = pa.table({"n": pa.array([], pa.int64())})
    back = pa.ipc.open_stream(arrow_stream(empty)).read_all()
    assert back.schema.names == ["n"] and back.num_rows == 0
