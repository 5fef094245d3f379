"""The SQL engine behind the admin ``/query`` endpoint: DataFusion over tables built on demand.

Each query runs in a worker thread with its own DataFusion session (catalog ``restate``,
schema ``public``, as Restate's) and its own read-only SQLite connection (one read transaction,
so all tables come from the same committed state):

1. every table is registered empty, with its schema (``sys_invocation`` as a view, as in
   Restate), and the query is planned; that answers ``information_schema`` and ``DESCRIBE``,
   and reports parse and planning errors;
2. the optimized plan tells, per table, which columns and rows the query can use
   (:func:`~undying.server.query.planning.analyze_scans`); only those are read from storage;
3. a query that only filters and projects one table (``SELECT … FROM t WHERE … [LIMIT n]``)
   runs over the table chunk by chunk, so its answer streams out while the table is read and
   a ``LIMIT`` stops the reading; any other query gets its tables built (restricted) and
   registered, and runs once.

Results come out as a stream of Arrow record batches (:meth:`QueryEngine.stream`), or whole
(:meth:`QueryEngine.execute`). DDL and DML (``COPY`` included) are refused, as Restate does.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped]
from datafusion import SessionConfig, SessionContext, SQLOptions

from undying.server.metadata import MetadataStore
from undying.server.query.planning import analyze_scans, limit_of, scanned_tables, streamable_scan
from undying.server.query.scans import Scan
from undying.server.query.schemas import TABLE_SCHEMAS
from undying.server.query.tables import BUILDERS, Snapshot, table_batches
from undying.server.schema import Schema
from undying.server.storage.database import Database

__all__ = ["QueryEngine", "QueryError", "QueryStream"]

log = logging.getLogger("undying.query")

_PREFIX: Final = "Datafusion error: "
_PUSHDOWN: Final = {name: b.pushdown for name, b in BUILDERS.items() if b.pushdown}
#: Tables registered as views over a hidden table, as Restate has them (``table_type`` VIEW).
_VIEWS: Final = {"sys_invocation": "__sys_invocation"}
_HIDDEN: Final = {hidden: name for name, hidden in _VIEWS.items()}
#: Batches a producer may be ahead of its consumer.
_AHEAD: Final = 4
_NO_FIELD: Final = re.compile(
    r"(No field named [^\n]*?\.)\s*(?:Did you mean '[^'\n]*'\?)?\s*(Valid fields are)"
)
_TABLE_NOT_FOUND: Final = re.compile(r"^Error during planning: table '[^']*' not found")


class _BuildError(Exception):
    """A table could not be built (a bug, not a query error): logged, answered with 500."""


def _guarded(batches: Any) -> Any:
    try:
        yield from batches
    except Exception as e:
        raise _BuildError(repr(e)) from e


class QueryError(Exception):
    """A query that failed: the HTTP status to answer and Restate's error message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _options() -> SQLOptions:
    return SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(True)


