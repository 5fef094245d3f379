"""The exact queries the official ``restate`` CLI sends, and the rows it gets back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
from query_world import NOW, T0, World

from undying.server.query.encoding import arrow_stream, json_rows

BIG_SELECT = """SELECT
            inv.id,
            inv.target,
            inv.target_service_ty,
            inv.idempotency_key,
            inv.status,
            inv.created_at,
            inv.modified_at as state_modified_at,
            inv.pinned_deployment_id,
            inv.retry_count as num_retries,
            inv.last_failure as last_failure_message,
            inv.last_failure_related_entry_index as last_failure_entry_index,
            inv.last_failure_related_entry_name as last_failure_entry_name,
            inv.last_failure_related_entry_type as last_failure_entry_ty,
            inv.last_attempt_deployment_id,
            inv.last_attempt_server,
            inv.next_retry_at,
            inv.last_start_at,
            inv.invoked_by_id,
            inv.invoked_by_target,
            inv.trace_id,
            inv.completion_result,
            inv.completion_failure,
            dp.id IS NOT NULL as pinned_deployment_exists
        FROM sys_invocation inv
        LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id
        """


def rows(world: World, sql: str) -> list[dict[str, Any]]:
    """The query's ``{"rows": [...]}`` as the CLI's JSON requests get it."""
    table = asyncio.run(world.engine().execute(sql))
    body = json.loads(json_rows(table))
    assert list(body) == ["rows"]
    return body["rows"]  # type: ignore[no-any-return]


def arrow(world: World, sql: str) -> Any:
    """The query's result as the CLI's ``accept: */*`` requests get it (decoded again)."""
    table = asyncio.run(world.engine().execute(sql))
    return pa.ipc.open_stream(arrow_stream(table)).read_all()


def test_restate_sql_lists_invocations_with_restate_status_names(world: World) -> None:
    t = arrow(world, "SELECT id, status, target FROM sys_invocation ORDER BY created_at")
    assert t.column_names == ["id", "status", "target"]
    ids = world.ids
    assert t.to_pylist() == [
        {"id": ids["completed"], "status": "completed", "target": "Greeter/greet"},
        {"id": ids["backing-off"], "status": "backing-off", "target": "Greeter/greet"},
        {"id": ids["running"], "status": "running", "target": "Counter/alice/add"},
        {"id": ids["pending"], "status": "pending", "target": "Counter/alice/add"},
        {"id": ids["killed"], "status": "completed", "target": "Greeter/greet"},
        {"id": ids["suspended"], "status": "suspended", "target": "Greeter/greet"},
        {"id": ids["scheduled"], "status": "scheduled", "target": "Greeter/greet"},
    ]


def test_restate_sql_types_query(world: World) -> None:
    t = arrow(
        world,
        "SELECT id, status, journal_size, retry_count, created_at, completion_retention, "
        "suspended_waiting_for_signals FROM sys_invocation LIMIT 2",
    )
    assert [str(f.type) for f in t.schema] == [
        "large_string",
        "large_string",
        "uint32",
        "uint64",
        "timestamp[ms, tz=+00:00]",
        "duration[ms]",
        "list<item: uint32>",
    ]
    assert t.num_rows == 2


def test_invocations_list_counts_and_ids(world: World) -> None:
    count = arrow(
        world,
        "SELECT COUNT(1) FROM (SELECT\n            *\n        FROM sys_invocation inv\n"
        "        LIMIT 50000\n        )\n        WHERE status != 'completed'",
    )
    assert count.schema.names == ["count(Int64(1))"]
    assert str(count.schema.field(0).type) == "int64"
    assert count.column(0).to_pylist() == [5]
    count_all = arrow(
        world,
        "SELECT COUNT(1) FROM (SELECT\n            *\n        FROM sys_invocation inv\n"
        "        LIMIT 50000\n        )\n        ",
    )
    assert count_all.column(0).to_pylist() == [7]

    ids = world.ids
    active = rows(
        world,
        "SELECT\n            id\n        FROM sys_invocation inv\n"
        "        WHERE status != 'completed'\n        ORDER BY inv.created_at DESC, inv.id\n"
        "        LIMIT 100",
    )
    assert active == [
        {"id": ids[k]} for k in ("scheduled", "suspended", "pending", "running", "backing-off")
    ]
    everything = rows(
        world,
        "SELECT\n            id\n        FROM sys_invocation inv\n        \n"
        "        ORDER BY inv.created_at DESC, inv.id\n        LIMIT 100",
    )
    assert len(everything) == 7


def test_big_select_rows_match_restate(world: World) -> None:
    ids = world.ids
    dp = world.deployment_id
    wanted = ", ".join(f"'{ids[k]}'" for k in ("completed", "backing-off", "running", "killed"))
    got = rows(
        world,
        BIG_SELECT + f"WHERE inv.id in ({wanted})\n        ORDER BY inv.created_at DESC, inv.id",
    )
    assert got == [
        {
            "id": ids["killed"],
            "target": "Greeter/greet",
            "target_service_ty": "service",
            "status": "completed",
            "created_at": "2026-11-24T04:58:44.382Z",
            "state_modified_at": "2026-11-24T04:58:44.482Z",
            "completion_result": "failure",
            "completion_failure": "[409] killed",
            "pinned_deployment_exists": False,
        },
        {
            "id": ids["running"],
            "target": "Counter/alice/add",
            "target_service_ty": "virtual_object",
            "status": "running",
            "created_at": "2026-11-24T04:58:44.182Z",
            "state_modified_at": "2026-11-24T04:58:44.192Z",
            "pinned_deployment_id": dp,
            "num_retries": 1,
            "last_attempt_deployment_id": dp,
            "last_attempt_server": "restate-sdk-python/1.2.0",
            "last_start_at": "2026-11-24T04:58:44.187Z",
            "invoked_by_id": ids["backing-off"],
            "invoked_by_target": "Greeter/greet",
            "pinned_deployment_exists": True,
        },
        {
            "id": ids["backing-off"],
            "target": "Greeter/greet",
            "target_service_ty": "service",
            "idempotency_key": "01M85YT7G1J25DN3NBHBJH5GJ6",
            "status": "backing-off",
            "created_at": "2026-11-24T04:58:44.082Z",
            "state_modified_at": "2026-11-24T04:59:33.982Z",
            "pinned_deployment_id": dp,
            "num_retries": 3,
            "last_failure_message": "[500 Internal] RuntimeError('[SIMULATED] Failed to send "
            "reminder to Alice (attempt 3)')\nTraceback (most recent call last):\n"
            '  File "<path>", line 872, in create_run_coroutine\n'
            "RuntimeError: [SIMULATED] Failed to send reminder to Alice (attempt 3)\n",
            "last_attempt_deployment_id": dp,
            "last_attempt_server": "restate-sdk-python/1.2.0",
            "next_retry_at": "2026-11-24T04:59:46.482Z",
            "last_start_at": "2026-11-24T04:58:44.084Z",
            "pinned_deployment_exists": True,
        },
        {
            "id": ids["completed"],
            "target": "Greeter/greet",
            "target_service_ty": "service",
            "idempotency_key": "01M85YQAWFHAGWHK0FJB2037DF",
            "status": "completed",
            "created_at": "2026-11-24T04:58:43.982Z",
            "state_modified_at": "2026-11-24T04:58:48.938Z",
            "pinned_deployment_id": dp,
            "completion_result": "success",
            "pinned_deployment_exists": True,
        },
    ]


def test_invocations_describe_queries(world: World) -> None:
    inv = world.ids["completed"]
    assert rows(
        world,
        f"SELECT\n            id\n        FROM sys_invocation inv\n        WHERE inv.id = '{inv}'\n"
        "        \n        LIMIT 1",
    ) == [{"id": inv}]
    described = rows(
        world, BIG_SELECT + f"WHERE inv.id = '{inv}' AND inv.id in ('{inv}')\n        "
    )
    assert [r["id"] for r in described] == [inv]

    probe = arrow(
        world,
        "SELECT COUNT(*) FROM information_schema.columns\n            WHERE\n"
        "                table_name = 'sys_journal'\n"
        "                AND column_name IN ('promise_name')",
    )
    assert probe.schema.names == ["count(*)"] and probe.column(0).to_pylist() == [1]
    probe = arrow(
        world,
        "SELECT COUNT(*) FROM information_schema.columns\n            WHERE\n"
        "                table_name = 'sys_journal'\n"
        "                AND column_name IN ('version', 'entry_json', 'appended_at')",
    )
    assert probe.column(0).to_pylist() == [3]

    journal = rows(
        world,
        "SELECT\n            sj.index,\n            sj.entry_type,\n"
        "            sj.completed,\n            sj.invoked_id,\n"
        "            sj.invoked_target,\n            sj.sleep_wakeup_at,\n"
        "            sj.name,\n            sj.promise_name,\n"
        "            sj.version, sj.entry_json, sj.appended_at\n"
        "        FROM sys_journal sj\n        WHERE\n"
        f"            sj.id = '{inv}'\n        ORDER BY index DESC\n        LIMIT 100",
    )
    # The reference server's rows for the same journal, byte for byte (cli_invocations_describe).
    payload = "[123,34,110,97,109,101,34,58,34,65,108,105,99,101,34,125]"
    output = (
        "[123,34,114,101,115,117,108,116,34,58,32,34,89,111,117,32,115,97,105,100,32,104,105,"
        "32,116,111,32,65,108,105,99,101,33,34,125]"
    )
    headers = (
        '[{"name":"x-restate-ingress-path","value":"/Greeter/greet"},'
        '{"name":"user-agent","value":"curl/7.88.1"},{"name":"accept","value":"*/*"},'
        '{"name":"content-type","value":"application/json"},'
        '{"name":"content-length","value":"16"}]'
    )
    assert journal == [
        {
            "index": 7,
            "entry_type": "Command: Output",
            "name": "",
            "version": 2,
            "entry_json": '{"Command":{"Output":{"result":{"Success":' + output + '},"name":""}}}',
            "appended_at": "2026-11-24T04:58:48.938Z",
        },
        {
            "index": 6,
            "entry_type": "Notification: Run",
            "version": 2,
            "entry_json": '{"Notification":{"Completion":{"Run":{"completion_id":3,'
            '"result":{"Success":[]}}}}}',
            "appended_at": "2026-11-24T04:58:48.936Z",
        },
        {
            "index": 5,
            "entry_type": "Command: Run",
            "name": "Reminder",
            "version": 2,
            "entry_json": '{"Command":{"Run":{"completion_id":3,"name":"Reminder"}}}',
            "appended_at": "2026-11-24T04:58:44.993Z",
        },
        {
            "index": 4,
            "entry_type": "Notification: Sleep",
            "version": 2,
            "entry_json": '{"Notification":{"Completion":{"Sleep":{"completion_id":2}}}}',
            "appended_at": "2026-11-24T04:58:44.991Z",
        },
        {
            "index": 3,
            "entry_type": "Command: Sleep",
            "sleep_wakeup_at": "2026-11-24T04:58:44.991Z",
            "name": "",
            "version": 2,
            "entry_json": '{"Command":{"Sleep":{"wake_up_time":1795496324991,"completion_id":2,'
            '"name":""}}}',
            "appended_at": "2026-11-24T04:58:43.990Z",
        },
        {
            "index": 2,
            "entry_type": "Notification: Run",
            "version": 2,
            "entry_json": '{"Notification":{"Completion":{"Run":{"completion_id":1,'
            '"result":{"Success":[]}}}}}',
            "appended_at": "2026-11-24T04:58:43.988Z",
        },
        {
            "index": 1,
            "entry_type": "Command: Run",
            "name": "Notification",
            "version": 2,
            "entry_json": '{"Command":{"Run":{"completion_id":1,"name":"Notification"}}}',
            "appended_at": "2026-11-24T04:58:43.988Z",
        },
        {
            "index": 0,
            "entry_type": "Command: Input",
            "name": "",
            "version": 2,
            "entry_json": '{"Command":{"Input":{"headers":'
            + headers
            + ',"payload":'
            + payload
            + ',"name":""}}}',
            "appended_at": "2026-11-24T04:58:43.982Z",
        },
    ]


