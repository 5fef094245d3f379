"""``undying invocations list|describe`` against a scripted admin API (rows as restate-server
1.7.12 returned them in the reference run)."""

from __future__ import annotations

import json
from typing import Any

from undying.cli.queries import INVOCATION_COLUMNS

from .conftest import Run
from .fake_admin import FakeAdmin

ALICE = "inv_16rnEpOfB5ax27rRJelwtkvE2ygbtv2Kxf"
RETRYING = "inv_1553EmTLdKub0fiSGXr1AKGgtSCaNiljaE"
CALLER = "inv_1byO91JtHrrD4Vy02quKIqqZbY5vXpkepm"
CALLEE = "inv_1fSSqOhbwzj7017Q5jmiiSexswWVNcAhNv"
DP = "dp_114UqHl3AXh43PW9oxKp7H3"
TRACE = (
    "[500 Internal] RuntimeError('[SIMULATED] Failed to send reminder to Alice (attempt 3)')\n"
    "Traceback (most recent call last):\n"
    '  File "<path>", line 872, in create_run_coroutine\n'
    "    action_result = typing.cast(T, await action_result_future)\n"
    "RuntimeError: [SIMULATED] Failed to send reminder to Alice (attempt 3)\n"
)

ALICE_ROW: dict[str, Any] = {
    "id": ALICE,
    "target": "Greeter/greet",
    "target_service_name": "Greeter",
    "target_handler_name": "greet",
    "target_service_ty": "service",
    "idempotency_key": "01M85YQAWFHAGWHK0FJB2037DF",
    "status": "completed",
    "created_at": "2026-11-24T04:58:43.982Z",
    "modified_at": "2026-11-24T04:58:48.938Z",
    "pinned_deployment_id": DP,
    "completion_result": "success",
    "journal_size": 8,
    "pinned_deployment_exists": True,
}
RETRYING_ROW: dict[str, Any] = {
    "id": RETRYING,
    "target": "Greeter/greet",
    "target_service_name": "Greeter",
    "target_handler_name": "greet",
    "target_service_ty": "service",
    "idempotency_key": "01M85YT7G1J25DN3NBHBJH5GJ6",
    "status": "backing-off",
    "created_at": "2026-11-24T05:00:18.817Z",
    "modified_at": "2026-11-24T05:00:19.846Z",
    "pinned_deployment_id": DP,
    "retry_count": 3,
    "last_failure": TRACE,
    "last_failure_error_code": "RT0007",
    "last_failure_related_command_index": 3,
    "last_failure_related_command_name": "Reminder",
    "last_failure_related_command_type": "Run",
    "last_attempt_deployment_id": DP,
    "last_attempt_server": "restate-sdk-python/1.2.0",
    "next_retry_at": "2999-11-24T05:00:24.295Z",
    "last_start_at": "2026-11-24T05:00:21.748Z",
    "journal_size": 6,
    "pinned_deployment_exists": True,
}


def _entry(index: int, kind: str, at: str, **extra: Any) -> dict[str, Any]:
    return {"index": index, "entry_type": kind, "appended_at": f"2026-11-24T04:58:{at}Z", **extra}


# newest first, as the CLI asks for them (ORDER BY index DESC)
ALICE_JOURNAL = [
    _entry(7, "Command: Output", "48.938", name=""),
    _entry(6, "Notification: Run", "48.936"),
    _entry(5, "Command: Run", "44.993", name="Reminder"),
    _entry(4, "Notification: Sleep", "44.991"),
    _entry(3, "Command: Sleep", "43.990", name="", sleep_wakeup_at="2026-11-24T04:58:44.991Z"),
    _entry(2, "Notification: Run", "43.988"),
    _entry(1, "Command: Run", "43.988", name="Notification"),
    _entry(0, "Command: Input", "43.982", name=""),
]


def _failure(attempt: int, at: str) -> dict[str, Any]:
    event = {
        "ty": "TransientError",
        "error_code": 500,
        "error_message": f"RuntimeError('[SIMULATED] Failed to send reminder (attempt {attempt})')",
        "error_stacktrace": "Traceback (most recent call last):\n...",
        "restate_doc_error_code": "RT0007",
        "related_command_index": 3,
        "related_command_name": "Reminder",
        "related_command_type": "Run",
    }
    return {
        "after_journal_entry_index": 5,
        "appended_at": f"2026-11-24T04:58:{at}Z",
        "event_type": "TransientError",
        "event_json": json.dumps(event),
    }


ALICE_EVENTS = [_failure(1, "44.994"), _failure(2, "45.554"), _failure(3, "46.563")]


def _describe(fake: FakeAdmin, row: dict[str, Any], journal: list[Any], events: list[Any]) -> None:
    fake.on_query("LEFT JOIN sys_deployment", [row])
    fake.on_query("FROM sys_journal sj", journal)
    fake.on_query("FROM sys_journal_events", events)


