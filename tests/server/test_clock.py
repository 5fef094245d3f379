"""The virtual clock, and the timer service's view of when it next needs the clock."""

from __future__ import annotations

import asyncio

from undying.server.clock import VirtualClock
from undying.server.partition.records import TimerKey
from undying.server.timers.service import TimerService


def test_sleepers_wake_in_time_order_and_count_as_waking_until_they_resume() -> None:
    async def main() -> tuple[list[str], list[int]]:
        clock = VirtualClock(start_ms=0)
        woke: list[str] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append(name)

        tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in (("b", 2), ("a", 1), ("c", 9))]
        await asyncio.sleep(0)
        assert clock.next_wake_ms == 1000
        waking = [clock.waking]
        clock.set(2500)
        waking.append(clock.waking)  # a and b are woken, not resumed yet
        await asyncio.sleep(0)
        waking.append(clock.waking)
        assert clock.next_wake_ms == 9000
        tasks[2].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        waking.append(clock.waking)
        return woke, waking

    woke, waking = asyncio.run(main())
    assert woke == ["a", "b"]
    assert waking == [0, 2, 0, 0]


def test_a_sleeper_cancelled_after_waking_stops_counting() -> None:
    async def main() -> int:
        clock = VirtualClock(start_ms=0)
        task = asyncio.ensure_future(clock.sleep(1))
        await asyncio.sleep(0)
        clock.set(1000)
        assert clock.waking == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return clock.waking

    assert asyncio.run(main()) == 0


def test_sleeping_for_nothing_does_not_wait_for_the_clock() -> None:
    async def main() -> int | None:
        clock = VirtualClock(start_ms=0)
        await asyncio.wait_for(clock.sleep(0), timeout=5)
        await asyncio.wait_for(clock.sleep(-1), timeout=5)
        return clock.next_wake_ms

    assert asyncio.run(main()) is None


def test_the_timer_service_says_when_its_next_timer_is_due() -> None:
    async def main() -> tuple[list[int | None], list[int]]:
        clock = VirtualClock(start_ms=0)
        fired: list[int] = []
        first = asyncio.Event()

        def fire(_key: TimerKey, wake_at: int) -> None:
            fired.append(wake_at)
            first.set()

        timers = TimerService(clock, fire)
        timers.start()
        seen = [timers.next_wake_ms]
        timers.arm(TimerKey("sleep", b"b" * 24, 1), 5000)
        timers.arm(TimerKey("sleep", b"a" * 24, 1), 3000)
        seen.append(timers.next_wake_ms)
        await asyncio.sleep(0)  # the service starts sleeping until 3000
        clock.set(3000)
        await asyncio.wait_for(first.wait(), timeout=5)
        seen.append(timers.next_wake_ms)
        await timers.stop()
        return seen, fired

    seen, fired = asyncio.run(main())
    assert seen == [None, 3000, 5000]
    assert fired == [3000]
