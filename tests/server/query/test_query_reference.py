"""``POST /query`` side by side with Restate: runs on both targets (``--target restate``).

Against a live server with invocations in every state (``reference_world.py``):

- the tables, their columns, types and nullability (``information_schema``, ``DESCRIBE``) are
  Restate's (``restate_columns.json``, read from restate-server 1.7.12);
- joins and aggregates a user would write over ``sys_invocation`` and ``sys_journal`` (and the
  other tables) answer with the expected rows, values formatted as Restate formats them;
- errors have Restate's status and message.

The official CLI's own queries are in ``test_query_reference_cli.py``.

Where undying deliberately shows more than restate-server 1.7.12, the checks say so per target:
``sys_journal.invoked_id``, ``invoked_target``, ``sleep_wakeup_at`` and ``promise_name`` are
filled for every entry (Restate leaves them NULL for its v2 journal entries and shows them only
inside ``entry_json``), and a paused invocation keeps its ``retry_count`` and ``last_failure``
(Restate shows them only while retrying).
"""

from __future__ import annotations

import json
from typing import Any, Final

import pytest
from reference_world import COLUMNS, TIMESTAMP, Live, created_desc, one

from undying.testing.httpclient import request

pytestmark = [pytest.mark.interop, pytest.mark.conformance]


# ---- tables and columns ------------------------------------------------------------------------


def test_tables_are_restates(live: Live) -> None:
    rows = live.rows(
        "SELECT table_catalog, table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = 'public' ORDER BY table_name"
    )
    assert {r["table_name"]: r["table_type"] for r in rows} == COLUMNS["tables"]
    assert {r["table_catalog"] for r in rows} == {"restate"}


def test_columns_types_and_nullability_are_restates(live: Live) -> None:
    rows = live.rows(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    )
    got: dict[str, list[list[str]]] = {}
    for r in rows:
        got.setdefault(r["table_name"], []).append(
            [r["column_name"], r["data_type"], r["is_nullable"]]
        )
    assert got == COLUMNS["columns"]


@pytest.mark.parametrize("table", sorted(COLUMNS["columns"]))
def test_describe_lists_the_columns(live: Live, table: str) -> None:
    rows = live.rows(f"DESCRIBE {table}")
    assert [[r["column_name"], r["data_type"], r["is_nullable"]] for r in rows] == (
        COLUMNS["columns"][table]
    )


# ---- what users write ---------------------------------------------------------------------------


def test_counts_per_status(live: Live) -> None:
    rows = live.rows(
        "SELECT status, COUNT(*) AS n FROM sys_invocation GROUP BY status ORDER BY status"
    )
    assert rows == [
        {"status": "backing-off", "n": 1},
        {"status": "completed", "n": 11},
        {"status": "paused", "n": 1},
        {"status": "pending", "n": 1},
        {"status": "running", "n": 1},
        {"status": "scheduled", "n": 1},
        {"status": "suspended", "n": 2},
    ]
    raw = live.rows(
        "SELECT status, COUNT(*) AS n FROM sys_invocation_status GROUP BY status ORDER BY status"
    )
    assert raw == [
        {"status": "completed", "n": 11},
        {"status": "inboxed", "n": 1},
        {"status": "invoked", "n": 2},
        {"status": "paused", "n": 1},
        {"status": "scheduled", "n": 1},
        {"status": "suspended", "n": 2},
    ]


def test_counts_per_service_and_handler(live: Live) -> None:
    rows = live.rows(
        "SELECT target_service_name AS service, target_handler_name AS handler, "
        "COUNT(*) AS n, SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS done "
        "FROM sys_invocation GROUP BY 1, 2 ORDER BY n DESC, service, handler"
    )
    assert rows == [
        {"service": "Greeter", "handler": "greet", "n": 5, "done": 4},
        {"service": "Counter", "handler": "add", "n": 4, "done": 3},
        {"service": "Approval", "handler": "decide", "n": 1, "done": 1},
        {"service": "Approval", "handler": "run", "n": 1, "done": 1},
        {"service": "Blocker", "handler": "block", "n": 1, "done": 0},
        {"service": "Caller", "handler": "greet", "n": 1, "done": 1},
        {"service": "Counter", "handler": "hold", "n": 1, "done": 0},
        {"service": "Greeter", "handler": "fail", "n": 1, "done": 1},
        {"service": "Retry", "handler": "always", "n": 1, "done": 0},
        {"service": "Retry", "handler": "pause", "n": 1, "done": 0},
        {"service": "Sleeper", "handler": "sleep", "n": 1, "done": 0},
    ]


