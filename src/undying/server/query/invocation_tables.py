"""``sys_invocation``, ``sys_invocation_status`` and ``sys_invocation_state`` from ``inv_status``.

Each table is built column by column, only for the columns the query reads (the others are
NULL), and only for the rows it can use:

- the filters on ``id`` (primary key), ``status`` (indexed stored status),
  ``target_service_name`` and ``created_at`` (indexed columns of ``inv_status``) become SQL
  conditions;
- the rest of the query's filter (:mod:`~undying.server.query.predicates`) is checked in Python
  on each decoded status;
- ``ORDER BY created_at [DESC] LIMIT n`` over an exactly understood filter reads ``inv_status``
  in ``created_at`` order and stops after ``n`` rows (and the rows tied with the n-th);
- a query reading only ``id``, ``status``, ``target_service_name``, ``created_at`` and
  ``partition_key`` does not decode the stored statuses at all (except running ones, whose
  public status depends on their retry timer).

Rows come in chunks of :data:`CHUNK`, so a large table is never held twice.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped]

from undying import _version
from undying.errors import InvalidIdError
from undying.protocol.ids import InvocationId
from undying.server.partition.records import FailureInfo, Result
from undying.server.partition.state import InvocationStatus, decode_status
from undying.server.query.journal import command_type_name
from undying.server.query.predicates import bounds, compile_predicate
from undying.server.query.scans import Restriction, Scan
from undying.server.query.schemas import TABLE_SCHEMAS

__all__ = [
    "CHUNK",
    "completion_failure_text",
    "failure_text",
    "invocation_batches",
    "invocation_state_batches",
    "invocation_status_batches",
    "invocation_text",
    "public_status",
]

#: Rows per built record batch.
CHUNK: Final = 8192
_SQL_CHUNK: Final = 500

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
#: Columns a query can read without decoding the stored statuses.
_LIGHT: Final = frozenset({"id", "status", "target_service_name", "created_at", "partition_key"})
#: The ``sys_invocation_state`` columns (also in ``sys_invocation``): the current attempt.
_ATTEMPT: Final = frozenset(
    {
        "in_flight",
        "retry_count",
        "last_start_at",
        "next_retry_at",
        "last_attempt_deployment_id",
        "last_attempt_server",
        "last_failure",
        "last_failure_error_code",
        "last_failure_related_command_index",
        "last_failure_related_command_name",
        "last_failure_related_command_type",
    }
)
_NOT_STARTED: Final = frozenset({"scheduled", "inboxed"})
#: Columns that are never NULL and hold integers: fine to pick the first rows by.
_SORTABLE: Final = frozenset({"created_at", "modified_at"})

# ---- ids ---------------------------------------------------------------------------------------

_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PAIRS: Final = [a + b for a in _ALPHABET for b in _ALPHABET]
_QUAD: Final = 62**4


def invocation_text(raw: bytes) -> str:
    """``inv_1…`` for a raw 24-byte id; the same as ``str(InvocationId.from_bytes(raw))``.

    Written out for speed (a query may print a hundred thousand of them): base 62 four
    digits at a time, each pair of digits from a table.
    """
    p, a, q = _PAIRS, _ALPHABET, _QUAD
    pk = int.from_bytes(raw[:8], "little")
    u = int.from_bytes(raw[8:], "little")
    pk, r1 = divmod(pk, q)
    pk, r2 = divmod(pk, q)
    u, q1 = divmod(u, q)
    u, q2 = divmod(u, q)
    u, q3 = divmod(u, q)
    u, q4 = divmod(u, q)
    u, q5 = divmod(u, q)
    return "".join(
        (
            "inv_1",
            a[pk // 3844],
            p[pk % 3844],
            p[r2 // 3844],
            p[r2 % 3844],
            p[r1 // 3844],
            p[r1 % 3844],
            p[u],
            p[q5 // 3844],
            p[q5 % 3844],
            p[q4 // 3844],
            p[q4 % 3844],
            p[q3 // 3844],
            p[q3 % 3844],
            p[q2 // 3844],
            p[q2 % 3844],
            p[q1 // 3844],
            p[q1 % 3844],
        )
    )


def _parse_inv(text: str) -> bytes | None:
    try:
        return InvocationId.parse(text).to_bytes()
    except (InvalidIdError, ValueError):
        return None


def _partition_key(raw: bytes) -> int:
    return int.from_bytes(raw[:8], "big")


# ---- values ------------------------------------------------------------------------------------


def public_status(s: Any, now_ms: int) -> str:
    """The status ``sys_invocation`` shows for a stored status."""
    if s.status == "inboxed":
        return "pending"
    if s.status == "invoked":
        return "backing-off" if _backing_off(s, now_ms) else "running"
    return str(s.status)


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


def _backing_off(s: Any, now_ms: int) -> bool:
    return s.next_retry_at is not None and s.next_retry_at > now_ms


def _has_attempt_state(s: InvocationStatus) -> bool:
    """Whether the invoker has something to show for it (running, retrying, paused on failure)."""
    return s.status == "invoked" or (s.status == "paused" and s.last_failure is not None)


def _command_type(code: int | None) -> str | None:
    if code is None:
        return None
    return command_type_name(code) or str(code)


def _attempt_columns(s: InvocationStatus, now_ms: int) -> dict[str, Any]:
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
        "last_failure_related_command_index": f.related_command_index if f is not None else None,
        "last_failure_related_command_name": f.related_command_name if f is not None else None,
        "last_failure_related_command_type": (
            _command_type(f.related_command_type) if f is not None else None
        ),
    }


def _completion_result(s: InvocationStatus) -> str | None:
    r = s.result
    if r is None or s.status != "completed":
        return None
    return "success" if r.ok else "failure"


def _completion_failure(s: InvocationStatus) -> str | None:
    r = s.result
    if r is None or r.ok or s.status != "completed":
        return None
    return completion_failure_text(r)


def _invoked_by_service(s: InvocationStatus) -> str | None:
    t = s.source.caller_target
    return t.split("/", 1)[0] if t is not None else None


def _waiting(values: Callable[[InvocationStatus], tuple[int, ...]]) -> Callable[[Any], Any]:
    return lambda s: list(values(s)) if s.status == "suspended" else None


#: Getters of the columns ``sys_invocation`` and ``sys_invocation_status`` share (and of the
#: columns always NULL in undying, which are absent here).
_SHARED: Final[dict[str, Callable[[Any], Any]]] = {
    "id": lambda s: invocation_text(s.id),
    "target": lambda s: s.target.display(),
    "target_service_name": lambda s: s.target.service,
    "target_service_key": lambda s: s.target.key,
    "target_handler_name": lambda s: s.target.handler,
    "target_service_ty": lambda s: s.target.service_ty,
    "idempotency_key": lambda s: s.idempotency_key,
    "invoked_by": lambda s: s.source.kind,
    "invoked_by_service_name": _invoked_by_service,
    "invoked_by_id": lambda s: (
        invocation_text(s.source.caller) if s.source.caller is not None else None
    ),
    "invoked_by_target": lambda s: s.source.caller_target,
    "pinned_deployment_id": lambda s: s.deployment_id,
    "pinned_service_protocol_version": lambda s: s.protocol_version,
    # Not started yet: no journal to speak of (its input is stored, as in Restate).
    "journal_size": lambda s: None if s.status in _NOT_STARTED else s.journal_size,
    "journal_commands_size": lambda s: None if s.status in _NOT_STARTED else s.commands,
    "created_at": lambda s: s.created_at,
    "created_using_restate_version": lambda s: _version.__version__,
    "modified_at": lambda s: s.modified_at,
    "inboxed_at": lambda s: s.inboxed_at,
    "scheduled_at": lambda s: s.created_at if s.execute_at is not None else None,
    "scheduled_start_at": lambda s: s.execute_at,
    "running_at": lambda s: s.running_at,
    "completed_at": lambda s: s.completed_at,
    "completion_retention": lambda s: s.completion_retention_ms,
    "journal_retention": lambda s: s.journal_retention_ms,
    "suspended_waiting_for_completions": _waiting(lambda s: s.waiting_completions),
    "suspended_waiting_for_signals": _waiting(lambda s: s.waiting_signals),
    "completion_result": _completion_result,
    "completion_failure": _completion_failure,
    "partition_key": lambda s: _partition_key(s.id),
}


def _getters(table: str, now_ms: int) -> dict[str, Callable[[Any], Any]]:
    """Column getters of ``table`` for one status; columns without data give None."""
    out: dict[str, Callable[[Any], Any]] = {n: _none for n in TABLE_SCHEMAS[table].names}
    if table != "sys_invocation_state":
        out.update({n: g for n, g in _SHARED.items() if n in out})
    if table != "sys_invocation_status":
        for name in _ATTEMPT:
            if name in out:
                out[name] = _attempt_getter(name, now_ms)
    if table == "sys_invocation":
        out["status"] = lambda s: public_status(s, now_ms)
    elif table == "sys_invocation_status":
        out["status"] = lambda s: s.status
    else:
        out["id"] = _SHARED["id"]
        out["partition_key"] = _SHARED["partition_key"]
    return out


def _none(s: Any) -> None:
    return None


def _attempt_getter(name: str, now_ms: int) -> Callable[[Any], Any]:
    def get(s: Any) -> Any:
        if not _has_attempt_state(s):
            return None
        return _attempt_columns(s, now_ms)[name]

    return get


# ---- reading -----------------------------------------------------------------------------------


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


def _id_list(restriction: Restriction) -> list[bytes] | None:
    """The raw invocation ids a restriction on ``id`` admits (None: any)."""
    c = restriction.get("id")
    if c is None or not c[0]:
        return None
    return sorted({raw for text in c[1] if (raw := _parse_inv(text)) is not None})


def _text_list(restriction: Restriction, column: str) -> list[str] | None:
    c = restriction.get(column)
    if c is None or not c[0]:
        return None
    return sorted(c[1])


def _has_index_columns(conn: sqlite3.Connection) -> bool:
    """Whether ``inv_status`` has the ``service`` and ``created_at`` columns."""
    names = {r[1] for r in conn.execute("PRAGMA table_info(inv_status)")}
    return {"service", "created_at"} <= names


def _partitions(conn: sqlite3.Connection) -> list[int]:
    return [int(r[0]) for r in conn.execute("SELECT DISTINCT partition FROM inv_status")]


def _conditions(
    conn: sqlite3.Connection,
    table: str,
    scan: Scan,
    raw_statuses: frozenset[str] | None,
    indexed: bool,
) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``inv_status`` that every row the scan can use satisfies."""
    where: list[str] = []
    params: list[Any] = []
    if raw_statuses is not None and _id_list(scan.restriction) is not None:
        where.append(f"status IN ({','.join('?' * len(raw_statuses))})")
        params.extend(sorted(raw_statuses))
    elif raw_statuses is not None:
        # The status index starts with the partition: name them all so that it is used.
        parts = _partitions(conn)
        where.append(f"partition IN ({','.join('?' * len(parts))})")
        params.extend(parts)
        where.append(f"status IN ({','.join('?' * len(raw_statuses))})")
        params.extend(sorted(raw_statuses))
    if indexed and table != "sys_invocation_state":
        services = _text_list(scan.restriction, "target_service_name")
        if services is not None:
            where.append(f"service IN ({','.join('?' * len(services))})")
            params.extend(services)
        lo, hi = bounds(scan.predicate, "created_at")
        if lo is not None:
            where.append("created_at >= ?")
            params.append(lo)
        if hi is not None:
            where.append("created_at <= ?")
            params.append(hi)
    return where, params


