"""The virtual log: each log id is a chain of segments; appends go to the last one.

A segment is sealed and a new one (possibly served by another kind of loglet) is added to move a
log somewhere else without the readers above noticing: LSNs continue across segments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from undying.server.log.loglet import Loglet, LogRecord, TailState

__all__ = ["Bifrost", "Segment"]


@dataclass(slots=True)
class Segment:
    """A part of a log: LSNs from ``base_lsn`` on live in ``loglet`` (offset by base - 1)."""

    base_lsn: int
    loglet: Loglet


@dataclass(slots=True)
class _Chain:
    segments: list[Segment] = field(default_factory=list)


class Bifrost:
    """Logs by id, each a chain of segments. ``provider(log_id)`` makes the first loglet."""

    def __init__(self, provider: Callable[[int], Loglet]) -> None:
        self._provider = provider
        self._chains: dict[int, _Chain] = {}

    def _chain(self, log_id: int) -> _Chain:
        chain = self._chains.get(log_id)
        if chain is None:
            chain = _Chain([Segment(1, self._provider(log_id))])
            self._chains[log_id] = chain
        return chain

    def loglet(self, log_id: int) -> Loglet:
        """The loglet of the writable (last) segment."""
        return self._chain(log_id).segments[-1].loglet

    def append(self, log_id: int, payloads: Sequence[bytes]) -> asyncio.Future[int]:
        """Queue an append to the last segment; resolves with the first LSN once durable."""
        seg = self._chain(log_id).segments[-1]
        fut = seg.loglet.append(payloads)
        offset = seg.base_lsn - 1
        if offset == 0:
            return fut
        out: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def done(f: asyncio.Future[int]) -> None:
            if f.exception() is not None:
                out.set_exception(f.exception())  # type: ignore[arg-type]
            else:
                out.set_result(f.result() + offset)

        fut.add_done_callback(done)
        return out

    async def read(self, log_id: int, from_lsn: int, to_lsn: int | None = None) -> list[LogRecord]:
        out: list[LogRecord] = []
        segments = self._chain(log_id).segments
        for i, seg in enumerate(segments):
            offset = seg.base_lsn - 1
            end = segments[i + 1].base_lsn if i + 1 < len(segments) else None
            if end is not None and end <= from_lsn:
                continue
            stop = to_lsn if end is None else (end if to_lsn is None else min(end, to_lsn))
            local_stop = None if stop is None else stop - offset
            for rec in await seg.loglet.read(max(1, from_lsn - offset), local_stop):
                out.append(LogRecord(rec.lsn + offset, rec.payload))
        return out

    async def find_tail(self, log_id: int) -> TailState:
        seg = self._chain(log_id).segments[-1]
        tail = await seg.loglet.find_tail()
        return TailState(tail.next_lsn + seg.base_lsn - 1, tail.sealed)

    async def seal(self, log_id: int) -> TailState:
        seg = self._chain(log_id).segments[-1]
        tail = await seg.loglet.seal()
        return TailState(tail.next_lsn + seg.base_lsn - 1, True)

    async def extend(self, log_id: int, loglet: Loglet) -> None:
        """Seal the last segment and continue the log on ``loglet``."""
        tail = await self.seal(log_id)
        self._chain(log_id).segments.append(Segment(tail.next_lsn, loglet))

    async def trim(self, log_id: int, up_to_lsn: int) -> None:
        for seg in self._chain(log_id).segments:
            local = up_to_lsn - (seg.base_lsn - 1)
            if local > 0:
                await seg.loglet.trim(local)
