"""The partition processor on real storage: ordered apply, flush, restart and log replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

from undying.protocol.messages import MessageType, pb
from undying.server.clock import VirtualClock
from undying.server.log import Bifrost
from undying.server.log.local import SCHEMA as LOG_SCHEMA
from undying.server.log.local import SqliteLoglet
from undying.server.partition import actions as act
from undying.server.partition.processor import PartitionProcessor
from undying.server.partition.records import (
    Entries,
    Envelope,
    Invoke,
    JournalItem,
    Target,
    encode_envelope,
)
from undying.server.partition.store import SCHEMA as STORE_SCHEMA
from undying.server.partition.store import PartitionStore
from undying.server.storage.database import Database

INV = bytes(range(24))


def _processor(db: Database, seen: list[act.Action]) -> PartitionProcessor:
    bifrost = Bifrost(lambda log_id: SqliteLoglet(db, log_id))
    return PartitionProcessor(
        0,
        bifrost,
        PartitionStore(0, db),
        VirtualClock(),
        lambda _p, actions: seen.extend(actions),
    )


def test_state_survives_a_restart_and_the_leader_resumes(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    run = pb.RunCommandMessage(result_completion_id=1, name="x").SerializeToString()

    async def first() -> list[act.Action]:
        db = Database(path)
        db.open(LOG_SCHEMA + STORE_SCHEMA)
        seen: list[act.Action] = []
        p = _processor(db, seen)
        await p.start()
        await p.propose(Invoke(id=INV, target=Target("S", "h"), body=b"in"))
        await p.propose(Entries(INV, 1, [JournalItem(MessageType.RUN, run)]))
        await db.close()
        return seen

    async def second() -> tuple[list[act.Action], list[int], str]:
        db = Database(path)
        db.open(LOG_SCHEMA + STORE_SCHEMA)
        seen: list[act.Action] = []
        p = _processor(db, seen)
        await p.start()
        status = p.store.get_status(INV)
        assert status is not None
        types = [e.type for e in p.store.journal(INV)]
        await db.close()
        return seen, types, status.status

    assert act.Invoke(INV, 1) in asyncio.run(first())
    seen, types, status = asyncio.run(second())
    assert types == [MessageType.INPUT, MessageType.RUN]
    assert status == "invoked"
    assert seen == [act.Invoke(INV, 1)]  # the new leader runs it again


def test_durable_records_not_yet_applied_are_replayed(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"

    async def crash_after_append() -> None:
        # The records reached the log, but the process died before applying them.
        db = Database(path)
        db.open(LOG_SCHEMA + STORE_SCHEMA)
        log = SqliteLoglet(db, 0)
        env = Envelope(0, 5, Invoke(id=INV, target=Target("S", "h"), body=b"x"))
        await log.append([encode_envelope(env)])
        await db.close()

    async def restart() -> tuple[list[act.Action], str | None]:
        db = Database(path)
        db.open(LOG_SCHEMA + STORE_SCHEMA)
        seen: list[act.Action] = []
        p = _processor(db, seen)
        await p.start()
        s = p.store.get_status(INV)
        # And the next proposal gets the next LSN.
        await p.propose(Entries(INV, 1, []))
        await db.close()
        return seen, None if s is None else s.status

    asyncio.run(crash_after_append())
    seen, status = asyncio.run(restart())
    assert status == "invoked"
    assert seen == [act.Invoke(INV, 1)]


def test_proposals_apply_in_log_order() -> None:
    async def main() -> list[int]:
        from undying.server.log import MemoryLoglet

        loglet = MemoryLoglet()
        order: list[int] = []
        p = PartitionProcessor(
            0, Bifrost(lambda _: loglet), PartitionStore(0), VirtualClock(), lambda _p, a: None
        )
        await p.start()
        futs = []
        for i in range(20):
            inv = i.to_bytes(24, "big")
            fut = p.propose(Invoke(id=inv, target=Target("S", "h"), body=b""))
            fut.add_done_callback(lambda _f, i=i: order.append(i))
            futs.append(fut)
        await asyncio.gather(*futs)
        return order

    assert asyncio.run(main()) == list(range(20))


def test_cold_object_state_leaves_memory_and_comes_back(tmp_path: Path) -> None:
    async def main() -> None:
        db = Database(tmp_path / "db.sqlite")
        db.open(LOG_SCHEMA + STORE_SCHEMA)
        store = PartitionStore(0, db, state_cache=2, completed_cache=1)
        for i in range(4):
            store.set_state("Counter", f"k{i}", b"count", str(i).encode())
        store.flush(1)
        await db.barrier()
        assert len(store._state) <= 2
        for i in range(4):
            assert store.state("Counter", f"k{i}") == {b"count": str(i).encode()}
        await db.close()

    asyncio.run(main())