def _read(
    conn: sqlite3.Connection,
    table: str,
    scan: Scan,
    now_ms: int,
    raw_statuses: frozenset[str] | None,
) -> Iterator[list[Any]]:
    """Chunks of the decoded statuses the scan can use, filtered."""
    if not _table_exists(conn, "inv_status"):
        return
    indexed = _has_index_columns(conn)
    where, params = _conditions(conn, table, scan, raw_statuses, indexed)
    ids = _id_list(scan.restriction)
    top = scan.top if scan.top is not None and scan.top.column in _SORTABLE else None
    ordered = top is not None and ids is None and indexed and top.column == "created_at"
    base = "SELECT data FROM inv_status"
    statements: list[tuple[str, list[Any]]] = []
    if ids is None:
        sql = base + (" WHERE " + " AND ".join(where) if where else "")
        if ordered:
            assert top is not None
            sql += f" ORDER BY created_at {'DESC' if top.descending else 'ASC'}"
        elif scan.fetch is not None and not where:
            sql += f" LIMIT {int(scan.fetch)}"
        statements.append((sql, params))
    else:
        for i in range(0, len(ids), _SQL_CHUNK):
            chunk = ids[i : i + _SQL_CHUNK]
            conds = [*where, f"id IN ({','.join('?' * len(chunk))})"]
            statements.append((base + " WHERE " + " AND ".join(conds), [*params, *chunk]))
    test = (
        compile_predicate(scan.predicate, _getters(table, now_ms))
        if scan.predicate is not None
        else None
    )
    rows = _decoded(conn, statements)
    if test is not None:
        rows = (s for s in rows if test(s))
    if top is None:
        yield from _chunked(rows)
    elif ordered:
        yield from _chunked(_first_ordered(rows, top.column, top.k))
    else:
        yield from _chunked(_first(rows, top.column, top.descending, top.k))


