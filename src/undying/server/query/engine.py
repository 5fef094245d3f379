"""The SQL engine behind the admin ``/query`` endpoint: DataFusion over tables built on demand.

Each query runs in a worker thread with its own DataFusion session and its own read-only SQLite
connection (one read transaction, so all tables come from the same committed state):

1. every table is registered empty, with its schema, and the query is planned; that answers
   ``information_schema`` and ``DESCRIBE``, and reports parse and planning errors;
2. the tables the plan scans are built from storage, restricted to the rows its filters can
   accept (see :mod:`~undying.server.query.planning`), and registered with their data;
3. the query is planned again and executed.

DDL, DML (``COPY`` included) and other statements are refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped]
from datafusion import SessionConfig, SessionContext, SQLOptions

from undying.server.metadata import MetadataStore
from undying.server.query.planning import scan_columns, scan_restrictions, scanned_tables
from undying.server.query.schemas import TABLE_SCHEMAS
from undying.server.query.tables import BUILDERS, Snapshot, build_table
from undying.server.schema import Schema
from undying.server.storage.database import Database

__all__ = ["QueryEngine", "QueryError"]

log = logging.getLogger("undying.query")

_PREFIX: Final = "Datafusion error: "
_PUSHDOWN: Final = {name: b.pushdown for name, b in BUILDERS.items() if b.pushdown}


class QueryError(Exception):
    """A query that failed: the HTTP status to answer and Restate's error message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _options() -> SQLOptions:
    return SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)


def _query_error(e: BaseException) -> QueryError:
    """Restate's status and message for a DataFusion failure: 400 for SQL syntax, else 500."""
    text = str(e)
    for prefix in ("DataFusion error: ", "Datafusion error: "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    status = 400 if text.startswith("SQL error:") else 500
    return QueryError(status, _PREFIX + text)


def _is_datafusion_error(e: BaseException) -> bool:
    # DataFusion raises ValueError/Exception from Rust, and pyo3's PanicException (a
    # BaseException) if it panics; both are query failures, not server failures.
    return isinstance(e, Exception) or type(e).__name__ == "PanicException"


class QueryEngine:
    """Runs SQL against undying's storage and schema registry."""

    def __init__(
        self,
        db: Database,
        metadata: MetadataStore,
        *,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._db = db
        self._metadata = metadata
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)

    async def execute(self, sql: str) -> Any:
        """Run ``sql``; the result as a ``pyarrow.Table``. Raises :class:`QueryError`.

        Read-your-writes: everything answered before the query started is visible to it (the
        state written back lazily is committed first).
        """
        await self._db.barrier()
        schema = self._metadata.schema
        now = self._now_ms()
        return await asyncio.to_thread(self._run, sql, schema, now)

    # ---- the worker thread ---------------------------------------------------------------

    def _run(self, sql: str, schema: Schema, now: int) -> Any:
        ctx = SessionContext(SessionConfig().with_information_schema(True))
        for name, table_schema in TABLE_SCHEMAS.items():
            ctx.register_record_batches(name, [[_empty_batch(table_schema)]])
        options = _options()
        try:
            df = ctx.sql(sql, options=options)
            used = scanned_tables(df.logical_plan(), TABLE_SCHEMAS)
        except BaseException as e:
            if _is_datafusion_error(e):
                raise _query_error(e) from None
            raise
        if used:
            restrictions, columns = self._analyze(df, used)
            self._load(ctx, used, restrictions, columns, schema, now)
        try:
            if used:
                df = ctx.sql(sql, options=options)
            return df.to_arrow_table()
        except BaseException as e:
            if _is_datafusion_error(e):
                raise _query_error(e) from None
            raise

    @staticmethod
    def _analyze(df: Any, used: set[str]) -> tuple[dict[str, Any], dict[str, frozenset[str]]]:
        """Row restrictions and read columns per table (empty when unknown: read everything)."""
        wanted = {name: cols for name, cols in _PUSHDOWN.items() if name in used}
        try:
            plan = df.optimized_logical_plan()
            restrictions = scan_restrictions(plan, wanted) if wanted else {}
            return restrictions, scan_columns(plan, used)
        except Exception:  # no restriction is always correct, just slower
            log.debug("could not analyze the query plan; reading whole tables", exc_info=True)
            return {}, {}

    def _load(
        self,
        ctx: SessionContext,
        used: set[str],
        restrictions: dict[str, Any],
        columns: dict[str, frozenset[str]],
        schema: Schema,
        now: int,
    ) -> None:
        conn = self._db.new_reader()
        try:
            conn.execute("BEGIN")
            snap = Snapshot(conn, schema, now, columns)
            for name in sorted(used):
                table = build_table(name, snap, restrictions.get(name))
                ctx.deregister_table(name)
                batches = table.to_batches() or [_empty_batch(table.schema)]
                ctx.register_record_batches(name, [batches])
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()


def _empty_batch(schema: Any) -> Any:
    return pa.RecordBatch.from_pylist([], schema=schema)
