"""Durable timers: the leader arms them, and fires them by appending a record when due."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable

from undying.server.clock import Clock
from undying.server.logs import invocation_extra
from undying.server.partition.records import TimerKey

__all__ = ["TimerService"]

log = logging.getLogger("undying.timers")


class TimerService:
    """Fires armed timers in wake-up order, each at most once per arming.

    Firing calls ``fire(key, wake_at)``; the state machine ignores timers that no longer exist,
    so arming the same timer twice, or firing one after a restart again, is harmless.
    """

    def __init__(self, clock: Clock, fire: Callable[[TimerKey, int], None]) -> None:
        self._clock = clock
        self._fire = fire
        self._heap: list[tuple[int, int, TimerKey]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="undying-timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def arm(self, key: TimerKey, wake_at: int) -> None:
        heapq.heappush(self._heap, (wake_at, next(self._seq), key))
        if self._heap[0][2] is key:
            self._changed.set()

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def next_wake_ms(self) -> int | None:
        """When the earliest armed timer is due (``None`` if none is armed)."""
        return self._heap[0][0] if self._heap else None

    async def _run(self) -> None:
        clock = self._clock
        while True:
            self._changed.clear()
            if not self._heap:
                await self._changed.wait()
                continue
            now = clock.now_ms()
            wake_at = self._heap[0][0]
            if wake_at <= now:
                while self._heap and self._heap[0][0] <= now:
                    wake, _, key = heapq.heappop(self._heap)
                    try:
                        self._fire(key, wake)
                    except Exception:
                        log.exception("firing timer %r failed", key, extra=invocation_extra(key.id))
                continue
            sleeper = asyncio.ensure_future(clock.sleep((wake_at - now) / 1000))
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()