def test_services_status_queries(world: World) -> None:
    pending = rows(
        world,
        "SELECT\n                target_service_name,\n                target_handler_name,\n"
        "                'pending' as status,\n                COUNT(1) as num_invocations,\n"
        "                MIN(created_at) as oldest_at,\n"
        "                FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation\n"
        "             FROM sys_invocation_status\n"
        "             WHERE status == 'inboxed' AND target_service_name IN ('Counter')\n"
        "             GROUP BY target_service_name, target_handler_name",
    )
    assert pending == [
        {
            "target_service_name": "Counter",
            "target_handler_name": "add",
            "status": "pending",
            "num_invocations": 1,
            "oldest_at": "2026-11-24T04:58:44.282Z",
            "oldest_invocation": world.ids["pending"],
        }
    ]
    per_status = rows(
        world,
        "\n            SELECT\n                target_service_name,\n"
        "                target_handler_name,\n                status,\n"
        "                COUNT(1) as num_invocations,\n"
        "                MIN(created_at) as oldest_at,\n"
        "                FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation\n"
        "            FROM sys_invocation\n            WHERE target_service_name IN ('Greeter')\n"
        "            GROUP BY target_service_name, target_handler_name, status\n"
        "            ORDER BY target_handler_name",
    )
    by_status = {r["status"]: r for r in per_status}
    assert set(by_status) == {"completed", "backing-off", "suspended", "scheduled"}
    assert by_status["completed"] == {
        "target_service_name": "Greeter",
        "target_handler_name": "greet",
        "status": "completed",
        "num_invocations": 2,
        "oldest_at": "2026-11-24T04:58:43.982Z",
        "oldest_invocation": world.ids["completed"],
    }
    last5 = rows(
        world,
        "SELECT\n            id\n        FROM sys_invocation inv\n"
        "        WHERE inv.target_service_name = 'Greeter'\n"
        "        ORDER BY inv.created_at DESC, inv.id\n        LIMIT 5",
    )
    ids = world.ids
    assert last5 == [
        {"id": ids[k]} for k in ("scheduled", "suspended", "killed", "backing-off", "completed")
    ]