def _decoded(conn: sqlite3.Connection, statements: list[tuple[str, list[Any]]]) -> Iterator[Any]:
    for sql, params in statements:
        cur = conn.execute(sql, params)
        while rows := cur.fetchmany(CHUNK):
            for (data,) in rows:
                yield decode_status(bytes(data))


def _first_ordered(rows: Iterable[Any], column: str, k: int) -> Iterator[Any]:
    """The first ``k`` rows of rows already in order, and those tied with the k-th."""
    last: Any = None
    for count, s in enumerate(rows):
        value = getattr(s, column)
        if count >= k and value != last:
            return
        yield s
        last = value


def _first(rows: Iterable[Any], column: str, descending: bool, k: int) -> list[Any]:
    """The first ``k`` rows by ``column``, and those tied with the k-th."""
    everything = list(rows)
    if len(everything) <= k:
        return everything

    def key(s: Any) -> Any:
        return getattr(s, column)

    chosen = (heapq.nlargest if descending else heapq.nsmallest)(k, everything, key=key)
    edge = key(chosen[-1])
    seen = {id(s) for s in chosen}
    chosen.extend(s for s in everything if key(s) == edge and id(s) not in seen)
    return chosen


def _chunked(rows: Iterable[Any]) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for s in rows:
        chunk.append(s)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