def test_journal_joined_with_its_invocation(live: Live) -> None:
    alice = live.ids["completed"]
    rows = live.rows(
        "SELECT i.target, i.status, j.index, j.entry_type, j.name FROM sys_journal j "
        f"JOIN sys_invocation i ON i.id = j.id WHERE i.id = '{alice}' ORDER BY j.index"
    )
    assert [(r["target"], r["status"]) for r in rows] == [("Greeter/greet", "completed")] * 8
    assert [r["entry_type"] for r in rows][:3] == [
        "Command: Input",
        "Command: Run",
        "Notification: Run",
    ]
    sizes = live.rows(
        "SELECT i.id, i.journal_size, COUNT(j.index) AS entries FROM sys_invocation i "
        "LEFT JOIN sys_journal j ON j.id = i.id WHERE i.target_service_name = 'Greeter' "
        "GROUP BY i.id, i.journal_size ORDER BY i.id"
    )
    assert len(sizes) == 6
    for r in sizes:
        if r["id"] == live.ids["scheduled"]:
            # Not started: the input is journaled, but no journal size is shown yet.
            assert (r["entries"], "journal_size" in r) == (1, False), r
        else:
            assert r["entries"] == r["journal_size"], r
    assert {r["id"]: r["entries"] for r in sizes}[alice] == 8


def test_entries_per_type_over_journals(live: Live) -> None:
    greets = ", ".join(f"'{live.ids[r]}'" for r in ("completed", "completed_other", "greet_3"))
    rows = live.rows(
        "SELECT entry_type, COUNT(*) AS n FROM sys_journal "
        f"WHERE id IN ({greets}) GROUP BY entry_type ORDER BY entry_type"
    )
    assert rows == [
        {"entry_type": "Command: Input", "n": 3},
        {"entry_type": "Command: Output", "n": 3},
        {"entry_type": "Command: Run", "n": 6},
        {"entry_type": "Command: Sleep", "n": 3},
        {"entry_type": "Notification: Run", "n": 6},
        {"entry_type": "Notification: Sleep", "n": 3},
    ]


def test_calls_link_caller_and_callee(live: Live) -> None:
    caller, child = live.ids["caller"], live.ids["child"]
    rows = live.rows(
        "SELECT c.id, c.invoked_by, c.invoked_by_target, p.target FROM sys_invocation c "
        "JOIN sys_invocation p ON c.invoked_by_id = p.id"
    )
    assert rows == [
        {
            "id": child,
            "invoked_by": "service",
            "invoked_by_target": "Caller/greet",
            "target": "Caller/greet",
        }
    ]
    call = live.rows(
        "SELECT index, name, invoked_id, invoked_target FROM sys_journal "
        f"WHERE id = '{caller}' AND entry_type = 'Command: Call'"
    )
    expected: dict[str, Any] = {"index": 1, "name": ""}
    if live.undying:  # Restate shows the callee only in entry_json
        expected.update(invoked_id=child, invoked_target="Greeter/greet")
    assert call == [expected]
    entry = live.rows(f"SELECT entry_json FROM sys_journal WHERE id = '{caller}' AND index = 1")
    request = json.loads(one(entry)["entry_json"])["Command"]["Call"]["request"]
    assert request["invocation_id"] == child
    assert request["invocation_target"] == {
        "Service": {"name": "Greeter", "handler": "greet", "scope": None}
    }
    day = {"secs": 86400, "nanos": 0}
    assert request["completion_retention_duration"] == day
    assert request["journal_retention_duration"] == day


def test_time_filters_like_on_ids_order_and_limit(live: Live) -> None:
    recent = live.rows(
        "SELECT COUNT(*) AS n FROM sys_invocation WHERE created_at >= now() - interval '1 hour'"
    )
    assert recent == [{"n": 18}]
    old = live.rows(
        "SELECT COUNT(*) AS n FROM sys_invocation WHERE created_at < now() - interval '1 hour'"
    )
    assert old == [{"n": 0}]
    alice = live.ids["completed"]
    like = live.rows(f"SELECT id FROM sys_invocation WHERE id LIKE '{alice[:-3]}%'")
    assert {"id": alice} in like
    last = live.rows("SELECT id FROM sys_invocation ORDER BY created_at DESC, id LIMIT 3")
    assert [r["id"] for r in last] == created_desc(live, live.order)[:3]
    first = live.rows("SELECT id FROM sys_invocation ORDER BY created_at ASC, id LIMIT 2 OFFSET 1")
    ascending = sorted(sorted(live.order), key=lambda i: live.created[i])
    assert [r["id"] for r in first] == ascending[1:3]
    window = live.rows(
        "SELECT id FROM sys_invocation WHERE created_at BETWEEN "
        f"(SELECT created_at FROM sys_invocation WHERE id = '{live.ids['add_alice']}') AND "
        f"(SELECT created_at FROM sys_invocation WHERE id = '{live.ids['add_carol']}') "
        "ORDER BY created_at"
    )
    assert sorted(r["id"] for r in window) == sorted(
        live.ids[r] for r in ("add_alice", "add_bob", "add_carol")
    )


