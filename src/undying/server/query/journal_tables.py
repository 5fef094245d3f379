"""``sys_journal`` and ``sys_journal_events`` from the ``journal`` and ``journal_events`` tables.

``sys_journal`` is built in chunks of about :data:`~undying.server.query.invocation_tables.CHUNK`
rows, never splitting one invocation's journal (rendering a call needs the notification that
carries the callee's id, later in the same journal). Entries are only decoded and rendered when
the query reads a rendered column (``entry_type``, ``name``, ``entry_json``…); ``COUNT(*)``
reads no entry at all. ``WHERE id = …`` / ``id IN (…)`` reads those journals only (primary key),
and ``LIMIT n`` without filter stops after ``n`` entries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any, Final

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]

from undying.protocol.ids import InvocationId
from undying.server.query.invocation_tables import CHUNK, invocation_text
from undying.server.query.journal import JournalRow, command_type_name, render_journal
from undying.server.query.scans import Restriction, Scan
from undying.server.query.schemas import TABLE_SCHEMAS
from undying.server.schema import Schema

__all__ = ["journal_batches", "journal_event_batches"]

_SQL_CHUNK: Final = 500
_EVENT_JSON: Final = msgspec.json.Decoder()
_JSON: Final = msgspec.json.Encoder()
#: ``sys_journal`` columns that need the entry decoded.
_RENDERED: Final = frozenset(
    {
        "entry_type",
        "name",
        "invoked_id",
        "invoked_target",
        "sleep_wakeup_at",
        "promise_name",
        "entry_json",
        "entry_lite_json",
    }
)


def _ids(restriction: Restriction) -> list[bytes] | None:
    c = restriction.get("id")
    if c is None or not c[0]:
        return None
    out = set()
    for text in c[1]:
        try:
            out.add(InvocationId.parse(text).to_bytes())
        except ValueError:  # InvalidIdError is a ValueError
            continue
    return sorted(out)


def _exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _statements(sql: str, ids: list[bytes] | None, tail: str) -> Iterator[tuple[str, list[Any]]]:
    """``sql`` (ending in a WHERE clause to extend) for all rows, or for ``ids`` in chunks."""
    if ids is None:
        yield sql + tail, []
        return
    for i in range(0, len(ids), _SQL_CHUNK):
        chunk = ids[i : i + _SQL_CHUNK]
        yield f"{sql} AND id IN ({','.join('?' * len(chunk))}){tail}", list(chunk)


def _null_batches(schema: Any, count: int) -> Iterator[Any]:
    """``count`` rows of NULLs (for queries that read no column, like ``COUNT(*)``)."""
    if count <= 0:
        return
    full = pa.RecordBatch.from_arrays([pa.nulls(CHUNK, f.type) for f in schema], schema=schema)
    for _ in range(count // CHUNK):
        yield full
    rest = count % CHUNK
    if rest:
        yield full.slice(0, rest)


def journal_batches(conn: sqlite3.Connection, scan: Scan, schema: Schema) -> Iterator[Any]:
    """``sys_journal`` in chunks."""
    table = TABLE_SCHEMAS["sys_journal"]
    if not _exists(conn, "journal"):
        return
    ids = _ids(scan.restriction)
    if scan.columns is not None and not scan.columns:
        count = 0
        for sql, params in _statements("SELECT COUNT(*) FROM journal WHERE 1 = 1", ids, ""):
            count += int(conn.execute(sql, params).fetchone()[0])
        if scan.fetch is not None:
            count = min(count, scan.fetch)
        yield from _null_batches(table, count)
        return
    render = scan.columns is None or not scan.columns.isdisjoint(_RENDERED)
    raw = scan.columns is None or "raw" in scan.columns
    payload = "payload" if render or raw else "length(payload)"
    select = f"SELECT id, idx, type, appended_at, {payload} FROM journal WHERE 1 = 1"
    limit = scan.fetch
    emitted = 0
    pending: list[dict[str, Any]] = []
    for group in _groups(conn, select, ids):
        pending.extend(_journal_rows(group, render, raw, schema))
        if limit is not None and emitted + len(pending) >= limit:
            pending = pending[: limit - emitted]
            break
        if len(pending) >= CHUNK:
            emitted += len(pending)
            yield _build(table, pending, scan)
            pending = []
    if pending:
        yield _build(table, pending, scan)


def _groups(
    conn: sqlite3.Connection, select: str, ids: list[bytes] | None
) -> Iterator[list[tuple[Any, ...]]]:
    """The journal rows of one invocation after the other."""
    for sql, params in _statements(select, ids, " ORDER BY id, idx"):
        cur = conn.execute(sql, params)
        group: list[tuple[Any, ...]] = []
        while rows := cur.fetchmany(CHUNK):
            for row in rows:
                if group and row[0] != group[0][0]:
                    yield group
                    group = []
                group.append(row)
        if group:
            yield group


def _journal_rows(
    group: list[tuple[Any, ...]], render: bool, raw: bool, schema: Schema
) -> list[dict[str, Any]]:
    """The rows of one invocation's journal."""
    inv = bytes(group[0][0])
    text = invocation_text(inv)
    pk = int.from_bytes(inv[:8], "big")
    rendered: list[JournalRow] | None = (
        render_journal([(int(r[2]), bytes(r[4])) for r in group], schema) if render else None
    )
    out = []
    for i, r in enumerate(group):
        row: dict[str, Any] = {
            "partition_key": pk,
            "id": text,
            "index": int(r[1]),
            "version": 2,
            "appended_at": int(r[3]),
        }
        if raw:
            data = bytes(r[4])
            row["raw"] = data
            row["raw_length"] = len(data)
        elif render:
            row["raw_length"] = len(r[4])
        else:
            row["raw_length"] = int(r[4])
        if rendered is not None:
            j = rendered[i]
            row["entry_type"] = j.entry_type
            row["name"] = j.name
            row["invoked_id"] = j.invoked_id
            row["invoked_target"] = j.invoked_target
            row["sleep_wakeup_at"] = j.sleep_wakeup_at
            row["promise_name"] = j.promise_name
            row["entry_json"] = j.entry_json
            row["entry_lite_json"] = j.entry_lite_json
        out.append(row)
    return out