def _query_error(e: BaseException, sql: str) -> QueryError:
    """Restate's status and message for a DataFusion failure.

    Restate answers 400 for syntax errors and for planning errors (refused statements, unknown
    table in ``DESCRIBE``…), and 500 for everything else, including an unknown table or column
    in a query (DataFusion reports those with a diagnostic attached, which Restate does not
    count as a planning error).
    """
    text = str(e)
    for prefix in ("DataFusion error: ", "Datafusion error: "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = _NO_FIELD.sub(r"\1 \2", text)
    if text.startswith("SQL error:"):
        status = 400
    elif text.startswith("Error during planning:"):
        describe = sql.lstrip().upper().startswith(("DESCRIBE ", "DESC "))
        status = 500 if _TABLE_NOT_FOUND.match(text) and not describe else 400
    else:
        status = 500
    return QueryError(status, _PREFIX + text)


def _is_datafusion_error(e: BaseException) -> bool:
    # DataFusion raises ValueError/Exception from Rust, and pyo3's PanicException (a
    # BaseException) if it panics; both are query failures, not server failures.
    return isinstance(e, Exception) or type(e).__name__ == "PanicException"


_EMPTY: dict[str, Any] = {}


def _empty_batch(name: str) -> Any:
    """A batch with no rows of table ``name`` (made once: every query registers them all)."""
    batch = _EMPTY.get(name)
    if batch is None:
        schema = TABLE_SCHEMAS[name]
        arrays = [pa.array([], type=f.type) for f in schema]
        batch = _EMPTY[name] = pa.RecordBatch.from_arrays(arrays, schema=schema)
    return batch


def _register(ctx: SessionContext, name: str, batches: list[Any]) -> None:
    """Register ``batches`` as table ``name`` (replacing it), as a view where Restate has one."""
    data = [b for b in batches if b.num_rows] or [_empty_batch(name)]
    if ctx.table_exist(name):
        ctx.deregister_table(name)
    hidden = _VIEWS.get(name)
    if hidden is None:
        ctx.register_record_batches(name, [data])
        return
    ctx.register_record_batches(hidden, [data])
    ctx.register_view(name, ctx.table(hidden))
    ctx.deregister_table(hidden)


def _context() -> SessionContext:
    config = (
        SessionConfig()
        .with_information_schema(True)
        .with_default_catalog_and_schema("restate", "public")
    )
    ctx = SessionContext(config)
    for name in TABLE_SCHEMAS:
        _register(ctx, name, [])
    return ctx


# ---- streams -----------------------------------------------------------------------------------


class _Channel:
    """Hands items from a producer thread to the event loop, at most :data:`_AHEAD` ahead."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._room = threading.Semaphore(_AHEAD)
        self.cancelled = threading.Event()

    def put(self, kind: str, value: Any = None) -> bool:
        """From the producer; False once the consumer is gone (stop producing)."""
        while not self._room.acquire(timeout=0.05):
            if self.cancelled.is_set():
                return False
        if self.cancelled.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed
            return False
        return True

    async def get(self) -> tuple[str, Any]:
        item = await self._queue.get()
        self._room.release()
        return item


class QueryStream:
    """The answer to a query: its Arrow ``schema``, then record batches (``async for``).

    Iteration raises :class:`QueryError` if the query fails while it runs. Call
    :meth:`aclose` when not reading to the end.
    """

    def __init__(self, schema: Any, channel: _Channel) -> None:
        self.schema = schema
        self._channel = channel
        self._done = False
        # A stream dropped without aclose() still stops its worker (and its read transaction).
        weakref.finalize(self, channel.cancelled.set)

    def __aiter__(self) -> QueryStream:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        try:
            kind, value = await self._channel.get()
        except BaseException:
            self._channel.cancelled.set()
            raise
        if kind == "batch":
            return value
        self._done = True
        if kind == "error":
            raise value
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop the query (if still running)."""
        self._done = True
        self._channel.cancelled.set()


class _Emitter:
    """Puts a query's batches into a channel: the schema with the first batch, up to a limit.

    DataFusion's batches may differ from the planned schema in nullability only; the stream
    announces the schema of its first batch and gives the others that schema.
    """

    def __init__(self, channel: _Channel, limit: int | None = None) -> None:
        self._channel = channel
        self._left = limit
        self._schema: Any = None
        self.stopped = False

    @property
    def exhausted(self) -> bool:
        return self._left is not None and self._left <= 0

    def run(self, df: Any) -> bool:
        """Put the batches of ``df``; False once the consumer is gone."""
        for raw in df.execute_stream():
            if self.exhausted:
                return True
            batch = raw.to_pyarrow()
            if self._left is not None:
                if batch.num_rows > self._left:
                    batch = batch.slice(0, self._left)
                self._left -= batch.num_rows
            if batch.num_rows and not self._put(batch):
                return False
        return True

    def _put(self, batch: Any) -> bool:
        if self._schema is None:
            self._schema = batch.schema
            if not self._channel.put("schema", batch.schema):
                self.stopped = True
                return False
        elif not batch.schema.equals(self._schema):
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=self._schema)
        if not self._channel.put("batch", batch):
            self.stopped = True
            return False
        return True

    def finish(self, planned: Any) -> None:
        """After the last batch: announce the planned schema if no batch came."""
        if self._schema is None and not self.stopped:
            self._schema = planned
            self._channel.put("schema", planned)


# ---- the engine --------------------------------------------------------------------------------


