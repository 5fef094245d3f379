"""How a test driving a virtual clock knows that the server has settled, and what it waits for.

``PartitionProcessor.in_flight`` and ``on_settle``, ``Invoker.attempting`` and
``next_retry_ms``, and the ``Server`` view built on them: ``busy``, ``settle()`` and
``next_wake_ms``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import undying
from undying.server.clock import VirtualClock
from undying.server.log import Bifrost, MemoryLoglet
from undying.server.partition.processor import PartitionProcessor
from undying.server.partition.records import Invoke, Target
from undying.server.partition.store import PartitionStore
from undying.testing import TestEnvironment


def test_the_processor_counts_proposals_in_flight_and_says_when_they_settle() -> None:
    async def main() -> tuple[list[int], int]:
        settled: list[int] = []
        p = PartitionProcessor(
            0,
            Bifrost(lambda _: MemoryLoglet()),
            PartitionStore(0),
            VirtualClock(),
            lambda _p, _a: None,
            on_settle=lambda: settled.append(p.in_flight),
        )
        await p.start()
        futs = [
            p.propose(Invoke(id=i.to_bytes(24, "big"), target=Target("S", "h"), body=b""))
            for i in range(3)
        ]
        counted = p.in_flight
        await asyncio.gather(*futs)
        return settled, counted

    settled, counted = asyncio.run(main())
    assert counted == 3
    assert settled and settled[-1] == 0


sleeper = undying.Service("QuiescenceSleeper")


@sleeper.handler()
async def nap(ctx: undying.Context, hours: int) -> str:
    await ctx.sleep(timedelta(hours=hours))
    return "rested"


@sleeper.handler()
async def broken(ctx: undying.Context) -> str:
    raise RuntimeError("broken")


def test_a_settled_server_waits_only_for_its_next_timer() -> None:
    async def main() -> None:
        async with TestEnvironment([sleeper], auto_advance=False) as env:
            server = env.server

            def busy() -> bool:  # functions: mypy would narrow the properties
                return server.busy

            def next_wake() -> int | None:
                return server.next_wake_ms

            assert next_wake() is None
            handle = await env.send(nap, 2)
            assert busy()  # the invocation is starting
            await server.settle()
            assert not busy()
            assert env.status(handle) == "suspended"
            now = env.clock.now_ms()
            assert next_wake() == now + 2 * 3_600_000
            env.clock.set(now + 3_600_000)  # not yet
            await server.settle()
            assert env.status(handle) == "suspended"
            env.clock.set(now + 2 * 3_600_000)
            assert busy()  # the timer is due
            await server.settle()
            assert env.status(handle) == "completed"
            assert next_wake() is None

    asyncio.run(main())


def test_an_invocation_backing_off_is_not_busy_and_its_retry_is_next() -> None:
    async def main() -> None:
        async with TestEnvironment([sleeper], auto_advance=False) as env:
            server = env.server
            await env.send(broken)
            await server.settle()
            assert server.invoker.attempting == 0
            retry = server.invoker.next_retry_ms
            now = env.clock.now_ms()
            assert retry is not None and now + 500 <= retry <= now + 650
            assert server.next_wake_ms == retry
            env.clock.set(retry)
            assert server.busy
            await server.settle()
            assert server.invoker.next_retry_ms is not None
            assert server.invoker.next_retry_ms >= retry + 1000  # the second retry, later

    asyncio.run(main())
