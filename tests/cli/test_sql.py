"""``undying sql``: Arrow answers (as ``restate sql`` reads them), JSON without pyarrow."""

from __future__ import annotations

import datetime
import json
import sys

import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from .conftest import Run
from .fake_admin import FakeAdmin, Reply

QUERY = "SELECT id, status, last_failure, created_at, value FROM t"


def _stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


@pytest.fixture
def world(fake: FakeAdmin) -> FakeAdmin:
    at = datetime.datetime(2026, 11, 24, 4, 58, 43, 982000, tzinfo=datetime.UTC)
    table = pa.table(
        {
            "id": pa.array(["inv_1a", "inv_1b"], pa.large_string()),
            "status": pa.array(["completed", "backing-off"], pa.large_string()),
            "last_failure": pa.array([None, None], pa.large_string()),
            "created_at": pa.array([at, at], pa.timestamp("ms", tz="+00:00")),
            "value": pa.array([b"8", None], pa.large_binary()),
        }
    )
    fake.arrow.append(("FROM t", _stream(table)))
    fake.on_query("FROM t", [{"id": "inv_1a", "status": "completed"}, {"id": "inv_1b", "x": 1}])
    return fake


def test_a_table_with_every_column_even_all_null_ones(run: Run, world: FakeAdmin) -> None:
    result = run("sql", QUERY)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "status", "last_failure", "created_at", "value"]
    first = lines[2].split()
    assert first == ["inv_1a", "completed", "NULL", "2026-11-24T04:58:43.982Z", "38"]
    assert "2 rows. Query took" in result.stderr
    [req] = [r for r in world.requests if r.route == "/query"]
    assert req.headers["accept"] == "*/*" and req.json() == {"query": QUERY}


def test_json(run: Run, world: FakeAdmin) -> None:
    rows = json.loads(run("sql", QUERY, "--output", "json").stdout)
    assert rows == [
        {
            "id": "inv_1a",
            "status": "completed",
            "last_failure": None,
            "created_at": "2026-11-24T04:58:43.982Z",
            "value": "38",
        },
        {
            "id": "inv_1b",
            "status": "backing-off",
            "last_failure": None,
            "created_at": "2026-11-24T04:58:43.982Z",
            "value": None,
        },
    ]


def test_without_pyarrow_it_asks_for_json_rows(
    run: Run, world: FakeAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    rows = json.loads(run("sql", QUERY, "-o", "json").stdout)
    assert rows == [
        {"id": "inv_1a", "status": "completed", "x": None},
        {"id": "inv_1b", "status": None, "x": 1},
    ]
    [req] = [r for r in world.requests if r.route == "/query"]
    assert req.headers["accept"] == "application/json"


def test_a_bad_query_shows_the_servers_message(run: Run, fake: FakeAdmin) -> None:
    message = (
        'Datafusion error: SQL error: ParserError("Expected: an SQL statement, found: SELEC at '
        'Line: 1, Column: 1")'
    )
    fake.on("POST", "/query", Reply(400, {"message": message}))
    fake.queries.clear()
    result = run("sql", "SELEC 1")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {message}"
