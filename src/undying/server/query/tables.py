"""Building the introspection tables from undying's storage, as Arrow record batches.

Each builder reads one snapshot (a read transaction on its own SQLite connection) plus the schema
registry, and yields ``pyarrow.RecordBatch`` chunks with exactly the columns of
:data:`~undying.server.query.schemas.TABLE_SCHEMAS`. A builder is given a
:class:`~undying.server.query.scans.Scan`: the columns the query reads and the rows it can use
(taken from the query's plan), so that ``WHERE id = 'inv_…'`` reads one invocation instead of
all of them. A scan only ever describes a superset of the rows the query needs; the SQL engine
still applies the query's own filters.

The invocation tables are in :mod:`~undying.server.query.invocation_tables`, the journal tables
in :mod:`~undying.server.query.journal_tables`; the small tables (state, inboxes, locks,
promises, the schema registry) are here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]

from undying.protocol.ids import partition_key_for
from undying.server.partition import state as partition_state
from undying.server.partition.records import Result
from undying.server.partition.state import decode_status
from undying.server.query.invocation_tables import (
    completion_failure_text,
    failure_text,
    invocation_batches,
    invocation_state_batches,
    invocation_status_batches,
    invocation_text,
    public_status,
)
from undying.server.query.journal_tables import journal_batches, journal_event_batches
from undying.server.query.scans import Constraint, Restriction, Scan
from undying.server.query.schemas import TABLE_SCHEMAS
from undying.server.schema import Schema

__all__ = [
    "BUILDERS",
    "Constraint",
    "Restriction",
    "Snapshot",
    "build_table",
    "completion_failure_text",
    "failure_text",
    "public_status",
    "table_batches",
]

_SERVICE_TYPES: Final = {
    "Service": "service",
    "VirtualObject": "virtual_object",
    "Workflow": "workflow",
}


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _inv_text(raw: bytes) -> str:
    return invocation_text(raw)


class Snapshot:
    """One consistent read of the storage and the schema, for building tables.

    ``columns`` (per table) are the columns the query reads, when known (kept for callers that
    build whole tables with :func:`build_table`).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        schema: Schema,
        now_ms: int,
        columns: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.now_ms = now_ms
        self.columns = columns or {}
        self._tables: set[str] | None = None

    def has_table(self, name: str) -> bool:
        if self._tables is None:
            self._tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        return name in self._tables

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(params)).fetchall()


def _text_filter(restriction: Restriction, column: str) -> list[str] | None:
    c = restriction.get(column)
    if c is None or not c[0]:
        return None
    return sorted(c[1])


# ---- keyed services ----------------------------------------------------------------------------


