"""Time for the server: the system clock, or a virtual clock that tests move by hand.

Everything that waits (timers, retry backoff, inactivity timeouts) waits through a ``Clock``,
so tests can run a 30-day sleep or 70 retries in milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that only moves when told to (:meth:`advance`), waking sleepers in time order.

    A sleep's deadline is fixed when :meth:`sleep` is called, not when the result is first
    awaited: ``ensure_future(clock.sleep(d))`` followed by a move of the clock wakes at ``now + d``
    as of the call.

    Args:
        start_ms: the initial time.
    """

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._waking = 0

    def now_ms(self) -> int:
        return self._now

    def sleep(self, seconds: float) -> Awaitable[None]:
        wake = self._now + max(0, round(seconds * 1000))
        if wake <= self._now:
            return asyncio.sleep(0)  # nothing to wait for: just yield
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (wake, next(self._seq), fut))
        return fut

    @property
    def waking(self) -> int:
        """Sleepers woken by the last move of time whose tasks have not taken their next step."""
        return self._waking

    @property
    def next_wake_ms(self) -> int | None:
        """When the earliest sleeper wakes, if any."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def advance(self, ms: int) -> None:
        """Move time forward by ``ms`` and wake everyone whose time has come."""
        self.set(self._now + ms)

    def set(self, now_ms: int) -> None:
        """Move time forward to ``now_ms`` (never back) and wake everyone whose time has come."""
        self._now = max(self._now, now_ms)
        woken = 0
        loop: asyncio.AbstractEventLoop | None = None
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
                loop = fut.get_loop()
                woken += 1
        if loop is not None:
            # The futures scheduled their awaiters' wake-ups first: once this runs, they ran.
            self._waking += woken
            loop.call_soon(self._woken, woken)

    def _woken(self, count: int) -> None:
        self._waking -= count
