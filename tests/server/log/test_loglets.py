"""Loglets and the virtual log on top of them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from undying.server.log import Bifrost, Loglet, MemoryLoglet, SealedError
from undying.server.log.local import SCHEMA, SqliteLoglet
from undying.server.storage.database import Database

Scenario = Callable[[Callable[[int], Loglet]], Awaitable[None]]


def run_with_both(tmp_path: Path, scenario: Scenario) -> None:
    async def memory() -> None:
        loglets: dict[int, MemoryLoglet] = {}
        await scenario(lambda i: loglets.setdefault(i, MemoryLoglet()))

    async def sqlite() -> None:
        db = Database(tmp_path / "log.sqlite")
        db.open(SCHEMA)
        try:
            await scenario(lambda i: SqliteLoglet(db, i))
        finally:
            await db.close()

    asyncio.run(memory())
    asyncio.run(sqlite())


def test_append_read_tail_trim(tmp_path: Path) -> None:
    async def scenario(make: Callable[[int], Loglet]) -> None:
        log = make(3)
        f1 = log.append([b"a", b"b"])
        f2 = log.append([b"c"])
        assert await f1 == 1 and await f2 == 3
        assert [r.payload for r in await log.read(1)] == [b"a", b"b", b"c"]
        assert [r.lsn for r in await log.read(2, 3)] == [2]
        assert (await log.find_tail()).next_lsn == 4
        await log.trim(2)
        assert [r.lsn for r in await log.read(1)] == [3]
        assert (await log.find_tail()).next_lsn == 4

    run_with_both(tmp_path, scenario)


def test_sealed_loglets_refuse_appends(tmp_path: Path) -> None:
    async def scenario(make: Callable[[int], Loglet]) -> None:
        log = make(1)
        await log.append([b"x"])
        tail = await log.seal()
        assert tail.sealed and tail.next_lsn == 2
        with pytest.raises(SealedError):
            log.append([b"y"])

    run_with_both(tmp_path, scenario)


def test_sqlite_loglet_recovers_its_tail(tmp_path: Path) -> None:
    async def first() -> None:
        db = Database(tmp_path / "log.sqlite")
        db.open(SCHEMA)
        log = SqliteLoglet(db, 0)
        await log.append([b"1", b"2", b"3"])
        await log.trim(1)
        await db.close()

    async def second() -> tuple[int, list[int]]:
        db = Database(tmp_path / "log.sqlite")
        db.open(SCHEMA)
        log = SqliteLoglet(db, 0)
        tail = (await log.find_tail()).next_lsn
        lsns = [r.lsn for r in await log.read(1)]
        await db.close()
        return tail, lsns

    asyncio.run(first())
    assert asyncio.run(second()) == (4, [2, 3])


def test_bifrost_continues_lsns_across_segments() -> None:
    async def main() -> None:
        first, second = MemoryLoglet(), MemoryLoglet()
        bifrost = Bifrost(lambda _: first)
        assert await bifrost.append(0, [b"a", b"b"]) == 1
        await bifrost.extend(0, second)
        assert await bifrost.append(0, [b"c"]) == 3
        assert [(r.lsn, r.payload) for r in await bifrost.read(0, 1)] == [
            (1, b"a"),
            (2, b"b"),
            (3, b"c"),
        ]
        assert (await bifrost.find_tail(0)).next_lsn == 4
        with pytest.raises(SealedError):
            first.append([b"late"])

    asyncio.run(main())