class QueryEngine:
    """Runs SQL against undying's storage and schema registry."""

    def __init__(
        self,
        db: Database,
        metadata: MetadataStore,
        *,
        now_ms: Callable[[], int] | None = None,
        pushdown: bool = True,
    ) -> None:
        """``pushdown=False`` builds whole tables for every query (slow; for tests)."""
        self._db = db
        self._metadata = metadata
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._pushdown = pushdown

    async def execute(self, sql: str) -> Any:
        """Run ``sql``; the result as a ``pyarrow.Table``. Raises :class:`QueryError`.

        Read-your-writes: everything answered before the query started is visible to it (the
        state written back lazily is committed first).
        """
        stream = await self.stream(sql)
        try:
            batches = [b async for b in stream]
        finally:
            await stream.aclose()
        return pa.Table.from_batches(batches, schema=stream.schema)

    async def stream(self, sql: str) -> QueryStream:
        """Start ``sql``; its answer as a :class:`QueryStream` of record batches.

        Raises :class:`QueryError` at once for errors found while planning.
        """
        await self._db.barrier()
        schema = self._metadata.schema
        now = self._now_ms()
        channel = _Channel(asyncio.get_running_loop())
        worker = threading.Thread(
            target=self._produce,
            args=(sql, schema, now, channel),
            name="undying-query",
            daemon=True,
        )
        worker.start()
        try:
            kind, value = await channel.get()
        except BaseException:
            channel.cancelled.set()
            raise
        if kind == "error":
            raise value
        return QueryStream(value, channel)

    # ---- the worker thread ---------------------------------------------------------------

    def _produce(self, sql: str, schema: Schema, now: int, channel: _Channel) -> None:
        try:
            self._run(sql, schema, now, channel)
        except BaseException as e:
            if isinstance(e, QueryError):
                channel.put("error", e)
            elif isinstance(e, _BuildError):
                log.error("could not build a table for: %s", sql, exc_info=e.__cause__)
                channel.put("error", QueryError(500, f"Internal error: {e}"))
            elif _is_datafusion_error(e):
                channel.put("error", _query_error(e, sql))
            else:  # pragma: no cover - a bug
                log.exception("query failed: %s", sql)
                channel.put("error", e)
            return
        channel.put("end")

    def _run(self, sql: str, schema: Schema, now: int, channel: _Channel) -> None:
        ctx = _context()
        options = _options()
        df = ctx.sql(sql, options=options)
        names = {*(_VIEWS.get(n, n) for n in TABLE_SCHEMAS)}
        # The unoptimized plan names a view, the optimized one the table under it.
        visible = names | set(TABLE_SCHEMAS)
        used = {_HIDDEN.get(n, n) for n in scanned_tables(df.logical_plan(), visible)}
        if not used:
            out = _Emitter(channel)
            if out.run(df):
                out.finish(df.schema())
            return
        plan = df.optimized_logical_plan()
        scans, streamed = self._analyze(plan, names) if self._pushdown else ({}, None)
        conn = self._db.new_reader()
        try:
            conn.execute("BEGIN")
            snap = Snapshot(conn, schema, now)
            if streamed is not None:
                out = _Emitter(channel, limit_of(plan))
                self._run_chunked(ctx, sql, out, snap, streamed, scans.get(streamed))
                out.finish(df.schema())
                return
            for name in sorted(used):
                _register(ctx, name, list(_guarded(table_batches(name, snap, scans.get(name)))))
            df = ctx.sql(sql, options=options)
            out = _Emitter(channel)
            if out.run(df):
                out.finish(df.schema())
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    @staticmethod
    def _run_chunked(
        ctx: SessionContext, sql: str, out: _Emitter, snap: Snapshot, name: str, scan: Scan | None
    ) -> None:
        """Run a filter-and-project query over table ``name`` one chunk at a time."""
        options = _options()
        for batch in _guarded(table_batches(name, snap, scan)):
            _register(ctx, name, [batch])
            if not out.run(ctx.sql(sql, options=options)) or out.exhausted:
                break

    @staticmethod
    def _analyze(plan: Any, names: set[str]) -> tuple[dict[str, Scan], str | None]:
        """The scan of each table, and the table of a streamable query (or None)."""
        try:
            schemas = {_VIEWS.get(n, n): s for n, s in TABLE_SCHEMAS.items()}
            pushdown = {_VIEWS.get(n, n): cols for n, cols in _PUSHDOWN.items()}
            found = analyze_scans(plan, schemas, pushdown)
            streamed = streamable_scan(plan, names)
        except Exception:  # no restriction is always correct, just slower
            log.debug("could not analyze the query plan; reading whole tables", exc_info=True)
            return {}, None
        scans = {_HIDDEN.get(n, n): s for n, s in found.items()}
        return scans, None if streamed is None else _HIDDEN.get(streamed, streamed)