def test_retries_and_failures(live: Live) -> None:
    rows = live.rows(
        "SELECT id, status, retry_count, last_failure, last_failure_related_command_index "
        "FROM sys_invocation WHERE last_failure IS NOT NULL ORDER BY created_at"
    )
    failing = [(live.ids["backing_off"], "backing-off")]
    if live.undying:  # Restate forgets the failure of a paused invocation (see the docstring)
        failing.append((live.ids["paused"], "paused"))
    assert [(r["id"], r["status"]) for r in rows] == failing
    assert rows[0]["retry_count"] >= 1
    assert rows[0]["last_failure"].startswith("[500 Internal] ")
    assert "[SIMULATED] t1 is not ready" in rows[0]["last_failure"]
    if live.undying:
        assert "[SIMULATED] t2 gave up" in rows[1]["last_failure"]
    state = live.rows(
        "SELECT id, in_flight, retry_count FROM sys_invocation_state "
        f"WHERE id = '{live.ids['backing_off']}'"
    )
    assert one(state)["in_flight"] is False
    failed = live.rows(
        "SELECT completion_result, completion_failure FROM sys_invocation "
        f"WHERE id = '{live.ids['failed']}'"
    )
    assert failed == [
        {"completion_result": "failure", "completion_failure": "[400] no greeting for Mallory"}
    ]


def test_keyed_tables(live: Live) -> None:
    locks = live.rows(
        "SELECT service_name, service_key, invocation_id FROM sys_keyed_service_status "
        "WHERE service_name = 'Counter'"
    )
    assert locks == [
        {"service_name": "Counter", "service_key": "locked", "invocation_id": live.ids["locked"]}
    ]
    inbox = live.rows("SELECT service_name, service_key, id, sequence_number FROM sys_inbox")
    assert len(inbox) == 1
    assert inbox[0]["id"] == live.ids["pending"]
    assert (inbox[0]["service_name"], inbox[0]["service_key"]) == ("Counter", "locked")
    state = live.rows(
        "SELECT service_key, key, value_utf8, value, key_length, value_length FROM state "
        "WHERE service_name = 'Counter' ORDER BY service_key"
    )
    assert state == [
        {
            "service_key": k,
            "key": "count",
            "value_utf8": v,
            "value": v.encode().hex(),
            "key_length": 5,
            "value_length": len(v),
        }
        for k, v in (("alice", "8"), ("bob", "41"), ("carol", "1"))
    ]
    promises = live.rows(
        "SELECT service_name, service_key, key, completed, completion_success_value, "
        "completion_success_value_utf8 FROM sys_promise"
    )
    assert promises == [
        {
            "service_name": "Approval",
            "service_key": "order-1",
            "key": "decision",
            "completed": True,
            "completion_success_value": b'"yes"'.hex(),
            "completion_success_value_utf8": '"yes"',
        }
    ]


def test_registry_tables(live: Live) -> None:
    services = live.rows(
        "SELECT name, ty, revision, public, deployment_id FROM sys_service ORDER BY name"
    )
    assert [(r["name"], r["ty"]) for r in services] == [
        ("Approval", "workflow"),
        ("Blocker", "service"),
        ("Caller", "service"),
        ("Counter", "virtual_object"),
        ("Greeter", "service"),
        ("Retry", "service"),
        ("Sleeper", "service"),
    ]
    assert all(r["deployment_id"] == live.deployment and r["revision"] == 1 for r in services)
    deployment = one(live.rows("SELECT id, ty, endpoint, services FROM sys_deployment"))
    assert (deployment["id"], deployment["ty"]) == (live.deployment, "http")
    assert deployment["endpoint"].startswith("http://")
    assert sorted(deployment["services"]) == [s["name"] for s in services]


