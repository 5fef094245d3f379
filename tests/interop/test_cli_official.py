"""The official ``restate`` CLI 1.7.12 (from npm) operating the server, command by command.

The module builds what a user finds on a live server (a completed Greeter call, a Greeter call
whose Reminder step fails and is being retried with a Python stack trace, a handler suspended in
a one-hour sleep, objects with state, a workflow waiting on its promise, an invocation paused
after its retries ran out, a call from one service to another) and runs every command users rely
on against it, checking what the CLI prints: ids, statuses, retry counts, failures with their
stack traces, journal entries with their names, state values, deployments and services.

The same checks pass with ``--target undying`` (default) and ``--target restate``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cli_support import (
    LONG_SLEEP_S,
    CliWorld,
    Described,
    cli_time,
    deployments_listed,
    listed,
    sql_time,
    squeezed,
    state_table,
    table_rows,
)

from undying.server.partition.state_version import state_version
from undying.testing import poll_until

pytestmark = pytest.mark.interop

PY_SDK = "restate-sdk-python/1.2.0"
GREETER_JOURNAL_HEAD = [
    "Command: Input",
    "Command: Run [Notification]",
    "Notification: Run",
]


@pytest.fixture(scope="module")
def world(target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliWorld]:
    started = CliWorld.start(target, tmp_path_factory.mktemp(f"cli-{target}"))
    try:
        yield started
    finally:
        started.close()


# -- the invocations the tests look at -------------------------------------------------------------


@pytest.fixture(scope="module")
def bob(world: CliWorld) -> str:
    """A completed Greeter invocation (run "Notification", sleep 1 s, run "Reminder")."""
    resp = world.server.ingress.call("Greeter", "greet", {"name": "Bob"})
    assert resp.status == 200, resp
    assert resp.json() == {"result": "You said hi to Bob!"}
    invocation_id = resp.header("x-restate-id")
    assert invocation_id is not None
    return invocation_id


@pytest.fixture(scope="module")
def alice(world: CliWorld) -> str:
    """A Greeter invocation whose Reminder step fails on its first 3 executions: it is retried,
    5 s after the first failure, 10 s after the second..."""
    return world.server.ingress.send("Greeter", "greet", {"name": "Alice"})


@pytest.fixture(scope="module")
def sleeping(world: CliWorld) -> str:
    """``Long.go``: a step, then a one-hour sleep (suspended)."""
    invocation_id = world.server.ingress.send(
        "Long", "go", {"tag": "cli", "sleep_seconds": LONG_SLEEP_S}
    )
    world.wait_status(invocation_id, "suspended")
    return invocation_id


@pytest.fixture(scope="module")
def order(world: CliWorld) -> str:
    """A workflow run that set its state and waits for its ``approval`` promise."""
    invocation_id = world.server.ingress.send("WfUd", "run", {"order": 1}, key="order-1")
    world.wait_state("WfUd", "order-1", {"status": '"waiting"'})
    return invocation_id


@pytest.fixture(scope="module")
def exhausted(world: CliWorld) -> str:
    """``FailingUd.exhaust_pause``: fails twice (its retry policy's maximum) and is paused."""
    invocation_id = world.server.ingress.send("FailingUd", "exhaust_pause", "cli-exhausted")
    world.wait_status(invocation_id, "paused")
    return invocation_id


def add(world: CliWorld, key: str, delta: int) -> None:
    """``CounterUd/{key}/add`` on a fresh key: its count becomes ``delta``."""
    resp = world.server.ingress.call("CounterUd", "add", delta, key=key)
    assert resp.status == 200, resp
    assert resp.json() == delta


def count(world: CliWorld, key: str) -> Any:
    resp = world.server.ingress.call("CounterUd", "get", key=key)
    assert resp.status == 200, resp
    return resp.json()


def retried(status: str) -> int:
    found = re.search(r"Retried (\d+) time\(s\)", status)
    assert found is not None, status
    return int(found.group(1))


def sleep_until(entry: str) -> datetime.datetime:
    """The wake-up time of ``Command: Sleep until 2026-… +00:00 (… left)``."""
    found = re.match(r"Command: Sleep until (\S+ \S+ \+00:00)", entry)
    assert found is not None, entry
    return cli_time(found.group(1))


# -- health, registration --------------------------------------------------------------------------


def test_whoami_reports_a_healthy_admin_and_the_ingress(world: CliWorld) -> None:
    text = squeezed(world.run("whoami"))
    admin, ingress = world.server.admin_url, world.server.ingress_url
    assert f"[OK]: Admin Service '{admin}/' is healthy!" in text
    assert f"Advertised ingress address {ingress}/" in text
    assert f"Admin base URL {admin}/" in text


def test_register_prints_the_services_added_and_the_deployment(world: CliWorld) -> None:
    py = squeezed(world.py_registration)
    assert "SERVICES THAT WILL BE ADDED:" in py
    for name in ("Greeter", "Long", "Failing"):
        assert f"- {name}\nType: Service" in py
    assert "HANDLER INPUT OUTPUT\ngreet JSON object JSON object" in py
    assert f"Deployment ID: {world.py_deployment}" in py
    revisions = table_rows(world.py_registration.stdout, "SERVICE")
    assert sorted(revisions) == [["Failing", "1"], ["Greeter", "1"], ["Long", "1"]]

    ud = squeezed(world.ud_registration)
    assert "- CounterUd\nType: VirtualObject virtual object" in ud
    assert "- WfUd\nType: Workflow workflow" in ud
    assert world.ud_deployment != world.py_deployment


# -- a retrying invocation: describe, services status, list, sql, kill -----------------------------


def check_retrying(world: CliWorld, described: Described, row: dict[str, Any]) -> int:
    """What ``describe`` shows for Alice while she backs off; returns the retry count."""
    assert described.fields["Target"] == "Greeter/greet"
    status = described.status
    assert status.startswith("backing-off"), described
    n = retried(status)
    assert row["status"] == "backing-off" and n == row["retry_count"] >= 1, (row, described)
    assert described.fields["Deployment"].startswith(f"{world.py_deployment} [required]")
    assert f"using {PY_SDK}" in described.fields["Deployment"]

    error = described.error
    failure = f"RuntimeError('[SIMULATED] reminder for Alice failed (attempt {n})')"
    assert f"[500 Internal] {failure}" in error, described
    assert "Traceback (most recent call last):" in error
    assert "in send_reminder" in error  # a frame of the service's own code
    assert f"RuntimeError: [SIMULATED] reminder for Alice failed (attempt {n})" in error
    # the failure is stamped with the start of the attempt that failed
    stamp = re.match(r"\[(\S+ \S+ \+00:00)\]", error)
    assert stamp is not None, error
    started = cli_time(stamp.group(1))
    assert started == sql_time(row["last_start_at"])

    entries = described.entries
    assert entries[:3] == GREETER_JOURNAL_HEAD, described
    assert entries[3].startswith("Command: Sleep until ")
    assert entries[4:] == ["Notification: Sleep", "Command: Run [Reminder]"], described
    assert described.tree_end == "backing-off"
    assert "[Ingress]\n └──(this)─> Greeter/greet" in described.progress
    by_index = {line.index: line.time for line in described.journal}
    # the Reminder step was journaled by the first attempt after the sleep; the failing
    # attempt is that one (n == 1) or a retry that started after it
    if n == 1:
        assert started >= by_index[4], described
    else:
        assert started > by_index[5], described
    return n


def test_describe_a_retrying_invocation_shows_its_retries_and_stack_trace(
    world: CliWorld, alice: str
) -> None:
    first_row = world.wait_status(
        alice, "backing-off", where=lambda row: row.get("retry_count", 0) >= 1
    )
    result, row = world.stable(alice, lambda: world.run("invocations", "describe", alice))
    n = check_retrying(world, Described(result), row)
    assert n >= first_row["retry_count"]
    # the next retry fails too: the count rises
    world.wait_status(
        alice, "backing-off", timeout=60.0, where=lambda r: r.get("retry_count", 0) > n
    )
    result, row = world.stable(alice, lambda: world.run("invocations", "describe", alice))
    assert check_retrying(world, Described(result), row) > n


def test_services_status_counts_the_retrying_invocation(
    world: CliWorld, alice: str, bob: str
) -> None:
    world.wait_status(alice, "backing-off")
    result, row = world.stable(alice, lambda: world.run("services", "status", "Greeter"))
    summary = table_rows(result.stdout, "PENDING")
    header = ["PENDING", "SCHEDULED", "READY", "RUNNING", "BACKING-OFF", "SUSPENDED"]
    [greet] = [r for r in summary if r[0] == "greet"]
    assert dict(zip(header, greet[1:7], strict=True)) == {
        "PENDING": "-",
        "SCHEDULED": "-",
        "READY": "-",
        "RUNNING": "-",
        "BACKING-OFF": "1",
        "SUSPENDED": "-",
    }, result
    recent = listed(result)
    assert recent[alice]["Status"].startswith("backing-off")
    assert retried(recent[alice]["Status"]) == row["retry_count"]
    assert f"reminder for Alice failed (attempt {row['retry_count']})" in result.stdout
    assert recent[bob]["Status"] == "completed with success"


def test_invocations_list_shows_what_is_not_completed(
    world: CliWorld, alice: str, bob: str, sleeping: str, order: str, exhausted: str
) -> None:
    world.wait_status(alice, "backing-off")
    result, row = world.stable(alice, lambda: world.run("invocations", "list"))
    shown = listed(result)
    assert bob not in shown  # completed ones only with --all
    assert shown[alice]["Target"] == "Greeter/greet"
    assert retried(shown[alice]["Status"]) == row["retry_count"]
    assert shown[alice]["Error"].startswith("[")  # the failure's time, then its text
    assert f"reminder for Alice failed (attempt {row['retry_count']})" in result.stdout
    assert shown[sleeping]["Target"] == "Long/go"
    assert shown[sleeping]["Status"].startswith("suspended")
    assert shown[order]["Target"] == "WfUd/order-1/run"
    assert shown[order]["Status"].split()[0] in ("running", "suspended")
    assert shown[exhausted]["Target"] == "FailingUd/exhaust_pause"
    assert shown[exhausted]["Status"] == "paused"
    for fields in shown.values():
        assert not fields["Status"].startswith("completed"), result
    total = re.search(r"Showing (\d+)/(\d+) invocations", result.stderr)
    assert total is not None, result
    assert int(total.group(1)) == len(shown)


def test_invocations_list_all_includes_completed_ones(
    world: CliWorld, alice: str, bob: str
) -> None:
    shown = listed(world.run("invocations", "list", "--all"))
    assert shown[bob]["Status"] == "completed with success"
    assert shown[bob]["Target"] == "Greeter/greet"
    assert shown[bob]["Deployment"] == f"{world.py_deployment} [required]"
    assert alice in shown
    greeter = listed(world.run("invocations", "list", "--all", "--service", "Greeter"))
    assert {bob, alice} <= set(greeter)
    assert all(f["Target"] == "Greeter/greet" for f in greeter.values())


def test_sql_shows_statuses_and_retry_counts(
    world: CliWorld, alice: str, bob: str, sleeping: str
) -> None:
    world.wait_status(alice, "backing-off")
    sql = (
        "SELECT id, status, retry_count FROM sys_invocation "
        f"WHERE id IN ('{bob}', '{alice}', '{sleeping}') ORDER BY created_at"
    )
    result, row = world.stable(alice, lambda: world.run("sql", sql))
    rows = {r[0]: r[1:] for r in table_rows(result.stdout, "ID")}
    assert rows == {
        bob: ["completed"],
        alice: ["backing-off", str(row["retry_count"])],
        sleeping: ["suspended"],
    }, result
    assert "3 rows." in result.stderr


def test_kill_a_retrying_invocation(world: CliWorld, alice: str) -> None:
    result = world.run("invocations", "kill", alice)
    assert table_rows(result.stdout, "ID") == [[alice, "Greeter/greet"]]
    assert "[OK]: Killed 1 invocations" in result.stdout
    world.wait_status(alice, "completed")
    described = world.describe(alice)
    assert described.status == "completed with failure"
    assert described.fields["Error"] == "[409] killed"
    assert described.tree_end == "completed"
    assert described.entries[:3] == GREETER_JOURNAL_HEAD


# -- journals: completed, suspended, calls; sql over sys_journal -----------------------------------


def test_describe_a_completed_invocation_shows_its_journal(world: CliWorld, bob: str) -> None:
    described = world.describe(bob)
    assert described.fields["Target"] == "Greeter/greet"
    assert described.status == "completed with success"
    assert described.fields["Deployment"] == f"{world.py_deployment} [required]"
    assert "Error" not in described.fields
    entries = described.entries
    assert entries[:3] == GREETER_JOURNAL_HEAD
    assert entries[4:] == [
        "Notification: Sleep",
        "Command: Run [Reminder]",
        "Notification: Run",
        "Command: Output",
    ]
    assert [line.index for line in described.journal] == list(range(8))
    times = {line.index: line.time for line in described.journal}
    wake = sleep_until(entries[3])
    # ctx.sleep(1 s): the SDK fixed the wake-up time a moment before the server stored it
    assert 0.5 <= (wake - times[3]).total_seconds() <= 1.1
    # the timer fired at its time (restate-server's clock may stamp it a millisecond early)
    assert (times[4] - wake).total_seconds() >= -0.01
    assert described.tree_end == "completed"


def test_sql_journal_query_of_the_talk(world: CliWorld, bob: str) -> None:
    result = world.run(
        "sql", f"SELECT index, entry_type, name FROM sys_journal WHERE id = '{bob}' ORDER BY index"
    )
    assert table_rows(result.stdout, "INDEX") == [
        ["0", "Command: Input"],
        ["1", "Command: Run", "Notification"],
        ["2", "Notification: Run"],
        ["3", "Command: Sleep"],
        ["4", "Notification: Sleep"],
        ["5", "Command: Run", "Reminder"],
        ["6", "Notification: Run"],
        ["7", "Command: Output"],
    ], result
    assert "8 rows." in result.stderr
    as_json = world.run(
        "sql", "--json", f"SELECT id, status, target FROM sys_invocation WHERE id = '{bob}'"
    )
    assert json.loads(as_json.stdout) == [
        {"id": bob, "status": "completed", "target": "Greeter/greet"}
    ]


def test_describe_a_suspended_invocation_shows_its_sleep(world: CliWorld, sleeping: str) -> None:
    described = world.describe(sleeping)
    assert described.fields["Target"] == "Long/go"
    assert described.status.startswith("suspended")
    entries = described.entries
    assert entries[:3] == ["Command: Input", "Command: Run [step1]", "Notification: Run"]
    [sleep] = entries[3:]
    wake = sleep_until(sleep)
    slept = (wake - described.journal[-1].time).total_seconds()
    assert LONG_SLEEP_S - 5 <= slept <= LONG_SLEEP_S + 5, sleep
    assert re.search(r"\(\d+ minutes, .* left\)$", sleep), sleep
    assert described.tree_end == "suspended"


def test_cancel_a_suspended_invocation(world: CliWorld, sleeping: str) -> None:
    result = world.run("invocations", "cancel", sleeping)
    assert table_rows(result.stdout, "ID") == [[sleeping, "Long/go"]]
    assert "[OK]: Cancelled 1 invocations" in result.stdout
    world.wait_status(sleeping, "completed")
    described = world.describe(sleeping)
    assert described.status == "completed with failure"
    assert described.fields["Error"] == "[409] cancelled"
    entries = described.entries
    assert entries[:3] == ["Command: Input", "Command: Run [step1]", "Notification: Run"]
    assert entries[3].startswith("Command: Sleep until ")
    assert entries[4:] == ["Notification: Signal", "Command: Output"]
    assert described.tree_end == "completed"


def test_describe_a_call_shows_the_callee_and_the_caller(world: CliWorld) -> None:
    resp = world.server.ingress.call("CallerUd", "call_add", {"key": "chain", "delta": 2})
    assert resp.status == 200 and resp.json() == 2, resp
    caller = resp.header("x-restate-id")
    assert caller is not None
    described = world.describe(caller)
    entries = described.entries
    call = re.fullmatch(r"Command: Call CounterUd/chain/add (inv_[0-9A-Za-z]+)", entries[1])
    assert call is not None, described
    callee = call.group(1)
    assert entries == [
        "Command: Input",
        f"Command: Call CounterUd/chain/add {callee}",
        "Notification: CallInvocationId",
        "Notification: Call",
        "Command: Output",
    ]
    other = world.describe(callee)
    assert other.fields["Invoked by"] == f"CallerUd/call_add {caller}"
    assert f"CallerUd/call_add {caller}\n └──(this)─> CounterUd/chain/add" in other.progress
    assert other.entries == [
        "Command: Input",
        "Command: GetEagerState key count",
        "Command: SetState key count",
        "Command: Output",
    ]


# -- workflows, pause and resume, purge ------------------------------------------------------------


def test_workflow_state_and_journal_before_and_after_its_promise(
    world: CliWorld, order: str
) -> None:
    described = world.describe(order)
    assert described.fields["Target"] == "WfUd/order-1/run"
    assert described.status.split()[0] in ("running", "suspended")
    assert described.entries[:3] == [
        "Command: Input",
        "Command: SetState key status",
        "Command: GetPromise key approval",
    ]
    assert state_table(world.run("state", "get", "WfUd", "order-1")) == {"status": '"waiting"'}

    resp = world.server.ingress.call("WfUd", "signal", "yes", key="order-1")
    assert resp.status == 200 and resp.json() == "resolved", resp
    world.wait_status(order, "completed")
    described = world.describe(order)
    assert described.status == "completed with success"
    assert described.entries[-2:] == ["Command: SetState key status", "Command: Output"]
    assert state_table(world.run("state", "get", "WfUd", "order-1")) == {"status": '"done"'}


def test_pause_and_resume_a_running_invocation(world: CliWorld) -> None:
    ingress = world.server.ingress
    invocation_id = ingress.send("WfUd", "run", {"order": 2}, key="order-2")
    world.wait_state("WfUd", "order-2", {"status": '"waiting"'})
    world.wait_status(invocation_id, "running")

    paused = world.run("invocations", "pause", invocation_id)
    assert table_rows(paused.stdout, "ID") == [[invocation_id, "WfUd/order-2/run"]]
    assert "[OK]: Paused 1 invocations" in paused.stdout
    world.wait_status(invocation_id, "paused")
    described = world.describe(invocation_id)
    assert described.status == "paused"
    assert described.tree_end == "paused"

    resumed = world.run("invocations", "resume", invocation_id)
    assert table_rows(resumed.stdout, "ID") == [[invocation_id, "WfUd/order-2/run"]]
    assert "[OK]: Resumed 1 invocations" in resumed.stdout
    poll_until(
        lambda: True if (world.invocation(invocation_id) or {}).get("status") != "paused" else None,
        timeout=30.0,
        what="the workflow runs again",
    )
    resp = ingress.call("WfUd", "signal", "go", key="order-2")
    assert resp.status == 200, resp
    result = ingress.attach(invocation_id)
    assert result.status == 200 and result.json() == {
        "input": {"order": 2},
        "approved_with": "go",
    }, result


def test_resume_an_invocation_paused_after_its_retries(world: CliWorld, exhausted: str) -> None:
    described = world.describe(exhausted)
    assert described.fields["Target"] == "FailingUd/exhaust_pause"
    assert described.status == "paused"
    assert described.entries == ["Command: Input"]
    assert described.tree_end == "paused"

    healed = world.server.ingress.call("FailingUd", "heal", "cli-exhausted")
    assert healed.status == 200, healed
    resumed = world.run("invocations", "resume", exhausted)
    assert table_rows(resumed.stdout, "ID") == [[exhausted, "FailingUd/exhaust_pause"]]
    assert "[OK]: Resumed 1 invocations" in resumed.stdout
    world.wait_status(exhausted, "completed")
    described = world.describe(exhausted)
    assert described.status == "completed with success"
    assert described.entries == ["Command: Input", "Command: Output"]
    output = world.server.ingress.attach(exhausted)
    assert output.status == 200 and output.json() == 3  # the third attempt succeeded


def test_purge_a_completed_invocation(world: CliWorld) -> None:
    resp = world.server.ingress.call("EchoUd", "hello")
    assert resp.status == 200 and resp.json() == "hello", resp
    invocation_id = resp.header("x-restate-id")
    assert invocation_id is not None
    assert invocation_id in listed(world.run("invocations", "list", "--all"))

    result = world.run("invocations", "purge", invocation_id)
    assert table_rows(result.stdout, "ID") == [[invocation_id, "EchoUd/hello"]]
    assert "[OK]: Purged 1 invocations" in result.stdout
    poll_until(
        lambda: True if world.invocation(invocation_id) is None else None,
        timeout=30.0,
        what=f"{invocation_id} is purged",
    )
    gone = world.cli.run("invocations", "describe", invocation_id)
    assert gone.returncode != 0
    assert f"Invocation {invocation_id} not found!" in gone.stderr
    assert invocation_id not in listed(world.run("invocations", "list", "--all"))


# -- state -----------------------------------------------------------------------------------------


def test_state_get(world: CliWorld) -> None:
    add(world, "alice", 5)
    result = world.run("state", "get", "CounterUd", "alice")
    assert state_table(result) == {"count": "5"}
    text = squeezed(result)
    assert "Service CounterUd\nKey alice" in text
    assert state_table(world.run("state", "get", "CounterUd", "nobody")) == {}


def test_state_patch(world: CliWorld) -> None:
    add(world, "bob", 3)
    patch = '[{"op": "replace", "path": "/count", "value": 41}]'
    result = world.run("state", "patch", "CounterUd", "bob", "--patch", patch)
    assert state_table(result) == {"count": "41"}  # the "New State" it submits
    assert "Successfully submitted state update." in result.stdout
    world.wait_state("CounterUd", "bob", {"count": "41"})
    assert state_table(world.run("state", "get", "CounterUd", "bob")) == {"count": "41"}
    assert count(world, "bob") == 41  # the handler sees it

    # The CLI sends the version of the state it read: a patch made on an older state is
    # ignored (a later one, made on the current state, shows that it was processed).
    admin = world.server.admin
    stale = admin.set_state(
        "CounterUd", "bob", {"count": b"99"}, version=state_version({b"count": b"3"})
    )
    assert stale.status == 202, stale
    fresh = admin.set_state(
        "CounterUd", "bob", {"count": b"42"}, version=state_version({b"count": b"41"})
    )
    assert fresh.status == 202, fresh
    world.wait_state("CounterUd", "bob", {"count": "42"})


def test_state_clear(world: CliWorld) -> None:
    add(world, "carl", 7)
    result = world.run("state", "clear", "CounterUd/carl")
    assert table_rows(result.stdout, "SERVICE/KEY") == [["CounterUd/carl", "[count]"]]
    assert "Enqueued successfully for processing" in result.stdout
    world.wait_state("CounterUd", "carl", {})
    assert state_table(world.run("state", "get", "CounterUd", "carl")) == {}
    assert count(world, "carl") == 0


# -- deployments and services ----------------------------------------------------------------------


def test_deployments_list(world: CliWorld) -> None:
    shown = deployments_listed(world.run("deployments", "list"))
    assert shown[world.py_deployment] == (
        world.py.url,
        {"Greeter": 1, "Long": 1, "Failing": 1},
    )
    endpoint, services = shown[world.ud_deployment]
    assert endpoint == world.ud.url
    assert {"CounterUd", "WfUd", "FailingUd", "CallerUd", "EchoUd"} <= set(services)
    assert set(services.values()) == {1}


def test_deployments_describe(world: CliWorld) -> None:
    result = world.run("deployments", "describe", world.py_deployment)
    text = squeezed(result)
    for line in (
        f"ID: {world.py_deployment}",
        "Transport: HTTP/1.1",
        "Protocol Style: Request/Response",
        f"Endpoint: {world.py.url}",
        f"SDK Version {PY_SDK}",
    ):
        assert line in text, result
    for service, handler in (("Greeter", "greet"), ("Long", "go"), ("Failing", "terminal")):
        assert f"- {service}\nType: Service\nRevision: 1 [Latest]" in text
        assert f"\n{handler} JSON object JSON object" in text

    ud = squeezed(world.run("deployments", "describe", world.ud_deployment))
    assert "Transport: HTTP/2.0" in ud
    assert "Protocol Style: Bidirectional Stream" in ud
    assert "- CounterUd\nType: VirtualObject virtual object\nRevision: 1 [Latest]" in ud


def test_services_list(world: CliWorld) -> None:
    rows = table_rows(world.run("services", "list").stdout, "NAME")
    services = {row[1]: row for row in rows}
    py, ud = world.py_deployment, world.ud_deployment
    assert services["Greeter"] == ["[public]", "Greeter", "1", "HTTP", py]
    assert services["Long"] == ["[public]", "Long", "1", "HTTP", py]
    assert services["CounterUd"] == ["[public]", "CounterUd", "1", "virtual object", "HTTP", ud]
    assert services["WfUd"] == ["[public]", "WfUd", "1", "workflow", "HTTP", ud]
    assert services["EchoUd"] == ["[public]", "EchoUd", "1", "HTTP", ud]


def test_services_describe(world: CliWorld) -> None:
    greeter = world.run("services", "describe", "Greeter")
    text = squeezed(greeter)
    for line in (
        "Name: Greeter",
        "Service type: Service",
        "Revision: 1",
        "Public: true",
        f"Deployment ID: {world.py_deployment}",
        "Transport: HTTP/1.1",
        "Protocol Style: Request/Response",
        f"Endpoint: {world.py.url}",
        f"SDK Version {PY_SDK}",
    ):
        assert line in text, greeter
    assert table_rows(greeter.stdout, "HANDLER") == [["greet", "JSON object", "JSON object"]]

    counter = world.run("services", "describe", "CounterUd")
    text = squeezed(counter)
    assert "Service type: VirtualObject" in text
    assert f"Deployment ID: {world.ud_deployment}" in text
    assert "Transport: HTTP/2.0" in text
    assert "SDK Version undying-sdk-python/" in text
    handlers = {row[0]: row[1:] for row in table_rows(counter.stdout, "HANDLER")}
    assert handlers["add"] == ["JSON integer", "JSON integer"]
    assert handlers["get"] == ["none", "JSON integer"]
    assert handlers["read"] == ["JSON string", "application/json"]
    assert handlers["log"] == ["none", "JSON array"]

    # an Optional[str] output (a JSON schema with anyOf) shows as its content type
    mailbox = world.run("services", "describe", "MailboxUd")
    handlers = {row[0]: row[1:] for row in table_rows(mailbox.stdout, "HANDLER")}
    assert handlers == {"get": ["none", "application/json"], "put": ["JSON string", "none"]}


def test_register_a_new_version_then_remove_deployments(world: CliWorld) -> None:
    cli = world.cli
    first_result = cli.register(world.misbehaving.url)
    assert first_result.returncode == 0, str(first_result)
    first = first_result.deployment_id
    # the same endpoint under another address: a new deployment, revision 2 of the service
    second_url = world.misbehaving.url.replace("127.0.0.1", "localhost")
    second_result = cli.register(second_url)
    assert second_result.returncode == 0, str(second_result)
    second = second_result.deployment_id
    assert first is not None and second is not None and first != second
    text = squeezed(second_result)
    assert "SERVICES THAT WILL BE UPDATED:" in text
    assert "- Misbehaving\nType: Service\nRevision: 1 -> 2" in text
    assert f"Old Deployment: {world.misbehaving.url} (at {first})" in text
    assert table_rows(second_result.stdout, "SERVICE") == [["Misbehaving", "2"]]

    # the first one no longer serves anything: drained, removable
    removed = squeezed(world.run("deployments", "remove", first, "--yes"))
    assert "Status: Drained" in removed
    assert f"Revision: 1 [Latest 2 is in deployment ID {second}]" in removed
    assert "[OK]: The deployment is fully drained and is safe to remove" in removed
    assert f"[OK]: Deployment {first} removed successfully" in removed
    shown = deployments_listed(world.run("deployments", "list"))
    assert first not in shown
    assert shown[second] == (second_url, {"Misbehaving": 2})
    gone = cli.run("deployments", "describe", first)
    assert gone.returncode != 0
    assert f"The requested deployment '{first}' does not exist" in gone.stderr

    # the second serves the latest revision: only removed with --force
    refused = cli.run("deployments", "remove", second, "--yes")
    assert refused.returncode != 0
    assert "Deployment is still Active" in refused.output
    assert "--force" in refused.output
    assert second in deployments_listed(world.run("deployments", "list"))
    forced = squeezed(world.run("deployments", "remove", second, "--yes", "--force"))
    assert f"[OK]: Deployment {second} removed successfully" in forced
    assert second not in deployments_listed(world.run("deployments", "list"))
