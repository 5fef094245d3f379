"""``undying sql``: run a query over the server's tables and print the rows.

As ``restate sql`` does, the query goes to ``POST /query`` for an Arrow IPC stream, which
carries the columns even when every value of one is NULL; the values are then written the way
the JSON API writes them (timestamps RFC 3339, binary as hex, durations ISO 8601). That needs
pyarrow (part of the ``server`` extra); without it the CLI asks for JSON rows, where a column
that is NULL in every row does not show.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from undying.cli.admin_client import AdminClient
from undying.cli.options import Output, admin_url_option, connect, output_option
from undying.cli.render import console, emit_json, table, text

__all__ = ["run_query", "sql"]


def run_query(admin: AdminClient, query: str) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` of ``query``; every row has every column (``None`` for NULL)."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]

        from undying.server.query.encoding import json_rows
    except ImportError:
        rows = admin.query(query)
        columns: list[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        return columns, [{c: row.get(c) for c in columns} for row in rows]
    stream = admin.query_arrow(query)
    result = pa.ipc.open_stream(stream).read_all()
    columns = list(result.column_names)
    values = json.loads(json_rows(result))["rows"]
    return columns, [{c: row.get(c) for c in columns} for row in values]


def _cell(value: Any) -> Any:
    if value is None:
        return text("NULL", "dim")
    if isinstance(value, dict | list):
        return text(json.dumps(value, ensure_ascii=False))
    if isinstance(value, bool):
        return text("true" if value else "false")
    return text(value)


@click.command()
@click.argument("query")
@admin_url_option
@output_option
def sql(query: str, admin_url: str | None, output: Output) -> None:
    """Run QUERY (SQL, DataFusion's dialect) over the tables of the server.

    Tables: sys_invocation, sys_journal, sys_journal_events, state, sys_service,
    sys_deployment, sys_inbox, sys_promise, ... (`undying sql "SHOW TABLES"`).

    JSON: a list of objects, one per row, with every column (null for NULL).
    """
    admin = connect(admin_url)
    started = time.monotonic()
    columns, rows = run_query(admin, query)
    took = (time.monotonic() - started) * 1000
    if output == "json":
        emit_json(rows)
        return
    console().print(table(columns, ([_cell(r[c]) for c in columns] for r in rows)))
    plural = "row" if len(rows) == 1 else "rows"
    console(err=True).print(text(f"{len(rows)} {plural}. Query took {took:.1f}ms", "dim"))
