"""The loglet interface and an in-memory loglet for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from undying.errors import UndyingError

__all__ = ["LogRecord", "Loglet", "MemoryLoglet", "SealedError", "TailState"]


class LogRecord(NamedTuple):
    """A record as stored: its log sequence number and its bytes."""

    lsn: int
    payload: bytes


class TailState(NamedTuple):
    """The next LSN an append would get, and whether the loglet is sealed."""

    next_lsn: int
    sealed: bool


class SealedError(UndyingError):
    """The loglet is sealed: no more appends are accepted."""


class Loglet(Protocol):
    """One segment's storage. LSNs start at 1 and grow by one per record, without gaps."""

    def append(self, payloads: Sequence[bytes]) -> asyncio.Future[int]:
        """Queue an append; LSNs are assigned in call order. The future resolves with the LSN
        of the first record once the records are durable."""
        ...

    async def read(self, from_lsn: int, to_lsn: int | None = None) -> list[LogRecord]:
        """Records with ``from_lsn <= lsn < to_lsn`` (to the tail if ``to_lsn`` is None)."""
        ...

    async def find_tail(self) -> TailState:
        """The tail: next LSN and seal state."""
        ...

    async def seal(self) -> TailState:
        """Refuse further appends; return the final tail."""
        ...

    async def trim(self, up_to_lsn: int) -> None:
        """Forget records with ``lsn <= up_to_lsn``."""
        ...


class MemoryLoglet:
    """A loglet in memory: durable as soon as appended (for tests)."""

    def __init__(self) -> None:
        self._records: list[LogRecord] = []
        self._next = 1
        self._trim = 0
        self._sealed = False

    def append(self, payloads: Sequence[bytes]) -> asyncio.Future[int]:
        if self._sealed:
            raise SealedError("the loglet is sealed")
        first = self._next
        for p in payloads:
            self._records.append(LogRecord(self._next, p))
            self._next += 1
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        fut.set_result(first)
        return fut

    async def read(self, from_lsn: int, to_lsn: int | None = None) -> list[LogRecord]:
        stop = self._next if to_lsn is None else to_lsn
        return [r for r in self._records if from_lsn <= r.lsn < stop and r.lsn > self._trim]

    async def find_tail(self) -> TailState:
        return TailState(self._next, self._sealed)

    async def seal(self) -> TailState:
        self._sealed = True
        return TailState(self._next, True)

    async def trim(self, up_to_lsn: int) -> None:
        self._trim = max(self._trim, up_to_lsn)
        self._records = [r for r in self._records if r.lsn > self._trim]
