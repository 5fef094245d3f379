"""The local loglet: records in the embedded SQLite database, durable through group commit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Final

from undying.server.log.loglet import LogRecord, SealedError, TailState
from undying.server.storage.database import Database

__all__ = ["SCHEMA", "SqliteLoglet"]

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS log (
    log_id INTEGER NOT NULL,
    lsn INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (log_id, lsn)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS loglet_meta (
    log_id INTEGER PRIMARY KEY,
    trim_point INTEGER NOT NULL DEFAULT 0,
    sealed INTEGER NOT NULL DEFAULT 0
);
"""

_INSERT: Final = "INSERT INTO log (log_id, lsn, payload) VALUES (?, ?, ?)"


class SqliteLoglet:
    """One log's records in the ``log`` table, keyed by ``log_id``.

    LSNs are assigned on the event loop at :meth:`append` time, so appends are ordered by call;
    the writer thread commits them in that order.
    """

    def __init__(self, db: Database, log_id: int) -> None:
        self._db = db
        self.log_id = log_id
        row = db.reader.execute(
            "SELECT COALESCE(MAX(lsn), 0) FROM log WHERE log_id = ?", (log_id,)
        ).fetchone()
        meta = db.reader.execute(
            "SELECT trim_point, sealed FROM loglet_meta WHERE log_id = ?", (log_id,)
        ).fetchone()
        self._trim = meta[0] if meta else 0
        self._sealed = bool(meta[1]) if meta else False
        self._next = max(int(row[0]), self._trim) + 1

    def append(self, payloads: Sequence[bytes]) -> asyncio.Future[int]:
        if self._sealed:
            raise SealedError(f"log {self.log_id} is sealed")
        first = self._next
        self._next += len(payloads)
        log_id = self.log_id
        rows = [(log_id, first + i, p) for i, p in enumerate(payloads)]

        def job(conn: sqlite3.Connection) -> int:
            conn.executemany(_INSERT, rows)
            return first

        return self._db.submit(job)

    async def read(self, from_lsn: int, to_lsn: int | None = None) -> list[LogRecord]:
        stop = self._next if to_lsn is None else to_lsn
        rows = self._db.reader.execute(
            "SELECT lsn, payload FROM log WHERE log_id = ? AND lsn >= ? AND lsn < ? ORDER BY lsn",
            (self.log_id, max(from_lsn, self._trim + 1), stop),
        ).fetchall()
        return [LogRecord(int(lsn), bytes(p)) for lsn, p in rows]

    async def find_tail(self) -> TailState:
        return TailState(self._next, self._sealed)

    async def seal(self) -> TailState:
        self._sealed = True
        log_id = self.log_id

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO loglet_meta (log_id, sealed) VALUES (?, 1) "
                "ON CONFLICT(log_id) DO UPDATE SET sealed = 1",
                (log_id,),
            )

        await self._db.submit(job)
        return TailState(self._next, True)

    async def trim(self, up_to_lsn: int) -> None:
        up_to = min(up_to_lsn, self._next - 1)
        if up_to <= self._trim:
            return
        self._trim = up_to
        log_id = self.log_id

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM log WHERE log_id = ? AND lsn <= ?", (log_id, up_to))
            conn.execute(
                "INSERT INTO loglet_meta (log_id, trim_point) VALUES (?, ?) "
                "ON CONFLICT(log_id) DO UPDATE SET trim_point = excluded.trim_point",
                (log_id, up_to),
            )

        await self._db.submit(job)