# ---- list ---------------------------------------------------------------------------------


def test_list_shows_active_invocations_newest_first(run: Run, fake: FakeAdmin) -> None:
    fake.on_query("COUNT(1)", [{"total": 1}])
    fake.on_query("FROM sys_invocation inv", [RETRYING_ROW])
    result = run("invocations", "list")
    assert result.exit_code == 0, result.output
    line = next(li for li in result.stdout.splitlines() if RETRYING in li)
    assert "Greeter/greet" in line and "backing-off" in line
    assert " 3 " in line  # retries
    assert "[500 Internal] RuntimeError('[SIMULATED] Failed to send reminder" in line
    assert "Showing 1/1 invocations; completed ones are hidden (--all)." in result.stderr
    listing = fake.sql()[0]
    assert "WHERE inv.status != 'completed'" in listing
    assert listing.endswith("ORDER BY inv.created_at DESC, inv.id LIMIT 100")


def test_list_filters(run: Run, fake: FakeAdmin) -> None:
    fake.on_query("COUNT(1)", [{"total": 7}])
    fake.on_query("FROM sys_invocation inv", [ALICE_ROW, RETRYING_ROW])
    result = run(
        "invocations",
        "list",
        "--service",
        "Greeter",
        "--service",
        "O'Brien",
        "--handler",
        "greet",
        "--status",
        "completed",
        "--status",
        "backing-off",
        "-n",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert ALICE in result.stdout and RETRYING in result.stdout
    assert "Showing 2/7 invocations." in result.stderr
    listing = fake.sql()[0]
    assert "inv.status IN ('completed', 'backing-off')" in listing
    assert "inv.target_service_name IN ('Greeter', 'O''Brien')" in listing
    assert "inv.target_handler_name IN ('greet')" in listing
    assert listing.endswith("LIMIT 2")
    assert "status != 'completed'" not in fake.sql()[1]


def test_list_all_has_no_status_filter(run: Run, fake: FakeAdmin) -> None:
    fake.on_query("COUNT(1)", [{"total": 1}])
    fake.on_query("FROM sys_invocation inv", [ALICE_ROW])
    result = run("invocations", "list", "--all")
    assert result.exit_code == 0
    assert ALICE in result.stdout and "completed" in result.stdout
    assert "WHERE" not in fake.sql()[0]


def test_list_as_json_has_every_column(run: Run, fake: FakeAdmin) -> None:
    fake.on_query("COUNT(1)", [{"total": 2}])
    fake.on_query("FROM sys_invocation inv", [RETRYING_ROW, ALICE_ROW])
    result = run("invocations", "list", "--all", "--output", "json")
    listed = json.loads(result.stdout)
    assert [list(inv) for inv in listed] == [list(INVOCATION_COLUMNS)] * 2
    assert listed[0]["id"] == RETRYING and listed[0]["retry_count"] == 3
    assert listed[0]["last_failure"] == TRACE
    assert listed[1]["completion_result"] == "success" and listed[1]["retry_count"] is None


def test_list_says_when_there_is_nothing(run: Run, fake: FakeAdmin) -> None:
    fake.on_query("COUNT(1)", [{"total": 0}])
    fake.on_query("FROM sys_invocation inv", [])
    result = run("invocations", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No invocations (completed ones are hidden: --all shows them)." in result.stderr


def test_list_rejects_an_unknown_status(run: Run) -> None:
    assert run("invocations", "list", "--status", "sleeping").exit_code == 2


# ---- describe -----------------------------------------------------------------------------


def test_describe_a_completed_invocation_with_retries(run: Run, fake: FakeAdmin) -> None:
    _describe(fake, ALICE_ROW, ALICE_JOURNAL, ALICE_EVENTS)
    result = run("invocations", "describe", ALICE)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert ALICE in out and "Greeter/greet" in out
    assert "completed with success" in out
    assert "01M85YQAWFHAGWHK0FJB2037DF" in out and DP in out
    lines = out.splitlines()
    order = [
        "#0  04:58:43.982  Command: Input",
        "#1  04:58:43.988  Command: Run [Notification]",
        "#2  04:58:43.988  Notification: Run",
        "#3  04:58:43.990  Command: Sleep until 2026-11-24 04:58:44.991 UTC",
        "#4  04:58:44.991  Notification: Sleep",
        "#5  04:58:44.993  Command: Run [Reminder]",
        "✗ 04:58:44.994  attempt failed: RuntimeError('[SIMULATED] Failed to send reminder "
        "(attempt 1)') (500, RT0007)",
        "(attempt 2)') (500, RT0007)",
        "(attempt 3)') (500, RT0007)",
        "#6  04:58:48.936  Notification: Run",
        "#7  04:58:48.938  Command: Output",
        "└── completed with success",
    ]
    positions = [next(i for i, li in enumerate(lines) if part in li) for part in order]
    assert positions == sorted(positions), out
    journal_query = fake.sql()[1]
    assert f"WHERE sj.id = '{ALICE}' ORDER BY sj.index DESC LIMIT 100" in journal_query


def test_describe_a_retrying_invocation_shows_the_failure_and_its_stack_trace(
    run: Run, fake: FakeAdmin
) -> None:
    journal = [e for e in ALICE_JOURNAL if e["index"] <= 5]
    _describe(fake, RETRYING_ROW, journal, [])
    result = run("invocations", "describe", RETRYING)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "backing-off (retried 3 time(s), next retry in " in out
    assert "Last failure (RT0007) in command index 3, Run [Reminder]:" in out
    assert TRACE.rstrip() in out  # the whole stack trace, as the server has it
    assert "restate-sdk-python/1.2.0" in out
    assert "└── backing-off (retried 3 time(s), next retry in " in out


def test_describe_shows_callees_and_callers(run: Run, fake: FakeAdmin) -> None:
    caller_row = {**ALICE_ROW, "id": CALLER, "target": "Caller/call", "journal_size": 3}
    journal = [
        {"index": 2, "entry_type": "Notification: Call", "appended_at": "2026-11-24T10:53:23.437Z"},
        {
            "index": 1,
            "entry_type": "Command: Call",
            "name": "",
            "invoked_id": CALLEE,
            "invoked_target": "Greeter/greet",
            "appended_at": "2026-11-24T10:53:23.429Z",
        },
        {"index": 0, "entry_type": "Command: Input", "appended_at": "2026-11-24T10:53:23.426Z"},
    ]
    _describe(fake, caller_row, journal, [])
    out = run("invocations", "describe", CALLER).stdout
    assert f"#1  10:53:23.429  Command: Call ─▶ Greeter/greet {CALLEE}" in out

    callee_row = {**ALICE_ROW, "id": CALLEE, "invoked_by_id": CALLER}
    callee_row["invoked_by_target"] = "Caller/call"
    fake.queries.clear()
    _describe(fake, callee_row, [], [])
    out = run("invocations", "describe", CALLEE).stdout
    assert f"Caller/call {CALLER}" in out  # Invoked by
    assert f"Caller/call ({CALLER}) ─▶ Greeter/greet  {CALLEE}" in out  # the timeline's root


def test_describe_many_failures_are_summed_up(run: Run, fake: FakeAdmin) -> None:
    events = [_failure(i, f"{45 + i / 100:06.3f}") for i in range(1, 21)]
    _describe(fake, ALICE_ROW, ALICE_JOURNAL, events)
    out = run("invocations", "describe", ALICE).stdout
    assert "(attempt 1)" in out and "(attempt 3)" in out and "(attempt 20)" in out
    assert "(attempt 10)" not in out
    assert "… 14 more failed attempts …" in out


def test_describe_says_how_many_entries_are_not_shown(run: Run, fake: FakeAdmin) -> None:
    _describe(fake, ALICE_ROW, ALICE_JOURNAL[:3], [])
    result = run("invocations", "describe", ALICE, "--journal-limit", "3")
    assert "… 5 earlier entries not shown (--journal-limit)" in result.stdout
    assert fake.sql()[1].endswith("LIMIT 3")


def test_describe_as_json(run: Run, fake: FakeAdmin) -> None:
    _describe(fake, ALICE_ROW, ALICE_JOURNAL, ALICE_EVENTS[:1])
    found = json.loads(run("invocations", "describe", ALICE, "-o", "json").stdout)
    assert found["invocation"] == ALICE_ROW
    assert [e["index"] for e in found["journal"]] == list(range(8))
    assert found["journal"][3] == {
        "index": 3,
        "entry_type": "Command: Sleep",
        "name": "",
        "completed": None,
        "invoked_id": None,
        "invoked_target": None,
        "sleep_wakeup_at": "2026-11-24T04:58:44.991Z",
        "promise_name": None,
        "appended_at": "2026-11-24T04:58:43.990Z",
    }
    [event] = found["events"]
    assert event["after_journal_entry_index"] == 5
    assert event["event_type"] == "TransientError"
    assert event["event"]["restate_doc_error_code"] == "RT0007"


def test_describe_an_unknown_invocation(run: Run, fake: FakeAdmin) -> None:
    _describe(fake, ALICE_ROW, [], [])
    fake.queries[0] = ("LEFT JOIN sys_deployment", [])
    result = run("invocations", "describe", "inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert result.exit_code == 1
    assert "Error: no invocation inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaa" in result.stderr


def test_describe_refuses_what_is_not_an_id_without_asking_the_server(
    run: Run, fake: FakeAdmin
) -> None:
    result = run("invocations", "describe", "x' OR 1=1 --")
    assert result.exit_code == 2
    assert "is not an invocation id" in result.stderr
    assert fake.sql() == []
