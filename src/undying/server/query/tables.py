"""Building the introspection tables from undying's storage, as Arrow tables.

Each builder reads one snapshot (a read transaction on its own SQLite connection) plus the schema
registry, and returns a ``pyarrow.Table`` with exactly the columns of
:data:`~undying.server.query.schemas.TABLE_SCHEMAS`. A builder may be given a
:class:`Restriction`: values some columns must have (taken from the query's filters), so that
``WHERE id = 'inv_…'`` reads one invocation instead of all of them. A restriction is only ever a
superset of the rows the query needs; the SQL engine still applies the query's own filters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]

from undying import _version
from undying.errors import InvalidIdError
from undying.protocol.ids import InvocationId, partition_key_for
from undying.server.partition import state as partition_state
from undying.server.partition.records import FailureInfo, Result
from undying.server.partition.state import InvocationStatus, decode_status
from undying.server.query.journal import JournalRow, command_type_name, render_journal
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
]

#: ``(True, values)``: the column's value is one of ``values``; ``(False, values)``: it is none
#: of them.
Constraint = tuple[bool, frozenset[str]]
#: Constraints per column name; columns not mentioned are unconstrained.
Restriction = Mapping[str, Constraint]

_RAW_STATUSES: Final = ("scheduled", "inboxed", "invoked", "suspended", "paused", "completed")
#: Which ``sys_invocation.status`` values each stored status can show as.
_PUBLIC_STATUSES: Final[dict[str, tuple[str, ...]]] = {
    "scheduled": ("scheduled",),
    "inboxed": ("pending",),
    "invoked": ("running", "backing-off"),
    "suspended": ("suspended",),
    "paused": ("paused",),
    "completed": ("completed",),
}
#: Reason phrases Restate prints after an error code (``[500 Internal] …``).
_CODE_NAMES: Final[dict[int, str]] = {
    400: "Bad request",
    404: "Not found",
    409: "Aborted",
    410: "Gone",
    415: "Unsupported media type",
    470: "Not ready",
    500: "Internal",
    570: "Journal mismatch",
    571: "Protocol violation",
}
_SERVICE_TYPES: Final = {
    "Service": "service",
    "VirtualObject": "virtual_object",
    "Workflow": "workflow",
}
_EVENT_JSON: Final = msgspec.json.Decoder()
_JSON: Final = msgspec.json.Encoder()
_SQL_CHUNK: Final = 500
#: ``sys_journal`` columns that need the entry decoded.
_RENDERED_JOURNAL_COLUMNS: Final = frozenset(
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


def public_status(s: InvocationStatus, now_ms: int) -> str:
    """The status ``sys_invocation`` shows for a stored status."""
    if s.status == "inboxed":
        return "pending"
    if s.status == "invoked":
        return "backing-off" if _backing_off(s, now_ms) else "running"
    return s.status


def failure_text(f: FailureInfo) -> str:
    """``[500 Internal] message`` plus the stack trace on the next lines, as Restate shows it."""
    name = _CODE_NAMES.get(f.code)
    code = f"{f.code} {name}" if name else str(f.code)
    text = f"[{code}] {f.message}"
    if f.stacktrace:
        text += "\n" + f.stacktrace
    return text


def completion_failure_text(r: Result) -> str:
    """``[409] killed``: a terminal failure as ``completion_failure`` shows it."""
    return f"[{r.code}] {r.message}"


def _backing_off(s: InvocationStatus, now_ms: int) -> bool:
    return s.next_retry_at is not None and s.next_retry_at > now_ms


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _inv_text(raw: bytes) -> str:
    return str(InvocationId.from_bytes(raw))


def _parse_inv(text: str) -> bytes | None:
    try:
        return InvocationId.parse(text).to_bytes()
    except (InvalidIdError, ValueError):
        return None


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(values), _SQL_CHUNK):
        yield values[i : i + _SQL_CHUNK]


class Snapshot:
    """One consistent read of the storage and the schema, for building tables.

    ``columns`` (per table) are the columns the query reads, when known: builders may leave
    the others empty.
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
        self._statuses: dict[tuple[Any, ...], list[InvocationStatus]] = {}

    def has_table(self, name: str) -> bool:
        if self._tables is None:
            self._tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        return name in self._tables

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def rows_by_ids(
        self, sql: str, ids: list[bytes] | None, tail: str = ""
    ) -> list[tuple[Any, ...]]:
        """``sql`` (a SELECT with a WHERE clause to extend) for all rows, or only ``ids``."""
        if ids is None:
            return self.rows(sql + tail)
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            out.extend(self.rows(f"{sql} AND id IN ({marks}){tail}", chunk))
        return out

    def statuses(
        self, ids: list[bytes] | None, raw_statuses: frozenset[str] | None
    ) -> list[InvocationStatus]:
        """Decoded invocation statuses, optionally only these ids / stored statuses."""
        key = (None if ids is None else tuple(ids), raw_statuses)
        cached = self._statuses.get(key)
        if cached is not None:
            return cached
        if not self.has_table("inv_status"):
            return []
        sql = "SELECT data FROM inv_status WHERE 1 = 1"
        params: list[Any] = []
        if raw_statuses is not None:
            sql += f" AND status IN ({','.join('?' * len(raw_statuses))})"
            params.extend(sorted(raw_statuses))
        if ids is None:
            rows = self.rows(sql, params)
        else:
            rows = []
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                rows.extend(self.rows(f"{sql} AND id IN ({marks})", [*params, *chunk]))
        out = [decode_status(bytes(r[0])) for r in rows]
        self._statuses[key] = out
        return out