# ---- building ----------------------------------------------------------------------------------


def _batch(table: str, rows: list[Any], scan: Scan, now_ms: int) -> Any:
    schema = TABLE_SCHEMAS[table]
    getters = _getters(table, now_ms)
    attempts: list[dict[str, Any] | None] | None = None
    if table != "sys_invocation_status" and (scan.columns is None or scan.columns & _ATTEMPT):
        attempts = [_attempt_columns(s, now_ms) if _has_attempt_state(s) else None for s in rows]
    arrays = []
    for f in schema:
        name = f.name
        if not scan.needs(name) and f.nullable:
            arrays.append(pa.nulls(len(rows), f.type))
        elif attempts is not None and name in _ATTEMPT:
            arrays.append(pa.array([None if a is None else a[name] for a in attempts], f.type))
        elif getters[name] is _none:
            arrays.append(pa.nulls(len(rows), f.type))
        else:
            get = getters[name]
            arrays.append(pa.array([get(s) for s in rows], f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# ---- the light path: indexed columns only ------------------------------------------------------

#: The ``inv_status`` column holding each light column.
_LIGHT_SQL: Final = {
    "id": "id",
    "status": "status",
    "target_service_name": "service",
    "created_at": "created_at",
    "partition_key": "id",
}
_SHOWN: Final = {raw: shown[0] for raw, shown in _PUBLIC_STATUSES.items()}


def _light(conn: sqlite3.Connection, scan: Scan) -> bool:
    """Whether the scan reads only indexed columns, and not a few rows by id or order."""
    needed = scan.read_columns()
    return (
        needed is not None
        and needed <= _LIGHT
        and scan.top is None
        and _id_list(scan.restriction) is None
        and _table_exists(conn, "inv_status")
        and _has_index_columns(conn)
    )


def _light_batches(
    conn: sqlite3.Connection,
    table: str,
    scan: Scan,
    now_ms: int,
    raw_statuses: frozenset[str] | None,
) -> Iterator[Any]:
    """The table from the indexed columns of ``inv_status``, without decoding statuses.

    Only the public status of running invocations (running or backing-off) needs the stored
    status: those few rows are read apart.
    """
    needed = scan.read_columns() or frozenset()
    schema = TABLE_SCHEMAS[table]
    sql_columns = sorted({_LIGHT_SQL[c] for c in needed})
    public = table == "sys_invocation" and "status" in needed
    where, params = _conditions(conn, table, scan, raw_statuses, True)
    if not needed and scan.predicate is None:  # COUNT(*): only how many rows
        sql = "SELECT COUNT(*) FROM inv_status" + (" WHERE " + " AND ".join(where) if where else "")
        count = int(conn.execute(sql, params).fetchone()[0])
        if scan.fetch is not None:
            count = min(count, scan.fetch)
        for start in range(0, count, CHUNK):
            yield _blank(schema, min(CHUNK, count - start))
        return
    select = f"SELECT {', '.join(sql_columns) or '1'} FROM inv_status"
    conds = [*where, "status != 'invoked'"] if public else where
    plain = select + (" WHERE " + " AND ".join(conds) if conds else "")
    limit = scan.fetch if not where else None
    if limit is not None:
        plain += f" LIMIT {int(limit)}"
    positions = {c: i for i, c in enumerate(sql_columns)}
    convert: dict[str, Callable[[Any], Any]] = {
        "id": invocation_text,
        "partition_key": _partition_key,
        # Running invocations come with their public status already.
        "status": (lambda v: _SHOWN.get(v, v)) if public else str,
        "target_service_name": lambda v: v,
        "created_at": lambda v: v,
    }
    getters = {c: _light_getter(positions[_LIGHT_SQL[c]], convert[c]) for c in needed}
    test = compile_predicate(scan.predicate, getters) if scan.predicate is not None else None

    def rows() -> Iterator[tuple[Any, ...]]:
        count = 0
        for row in _fetch(conn, plain, params):
            count += 1
            yield row
        if not public or (raw_statuses is not None and "invoked" not in raw_statuses):
            return
        if limit is not None and count >= limit:
            return
        parts = _partitions(conn)
        running = [*where, f"partition IN ({','.join('?' * len(parts))})", "status = 'invoked'"]
        sql = "SELECT data FROM inv_status WHERE " + " AND ".join(running)
        for (data,) in _fetch(conn, sql, [*params, *parts]):
            s = decode_status(bytes(data))
            values = {
                "id": s.id,
                "status": public_status(s, now_ms),
                "service": s.target.service,
                "created_at": s.created_at,
            }
            yield tuple(values[c] for c in sql_columns)
            count += 1
            if limit is not None and count >= limit:
                return

    source: Iterable[tuple[Any, ...]] = rows()
    if test is not None:
        source = (t for t in source if test(t))
    for chunk in _chunked(source):
        arrays = []
        for f in schema:
            name = f.name
            if name in needed:
                values = [getters[name](t) for t in chunk]
                arrays.append(pa.array(values, f.type))
            elif f.nullable:
                arrays.append(pa.nulls(len(chunk), f.type))
            else:  # status, not read: any value will do
                arrays.append(pa.repeat(pa.scalar("", f.type), len(chunk)))
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _blank(schema: Any, n: int) -> Any:
    """``n`` rows of nothing (NULLs; an empty string where NULL is not allowed)."""
    arrays = [
        pa.nulls(n, f.type) if f.nullable else pa.repeat(pa.scalar("", f.type), n) for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _light_getter(position: int, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda row: convert(row[position])


def _fetch(conn: sqlite3.Connection, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
    cur = conn.execute(sql, params)
    while rows := cur.fetchmany(CHUNK):
        yield from rows


def invocation_batches(conn: sqlite3.Connection, scan: Scan, now_ms: int) -> Iterator[Any]:
    """``sys_invocation`` (public status names, attempt columns of retrying invocations)."""
    raw = _raw_status_filter(scan.restriction, public=True)
    if _light(conn, scan):
        yield from _light_batches(conn, "sys_invocation", scan, now_ms, raw)
        return
    for rows in _read(conn, "sys_invocation", scan, now_ms, raw):
        yield _batch("sys_invocation", rows, scan, now_ms)


def invocation_status_batches(conn: sqlite3.Connection, scan: Scan, now_ms: int) -> Iterator[Any]:
    """``sys_invocation_status`` (stored status names, no attempt columns)."""
    raw = _raw_status_filter(scan.restriction, public=False)
    if _light(conn, scan):
        yield from _light_batches(conn, "sys_invocation_status", scan, now_ms, raw)
        return
    for rows in _read(conn, "sys_invocation_status", scan, now_ms, raw):
        yield _batch("sys_invocation_status", rows, scan, now_ms)


def invocation_state_batches(conn: sqlite3.Connection, scan: Scan, now_ms: int) -> Iterator[Any]:
    """``sys_invocation_state``: one row per invocation with an attempt to show."""
    plain = Scan(columns=None, restriction=scan.restriction, predicate=scan.predicate)
    live = frozenset({"invoked", "paused"})
    for rows in _read(conn, "sys_invocation_state", plain, now_ms, live):
        kept = [s for s in rows if _has_attempt_state(s)]
        if kept:
            yield _batch("sys_invocation_state", kept, scan, now_ms)