def _build(table: Any, rows: list[dict[str, Any]], scan: Scan) -> Any:
    arrays = []
    for f in table:
        if not scan.needs(f.name):
            arrays.append(pa.nulls(len(rows), f.type))
        else:
            arrays.append(pa.array([r.get(f.name) for r in rows], f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=table)


# ---- events ------------------------------------------------------------------------------------


def _event_json(raw: bytes) -> str:
    try:
        event = _EVENT_JSON.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace")
    if isinstance(event, dict):
        code = event.get("related_command_type")
        if isinstance(code, int):
            event["related_command_type"] = command_type_name(code) or str(code)
        event = {k: v for k, v in event.items() if v is not None}
    return _JSON.encode(event).decode()


def journal_event_batches(conn: sqlite3.Connection, scan: Scan) -> Iterator[Any]:
    """``sys_journal_events`` (retry failures and other events of each invocation)."""
    table = TABLE_SCHEMAS["sys_journal_events"]
    if not _exists(conn, "journal_events"):
        return
    select = (
        "SELECT id, after_index, appended_at, event_type, event FROM journal_events WHERE 1 = 1"
    )
    rows: list[dict[str, Any]] = []
    for sql, params in _statements(select, _ids(scan.restriction), " ORDER BY id, seq"):
        for inv, after, at, event_type, event in conn.execute(sql, params):
            raw = bytes(inv)
            rows.append(
                {
                    "partition_key": int.from_bytes(raw[:8], "big"),
                    "id": invocation_text(raw),
                    "after_journal_entry_index": max(int(after), 0),
                    "appended_at": int(at),
                    "event_type": event_type,
                    "event_json": _event_json(bytes(event)),
                }
            )
            if len(rows) >= CHUNK:
                yield _build(table, rows, scan)
                rows = []
    if rows:
        yield _build(table, rows, scan)
