"""The embedded SQLite database: one writer thread with group commit, plus read connections.

Every write goes through :meth:`Database.submit` as a *job* (a function of the connection). The
writer thread takes all jobs that are queued, runs them in one transaction and commits once, so
concurrent invocations share one fsync (WAL, ``synchronous=FULL``). The future of each job
resolves, on the event loop, only after that commit returned: what it wrote is durable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from undying.errors import StorageError
from undying.server.metrics import DURATION_BUCKETS, SIZE_BUCKETS, Histogram

__all__ = ["Database", "Job"]

log = logging.getLogger("undying.storage")

#: A write job: runs on the writer thread inside the group transaction; returns a result.
Job = Callable[[sqlite3.Connection], Any]

_MAX_BATCH: Final = 4096
_STOP: Final = object()
_KICK: Final = object()
#: How long a lazy job may wait for a durable one to share its commit.
LAZY_DELAY: Final = 0.02


class Database:
    """One SQLite file in WAL mode, written by one thread with group commit.

    Args:
        path: the database file (created with its directory if missing).
        synchronous: SQLite ``synchronous`` level of the writer; ``FULL`` makes every commit
            durable on power loss.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: sqlite3.Connection | None = None
        self._failed: BaseException | None = None
        self._lazy: queue.SimpleQueue[tuple[Job, Callable[[], None] | None]] = queue.SimpleQueue()
        self._kick_pending = False
        self.commits = 0
        self.jobs = 0
        #: jobs per group commit, and how long each commit took (BEGIN to COMMIT, fsync included)
        self.batch_sizes = Histogram(SIZE_BUCKETS)
        self.commit_seconds = Histogram(DURATION_BUCKETS)

    # ---- lifecycle ----------------------------------------------------------------------------

    def open(self, schema: str = "") -> None:
        """Create the file, apply ``schema`` (idempotent DDL) and start the writer thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        conn = self._connect()
        if schema:
            conn.executescript(schema)
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="undying-writer", daemon=True
        )
        self._thread.start()
        self._reader = self._connect(readonly=True)

    async def close(self) -> None:
        """Finish the queued jobs and stop the writer thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _connect(self, *, readonly: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA busy_timeout=10000")
        if readonly:
            conn.execute("PRAGMA query_only=1")
        return conn

    # ---- writes -------------------------------------------------------------------------------

    def submit(self, job: Job) -> asyncio.Future[Any]:
        """Queue ``job`` for the next group commit; the future resolves once it is durable."""
        if self._failed is not None:
            raise StorageError(f"the storage writer has failed: {self._failed}")
        assert self._loop is not None, "Database.open() was not called"
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put((job, fut))
        return fut

    async def barrier(self) -> None:
        """Wait until everything queued so far (lazy jobs included) is committed."""
        if self._thread is None or self._loop is not asyncio.get_running_loop():
            return
        await self.submit(_nothing)

    def submit_nowait(self, job: Job) -> None:
        """Queue ``job`` without waiting for it (errors are logged and fail the writer)."""
        if self._failed is not None:
            raise StorageError(f"the storage writer has failed: {self._failed}")
        self._queue.put((job, None))

    def submit_lazy(self, job: Job, on_commit: Callable[[], None] | None = None) -> None:
        """Queue ``job`` to ride along with the next commit (within :data:`LAZY_DELAY`).

        For writes that need no durability of their own (the state, which the log can
        rebuild): they share the fsync of the next durable job instead of causing one. Lazy
        jobs commit in the order they were queued; ``on_commit`` runs on the loop after.
        """
        if self._failed is not None:
            raise StorageError(f"the storage writer has failed: {self._failed}")
        self._lazy.put((job, on_commit))
        if not self._kick_pending and self._loop is not None:
            self._kick_pending = True
            self._loop.call_later(LAZY_DELAY, self._kick)

    def _kick(self) -> None:
        self._kick_pending = False
        if not self._lazy.empty():
            self._queue.put(_KICK)

    def _run(self, conn: sqlite3.Connection) -> None:
        q = self._queue
        while True:
            first = q.get()
            if first is _STOP:
                self._commit(conn, [])
                break
            batch = [] if first is _KICK else [first]
            stop = False
            while len(batch) < _MAX_BATCH:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is _KICK:
                    continue
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(conn, batch)
            if stop:
                self._commit(conn, [])
                break
        conn.close()

    def _take_lazy(self) -> list[tuple[Job, Callable[[], None] | None]]:
        out = []
        while True:
            try:
                out.append(self._lazy.get_nowait())
            except queue.Empty:
                return out

    def _commit(self, conn: sqlite3.Connection, batch: list[tuple[Job, Any]]) -> None:
        # Lazy jobs first: every lazy job queued before a durable one is in the same commit.
        lazy = self._take_lazy()
        if not batch and not lazy:
            return
        results: list[tuple[Any, Any, BaseException | None]] = []
        started = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, _ in lazy:
                job(conn)
            for job, fut in batch:
                results.append((fut, job(conn), None))
            conn.execute("COMMIT")
        except BaseException as e:  # a failing job: isolate it by running the jobs one by one
            log.exception("group commit failed; retrying its %d jobs one by one", len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job, _ in lazy:
                self._commit_one(conn, job, None)
            results = [self._commit_one(conn, job, fut) for job, fut in batch]
            if batch and all(err is not None for _, _, err in results):
                self._failed = e
        self.commit_seconds.observe(time.perf_counter() - started)
        self.batch_sizes.observe(len(batch) + len(lazy))
        self.commits += 1
        self.jobs += len(batch) + len(lazy)
        callbacks = [cb for _, cb in lazy if cb is not None]
        loop = self._loop
        assert loop is not None
        try:
            loop.call_soon_threadsafe(_resolve, results, callbacks)
        except RuntimeError:  # the loop is closed (shutdown)
            pass

    @staticmethod
    def _commit_one(
        conn: sqlite3.Connection, job: Job, fut: Any
    ) -> tuple[Any, Any, BaseException | None]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = job(conn)
            conn.execute("COMMIT")
            return (fut, result, None)
        except BaseException as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("storage job failed: %r", e)
            return (fut, None, e)

    @property
    def queued(self) -> int:
        """Write jobs queued and not taken by the writer yet (lazy ones included)."""
        return self._queue.qsize() + self._lazy.qsize()

    # ---- reads --------------------------------------------------------------------------------

    @property
    def reader(self) -> sqlite3.Connection:
        """A read-only connection for the event loop thread (sees committed data)."""
        if self._reader is None:
            raise StorageError("the database is not open")
        return self._reader

    def new_reader(self) -> sqlite3.Connection:
        """A fresh read-only connection, e.g. for a query running in another thread."""
        return self._connect(readonly=True)


def _nothing(conn: sqlite3.Connection) -> None:
    """A durable no-op: its commit carries every write queued before it."""


def _resolve(
    results: list[tuple[Any, Any, BaseException | None]], callbacks: list[Callable[[], None]]
) -> None:
    for cb in callbacks:
        try:
            cb()
        except Exception:
            log.exception("a storage commit callback failed")
    for fut, result, err in results:
        if fut is None:
            continue
        if fut.done():
            continue
        if err is None:
            fut.set_result(result)
        else:
            fut.set_exception(StorageError(f"write failed: {err!r}"))