# ---- restrictions ------------------------------------------------------------------------------


def _id_list(restriction: Restriction, column: str = "id") -> list[bytes] | None:
    """The raw invocation ids a restriction on an id column admits (None: any)."""
    c = restriction.get(column)
    if c is None or not c[0]:
        return None
    return sorted({raw for text in c[1] if (raw := _parse_inv(text)) is not None})


def _raw_status_filter(restriction: Restriction, public: bool) -> frozenset[str] | None:
    """The stored statuses that can satisfy a restriction on the status column."""
    c = restriction.get("status")
    if c is None:
        return None
    positive, values = c
    out = set()
    for raw in _RAW_STATUSES:
        shown = _PUBLIC_STATUSES[raw] if public else (raw,)
        if any((v in values) == positive for v in shown):
            out.add(raw)
    return None if len(out) == len(_RAW_STATUSES) else frozenset(out)


def _text_filter(restriction: Restriction, column: str) -> list[str] | None:
    c = restriction.get(column)
    if c is None or not c[0]:
        return None
    return sorted(c[1])


# ---- invocations -------------------------------------------------------------------------------


def _status_columns(s: InvocationStatus) -> dict[str, Any]:
    """The columns ``sys_invocation`` and ``sys_invocation_status`` share."""
    t = s.target
    source = s.source
    invoked_by_service = (
        source.caller_target.split("/", 1)[0] if source.caller_target is not None else None
    )
    result = s.result
    suspended = s.status == "suspended"
    scheduled = s.execute_at is not None
    return {
        "id": _inv_text(s.id),
        "target": t.display(),
        "target_service_name": t.service,
        "target_service_key": t.key,
        "target_handler_name": t.handler,
        "target_service_ty": t.service_ty,
        "idempotency_key": s.idempotency_key,
        "invoked_by": source.kind,
        "invoked_by_service_name": invoked_by_service,
        "invoked_by_id": _inv_text(source.caller) if source.caller is not None else None,
        "invoked_by_target": source.caller_target,
        "pinned_deployment_id": s.deployment_id,
        "pinned_service_protocol_version": s.protocol_version,
        "journal_size": s.journal_size,
        "journal_commands_size": s.commands,
        "created_at": s.created_at,
        "created_using_restate_version": _version.__version__,
        "modified_at": s.modified_at,
        "inboxed_at": s.inboxed_at,
        "scheduled_at": s.created_at if scheduled else None,
        "scheduled_start_at": s.execute_at,
        "running_at": s.running_at,
        "completed_at": s.completed_at,
        "completion_retention": s.completion_retention_ms,
        "journal_retention": s.journal_retention_ms,
        "suspended_waiting_for_completions": list(s.waiting_completions) if suspended else None,
        "suspended_waiting_for_signals": list(s.waiting_signals) if suspended else None,
        "completion_result": (
            None
            if result is None or s.status != "completed"
            else ("success" if result.ok else "failure")
        ),
        "completion_failure": (
            completion_failure_text(result)
            if result is not None and not result.ok and s.status == "completed"
            else None
        ),
    }


