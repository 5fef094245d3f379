"""The single-node server: storage, partitions, invoker, timers, ingress and admin, wired up."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from undying.errors import ConfigError
from undying.protocol.ids import InvocationId, partition_key_for
from undying.server import metrics
from undying.server.admin.app import AdminApp
from undying.server.clock import Clock, SystemClock, VirtualClock
from undying.server.http.server import HttpServer
from undying.server.ingress.app import IngressApp
from undying.server.ingress.waiters import Waiters
from undying.server.invoker.connector import HttpConnector
from undying.server.invoker.invoker import Invoker, InvokerOptions
from undying.server.invoker.streams import Connector
from undying.server.log import Bifrost
from undying.server.log.local import SCHEMA as LOG_SCHEMA
from undying.server.log.local import SqliteLoglet
from undying.server.metadata import SCHEMA as METADATA_SCHEMA
from undying.server.metadata import MetadataStore
from undying.server.partition import actions as act
from undying.server.partition.processor import PartitionProcessor
from undying.server.partition.records import (
    AdminCommand,
    Dedup,
    PatchState,
    TimerFired,
    TimerKey,
    TruncateOutbox,
)
from undying.server.partition.store import SCHEMA as STORE_SCHEMA
from undying.server.partition.store import PartitionStore
from undying.server.partition.store import migrate as migrate_store
from undying.server.query import QueryEngine, admin_route
from undying.server.schema import DEFAULT_RETRY_POLICY, RetryPolicy
from undying.server.storage.database import Database
from undying.server.timers.service import TimerService
from undying.server.ui import UiApp

__all__ = ["Server", "ServerConfig"]

log = logging.getLogger("undying.server")

_CONFIG_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS server_config (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""


@dataclass(slots=True)
class ServerConfig:
    """How to run a server. Ports 0 pick free ports."""

    data_dir: Path
    host: str = "127.0.0.1"
    ingress_port: int = 8080
    admin_port: int = 9070
    partitions: int = 4
    ingress_max_body_size: int | None = None
    cluster_name: str = "undying"
    enable_v7: bool = False
    advertised_ingress: str | None = None
    #: Retry policy of handlers whose deployment sets none.
    default_retry: RetryPolicy = DEFAULT_RETRY_POLICY
    #: How often completed invocations past their retention are looked for.
    cleanup_interval_s: float = 1.0


class Server:
    """One undying node with embedded storage.

    With a :class:`~undying.server.clock.VirtualClock`, a test moves time itself: :meth:`settle`
    waits until the server has nothing to do but wait for time, :attr:`next_wake_ms` says when
    time next matters, and moving the clock there fires what is due.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        clock: Clock | None = None,
        connector: Connector | None = None,
    ) -> None:
        if config.partitions < 1:
            raise ConfigError("partitions must be at least 1")
        self.config = config
        self.clock = clock or SystemClock()
        self._connector = connector or HttpConnector()
        self.db = Database(config.data_dir / "undying.db")
        self.metadata = MetadataStore(self.db)
        self.waiters = Waiters()
        self._settle_waiters: list[asyncio.Future[None]] = []
        self.partitions: list[PartitionProcessor] = []
        self.timers: list[TimerService] = []
        self.invoker = Invoker(
            self._connector,
            lambda: self.metadata.schema,
            self.clock,
            InvokerOptions(
                cluster_name=config.cluster_name,
                enable_v7=config.enable_v7,
                default_retry=config.default_retry,
            ),
            on_settle=self._on_settle,
        )
        self._ingress: HttpServer | None = None
        self._admin: HttpServer | None = None
        self._cleaners: list[asyncio.Task[None]] = []

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        self.db.open(LOG_SCHEMA + STORE_SCHEMA + METADATA_SCHEMA + _CONFIG_SCHEMA)
        await self.db.submit(migrate_store)
        self._check_partitions()
        self.metadata.load()
        bifrost = Bifrost(lambda log_id: SqliteLoglet(self.db, log_id))
        for i in range(cfg.partitions):
            store = PartitionStore(i, self.db)
            self.partitions.append(
                PartitionProcessor(
                    i, bifrost, store, self.clock, self._on_actions, on_settle=self._on_settle
                )
            )
            self.timers.append(TimerService(self.clock, self._timer_fire(i)))
        for t in self.timers:
            t.start()
        for p in self.partitions:
            await p.recover()
        for p in self.partitions:
            p.lead()
            self._cleaners.append(
                asyncio.get_running_loop().create_task(p.clean(cfg.cleanup_interval_s))
            )
        ingress_app = IngressApp(
            self.metadata,
            self.partition_for,
            self.waiters,
            now_ms=self.clock.now_ms,
            max_body_size=cfg.ingress_max_body_size,
        )
        self._ingress = HttpServer(ingress_app, host=cfg.host, port=cfg.ingress_port)
        await self._ingress.start()
        self.query = QueryEngine(self.db, self.metadata, now_ms=self.clock.now_ms)
        admin_app = AdminApp(
            self.metadata,
            self._connector,
            ingress_url=lambda: cfg.advertised_ingress or f"{self.ingress_url}/",
            now_ms=self.clock.now_ms,
            control=self._control,
            patch_state=self._patch_state,
            default_retry=cfg.default_retry,
            cluster_name=cfg.cluster_name,
            extra=admin_route(self.query),
            metrics=lambda: metrics.render(self),
            ui=UiApp(
                self.metadata,
                self.query,
                now_ms=self.clock.now_ms,
                control=self._control,
                default_retry=cfg.default_retry,
                cluster_name=cfg.cluster_name,
            ),
        )
        self._admin = HttpServer(admin_app, host=cfg.host, port=cfg.admin_port)
        await self._admin.start()
        log.info("undying ready: ingress %s, admin %s", self.ingress_url, self.admin_url)

    async def stop(self) -> None:
        for srv in (self._ingress, self._admin):
            if srv is not None:
                await srv.stop(grace=1.0)
        for c in self._cleaners:
            c.cancel()
        await asyncio.gather(*self._cleaners, return_exceptions=True)
        await self.invoker.stop()
        for t in self.timers:
            await t.stop()
        await self._connector.aclose()
        await self.db.close()

    def _check_partitions(self) -> None:
        row = self.db.reader.execute(
            "SELECT value FROM server_config WHERE key = 'partitions'"
        ).fetchone()
        n = self.config.partitions
        if row is None:

            def job(conn: sqlite3.Connection) -> None:
                conn.execute(
                    "INSERT OR IGNORE INTO server_config (key, value) VALUES ('partitions', ?)",
                    (str(n),),
                )

            self.db.submit_nowait(job)
        elif int(row[0]) != n:
            log.warning(
                "the data directory was created with %s partitions; using that, not %d", row[0], n
            )
            self.config.partitions = int(row[0])

    @property
    def ingress_url(self) -> str:
        assert self._ingress is not None
        return f"http://{self.config.host}:{self._ingress.port}"

    @property
    def admin_url(self) -> str:
        assert self._admin is not None
        return f"http://{self.config.host}:{self._admin.port}"

    # ---- quiescence (for tests that drive a virtual clock) -------------------------------------

    @property
    def busy(self) -> bool:
        """Whether work is in progress or due now.

        In progress: a record appended but not applied yet, an attempt in flight. Due: a timer
        or a retry whose time has come, a sleeper the clock woke that has not resumed yet.
        """
        return self._working() or self._due()

    def _working(self) -> bool:
        # Work whose end calls _on_settle.
        return self.invoker.attempting > 0 or any(p.in_flight for p in self.partitions)

    def _due(self) -> bool:
        # Work that needs nothing but turns of the event loop to start.
        clock = self.clock
        if isinstance(clock, VirtualClock) and clock.waking:
            return True
        now = clock.now_ms()
        if any((w := t.next_wake_ms) is not None and w <= now for t in self.timers):
            return True
        retry = self.invoker.next_retry_ms
        return retry is not None and retry <= now

    @property
    def next_wake_ms(self) -> int | None:
        """When the earliest armed timer fires or the earliest retry starts (``None``: neither).

        Periodic housekeeping (expiring completed invocations) is not counted: it runs whenever
        the clock passes its next tick.
        """
        wakes = [w for t in self.timers if (w := t.next_wake_ms) is not None]
        retry = self.invoker.next_retry_ms
        if retry is not None:
            wakes.append(retry)
        return min(wakes, default=None)

    async def settle(self) -> None:
        """Wait until the server is not :attr:`busy` and the state it wrote is committed."""
        while True:
            if self._due():
                await asyncio.sleep(0)  # it starts within a few turns of the loop
            elif self._working():
                await self.changed()
            else:
                await self.db.barrier()
                if not self.busy:
                    return

    async def changed(self) -> None:
        """Wait until some work in progress ends (when :attr:`busy` may have become false)."""
        fut = asyncio.get_running_loop().create_future()
        self._settle_waiters.append(fut)
        await fut

    def _on_settle(self) -> None:
        waiters, self._settle_waiters = self._settle_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # ---- routing and effects ------------------------------------------------------------------

    def partition_for(self, partition_key: int) -> PartitionProcessor:
        return self.partitions[(partition_key * len(self.partitions)) >> 64]

    def _timer_fire(self, partition: int) -> Callable[[TimerKey, int], None]:
        def fire(key: TimerKey, wake_at: int) -> None:
            self.partitions[partition].propose(TimerFired(key, wake_at))

        return fire

    def _on_actions(self, processor: PartitionProcessor, actions: list[act.Action]) -> None:
        invoker = self.invoker
        for a in actions:
            if isinstance(a, act.Forward):
                invoker.forward(a.inv, a.epoch, a.type, a.payload)
            elif isinstance(a, act.Respond):
                self.waiters.resolve(a)
            elif isinstance(a, act.Invoke):
                invoker.invoke(processor, a.inv, a.epoch)
            elif isinstance(a, act.ArmTimer):
                self.timers[processor.partition].arm(a.key, a.wake_at)
            elif isinstance(a, act.Abort):
                invoker.abort(a.inv)
            elif isinstance(a, act.Send):
                self._deliver(processor, a)

    def _deliver(self, source: PartitionProcessor, send: act.Send) -> None:
        """Append an outbox message to its target's log, then truncate it from the outbox."""
        target = self.partition_for(send.partition_key)
        delivered = target.propose(send.body, dedup=Dedup(source.partition, send.seq))

        def done(f: asyncio.Future[None]) -> None:
            if f.cancelled() or f.exception() is not None:
                log.error("delivering outbox message %d failed: %r", send.seq, f)
                return
            source.propose(TruncateOutbox(send.seq))

        delivered.add_done_callback(done)

    async def _patch_state(
        self, service: str, key: str, entries: dict[bytes, bytes], version: str | None
    ) -> None:
        processor = self.partition_for(partition_key_for(service, key))
        await processor.propose(PatchState(service, key, entries, version))

    async def _control(self, inv: InvocationId, command: str) -> tuple[int, str | None]:
        processor = self.partition_for(inv.partition_key)
        status = processor.store.get_status(inv.to_bytes())
        if status is None:
            return 404, f"The requested invocation '{inv}' does not exist"
        if command == "pause":
            # as restate-server: only a running invocation pauses; a suspended one is
            # "already paused" (200, it stays suspended); anything else is not running
            if status.status in ("paused", "suspended"):
                return 200, None
            if status.status != "invoked":
                return 409, f"The invocation '{inv}' is not running."
        if command in ("cancel", "kill") and status.status == "completed":
            return 409, f"The invocation '{inv}' was already completed."
        if command == "purge" and status.status != "completed":
            return 409, f"The invocation '{inv}' is not yet completed."
        if command == "resume" and status.status not in ("paused", "suspended", "invoked"):
            return 409, f"The invocation '{inv}' is not paused."
        await processor.propose(AdminCommand(inv.to_bytes(), command))  # type: ignore[arg-type]
        return (202 if command in ("cancel", "pause") else 200), None
