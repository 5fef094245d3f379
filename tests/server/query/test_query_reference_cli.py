"""Every query the official ``restate`` CLI sends, against a live server of either target.

``cli_queries.json`` holds them (extracted from the reference captures by
``scripts/extract_cli_queries.py``), with the capture's ids and names as placeholders. Each is
filled in with the invocations of ``reference_world.py``, sent with the ``accept`` header the CLI
uses (JSON rows or an Arrow stream), and its answer checked: the rows the CLI would get for
these invocations, in Restate's formats. Runs on both targets (``--target restate``).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any, Final

import pytest
from reference_world import HERE, TIMESTAMP, Live, Rows, created_desc, one, parse_time

pytestmark = [pytest.mark.interop, pytest.mark.conformance]

FIXTURE: Final = json.loads((HERE / "cli_queries.json").read_text())


def _values(live: Live) -> dict[str, str]:
    ids = live.ids
    last5 = [r["id"] for r in live.rows(_cli("services status #3", live, last5=False))]
    out = {
        "completed": ids["completed"],
        "completed_other": ids["completed_other"],
        "backing_off": ids["backing_off"],
        "suspended": ids["suspended"],
        "paused": ids["paused"],
        "scheduled": ids["scheduled"],
        "locked": ids["locked"],
        "running": ids["running"],
        "deployment": live.deployment,
        "object_target": "Counter/locked",
        "service_target": "Retry/always",
        "service": "Counter",
        "object": "Counter",
        "key": "alice",
        "key2": "bob",
    }
    out.update({f"last_{n}": i for n, i in enumerate(last5, start=1)})
    return out


_ENTRIES: Final = {q["name"]: q for q in FIXTURE["queries"]}


def _cli(name: str, live: Live, *, last5: bool = True) -> str:
    template: str = _ENTRIES[name]["template"]
    if not last5:
        return template.format(service="Counter")
    return template.format(**_values(live))


def test_the_fixture_is_the_captured_queries() -> None:
    literals: dict[str, str] = FIXTURE["literals"]
    assert len(FIXTURE["queries"]) == 34
    for q in FIXTURE["queries"]:
        assert q["template"].format(**literals) == q["captured"], q["name"]
        assert q["accept"] in ("application/json", "*/*")


def _live_ids(live: Live) -> list[str]:
    roles = ("scheduled", "backing_off", "paused", "suspended", "locked", "pending", "running")
    return [live.ids[r] for r in roles]


def _check_big_row(row: dict[str, Any], live: Live) -> None:
    """A row of the CLI's invocation SELECT, in Restate's formats."""
    assert TIMESTAMP.match(row["created_at"]), row
    assert TIMESTAMP.match(row["state_modified_at"]), row
    if "pinned_deployment_id" in row:
        assert row["pinned_deployment_id"] == live.deployment
        assert row["pinned_deployment_exists"] is True
    else:
        assert row["pinned_deployment_exists"] is False


Check = Callable[[Live, Any], None]


def _check_describe_backoff(live: Live, rows: Rows) -> None:
    row = one(rows)
    assert row["id"] == live.ids["backing_off"]
    assert row["target"] == "Retry/always"
    assert row["target_service_ty"] == "service"
    assert row["status"] == "backing-off"
    assert row["num_retries"] >= 1
    assert "[SIMULATED] t1 is not ready" in row["last_failure_message"]
    assert TIMESTAMP.match(row["next_retry_at"]), row
    assert "completion_result" not in row
    _check_big_row(row, live)


def _check_describe_completed(live: Live, rows: Rows) -> None:
    row = one(rows)
    assert row["id"] == live.ids["completed"]
    assert row["target"] == "Greeter/greet"
    assert row["status"] == "completed"
    assert row["completion_result"] == "success"
    for gone in ("num_retries", "last_failure_message", "next_retry_at", "completion_failure"):
        assert gone not in row, gone
    _check_big_row(row, live)


def _check_alice_journal(live: Live, rows: Rows) -> None:
    assert [(r["index"], r["entry_type"], r.get("name")) for r in rows] == [
        (7, "Command: Output", ""),
        (6, "Notification: Run", None),
        (5, "Command: Run", "Reminder"),
        (4, "Notification: Sleep", None),
        (3, "Command: Sleep", ""),
        (2, "Notification: Run", None),
        (1, "Command: Run", "Notification"),
        (0, "Command: Input", ""),
    ]
    for r in rows:
        assert r["version"] == 2
        assert TIMESTAMP.match(r["appended_at"]), r
        assert list(json.loads(r["entry_json"])) in (["Command"], ["Notification"])
        # Restate leaves sleep_wakeup_at NULL for v2 entries; undying fills it in.
        shown = live.undying and r["entry_type"] == "Command: Sleep"
        assert ("sleep_wakeup_at" in r) == shown, r
    sleep = json.loads(rows[4]["entry_json"])["Command"]["Sleep"]
    assert isinstance(sleep["wake_up_time"], int)
    if live.undying:
        wake = datetime.datetime.fromtimestamp(sleep["wake_up_time"] / 1000, datetime.UTC)
        assert parse_time(rows[4]["sleep_wakeup_at"]) == wake


def _check_backoff_journal(live: Live, rows: Rows) -> None:
    row = one(rows)
    assert (row["index"], row["entry_type"], row["name"], row["version"]) == (
        0,
        "Command: Input",
        "",
        2,
    )
    assert json.loads(row["entry_json"])["Command"]["Input"]["payload"] == list(b'"t1"')


def _check_counts(expected: int) -> Check:
    def check(live: Live, table: Any) -> None:
        assert table.num_columns == 1 and table.num_rows == 1
        assert table.column(0).to_pylist() == [expected]

    return check


def _check_lookup(role: str, target: str) -> Check:
    def check(live: Live, rows: Rows) -> None:
        assert rows == [{"id": live.ids[role], "target": target}]

    return check


def _check_ids(ids: Callable[[Live], list[str]]) -> Check:
    def check(live: Live, rows: Rows) -> None:
        assert [r["id"] for r in rows] == ids(live)

    return check


def _check_list_rows(ids: Callable[[Live], list[str]]) -> Check:
    def check(live: Live, rows: Rows) -> None:
        assert [r["id"] for r in rows] == ids(live)
        for row in rows:
            _check_big_row(row, live)

    return check


def _check_sql_all(live: Live, table: Any) -> None:
    rows = table.to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(live.order)
    times = [live.created[r["id"]] for r in rows]
    assert times == sorted(times)  # ORDER BY created_at
    statuses = {r["id"]: r["status"] for r in rows}
    assert statuses[live.ids["completed"]] == "completed"
    assert statuses[live.ids["pending"]] == "pending"
    assert statuses[live.ids["backing_off"]] == "backing-off"
    assert {r["target"] for r in rows} >= {"Greeter/greet", "Counter/locked/add", "Blocker/block"}


def _check_sql_two(live: Live, table: Any) -> None:
    rows = table.to_pylist()
    assert len(rows) == 2
    assert all(r["id"] in live.order and r["status"] for r in rows)


def _check_sql_types(live: Live, table: Any) -> None:
    assert table.num_rows == 2
    assert [str(f.type) for f in table.schema] == [
        "large_string",
        "large_string",
        "uint32",
        "uint64",
        "timestamp[ms, tz=+00:00]",
        "duration[ms]",
        "list<item: uint32>",
    ]


def _check_state(key: str, value: str, full: bool) -> Check:
    def check(live: Live, rows: Rows) -> None:
        row = {"key": "count", "value": value}
        if full:
            row = {"service_name": "Counter", "service_key": key, **row}
        assert rows == [row]

    return check


def _check_pending_counts(live: Live, rows: Rows) -> None:
    row = one(rows)
    assert row["target_service_name"] == "Counter"
    assert row["target_handler_name"] == "add"
    assert row["status"] == "pending"
    assert row["num_invocations"] == 1
    assert row["oldest_invocation"] == live.ids["pending"]
    assert TIMESTAMP.match(row["oldest_at"])


def _check_status_counts(live: Live, rows: Rows) -> None:
    got = sorted(
        (r["target_handler_name"], r["status"], r["num_invocations"], r["oldest_invocation"])
        for r in rows
    )
    assert got == [
        ("add", "completed", 3, live.ids["add_alice"]),
        ("add", "pending", 1, live.ids["pending"]),
        ("hold", "suspended", 1, live.ids["locked"]),
    ]
    assert [r["target_handler_name"] for r in rows] == ["add", "add", "hold"]


def _counter_ids(live: Live) -> list[str]:
    roles = ("add_alice", "add_bob", "add_carol", "locked", "pending")
    return created_desc(live, [live.ids[r] for r in roles])


CHECKS: Final[dict[str, Check]] = {
    "cancel #1": _check_lookup("scheduled", "Greeter/greet"),
    "cancel bulk #1": _check_lookup("backing_off", "Retry/always"),
    "describe backoff #1": _check_ids(lambda live: [live.ids["backing_off"]]),
    "describe backoff #2": _check_describe_backoff,
    "describe backoff #3": _check_counts(1),
    "describe backoff #4": _check_counts(3),
    "describe backoff #5": _check_backoff_journal,
    "invocations describe #1": _check_ids(lambda live: [live.ids["completed"]]),
    "invocations describe #2": _check_describe_completed,
    "invocations describe #3": _check_alice_journal,
    "invocations list #1": _check_counts(7),
    "invocations list #2": _check_ids(lambda live: created_desc(live, _live_ids(live))),
    "invocations list all #1": _check_list_rows(
        lambda live: [live.ids["completed_other"], live.ids["completed"]]
    ),
    "invocations list all #2": _check_counts(18),
    "invocations list all #3": _check_ids(lambda live: created_desc(live, live.order)),
    "invocations list inflight #1": _check_list_rows(
        lambda live: created_desc(
            live, [live.ids["suspended"], live.ids["paused"], live.ids["scheduled"]]
        )
    ),
    "kill #1": _check_lookup("paused", "Retry/pause"),
    "kill2 #1": lambda live, rows: _check_kill2(live, rows),
    "kill locked #1": _check_lookup("locked", "Counter/locked/hold"),
    "pause #1": _check_lookup("running", "Blocker/block"),
    "purge #1": lambda live, rows: _expect(rows, []),
    "resume #1": _check_lookup("running", "Blocker/block"),
    # pinned and not completed: sleeping, holding the lock, running (the failing ones failed
    # before their first command, so no deployment is pinned yet)
    "services describe #1": _check_counts(3),
    "services status #1": _check_pending_counts,
    "services status #2": _check_status_counts,
    "services status #3": _check_ids(_counter_ids),
    "services status #4": _check_list_rows(_counter_ids),
    "sql #1": _check_sql_all,
    "sql json #1": _check_sql_two,
    "sql jsonl #1": _check_sql_two,
    "sql types #1": _check_sql_types,
    "state clear #1": _check_state("bob", "3431", full=True),
    "state get #1": _check_state("alice", "38", full=False),
    "state patch #1": _check_state("bob", "3431", full=False),
}


def _expect(got: Any, expected: Any) -> None:
    assert got == expected


def _check_kill2(live: Live, rows: Rows) -> None:
    assert sorted((r["id"], r["target"]) for r in rows) == sorted(
        [
            (live.ids["locked"], "Counter/locked/hold"),
            (live.ids["pending"], "Counter/locked/add"),
        ]
    )


def test_every_captured_query_has_a_check() -> None:
    assert set(CHECKS) == set(_ENTRIES)


@pytest.mark.parametrize("name", sorted(_ENTRIES))
def test_cli_query(live: Live, name: str) -> None:
    entry = _ENTRIES[name]
    sql = _cli(name, live)
    if entry["accept"] == "application/json":
        CHECKS[name](live, live.rows(sql))
    else:
        CHECKS[name](live, live.arrow(sql))
