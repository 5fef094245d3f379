"""Latency of the admin ``/query`` endpoint on a large store: ``python -m bench.query``.

Writes a storage file with ``--invocations`` invocations and about ``--journal`` journal
entries (:mod:`bench.query_data`, through the partition store), then runs the queries the
official CLI and a UI send (:data:`QUERIES`) through the ``/query`` ASGI handler, in-process,
with the accept header the CLI uses for each, and reports per query the median and max time
until the whole response body was sent, the body size and the row count.

The clock of the engine is fixed (the data set's ``now``), so the answers are the same every
run. Queries marked heavy (dumps of the whole journal) run once and their answer is only
counted in bytes. ``--keep PATH`` reuses (or keeps) the storage file; ``--json FILE`` saves the
numbers; ``--only TEXT`` runs the queries whose name contains it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from undying.server.http.types import Message
from undying.server.query import QueryEngine, handle_query
from undying.testing.query_data import DataSet, load_schema, populate

#: The CLI's "big SELECT" (invocations list/describe, services status), without its WHERE.
BIG_SELECT = """SELECT
            inv.id, inv.target, inv.target_service_ty, inv.idempotency_key, inv.status,
            inv.created_at, inv.modified_at as state_modified_at, inv.pinned_deployment_id,
            inv.retry_count as num_retries, inv.last_failure as last_failure_message,
            inv.last_failure_related_entry_index as last_failure_entry_index,
            inv.last_failure_related_entry_name as last_failure_entry_name,
            inv.last_failure_related_entry_type as last_failure_entry_ty,
            inv.last_attempt_deployment_id, inv.last_attempt_server, inv.next_retry_at,
            inv.last_start_at, inv.invoked_by_id, inv.invoked_by_target, inv.trace_id,
            inv.completion_result, inv.completion_failure,
            dp.id IS NOT NULL as pinned_deployment_exists
        FROM sys_invocation inv
        LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id
        """

JOURNAL_OF = """SELECT sj.index, sj.entry_type, sj.completed, sj.invoked_id, sj.invoked_target,
            sj.sleep_wakeup_at, sj.name, sj.promise_name, sj.version, sj.entry_json,
            sj.appended_at
        FROM sys_journal sj WHERE sj.id = '{id}' ORDER BY index DESC LIMIT 100"""


@dataclass(frozen=True)
class Query:
    """One benchmarked query: who sends it, its SQL (``{id}``, ``{ids}`` filled in), format."""

    name: str
    who: str
    sql: str
    json: bool = True
    #: Run once, and the answer not kept (a dump of a whole large table).
    heavy: bool = False


QUERIES: list[Query] = [
    Query(
        "list: count non-completed",
        "cli",
        "SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000) "
        "WHERE status != 'completed'",
        json=False,
    ),
    Query(
        "list: ids of non-completed",
        "cli",
        "SELECT id FROM sys_invocation inv WHERE status != 'completed' "
        "ORDER BY inv.created_at DESC, inv.id LIMIT 100",
    ),
    Query(
        "list: rows of 100 ids",
        "cli",
        BIG_SELECT + "WHERE inv.id in ({ids}) ORDER BY inv.created_at DESC, inv.id",
    ),
    Query(
        "list --all: ids",
        "cli",
        "SELECT id FROM sys_invocation inv ORDER BY inv.created_at DESC, inv.id LIMIT 100",
    ),
    Query(
        "describe: lookup", "cli", "SELECT id FROM sys_invocation inv WHERE inv.id = '{id}' LIMIT 1"
    ),
    Query(
        "describe: invocation",
        "cli",
        BIG_SELECT + "WHERE inv.id = '{id}' AND inv.id in ('{id}')",
    ),
    Query(
        "describe: schema probe",
        "cli",
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'sys_journal' "
        "AND column_name IN ('version', 'entry_json', 'appended_at')",
        json=False,
    ),
    Query("describe: journal", "cli", JOURNAL_OF),
    Query(
        "cancel: lookup",
        "cli",
        "SELECT id, target FROM sys_invocation_status WHERE id = '{id}' "
        "AND status != 'completed' LIMIT 500",
    ),
    Query(
        "services status: counts",
        "cli",
        "SELECT target_service_name, target_handler_name, status, COUNT(1) as num_invocations, "
        "MIN(created_at) as oldest_at, FIRST_VALUE(id ORDER BY created_at ASC) as "
        "oldest_invocation FROM sys_invocation WHERE target_service_name IN ('Greeter') "
        "GROUP BY target_service_name, target_handler_name, status",
    ),
    Query(
        "services status: last 5",
        "cli",
        "SELECT id FROM sys_invocation inv WHERE inv.target_service_name = 'Greeter' "
        "ORDER BY inv.created_at DESC, inv.id LIMIT 5",
    ),
    Query(
        "counts per status",
        "ui",
        "SELECT status, COUNT(*) AS n FROM sys_invocation GROUP BY status ORDER BY status",
    ),
    Query(
        "counts per service",
        "ui",
        "SELECT target_service_name, COUNT(*) AS n FROM sys_invocation "
        "GROUP BY target_service_name ORDER BY n DESC",
    ),
    Query(
        "page of a service",
        "ui",
        "SELECT id, target, status, created_at, retry_count FROM sys_invocation "
        "WHERE target_service_name = 'Counter' ORDER BY created_at DESC LIMIT 50",
    ),
    Query(
        "page with total (window)",
        "ui",
        "SELECT id, target, status, created_at, retry_count, last_failure, "
        "count(*) OVER () AS total FROM sys_invocation WHERE TRUE "
        "ORDER BY created_at DESC, id LIMIT 100",
    ),
    Query(
        "page, then total apart",
        "ui",
        "SELECT id, target, status, created_at, retry_count, last_failure FROM sys_invocation "
        "ORDER BY created_at DESC, id LIMIT 100",
    ),
    Query("total of the page", "ui", "SELECT COUNT(*) AS n FROM sys_invocation"),
    Query(
        "retrying invocations",
        "ui",
        "SELECT id, target, retry_count, last_failure FROM sys_invocation "
        "WHERE status IN ('backing-off', 'paused') ORDER BY created_at DESC LIMIT 50",
    ),
    Query(
        "last hour",
        "ui",
        "SELECT id, status FROM sys_invocation WHERE created_at > "
        "to_timestamp_millis({recent}) ORDER BY created_at DESC LIMIT 50",
    ),
    Query(
        "journal of one id",
        "ui",
        "SELECT index, entry_type, name, entry_json FROM sys_journal WHERE id = '{id}' "
        "ORDER BY index",
    ),
    Query("count journal entries", "user", "SELECT COUNT(*) AS n FROM sys_journal", json=False),
    Query(
        "journal join invocation (one id)",
        "user",
        "SELECT i.target, j.index, j.entry_type FROM sys_journal j JOIN sys_invocation i "
        "ON i.id = j.id WHERE i.id = '{id}' ORDER BY j.index",
    ),
    Query(
        "all completed ids",
        "user",
        "SELECT id, completed_at FROM sys_invocation WHERE status = 'completed'",
        json=True,
    ),
    Query("first journal entries", "user", "SELECT * FROM sys_journal LIMIT 10"),
    Query("whole journal", "user", "SELECT * FROM sys_journal", heavy=True),
    Query(
        "whole journal, some columns",
        "user",
        "SELECT id, index, entry_type, name FROM sys_journal",
        json=False,
        heavy=True,
    ),
]


class _Sink:
    def __init__(self, keep: bool = True) -> None:
        self.status = 0
        self.size = 0
        self.first_byte: float | None = None
        self.body = bytearray()
        self.keep = keep

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            return
        chunk = message.get("body", b"")
        if chunk and self.first_byte is None:
            self.first_byte = time.perf_counter()
        self.size += len(chunk)
        if self.keep or len(self.body) < 4096:
            self.body += chunk


async def run_query(
    engine: QueryEngine, sql: str, as_json: bool, keep: bool = True
) -> tuple[_Sink, float, float]:
    """One request through the handler: (sink, seconds to the end, seconds to the first byte)."""
    body = json.dumps({"query": sql}).encode()
    headers = [(b"content-type", b"application/json")]
    headers.append((b"accept", b"application/json" if as_json else b"*/*"))
    scope = {"type": "http", "method": "POST", "path": "/query", "headers": headers}
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    sink = _Sink(keep)
    start = time.perf_counter()
    await handle_query(engine, scope, receive, sink.send)
    end = time.perf_counter()
    first = (sink.first_byte or end) - start
    return sink, end - start, first


def _rows(sink: _Sink, as_json: bool) -> int:
    if not sink.keep:
        return -1
    if as_json:
        return len(json.loads(bytes(sink.body))["rows"])
    table = pa.ipc.open_stream(bytes(sink.body)).read_all()
    return int(table.num_rows)


def fill(sql: str, data: DataSet) -> str:
    live = [i for i, s in data.status.items() if s != "completed"]
    one = data.ids_with("backing-off")[0]
    recent = data.now_ms - 3_600_000
    ids = ", ".join(f"'{i}'" for i in live[:100])
    return sql.format(id=one, ids=ids, recent=recent)


async def measure(
    data: DataSet, repeat: int, only: Callable[[Query], bool]
) -> list[dict[str, Any]]:
    engine = data.engine()
    out = []
    for q in QUERIES:
        if not only(q):
            continue
        sql = fill(q.sql, data)
        times, firsts = [], []
        sink = None
        for _ in range(1 if q.heavy else repeat):
            sink, total, first = await run_query(engine, sql, q.json, keep=not q.heavy)
            times.append(total)
            firsts.append(first)
            if sink.status != 200:
                raise SystemExit(f"{q.name}: {sink.status} {bytes(sink.body)[:500]!r}")
        assert sink is not None
        count = _rows(sink, q.json)
        row: dict[str, Any] = {
            "name": q.name,
            "who": q.who,
            "format": "json" if q.json else "arrow",
            "median_ms": statistics.median(times) * 1000,
            "max_ms": max(times) * 1000,
            "first_byte_ms": statistics.median(firsts) * 1000,
            "rows": count,
            "bytes": sink.size,
        }
        out.append(row)
        rows = str(count) if count >= 0 else "-"
        print(
            f"{q.name:34} {q.who:5} {row['format']:5} {row['median_ms']:9.1f} "
            f"{row['max_ms']:9.1f} {row['first_byte_ms']:9.1f} {rows:>8} {row['bytes']:10}",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--invocations", type=int, default=100_000)
    p.add_argument("--journal", type=int, default=1_000_000, help="journal entries (about)")
    p.add_argument("--repeat", type=int, default=5, help="runs per query")
    p.add_argument("--keep", type=Path, help="storage file to reuse or keep")
    p.add_argument("--only", help="run the queries whose name contains this")
    p.add_argument("--json", type=Path, help="write the numbers here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "undying.db"
        stamp = path.with_suffix(".dataset.json")
        start = time.perf_counter()
        if path.exists() and stamp.exists():
            data = _load_dataset(path, stamp)
            print(f"reusing {path}", flush=True)
        else:
            path.unlink(missing_ok=True)
            data = asyncio.run(populate(path, args.invocations, args.journal))
            if args.keep:
                _save_dataset(data, stamp)
            print(
                f"wrote {len(data.status)} invocations, {data.journal_entries} journal entries "
                f"in {time.perf_counter() - start:.1f}s",
                flush=True,
            )
        print(
            f"{'query':34} {'who':5} {'fmt':5} {'p50 ms':>9} {'max ms':>9} {'1st B ms':>9} "
            f"{'rows':>8} {'bytes':>10}"
        )
        only = (lambda q: args.only in q.name) if args.only else (lambda q: True)
        results = asyncio.run(measure(data, args.repeat, only))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "invocations": len(data.status),
                    "journal_entries": data.journal_entries,
                    "python": sys.version,
                    "results": results,
                },
                indent=2,
            )
        )


def _save_dataset(data: DataSet, stamp: Path) -> None:
    stamp.write_text(
        json.dumps(
            {
                "now_ms": data.now_ms,
                "status": data.status,
                "journal_size": data.journal_size,
                "service": data.service,
                "created_at": data.created_at,
            }
        )
    )


def _load_dataset(path: Path, stamp: Path) -> DataSet:
    raw = json.loads(stamp.read_text())
    return DataSet(
        path,
        load_schema(path),
        raw["now_ms"],
        raw["status"],
        raw["journal_size"],
        raw["service"],
        raw["created_at"],
    )


if __name__ == "__main__":
    main()
