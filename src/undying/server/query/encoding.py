"""Query results on the wire: Arrow IPC streams, and JSON rows the way Restate writes them.

JSON rows (``{"rows": [{...}, ...]}``) follow Restate's encoder: a NULL column is left out of
its row, binary values are lowercase hex, timestamps are RFC 3339 (``…T04:58:43.982Z``; naive
timestamps without the zone), durations ISO 8601 (``PT86400S``), lists JSON arrays, floats in
the shortest form that reads back the same (``1.0``, ``0.00001``, ``1.0e10``, ``1.0e-6``; NaN
and infinities as ``null``).

Both formats can be written a batch at a time (:class:`JsonRowsWriter`,
:class:`ArrowStreamWriter`), so that a large answer streams out as it is computed.
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
import struct
import zoneinfo
from collections.abc import Callable
from typing import Any, Final

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]

__all__ = [
    "ARROW_STREAM",
    "ArrowStreamWriter",
    "JsonRowsWriter",
    "arrow_stream",
    "format_duration",
    "format_float",
    "format_timestamp",
    "json_rows",
]

#: The media type of an Arrow IPC stream.
ARROW_STREAM: Final = "application/vnd.apache.arrow.stream"

_JSON: Final = msgspec.json.Encoder(decimal_format="number")
_EPOCH: Final = datetime.datetime(1970, 1, 1)
_PER_SECOND: Final = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_UTC_NAMES: Final = frozenset({"UTC", "Z", "+00:00", "-00:00", "+0000", "Etc/UTC", "utc"})
_FIXED_OFFSET: Final = re.compile(r"^([+-])(\d\d):?(\d\d)$")


def arrow_stream(table: Any) -> bytes:
    """``table`` (a ``pyarrow.Table``) as an Arrow IPC stream: schema, batches, end marker."""
    writer = ArrowStreamWriter(table.schema)
    parts = [writer.begin()]
    parts.extend(writer.write(b) for b in table.to_batches())
    parts.append(writer.end())
    return b"".join(parts)


def json_rows(table: Any) -> bytes:
    """``{"rows": [...]}`` for ``table``, NULLs omitted, values encoded like Restate's."""
    writer = JsonRowsWriter()
    parts = [writer.begin()]
    parts.extend(writer.write(b) for b in table.to_batches())
    parts.append(writer.end())
    return b"".join(parts)