def _has_attempt_state(s: InvocationStatus) -> bool:
    """Whether the invoker has something to show for it (running, retrying, paused on failure)."""
    return s.status == "invoked" or (s.status == "paused" and s.last_failure is not None)


def _state_columns(s: InvocationStatus, now_ms: int) -> dict[str, Any]:
    """The attempt columns of ``sys_invocation_state`` (and of ``sys_invocation``)."""
    backing_off = _backing_off(s, now_ms)
    running = s.status == "invoked" and not backing_off
    last_start = s.last_start_at
    if running and s.next_retry_at is not None:
        # The current attempt is a retry: it started when the backoff ended.
        last_start = s.next_retry_at if last_start is None else max(last_start, s.next_retry_at)
    f = s.last_failure
    return {
        "in_flight": running,
        "retry_count": s.retry_count + 1 if running else s.retry_count,
        "last_start_at": last_start,
        "next_retry_at": s.next_retry_at if backing_off else None,
        "last_attempt_deployment_id": s.deployment_id,
        "last_attempt_server": s.server,
        "last_failure": failure_text(f) if f is not None else None,
        "last_failure_error_code": f.doc_code if f is not None else None,
        "last_failure_related_command_index": (f.related_command_index if f is not None else None),
        "last_failure_related_command_name": f.related_command_name if f is not None else None,
        "last_failure_related_command_type": (
            _command_type(f.related_command_type) if f is not None else None
        ),
    }


def _command_type(code: int | None) -> str | None:
    if code is None:
        return None
    return command_type_name(code) or str(code)