def test_value_formats(live: Live) -> None:
    alice = live.ids["completed"]
    row = one(
        live.rows(
            "SELECT id, created_at, completion_retention, journal_retention, journal_size, "
            "journal_commands_size, pinned_service_protocol_version, retry_count, scheduled_at, "
            "created_using_restate_version, invoked_by, completed_at "
            f"FROM sys_invocation WHERE id = '{alice}'"
        )
    )
    assert TIMESTAMP.match(row["created_at"]) and TIMESTAMP.match(row["completed_at"])
    assert row["completion_retention"] == "PT86400S"
    assert row["journal_retention"] == "PT86400S"
    assert (row["journal_size"], row["journal_commands_size"]) == (8, 5)
    assert row["invoked_by"] == "ingress"
    assert isinstance(row["pinned_service_protocol_version"], int)
    assert "retry_count" not in row and "scheduled_at" not in row  # NULL: left out
    suspended = one(
        live.rows(
            "SELECT suspended_waiting_for_completions, suspended_waiting_for_signals "
            f"FROM sys_invocation WHERE id = '{live.ids['suspended']}'"
        )
    )
    assert suspended["suspended_waiting_for_completions"] == [1]
    assert suspended["suspended_waiting_for_signals"] == [1]  # the cancellation signal
    sizes = [
        r["journal_size"]
        for r in live.rows(
            "SELECT journal_size FROM sys_invocation WHERE target_service_name = 'Counter' "
            "AND status = 'completed'"
        )
    ]
    computed = one(
        live.rows(
            "SELECT AVG(journal_size) AS avg, SUM(journal_size) AS sum, "
            "interval '90 minutes' AS i, arrow_cast(1500, 'Duration(Millisecond)') AS d, "
            "CAST(NULL AS VARCHAR) AS nothing "
            "FROM sys_invocation WHERE target_service_name = 'Counter' AND status = 'completed'"
        )
    )
    assert computed == {
        "avg": sum(sizes) / len(sizes),
        "sum": sum(sizes),
        "i": "1 hours 30 mins",
        "d": "PT1.5S",
    }
    resp = live.post("SELECT 1e10 AS big, 0.00001 AS small, 2.5 AS f")
    assert resp.body == b'{"rows":[{"big":1.0e10,"small":0.00001,"f":2.5}]}'


# ---- errors -------------------------------------------------------------------------------------


ERRORS: Final = [
    (
        "SELEC id FROM sys_invocation",
        400,
        'Datafusion error: SQL error: ParserError("Expected: an SQL statement, found: SELEC at '
        'Line: 1, Column: 1")',
    ),
    (
        "",
        400,
        "Datafusion error: Error during planning: No SQL statements were provided in the "
        "query string",
    ),
    (
        "SELECT * FROM nope",
        500,
        "Datafusion error: Error during planning: table 'restate.public.nope' not found",
    ),
    (
        "DESCRIBE nope",
        400,
        "Datafusion error: Error during planning: table 'restate.public.nope' not found",
    ),
    ("SELECT 1 / 0", 500, "Datafusion error: Arrow error: Divide by zero error"),
    (
        "CREATE TABLE t AS SELECT 1",
        400,
        "Datafusion error: Error during planning: DDL not supported: CreateMemoryTable",
    ),
    (
        "DROP TABLE sys_invocation",
        400,
        "Datafusion error: Error during planning: DDL not supported: DropTable",
    ),
    (
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        400,
        "Datafusion error: Error during planning: DML not supported: COPY",
    ),
    (
        "INSERT INTO sys_service VALUES ('a', 1, true, 'service', 'x')",
        400,
        "Datafusion error: Error during planning: DML not supported: Insert Into",
    ),
    (
        "SELECT id FROM sys_invocation; SELECT 1",
        500,
        "Datafusion error: This feature is not implemented: The context currently only supports "
        "a single SQL statement",
    ),
]


@pytest.mark.parametrize(("sql", "status", "message"), ERRORS)
def test_errors_are_restates(live: Live, sql: str, status: int, message: str) -> None:
    for accept in ("application/json", "*/*"):
        resp = live.post(sql, accept)
        assert (resp.status, resp.header("content-type")) == (status, "application/json")
        assert json.loads(resp.body) == {"message": message}


def test_unknown_column_error_lists_the_valid_fields(live: Live) -> None:
    resp = live.post("SELECT nope FROM sys_invocation")
    assert resp.status == 500
    message = json.loads(resp.body)["message"]
    names = ", ".join(f"sys_invocation.{c[0]}" for c in COLUMNS["columns"]["sys_invocation"])
    assert (
        message == f"Datafusion error: Schema error: No field named nope. Valid fields are {names}."
    )


def test_only_post(live: Live) -> None:
    resp = request("GET", live.server.admin_url + "/query", timeout=10.0)
    assert resp.status == 405
