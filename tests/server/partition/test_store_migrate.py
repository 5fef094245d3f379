"""``migrate``: a data directory written before ``inv_status`` had its ``service`` and
``created_at`` columns is brought up to date at start, and answers SQL the same before and after.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from undying.protocol.ids import InvocationId, partition_key_for
from undying.server.metadata import MetadataStore
from undying.server.partition.records import Result, Target
from undying.server.partition.state import InvocationStatus, encode_status
from undying.server.partition.store import SCHEMA, PartitionStore, migrate
from undying.server.query import QueryEngine
from undying.server.query.encoding import json_rows
from undying.server.storage.database import Database

#: ``inv_status`` as the first releases created it.
OLD_INV_STATUS = """
CREATE TABLE inv_status (
    id BLOB PRIMARY KEY,
    partition INTEGER NOT NULL,
    status TEXT NOT NULL,
    modified_at INTEGER NOT NULL,
    expires_at INTEGER,
    data BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX inv_status_by_status ON inv_status (partition, status);
"""


def _status(n: int, service: str, status: str) -> InvocationStatus:
    inv = InvocationId.deterministic(partition_key_for(service, str(n)), "migrate", str(n))
    return InvocationStatus(
        id=inv.to_bytes(),
        target=Target(service, "run"),
        status=status,  # type: ignore[arg-type]
        created_at=1_000 + n,
        modified_at=2_000 + n,
        result=Result(value=b"1") if status == "completed" else None,
    )


def _old_store(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(OLD_INV_STATUS)
    for n in range(30):
        s = _status(n, "A" if n % 3 else "B", "completed" if n % 2 else "suspended")
        conn.execute(
            "INSERT INTO inv_status (id, partition, status, modified_at, data) "
            "VALUES (?, 0, ?, ?, ?)",
            (s.id, s.status, s.modified_at, encode_status(s)),
        )
    conn.commit()
    conn.close()


def _query(path: Path, sql: str) -> bytes:
    engine = QueryEngine(Database(path), MetadataStore(None), now_ms=lambda: 10_000)
    return bytes(json_rows(asyncio.run(engine.execute(sql))))


QUERIES = [
    "SELECT id, status FROM sys_invocation WHERE target_service_name = 'B' "
    "ORDER BY created_at DESC, id LIMIT 4",
    "SELECT target_service_name, status, COUNT(*) AS n FROM sys_invocation GROUP BY 1, 2 "
    "ORDER BY 1, 2",
    "SELECT id FROM sys_invocation WHERE created_at > to_timestamp_millis(1020) ORDER BY id",
]


def test_old_data_directories_get_the_columns_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "undying.db"
    _old_store(path)
    before = [_query(path, q) for q in QUERIES]

    async def open_and_migrate() -> None:
        db = Database(path)
        db.open(SCHEMA)  # the current schema leaves the old table as it is
        await db.submit(migrate)
        await db.submit(migrate)  # idempotent
        await db.close()

    asyncio.run(open_and_migrate())
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT service, created_at FROM inv_status ORDER BY created_at").fetchall()
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(inv_status)")}
    conn.close()
    assert rows == [("A" if n % 3 else "B", 1_000 + n) for n in range(30)]
    assert {"inv_status_by_service", "inv_status_by_created"} <= indexes
    after = [_query(path, q) for q in QUERIES]
    assert after == before
    assert b"inv_" in after[0] and b'"n":' in after[1]


def test_statuses_written_now_fill_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "undying.db"

    async def write() -> None:
        db = Database(path)
        db.open(SCHEMA)
        await db.submit(migrate)
        store = PartitionStore(0, db)
        s = _status(1, "A", "suspended")
        store.put_status(s)
        store.flush(1)
        await db.submit(lambda conn: None)
        s.status = "completed"
        s.result = Result(value=b"2")
        store.put_status(s)
        store.flush(2)
        await db.submit(lambda conn: None)
        await db.close()

    asyncio.run(write())
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT status, service, created_at FROM inv_status").fetchall()
    conn.close()
    assert rows == [("completed", "A", 1_001)]
