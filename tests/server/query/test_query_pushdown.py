"""Reading less never changes an answer: every query gives the same rows with the pushdown
(restricted, column-pruned, top-k, chunked and light table builds) as over whole tables.

The data set is the benchmark's (``undying.testing.query_data``) at a small scale: a few
thousand invocations in every state, ten journal entries each, over four partitions.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from undying.server.query.encoding import json_rows
from undying.testing import poll_until
from undying.testing.query_data import DataSet, populate

INVOCATIONS = 3_000
JOURNAL = 30_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DataSet:
    path: Path = tmp_path_factory.mktemp("pushdown") / "undying.db"
    return asyncio.run(populate(path, INVOCATIONS, JOURNAL))


def _rows(data: DataSet, sql: str, *, pushdown: bool) -> list[dict[str, Any]]:
    table = asyncio.run(data.engine(pushdown=pushdown).execute(sql))
    rows: list[dict[str, Any]] = json.loads(json_rows(table))["rows"]
    return rows


def _key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True)


def _fill(sql: str, data: DataSet) -> str:
    live = sorted(i for i, s in data.status.items() if s != "completed")
    done = sorted(i for i, s in data.status.items() if s == "completed")
    suspended = sorted(data.ids_with("suspended"))
    locked = sorted(
        i for i in live if data.target[i].startswith("Counter/") and data.status[i] != "pending"
    )
    first, last = min(data.created_at.values()), max(data.created_at.values())
    return sql.format(
        live=suspended[0],
        done=done[0],
        ids=", ".join(f"'{i}'" for i in live[:40] + done[:40]),
        since=(first + last) // 2,
        start=first,
        prefix=done[0][:8],
        obj=data.target[locked[0]].rsplit("/", 1)[0],
    )


#: Queries whose answer is fully determined (ORDER BY all the way, or aggregates).
ORDERED = [
    # the official CLI's
    "SELECT id FROM sys_invocation inv WHERE status != 'completed' "
    "ORDER BY inv.created_at DESC, inv.id LIMIT 100",
    "SELECT id FROM sys_invocation inv ORDER BY inv.created_at DESC, inv.id LIMIT 100",
    "SELECT id FROM sys_invocation inv WHERE inv.target_service_name = 'Greeter' "
    "ORDER BY inv.created_at DESC, inv.id LIMIT 5",
    "SELECT target_service_name, target_handler_name, status, COUNT(1) AS n, "
    "MIN(created_at) AS oldest_at, FIRST_VALUE(id ORDER BY created_at ASC) AS oldest "
    "FROM sys_invocation WHERE target_service_name IN ('Greeter', 'Counter') "
    "GROUP BY target_service_name, target_handler_name, status ORDER BY 1, 2, 3",
    "SELECT COUNT(1) AS n FROM sys_invocation_status WHERE status == 'inboxed' "
    "AND target_service_name IN ('Counter')",
    "SELECT id, target FROM sys_invocation_status WHERE id = '{live}' "
    "AND status != 'completed' LIMIT 500",
    "SELECT id, target FROM sys_invocation_status WHERE id = '{done}' "
    "AND status = 'completed' LIMIT 500",
    "SELECT id, status, retry_count, last_failure FROM sys_invocation "
    "WHERE id IN ({ids}) ORDER BY created_at DESC, id",
    "SELECT id FROM sys_invocation_status WHERE ((target = '{obj}' AND "
    "target_service_ty = 'service') OR (target LIKE '{obj}/%' AND "
    "target_service_ty != 'service')) AND status != 'completed' ORDER BY id",
    # counts, the UI's way
    "SELECT COUNT(*) AS n FROM sys_invocation",
    "SELECT COUNT(1) AS n FROM (SELECT * FROM sys_invocation inv LIMIT 500)",
    "SELECT COUNT(1) AS n FROM (SELECT * FROM sys_invocation inv LIMIT 5000) "
    "WHERE status != 'completed'",
    "SELECT status, COUNT(*) AS n FROM sys_invocation GROUP BY status ORDER BY status",
    "SELECT status, COUNT(*) AS n FROM sys_invocation_status GROUP BY status ORDER BY status",
    "SELECT target_service_name AS s, status, COUNT(*) AS n FROM sys_invocation "
    "GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT COUNT(*) AS n FROM sys_invocation WHERE status = 'running'",
    "SELECT COUNT(*) AS n FROM sys_invocation WHERE status IN ('backing-off', 'paused')",
    "SELECT COUNT(*) AS n, COUNT(id) AS ids, MIN(partition_key) AS pk FROM "
    "sys_invocation_status WHERE status NOT IN ('completed', 'invoked')",
    # pages of the list with filters (service, key, status, time)
    "SELECT id, target, status, created_at, retry_count, count(*) OVER () AS total "
    "FROM sys_invocation WHERE target_service_name = 'Counter' AND status <> 'completed' "
    "ORDER BY created_at DESC, id LIMIT 50",
    "SELECT id, status FROM sys_invocation WHERE created_at >= to_timestamp_millis({since}) "
    "ORDER BY created_at DESC, id LIMIT 50",
    "SELECT id, status FROM sys_invocation WHERE created_at > to_timestamp_millis({since}) "
    "AND created_at < to_timestamp_millis({since}) + interval '10 seconds' ORDER BY id",
    "SELECT id FROM sys_invocation WHERE created_at BETWEEN to_timestamp_millis({start}) "
    "AND to_timestamp_millis({since}) AND target_service_name = 'Mailer' "
    "ORDER BY created_at ASC, id LIMIT 7",
    "SELECT id, modified_at FROM sys_invocation ORDER BY modified_at DESC, id LIMIT 25",
    "SELECT id, modified_at FROM sys_invocation WHERE status = 'completed' "
    "ORDER BY modified_at ASC, id LIMIT 25",
    "SELECT id, status FROM sys_invocation WHERE status = 'completed' "
    "AND completion_result = 'failure' ORDER BY created_at DESC, id LIMIT 20",
    "SELECT id FROM sys_invocation WHERE status <> 'completed' AND last_failure IS NOT NULL "
    "ORDER BY created_at DESC, id",
    "SELECT id FROM sys_invocation WHERE target_service_key = 'key-3' ORDER BY id",
    "SELECT id FROM sys_invocation WHERE id LIKE '{prefix}%' ORDER BY id",
    "SELECT id FROM sys_invocation WHERE target NOT LIKE 'Greeter%' AND status = 'suspended' "
    "ORDER BY created_at DESC, id LIMIT 30",
    "SELECT id FROM sys_invocation WHERE id = '{live}' OR status = 'pending' ORDER BY id",
    "SELECT id FROM sys_invocation WHERE (status = 'paused' OR target_service_name = 'Checkout')"
    " AND created_at > to_timestamp_millis({since}) ORDER BY id",
    "SELECT id FROM sys_invocation WHERE retry_count > 2 ORDER BY id",
    "SELECT id FROM sys_invocation WHERE NOT (status = 'completed') ORDER BY created_at, id "
    "LIMIT 10",
    # joins and aggregates over invocations and journals
    "SELECT i.target_service_name AS s, COUNT(*) AS entries FROM sys_journal j "
    "JOIN sys_invocation i ON i.id = j.id GROUP BY 1 ORDER BY 1",
    "SELECT j.entry_type, COUNT(*) AS n FROM sys_journal j JOIN sys_invocation i "
    "ON i.id = j.id WHERE i.status = 'suspended' GROUP BY 1 ORDER BY 1",
    "SELECT j.index, j.entry_type, j.name, i.target FROM sys_journal j JOIN sys_invocation i "
    "ON i.id = j.id WHERE i.id = '{live}' ORDER BY j.index",
    "SELECT index, entry_type, name, invoked_target, invoked_id FROM sys_journal "
    "WHERE id = '{done}' ORDER BY index DESC LIMIT 100",
    "SELECT COUNT(*) AS n, SUM(raw_length) AS bytes, MAX(index) AS last FROM sys_journal",
    "SELECT id, COUNT(*) AS n FROM sys_journal WHERE id IN ({ids}) GROUP BY id ORDER BY id",
    "SELECT id, after_journal_entry_index, event_type FROM sys_journal_events ORDER BY id",
    "SELECT i.id, s.retry_count, s.in_flight FROM sys_invocation i "
    "JOIN sys_invocation_state s ON s.id = i.id ORDER BY i.id",
    "SELECT service_key, COUNT(*) AS n FROM state WHERE service_name = 'Counter' "
    "GROUP BY 1 ORDER BY 1 LIMIT 20",
]


@pytest.mark.parametrize("sql", ORDERED)
def test_same_rows_with_and_without_pushdown(data: DataSet, sql: str) -> None:
    query = _fill(sql, data)
    pushed = _rows(data, query, pushdown=True)
    whole = _rows(data, query, pushdown=False)
    assert whole, "the data set has rows for every query"
    assert pushed == whole


#: Queries that may pick any rows (LIMIT without ORDER BY): the rows must be rows of the answer
#: without limit, and as many.
UNORDERED = [
    ("SELECT * FROM sys_journal LIMIT 17", "SELECT * FROM sys_journal", 17),
    ("SELECT id, entry_type FROM sys_journal WHERE index = 3 LIMIT 9", None, 9),
    ("SELECT id, status FROM sys_invocation LIMIT 2", "SELECT id, status FROM sys_invocation", 2),
    (
        "SELECT id, status FROM sys_invocation WHERE status <> 'completed' LIMIT 20",
        "SELECT id, status FROM sys_invocation WHERE status <> 'completed'",
        20,
    ),
    ("SELECT * FROM sys_invocation_status LIMIT 3", "SELECT * FROM sys_invocation_status", 3),
]


@pytest.mark.parametrize(("sql", "whole_sql", "n"), UNORDERED)
def test_limits_without_order_pick_rows_of_the_answer(
    data: DataSet, sql: str, whole_sql: str | None, n: int
) -> None:
    pushed = _rows(data, sql, pushdown=True)
    whole = _rows(data, whole_sql or sql.rsplit(" LIMIT ", 1)[0], pushdown=False)
    assert len(pushed) == n
    everything = {_key(r) for r in whole}
    assert all(_key(r) in everything for r in pushed)


def test_counts_match_what_was_written(data: DataSet) -> None:
    rows = _rows(
        data,
        "SELECT status, COUNT(*) AS n FROM sys_invocation GROUP BY status ORDER BY status",
        pushdown=True,
    )
    assert {r["status"]: r["n"] for r in rows} == dict(data.counts())
    (total,) = _rows(data, "SELECT COUNT(*) AS n FROM sys_journal", pushdown=True)
    assert total["n"] == data.journal_entries


def test_a_large_scan_streams_in_chunks(data: DataSet) -> None:
    async def batches() -> list[int]:
        stream = await data.engine().stream("SELECT id, index, entry_type FROM sys_journal")
        try:
            return [b.num_rows async for b in stream]
        finally:
            await stream.aclose()

    sizes = asyncio.run(batches())
    assert sum(sizes) == data.journal_entries
    assert len(sizes) > 1  # several chunks, not one table


def _workers() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "undying-query")


@pytest.mark.parametrize("close", ["aclose", "drop"])
def test_a_stream_left_early_stops_its_worker(data: DataSet, close: str) -> None:
    async def read_one() -> None:
        stream = await data.engine().stream("SELECT * FROM sys_journal")
        first = await stream.__anext__()
        assert first.num_rows > 0
        if close == "aclose":
            await stream.aclose()
        else:
            del stream
            gc.collect()

    asyncio.run(read_one())
    poll_until(lambda: _workers() == 0 or None, timeout=10.0, what="the query worker stopped")
