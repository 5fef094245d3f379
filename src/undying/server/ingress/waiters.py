"""Ingress requests waiting in this process for an answer from a partition."""

from __future__ import annotations

import asyncio

from undying.server.partition.actions import Respond

__all__ = ["Waiters"]


class Waiters:
    """``request_id -> future`` of the answer. Answers for unknown ids are dropped."""

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[Respond]] = {}

    def register(self, request_id: str) -> asyncio.Future[Respond]:
        fut: asyncio.Future[Respond] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        return fut

    def discard(self, request_id: str) -> None:
        self._pending.pop(request_id, None)

    def resolve(self, answer: Respond) -> None:
        fut = self._pending.pop(answer.request_id, None)
        if fut is not None and not fut.done():
            fut.set_result(answer)

    def __len__(self) -> int:
        return len(self._pending)
