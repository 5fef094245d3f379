"""The partition processor: appends records to the partition's log, applies the durable ones in
log order through the state machine, flushes the state, and hands the actions to the leader.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from undying.errors import StorageError
from undying.server.clock import Clock
from undying.server.log import Bifrost
from undying.server.logs import invocation_extra
from undying.server.partition import actions as act
from undying.server.partition.machine import StateMachine
from undying.server.partition.records import (
    Body,
    Dedup,
    Envelope,
    Expire,
    decode_envelope,
    encode_envelope,
)
from undying.server.partition.store import PartitionStore

__all__ = ["PartitionProcessor"]

log = logging.getLogger("undying.partition")

_TRIM_EVERY: Final = 2048


class PartitionProcessor:
    """Owns one partition: its log id, its state machine and its store.

    ``on_actions`` receives the actions of each applied batch (the leader's effects). Proposals
    are applied strictly in LSN order, each exactly once. ``on_settle``, if given, is called
    whenever proposals stop being in flight (applied, or failed).
    """

    def __init__(
        self,
        partition: int,
        bifrost: Bifrost,
        store: PartitionStore,
        clock: Clock,
        on_actions: Callable[[PartitionProcessor, list[act.Action]], None],
        *,
        on_settle: Callable[[], None] | None = None,
    ) -> None:
        self.partition = partition
        self.log_id = partition
        self._bifrost = bifrost
        self.store = store
        self.machine = StateMachine(store)
        self._clock = clock
        self._on_actions = on_actions
        self._next_apply = 1
        self._durable: dict[int, tuple[list[Envelope], list[asyncio.Future[None]]]] = {}
        self._since_trim = 0
        self._failed: BaseException | None = None
        self._on_settle = on_settle
        self._in_flight = 0
        #: records proposed and not applied yet
        self.queued_records = 0
        #: appends to the log, the records and bytes they carried (for the metrics)
        self.appends = 0
        self.appended_records = 0
        self.appended_bytes = 0

    async def start(self) -> None:
        """Recover, then take over as leader at once (one partition on its own)."""
        await self.recover()
        self.lead()

    async def recover(self) -> None:
        """Load the state and replay the log tail it has not applied yet (no effects)."""
        self.store.load()
        applied = self.store.applied_lsn
        for rec in await self._bifrost.read(self.log_id, applied + 1):
            self.machine.apply(decode_envelope(rec.payload))
            self.machine.take_actions()  # a follower's replay: no effects
            applied = rec.lsn
        tail = await self._bifrost.find_tail(self.log_id)
        self._next_apply = tail.next_lsn
        if applied != self.store.applied_lsn:
            log.info("partition %d: replayed log up to lsn %d", self.partition, applied)
        self.store.flush(tail.next_lsn - 1)
        self.store.counts.reset_events()  # what the replay counted happened before the start

    def lead(self) -> None:
        """Carry out what the recovered state needs: run invocations, arm timers, deliver the
        outbox. Call once every partition has recovered, since delivering writes to others."""
        self._on_actions(self, self.machine.recover_actions())

    def propose(self, body: Body, *, dedup: Dedup | None = None) -> asyncio.Future[None]:
        """Append ``body``; the future resolves once it is durable and applied."""
        return self.propose_many([body], dedup=dedup)[-1]

    def propose_many(
        self, bodies: list[Body], *, dedup: Dedup | None = None
    ) -> list[asyncio.Future[None]]:
        """Append several records at once (one durable write); one future per record."""
        if self._failed is not None:
            raise StorageError(f"partition {self.partition} has failed: {self._failed}")
        loop = asyncio.get_running_loop()
        now = self._clock.now_ms()
        envs = [Envelope(self.partition, now, b, dedup) for b in bodies]
        futs = [loop.create_future() for _ in bodies]
        payloads = [encode_envelope(e) for e in envs]
        durable = self._bifrost.append(self.log_id, payloads)
        self._in_flight += 1
        self.queued_records += len(payloads)
        self.appends += 1
        self.appended_records += len(payloads)
        self.appended_bytes += sum(map(len, payloads))
        durable.add_done_callback(lambda f: self._on_durable(f, envs, futs))
        return futs

    def _on_durable(
        self,
        fut: asyncio.Future[int],
        envs: list[Envelope],
        futs: list[asyncio.Future[None]],
    ) -> None:
        exc = fut.exception()
        if exc is not None:
            self._failed = exc
            log.error("partition %d: log append failed: %r", self.partition, exc)
            for f in futs:
                if not f.done():
                    f.set_exception(StorageError(f"log append failed: {exc!r}"))
            self._in_flight -= 1
            self.queued_records -= len(envs)
            self._settled()
            return
        self._durable[fut.result()] = (envs, futs)
        self._apply_ready()

    def _apply_ready(self) -> None:
        machine = self.machine
        durable = self._durable
        applied_any = False
        resolved: list[asyncio.Future[None]] = []
        while self._next_apply in durable:
            envs, futs = durable.pop(self._next_apply)
            self._in_flight -= 1
            self.queued_records -= len(envs)
            for env in envs:
                try:
                    machine.apply(env)
                except Exception:
                    # A bug in the state machine must not take the partition down silently; the
                    # record stays in the log and the error is loud.
                    log.exception(
                        "partition %d: applying %r failed",
                        self.partition,
                        env.body,
                        extra=invocation_extra(getattr(env.body, "id", None)),
                    )
            self._next_apply += len(envs)
            self._since_trim += len(envs)
            resolved.extend(futs)
            applied_any = True
        if not applied_any:
            return
        applied = self._next_apply - 1
        self.store.flush(applied)
        if self._since_trim >= _TRIM_EVERY:
            self._since_trim = 0
            asyncio.ensure_future(self._trim(applied))
        actions = machine.take_actions()
        if actions:
            self._on_actions(self, actions)
        for f in resolved:
            if not f.done():
                f.set_result(None)
        self._settled()

    @property
    def in_flight(self) -> int:
        """Proposals (batches) appended but not applied yet."""
        return self._in_flight

    def _settled(self) -> None:
        if self._on_settle is not None:
            self._on_settle()

    async def clean(self, interval_s: float) -> None:
        """Forever: every ``interval_s``, expire completed invocations past their retention."""
        while True:
            await self._clock.sleep(interval_s)
            try:
                ids = self.store.expired(self._clock.now_ms())
                if ids:
                    await self.propose(Expire(ids))
            except Exception:
                log.exception("partition %d: cleaning expired invocations failed", self.partition)

    async def _trim(self, lsn: int) -> None:
        try:
            await self._bifrost.trim(self.log_id, lsn)
        except Exception:
            log.exception("partition %d: trimming the log failed", self.partition)
