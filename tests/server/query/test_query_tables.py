"""Table contents, schemas, schema probes, errors, and filter pushdown."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from query_world import World

from undying.server.query import QueryError
from undying.server.query.encoding import json_rows
from undying.server.query.planning import scan_restrictions
from undying.server.query.schemas import TABLE_SCHEMAS


def rows(world: World, sql: str) -> list[dict[str, Any]]:
    table = asyncio.run(world.engine().execute(sql))
    return json.loads(json_rows(table))["rows"]  # type: ignore[no-any-return]


def error(world: World, sql: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        asyncio.run(world.engine().execute(sql))
    return info.value


def test_every_restate_table_answers_with_its_columns(world: World) -> None:
    for name, schema in TABLE_SCHEMAS.items():
        table = asyncio.run(world.engine().execute(f"SELECT * FROM {name}"))
        assert table.schema.names == schema.names, name
    described = rows(world, "DESCRIBE sys_invocation")
    assert len(described) == 51
    assert described[0] == {"column_name": "id", "data_type": "LargeUtf8", "is_nullable": "YES"}
    status = next(r for r in described if r["column_name"] == "status")
    assert status["is_nullable"] == "NO"
    tables = rows(
        world,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "ORDER BY table_name",
    )
    assert [r["table_name"] for r in tables] == sorted(TABLE_SCHEMAS)


def test_invocation_status_shows_stored_status_names(world: World) -> None:
    got = rows(world, "SELECT id, status FROM sys_invocation_status ORDER BY created_at")
    assert [r["status"] for r in got] == [
        "completed",
        "invoked",
        "invoked",
        "inboxed",
        "completed",
        "suspended",
        "scheduled",
    ]
    scheduled = rows(
        world,
        "SELECT scheduled_at, scheduled_start_at, partition_key FROM sys_invocation_status "
        f"WHERE id = '{world.ids['scheduled']}'",
    )
    assert scheduled == [
        {
            "scheduled_at": "2026-11-24T04:58:44.782Z",
            "scheduled_start_at": "2026-11-24T05:59:43.982Z",
            "partition_key": scheduled[0]["partition_key"],
        }
    ]


def test_invocation_state_has_rows_for_running_and_retrying_invocations(world: World) -> None:
    got = rows(world, "SELECT id, in_flight, retry_count, next_retry_at FROM sys_invocation_state")
    by_id = {r.pop("id"): r for r in got}
    assert by_id == {
        world.ids["running"]: {"in_flight": True, "retry_count": 1},
        world.ids["backing-off"]: {
            "in_flight": False,
            "retry_count": 3,
            "next_retry_at": "2026-11-24T04:59:46.482Z",
        },
    }


def test_suspended_invocation_lists_what_it_waits_for(world: World) -> None:
    got = rows(
        world,
        "SELECT suspended_waiting_for_completions, suspended_waiting_for_signals, retry_count "
        f"FROM sys_invocation WHERE id = '{world.ids['suspended']}'",
    )
    assert got == [
        {"suspended_waiting_for_completions": [1], "suspended_waiting_for_signals": [17]}
    ]


def test_keyed_service_tables(world: World) -> None:
    assert rows(world, "SELECT service_name, service_key, id, sequence_number FROM sys_inbox") == [
        {
            "service_name": "Counter",
            "service_key": "alice",
            "id": world.ids["pending"],
            "sequence_number": 1,
        }
    ]
    assert rows(
        world, "SELECT service_name, service_key, invocation_id FROM sys_keyed_service_status"
    ) == [
        {"service_name": "Counter", "service_key": "alice", "invocation_id": world.ids["running"]}
    ]
    state = rows(world, "SELECT * FROM state WHERE service_key = 'bob' ORDER BY key")
    assert state[0] == {
        "partition_key": state[0]["partition_key"],
        "service_name": "Counter",
        "service_key": "bob",
        "key": "blob",
        "key_length": 4,
        "value": "ff00",
        "value_length": 2,
    }
    assert state[1]["value_utf8"] == "41"
    assert rows(world, "SELECT * FROM sys_promise") == []


def test_registry_tables(world: World) -> None:
    dp = world.deployment_id
    assert rows(world, "SELECT * FROM sys_deployment") == [
        {
            "id": dp,
            "ty": "http",
            "endpoint": "http://localhost:9080/",
            "created_at": "2026-11-24T04:58:35.582Z",
            "min_service_protocol_version": 5,
            "max_service_protocol_version": 7,
            "services": ["Counter", "Greeter"],
        }
    ]
    assert rows(world, "SELECT * FROM sys_service ORDER BY name") == [
        {
            "name": "Counter",
            "revision": 1,
            "public": True,
            "ty": "virtual_object",
            "deployment_id": dp,
        },
        {"name": "Greeter", "revision": 1, "public": True, "ty": "service", "deployment_id": dp},
    ]


def test_journal_events_use_command_type_names(world: World) -> None:
    got = rows(
        world, "SELECT after_journal_entry_index, event_type, event_json FROM sys_journal_events"
    )
    assert len(got) == 1
    assert got[0]["after_journal_entry_index"] == 5
    assert got[0]["event_type"] == "TransientError"
    event = json.loads(got[0]["event_json"])
    assert event["related_command_type"] == "Run"
    assert event["restate_doc_error_code"] == "RT0007"


def test_journal_lite_json_and_raw(world: World) -> None:
    got = rows(
        world,
        "SELECT index, raw, raw_length, entry_lite_json FROM sys_journal "
        f"WHERE id = '{world.ids['completed']}' AND index IN (2, 3, 7)",
    )
    got.sort(key=lambda r: r["index"])
    assert got[0]["raw"] == "08012a00" and got[0]["raw_length"] == 4
    assert [r["entry_lite_json"] for r in got] == [
        '{"Notification":{"ty":{"Completion":"Run"},"id":{"CompletionId":1},"result":"Success"}}',
        '{"Command":{"Sleep":{"wake_up_time":1795496324991,"completion_id":2}}}',
        '{"Command":{"Output":{"result":"Success"}}}',
    ]


# ---- errors --------------------------------------------------------------------------------


def test_syntax_errors_are_400_with_datafusions_message(world: World) -> None:
    e = error(world, "SELEC id FROM sys_invocation")
    assert e.status == 400
    assert e.message == (
        'Datafusion error: SQL error: ParserError("Expected: an SQL statement, found: SELEC '
        'at Line: 1, Column: 1")'
    )


def test_unknown_columns_and_tables_are_500(world: World) -> None:
    e = error(world, "SELECT nope FROM sys_invocation")
    assert e.status == 500
    assert e.message.startswith("Datafusion error: Schema error: No field named nope.")
    e = error(world, "SELECT * FROM sys_nothing")
    assert e.status == 500 and "sys_nothing" in e.message


def test_statements_that_change_anything_are_refused_with_400(world: World) -> None:
    # As restate-server 1.7.12 answers them (checked with --target restate in
    # test_query_reference.py).
    for sql, message in (
        ("CREATE TABLE t AS SELECT 1", "DDL not supported: CreateMemoryTable"),
        ("COPY (SELECT 1) TO '/tmp/undying-query-copy.csv'", "DML not supported: COPY"),
        ("DROP TABLE sys_invocation", "DDL not supported: DropTable"),
        ("DELETE FROM sys_service", "DML not supported: Delete"),
    ):
        e = error(world, sql)
        assert e.status == 400, sql
        assert e.message == "Datafusion error: Error during planning: " + message
    # SET only changes the query's own session: allowed, as by Restate.
    assert rows(world, "SET datafusion.execution.batch_size = 1") == []


def test_execution_errors_are_500(world: World) -> None:
    e = error(world, "SELECT 1 / 0")
    assert e.status == 500
    assert e.message == "Datafusion error: Arrow error: Divide by zero error"


# ---- filter pushdown -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        "id = '{a}'",
        "id IN ('{a}', '{b}')",
        "id = '{a}' OR status = 'pending'",
        "(id = '{a}' OR id = '{b}') AND status != 'completed'",
        "NOT (id = '{a}')",
        "id != '{a}' AND status IN ('running', 'backing-off')",
        "status = 'completed' OR status = 'pending'",
        "id IN (SELECT id FROM sys_invocation WHERE status = 'running')",
        "id = (SELECT MIN(id) FROM sys_invocation WHERE status = 'suspended')",
        "id = 'inv_bogus'",
    ],
)
def test_pushdown_never_changes_results(world: World, condition: str) -> None:
    a, b = world.ids["completed"], world.ids["running"]
    where = condition.format(a=a, b=b)
    pushed = rows(world, f"SELECT id, status FROM sys_invocation WHERE {where} ORDER BY id")
    # concat() hides the column from the analysis: the same query over the whole table.
    hidden = where.replace("id", "concat(id, '')").replace("status", "concat(status, '')")
    whole = rows(world, f"SELECT id, status FROM sys_invocation WHERE {hidden} ORDER BY id")
    assert pushed == whole


def test_pushdown_restrictions_are_derived_from_the_optimized_plan(world: World) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    from datafusion import SessionConfig, SessionContext

    ctx = SessionContext(SessionConfig())
    for name in ("sys_invocation", "sys_journal"):
        schema = TABLE_SCHEMAS[name]
        ctx.register_record_batches(name, [[pa.RecordBatch.from_pylist([], schema=schema)]])
    wanted = {"sys_invocation": {"id", "status"}, "sys_journal": {"id"}}

    def restrictions(sql: str) -> dict[str, Any]:
        return scan_restrictions(ctx.sql(sql).optimized_logical_plan(), wanted)

    assert restrictions(
        "SELECT * FROM sys_invocation inv WHERE inv.id = 'x' AND status != 'completed'"
    ) == {
        "sys_invocation": {
            "id": (True, frozenset({"x"})),
            "status": (False, frozenset({"completed"})),
        }
    }
    assert restrictions("SELECT * FROM sys_invocation WHERE id = 'x' OR status = 'y'") == {
        "sys_invocation": {}
    }
    assert restrictions(
        "SELECT sj.index FROM sys_journal sj JOIN sys_invocation i ON i.id = sj.id "
        "WHERE sj.id IN ('a', 'b')"
    ) == {
        "sys_journal": {"id": (True, frozenset({"a", "b"}))},
        "sys_invocation": {"id": (True, frozenset({"a", "b"}))},
    }
    # A scan inside an expression subquery is invisible to the walk: no restriction at all.
    assert "sys_journal" not in restrictions(
        "SELECT (SELECT max(index) FROM sys_journal j WHERE j.id = 'a' AND j.name > i.id) "
        "FROM sys_invocation i"
    )


def test_values_computed_by_the_query_are_encoded_like_restate(world: World) -> None:
    got = rows(
        world,
        "SELECT now() AS n, interval '2 seconds' AS i, "
        "arrow_cast(86400000, 'Duration(Millisecond)') AS d, "
        "CAST(NULL AS VARCHAR) AS missing, [1, 2] AS l",
    )
    assert set(got[0]) == {"n", "i", "d", "l"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?", got[0]["n"])
    assert got[0]["i"] == "2.000000000 secs"
    assert got[0]["d"] == "PT86400S"
    assert got[0]["l"] == [1, 2]