def _build_state(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    if not snap.has_table("state"):
        return []
    sql = "SELECT service, key, skey, value FROM state WHERE 1 = 1"
    params: list[Any] = []
    for column, stored in (("service_name", "service"), ("service_key", "key")):
        values = _text_filter(restriction, column)
        if values is not None:
            sql += f" AND {stored} IN ({','.join('?' * len(values))})"
            params.extend(values)
    out = []
    for service, key, skey, value in snap.rows(sql + " ORDER BY service, key, skey", params):
        skey, value = bytes(skey), bytes(value)
        out.append(
            {
                "partition_key": partition_key_for(service, key),
                "service_name": service,
                "service_key": key,
                "key": skey.decode("utf-8", "replace"),
                "key_length": len(skey),
                "value_utf8": _utf8(value),
                "value": value,
                "value_length": len(value),
            }
        )
    return out


def _build_inbox(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    if not (snap.has_table("inbox") and snap.has_table("inv_status")):
        return []
    rows = snap.rows(
        "SELECT i.service, i.key, i.seq, i.id, s.data FROM inbox i "
        "JOIN inv_status s ON s.id = i.id WHERE s.status = 'inboxed' "
        "ORDER BY i.service, i.key, i.seq"
    )
    out = []
    for service, key, seq, inv, data in rows:
        s = decode_status(bytes(data))
        out.append(
            {
                "partition_key": partition_key_for(service, key),
                "service_name": service,
                "service_key": key,
                "id": _inv_text(bytes(inv)),
                "sequence_number": int(seq),
                "created_at": s.created_at,
            }
        )
    return out


def _build_keyed_service_status(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    if not (snap.has_table("locks") and snap.has_table("inv_status")):
        return []
    rows = snap.rows(
        "SELECT l.service, l.key, l.id FROM locks l JOIN inv_status s ON s.id = l.id "
        "WHERE s.status != 'completed' ORDER BY l.service, l.key"
    )
    return [
        {
            "partition_key": partition_key_for(service, key),
            "service_name": service,
            "service_key": key,
            "invocation_id": _inv_text(bytes(inv)),
        }
        for service, key, inv in rows
    ]


def _build_promise(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    decode: Callable[[bytes], Any] | None = getattr(partition_state, "decode_promise", None)
    if decode is None or not snap.has_table("promises"):
        return []
    out = []
    for service, key, name, data in snap.rows(
        "SELECT service, key, name, data FROM promises ORDER BY service, key, name"
    ):
        try:
            result = decode(bytes(data)).result
        except (msgspec.DecodeError, AttributeError):
            continue
        row: dict[str, Any] = {
            "partition_key": partition_key_for(service, key),
            "service_name": service,
            "service_key": key,
            "key": name,
            "completed": result is not None,
        }
        if isinstance(result, Result):
            if result.ok and result.value is not None:
                row["completion_success_value"] = result.value
                row["completion_success_value_utf8"] = _utf8(result.value)
            elif not result.ok:
                row["completion_failure"] = completion_failure_text(result)
        out.append(row)
    return out


# ---- schema registry ---------------------------------------------------------------------------


def _build_deployment(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    deps = sorted(snap.schema.deployments.values(), key=lambda d: d.created_at_ms)
    return [
        {
            "id": d.id,
            "ty": "http",
            "endpoint": d.uri,
            "created_at": d.created_at_ms,
            "min_service_protocol_version": d.min_protocol_version,
            "max_service_protocol_version": d.max_protocol_version,
            "services": sorted(d.services),
        }
        for d in deps
    ]


def _build_service(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    return [
        {
            "name": svc.name,
            "revision": svc.revision,
            "public": svc.public,
            "ty": _SERVICE_TYPES[svc.ty],
            "deployment_id": svc.deployment_id,
        }
        for svc in sorted(snap.schema.services.values(), key=lambda s: s.name)
    ]


# ---- registry ----------------------------------------------------------------------------------

Rows = Callable[[Snapshot, Restriction], list[dict[str, Any]]]
Batches = Callable[[Snapshot, Scan], Iterator[Any]]


def _from_rows(name: str, rows: Rows) -> Batches:
    def batches(snap: Snapshot, scan: Scan) -> Iterator[Any]:
        table = pa.Table.from_pylist(rows(snap, scan.restriction), schema=TABLE_SCHEMAS[name])
        yield from table.to_batches()

    return batches


@dataclass(frozen=True, slots=True)
class Builder:
    """How to fill a table, and which string columns' constraints it can use."""

    batches: Batches
    pushdown: frozenset[str] = frozenset()


_ID: Final = frozenset({"id"})
_ID_STATUS_SERVICE: Final = frozenset({"id", "status", "target_service_name"})

#: The tables undying has data for; the others are always empty.
BUILDERS: Final[dict[str, Builder]] = {
    "sys_invocation": Builder(
        lambda snap, scan: invocation_batches(snap.conn, scan, snap.now_ms), _ID_STATUS_SERVICE
    ),
    "sys_invocation_status": Builder(
        lambda snap, scan: invocation_status_batches(snap.conn, scan, snap.now_ms),
        _ID_STATUS_SERVICE,
    ),
    "sys_invocation_state": Builder(
        lambda snap, scan: invocation_state_batches(snap.conn, scan, snap.now_ms), _ID
    ),
    "sys_journal": Builder(lambda snap, scan: journal_batches(snap.conn, scan, snap.schema), _ID),
    "sys_journal_events": Builder(lambda snap, scan: journal_event_batches(snap.conn, scan), _ID),
    "state": Builder(_from_rows("state", _build_state), frozenset({"service_name", "service_key"})),
    "sys_inbox": Builder(_from_rows("sys_inbox", _build_inbox)),
    "sys_keyed_service_status": Builder(
        _from_rows("sys_keyed_service_status", _build_keyed_service_status)
    ),
    "sys_promise": Builder(_from_rows("sys_promise", _build_promise)),
    "sys_deployment": Builder(_from_rows("sys_deployment", _build_deployment)),
    "sys_service": Builder(_from_rows("sys_service", _build_service)),
}


def table_batches(name: str, snap: Snapshot, scan: Scan | None = None) -> Iterator[Any]:
    """The record batches of table ``name`` for ``scan`` (None: the whole table)."""
    builder = BUILDERS.get(name)
    if builder is None:
        return iter(())
    scan = scan or Scan()
    usable = {k: v for k, v in scan.restriction.items() if k in builder.pushdown}
    if len(usable) != len(scan.restriction):
        scan = Scan(scan.columns, usable, scan.predicate, scan.exact, scan.fetch, scan.top)
    return builder.batches(snap, scan)


def build_table(name: str, snap: Snapshot, restriction: Restriction | None = None) -> Any:
    """The Arrow table ``name`` (``pyarrow.Table``), possibly restricted."""
    columns = snap.columns.get(name)
    scan = Scan(columns=columns, restriction=restriction or {})
    schema = TABLE_SCHEMAS[name]
    return pa.Table.from_batches(list(table_batches(name, snap, scan)), schema=schema)