def _build_invocation(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    now = snap.now_ms
    out = []
    for s in snap.statuses(_id_list(restriction), _raw_status_filter(restriction, public=True)):
        row = _status_columns(s)
        if _has_attempt_state(s):
            row.update(_state_columns(s, now))
            row.pop("in_flight")
        row["status"] = public_status(s, now)
        out.append(row)
    return out


def _build_invocation_status(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    out = []
    for s in snap.statuses(_id_list(restriction), _raw_status_filter(restriction, public=False)):
        row = _status_columns(s)
        row["partition_key"] = InvocationId.from_bytes(s.id).partition_key
        row["status"] = s.status
        out.append(row)
    return out


def _build_invocation_state(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    out = []
    for s in snap.statuses(_id_list(restriction), frozenset({"invoked", "paused"})):
        if not _has_attempt_state(s):
            continue
        row = _state_columns(s, snap.now_ms)
        inv = InvocationId.from_bytes(s.id)
        row["partition_key"] = inv.partition_key
        row["id"] = str(inv)
        out.append(row)
    return out


# ---- journals ----------------------------------------------------------------------------------


def _build_journal(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    if not snap.has_table("journal"):
        return []
    rows = snap.rows_by_ids(
        "SELECT id, idx, type, appended_at, payload FROM journal WHERE 1 = 1",
        _id_list(restriction),
        " ORDER BY id, idx",
    )
    out: list[dict[str, Any]] = []
    needed = snap.columns.get("sys_journal")
    render = needed is None or not needed.isdisjoint(_RENDERED_JOURNAL_COLUMNS)
    start = 0
    while start < len(rows):
        inv = bytes(rows[start][0])
        end = start
        while end < len(rows) and bytes(rows[end][0]) == inv:
            end += 1
        journal = rows[start:end]
        entries = [(int(r[2]), bytes(r[4])) for r in journal]
        rendered = (
            render_journal(entries, snap.schema) if render else [JournalRow("") for _ in entries]
        )
        pk = InvocationId.from_bytes(inv).partition_key
        text = _inv_text(inv)
        for r, j in zip(journal, rendered, strict=True):
            raw = bytes(r[4])
            out.append(
                {
                    "partition_key": pk,
                    "id": text,
                    "index": int(r[1]),
                    "entry_type": j.entry_type,
                    "name": j.name,
                    "invoked_id": j.invoked_id,
                    "invoked_target": j.invoked_target,
                    "sleep_wakeup_at": j.sleep_wakeup_at,
                    "promise_name": j.promise_name,
                    "raw": raw,
                    "raw_length": len(raw),
                    "version": 2,
                    "entry_json": j.entry_json,
                    "entry_lite_json": j.entry_lite_json,
                    "appended_at": int(r[3]),
                }
            )
        start = end
    return out


def _event_json(raw: bytes) -> str:
    try:
        event = _EVENT_JSON.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace")
    if isinstance(event, dict):
        if isinstance(event.get("related_command_type"), int):
            event["related_command_type"] = _command_type(event["related_command_type"])
        event = {k: v for k, v in event.items() if v is not None}
    return _JSON.encode(event).decode()


def _build_journal_events(snap: Snapshot, restriction: Restriction) -> list[dict[str, Any]]:
    if not snap.has_table("journal_events"):
        return []
    rows = snap.rows_by_ids(
        "SELECT id, after_index, appended_at, event_type, event FROM journal_events WHERE 1 = 1",
        _id_list(restriction),
        " ORDER BY id, seq",
    )
    out = []
    for inv, after, at, event_type, event in rows:
        iid = InvocationId.from_bytes(bytes(inv))
        out.append(
            {
                "partition_key": iid.partition_key,
                "id": str(iid),
                "after_journal_entry_index": max(int(after), 0),
                "appended_at": int(at),
                "event_type": event_type,
                "event_json": _event_json(bytes(event)),
            }
        )
    return out


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


@dataclass(frozen=True, slots=True)
class Builder:
    """How to fill a table, and which columns' constraints it can use."""

    build: Callable[[Snapshot, Restriction], list[dict[str, Any]]]
    pushdown: frozenset[str] = frozenset()


_ID: Final = frozenset({"id"})
_ID_STATUS: Final = frozenset({"id", "status"})

#: The tables undying has data for; the others are always empty.
BUILDERS: Final[dict[str, Builder]] = {
    "sys_invocation": Builder(_build_invocation, _ID_STATUS),
    "sys_invocation_status": Builder(_build_invocation_status, _ID_STATUS),
    "sys_invocation_state": Builder(_build_invocation_state, _ID),
    "sys_journal": Builder(_build_journal, _ID),
    "sys_journal_events": Builder(_build_journal_events, _ID),
    "state": Builder(_build_state, frozenset({"service_name", "service_key"})),
    "sys_inbox": Builder(_build_inbox),
    "sys_keyed_service_status": Builder(_build_keyed_service_status),
    "sys_promise": Builder(_build_promise),
    "sys_deployment": Builder(_build_deployment),
    "sys_service": Builder(_build_service),
}


def build_table(name: str, snap: Snapshot, restriction: Restriction | None = None) -> Any:
    """The Arrow table ``name`` (``pyarrow.Table``), possibly restricted."""
    schema = TABLE_SCHEMAS[name]
    builder = BUILDERS.get(name)
    if builder is None:
        return schema.empty_table()
    usable = {k: v for k, v in (restriction or {}).items() if k in builder.pushdown}
    return pa.Table.from_pylist(builder.build(snap, usable), schema=schema)