class _Sink:
    """A write-only file collecting what an Arrow writer writes, taken out piece by piece."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class ArrowStreamWriter:
    """An Arrow IPC stream, a piece at a time: ``begin()``, ``write()`` each batch, ``end()``."""

    def __init__(self, schema: Any) -> None:
        self._sink = _Sink()
        self._writer = pa.ipc.new_stream(pa.PythonFile(self._sink, mode="w"), schema)

    def begin(self) -> bytes:
        """The schema message."""
        return self._sink.take()

    def write(self, batch: Any) -> bytes:
        """One record batch message (nothing for an empty batch)."""
        if batch.num_rows:
            self._writer.write_batch(batch)
        return self._sink.take()

    def end(self) -> bytes:
        """The end-of-stream marker."""
        self._writer.close()
        return self._sink.take()


class JsonRowsWriter:
    """``{"rows": [...]}``, a piece at a time: ``begin()``, ``write()`` each batch, ``end()``."""

    def __init__(self) -> None:
        self._first = True

    def begin(self) -> bytes:
        return b'{"rows":['

    def write(self, batch: Any) -> bytes:
        """The rows of one record batch (with the comma that separates them from earlier ones)."""
        if not batch.num_rows:
            return b""
        names = batch.schema.names
        columns = [_values(batch.column(i)) for i in range(batch.num_columns)]
        rows = []
        for values in zip(*columns, strict=True):
            rows.append({n: v for n, v in zip(names, values, strict=True) if v is not None})
        body = _JSON.encode(rows)[1:-1]
        if self._first:
            self._first = False
            return body
        return b"," + body

    def end(self) -> bytes:
        return b"]}"


# ---- values --------------------------------------------------------------------------------


def _values(arr: Any) -> list[Any]:
    """The JSON-ready values of one Arrow array (None for nulls)."""
    t = arr.type
    types = pa.types
    if types.is_dictionary(t):
        return _values(arr.dictionary_decode())
    if types.is_null(t):
        return [None] * len(arr)
    if (
        types.is_binary(t)
        or types.is_large_binary(t)
        or types.is_fixed_size_binary(t)
        or types.is_binary_view(t)
    ):
        return [None if v is None else v.hex() for v in arr.to_pylist()]
    if types.is_timestamp(t):
        ints = arr.cast(pa.int64()).to_pylist()
        fmt = _timestamp_formatter(t.unit, t.tz)
        return [None if v is None else fmt(v) for v in ints]
    if types.is_duration(t):
        per = _PER_SECOND[t.unit]
        return [
            None if v is None else format_duration(v, per) for v in arr.cast(pa.int64()).to_pylist()
        ]
    if types.is_date64(t):
        ms = arr.cast(pa.int64()).to_pylist()
        return [None if v is None else format_timestamp(v, 1_000, 1_000_000, None) for v in ms]
    if types.is_date(t):
        return [None if v is None else v.isoformat() for v in arr.to_pylist()]
    if types.is_time(t):
        per = _PER_SECOND[t.unit]
        ints = arr.cast(pa.int64() if t.bit_width == 64 else pa.int32()).to_pylist()
        return [None if v is None else _time_of_day(v, per) for v in ints]
    if types.is_floating(t):
        single = t.bit_width < 64
        return [None if v is None else format_float(v, single) for v in arr.to_pylist()]
    if t == pa.month_day_nano_interval():
        return [
            None if v is None else _interval(v.months, v.days, v.nanoseconds)
            for v in arr.to_pylist()
        ]
    if (
        types.is_list(t)
        or types.is_large_list(t)
        or types.is_fixed_size_list(t)
        or types.is_list_view(t)
    ):
        return _list_values(arr)
    if types.is_struct(t):
        return _struct_values(arr)
    if types.is_map(t):
        return [None if v is None else {str(k): _plain(x) for k, x in v} for v in arr.to_pylist()]
    if types.is_integer(t) or types.is_boolean(t) or types.is_string(t):
        return list(arr.to_pylist())
    if types.is_large_string(t) or types.is_string_view(t) or types.is_decimal(t):
        return list(arr.to_pylist())
    return [_plain(v) for v in arr.to_pylist()]


def _plain(v: Any) -> Any:
    """A fallback for values of exotic types: JSON natives as they are, others as text."""
    if isinstance(v, float):
        return format_float(v)
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)


def _list_values(arr: Any) -> list[Any]:
    if pa.types.is_list_view(arr.type):
        arr = arr.cast(pa.list_(arr.type.value_type))
    child = _values(arr.flatten())
    out: list[Any] = []
    pos = 0
    for length in arr.value_lengths().to_pylist():
        if length is None:
            out.append(None)
            continue
        out.append(child[pos : pos + length])
        pos += length
    return out


def _struct_values(arr: Any) -> list[Any]:
    fields = [(arr.type.field(i).name, _values(arr.field(i))) for i in range(arr.type.num_fields)]
    valid = arr.is_valid().to_pylist()
    out: list[Any] = []
    for i, ok in enumerate(valid):
        if not ok:
            out.append(None)
            continue
        out.append({name: vals[i] for name, vals in fields if vals[i] is not None})
    return out


# ---- formats ---------------------------------------------------------------------------------


def _fraction(nanos: int) -> str:
    """``.982``, ``.489442``, ``.489442256`` or nothing: the shortest of 0/3/6/9 digits."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def _offset_text(offset: datetime.timedelta) -> str:
    if not offset:
        return "Z"
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    return f"{sign}{hours:02d}:{rest // 60:02d}"


def _zone(tz: str | None) -> datetime.tzinfo | None:
    if tz is None:
        return None
    if tz in _UTC_NAMES:
        return datetime.UTC
    m = _FIXED_OFFSET.match(tz)
    if m is not None:
        delta = datetime.timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return datetime.timezone(-delta if m.group(1) == "-" else delta)
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return datetime.UTC