def test_services_describe_counts_active_invocations_of_a_deployment(world: World) -> None:
    got = rows(
        world,
        "SELECT COUNT(1) AS inv_count\n            FROM sys_invocation_status\n"
        f"            WHERE pinned_deployment_id = '{world.deployment_id}' "
        "AND status != 'completed'",
    )
    assert got == [{"inv_count": 3}]


def test_state_get_and_clear_queries(world: World) -> None:
    got = rows(
        world,
        "select key, value from state where service_name = 'Counter' and service_key = 'alice' ;",
    )
    assert got == [{"key": "count", "value": "38"}]
    got = rows(
        world,
        "SELECT service_name, service_key, key, value FROM state "
        "WHERE service_name = 'Counter' AND service_key = 'bob'",
    )
    assert got == [
        {"service_name": "Counter", "service_key": "bob", "key": "blob", "value": "ff00"},
        {"service_name": "Counter", "service_key": "bob", "key": "count", "value": "3431"},
    ]


def test_invocation_lookups_before_cancel_kill_purge_pause_resume(world: World) -> None:
    ids = world.ids

    def lookup(inv: str, condition: str) -> list[dict[str, Any]]:
        return rows(
            world,
            f"SELECT id, target FROM sys_invocation_status WHERE id = '{inv}' AND {condition} "
            "LIMIT 500",
        )

    running = {"id": ids["running"], "target": "Counter/alice/add"}
    assert lookup(ids["running"], "status != 'completed'") == [running]
    assert lookup(ids["completed"], "status != 'completed'") == []
    assert lookup(ids["completed"], "status = 'completed'") == [
        {"id": ids["completed"], "target": "Greeter/greet"}
    ]
    assert lookup(ids["running"], "status IN ('invoked', 'suspended')") == [running]
    assert lookup(ids["pending"], "status IN ('paused', 'invoked', 'suspended')") == []
    bulk = rows(
        world,
        "SELECT id, target FROM sys_invocation_status WHERE ((target = 'Greeter/greet' AND "
        "target_service_ty = 'service') OR (target LIKE 'Greeter/greet/%' AND "
        "target_service_ty != 'service')) AND status != 'completed' LIMIT 500",
    )
    assert sorted(r["id"] for r in bulk) == sorted(
        ids[k] for k in ("backing-off", "suspended", "scheduled")
    )


def test_time_moves_a_retrying_invocation_from_backing_off_to_running(world: World) -> None:
    inv = world.ids["backing-off"]
    sql = f"SELECT status, retry_count, next_retry_at FROM sys_invocation WHERE id = '{inv}'"
    later = asyncio.run(world.engine(now=NOW + 10_000).execute(sql)).to_pylist()
    assert later == [{"status": "running", "retry_count": 4, "next_retry_at": None}]
    assert T0 < NOW
