"""The writer thread with group commit."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from undying.errors import StorageError
from undying.server.storage.database import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT);"


def test_jobs_commit_in_order_and_share_commits(tmp_path: Path) -> None:
    async def main() -> tuple[list[int], int, int]:
        db = Database(tmp_path / "db.sqlite")
        db.open(SCHEMA)
        futs = []
        for i in range(500):

            def job(conn: sqlite3.Connection, i: int = i) -> int:
                conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (i, str(i)))
                return i

            futs.append(db.submit(job))
        results = await asyncio.gather(*futs)
        rows = [r[0] for r in db.reader.execute("SELECT k FROM t ORDER BY k")]
        await db.close()
        return rows, results[-1], db.commits

    rows, last, commits = asyncio.run(main())
    assert rows == list(range(500)) and last == 499
    assert commits < 500  # group commit: many jobs per transaction


def test_a_failing_job_does_not_take_the_others_down(tmp_path: Path) -> None:
    async def main() -> tuple[list[int], BaseException | None]:
        db = Database(tmp_path / "db.sqlite")
        db.open(SCHEMA)

        def good(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t (k, v) VALUES (1, 'a')")

        def bad(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO nope VALUES (1)")

        f1, f2 = db.submit(good), db.submit(bad)
        await f1
        err = None
        try:
            await f2
        except StorageError as e:
            err = e
        rows = [r[0] for r in db.reader.execute("SELECT k FROM t")]
        await db.close()
        return rows, err

    rows, err = asyncio.run(main())
    assert rows == [1]
    assert err is not None


def test_data_survives_reopening(tmp_path: Path) -> None:
    async def write() -> None:
        db = Database(tmp_path / "db.sqlite")
        db.open(SCHEMA)
        await db.submit(lambda conn: conn.execute("INSERT INTO t (k, v) VALUES (7, 'x')"))
        await db.close()

    async def read() -> list[tuple[int, str]]:
        db = Database(tmp_path / "db.sqlite")
        db.open(SCHEMA)
        rows = db.reader.execute("SELECT k, v FROM t").fetchall()
        await db.close()
        return rows

    asyncio.run(write())
    assert asyncio.run(read()) == [(7, "x")]


def test_submit_before_open_is_an_error(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.sqlite")
    with pytest.raises(StorageError):
        _ = db.reader