def _timestamp_formatter(unit: str, tz: str | None) -> Callable[[int], str]:
    per = _PER_SECOND[unit]
    scale = 1_000_000_000 // per
    zone = _zone(tz)

    def fmt(value: int) -> str:
        return format_timestamp(value, per, scale, zone)

    return fmt


def format_timestamp(
    value: int, per_second: int, nanos_per_unit: int, zone: datetime.tzinfo | None
) -> str:
    """A timestamp ``value`` (``per_second`` units per second) in RFC 3339.

    With a zone: ``2026-11-24T04:58:43.982Z`` (UTC) or ``…+01:00``; without: no suffix.
    """
    secs, frac = divmod(value, per_second)
    naive = _EPOCH + datetime.timedelta(seconds=secs)
    suffix = ""
    if zone is not None:
        offset = zone.utcoffset(naive.replace(tzinfo=datetime.UTC).astimezone(zone)) or (
            datetime.timedelta()
        )
        naive += offset
        suffix = _offset_text(offset)
    return naive.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(frac * nanos_per_unit) + suffix


_NULL: Final = msgspec.Raw(b"null")


def format_float(value: float, single: bool = False) -> Any:
    """A float as Restate's JSON writes it (a raw JSON number; ``null`` if not finite).

    The shortest digits that read back the same value (as a 32-bit float if ``single``),
    positional from 1e-5 to below 1e10 (``123.0``, ``0.00001``), scientific outside
    (``1.0e10``, ``2.5e-7``).
    """
    if not math.isfinite(value):
        return _NULL
    digits = _shortest(value, single)
    sign, coefficient, exponent = decimal.Decimal(digits).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, coefficient)).rstrip("0") or "0"
    point = len(coefficient) + exponent  # digits before the decimal point
    scientific = point - 1
    lead = "-" if sign else ""
    if text == "0":
        return msgspec.Raw((lead + "0.0").encode())
    if -5 <= scientific < 10:
        if point <= 0:
            out = "0." + "0" * -point + text
        elif point >= len(text):
            out = text + "0" * (point - len(text)) + ".0"
        else:
            out = text[:point] + "." + text[point:]
    else:
        out = text[0] + "." + (text[1:] or "0") + "e" + str(scientific)
    return msgspec.Raw((lead + out).encode())


def _shortest(value: float, single: bool) -> str:
    if not single:
        return repr(value)
    for precision in range(1, 10):
        text = f"{value:.{precision}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
            return text
    return repr(value)


def _time_of_day(value: int, per_second: int) -> str:
    secs, frac = divmod(value, per_second)
    hours, rest = divmod(secs, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    if frac:
        text += "." + f"{frac * (1_000_000_000 // per_second):09d}".rstrip("0")
    return text


def format_duration(value: int, per_second: int = 1_000) -> str:
    """An ISO 8601 duration: ``PT86400S``, ``PT1.5S``, ``-PT2S``; zero is ``P0D``."""
    if value == 0:
        return "P0D"
    sign = "-" if value < 0 else ""
    secs, frac = divmod(abs(value), per_second)
    text = f"{sign}PT{secs}"
    if frac:
        digits = f"{frac * (1_000_000_000 // per_second):09d}".rstrip("0")
        text += f".{digits}"
    return text + "S"


def _interval(months: int, days: int, nanos: int) -> str:
    parts = []
    if months:
        parts.append(f"{months} mons")
    if days:
        parts.append(f"{days} days")
    if nanos:
        negative = nanos < 0
        secs, frac = divmod(abs(nanos), 1_000_000_000)
        mins, secs = divmod(secs, 60)
        hours, mins = divmod(mins, 60)
        sign = "-" if negative else ""
        if hours:
            parts.append(f"{sign}{hours} hours")
        if mins:
            parts.append(f"{sign}{mins} mins")
        if secs or frac:
            parts.append(f"{sign}{secs}.{frac:09d} secs")
    return " ".join(parts)
