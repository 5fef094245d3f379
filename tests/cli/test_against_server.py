"""The undying CLI against a running server (``--target restate``: the reference
restate-server) with real invocations: completed, failing and retried, paused, sleeping,
calling each other, with state. Each test checks what the CLI prints."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from undying.cli.admin_client import AdminClient
from undying.errors import AdminRequestFailed
from undying.testing import IngressClient, Server, ServiceProcess, create_server, python_service
from undying.testing.waiting import poll_until

from .conftest import invoke

APP = Path(__file__).with_name("cli_app.py")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WAIT = 30.0


@dataclass
class World:
    server: Server
    app: ServiceProcess
    registration: Result
    tmp: Path

    @property
    def ingress(self) -> IngressClient:
        return self.server.ingress

    def cli(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        return invoke(self.server.admin_url, *args, input=input, **env)

    def ok(self, *args: str, **env: str | None) -> Result:
        result = self.cli(*args, **env)
        assert result.exit_code == 0, f"undying {' '.join(args)}:\n{result.output}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--output", "json").stdout)

    def invocation(self, invocation_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.json("invocations", "describe", invocation_id)["invocation"]
        return found

    def wait_for(self, invocation_id: str, what: str, check: Any) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            inv = self.invocation(invocation_id)
            return inv if check(inv) else None

        found: dict[str, Any] = poll_until(
            ready,
            timeout=WAIT,
            what=f"{invocation_id} {what}",
            interval=0.1,
            describe=lambda: str(self.invocation(invocation_id)),
        )
        return found


@pytest.fixture(scope="module")
def world(target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"cli-{target}")
    server = create_server(target, tmp / "data", log_dir=tmp / "logs")
    app = python_service(APP, log_dir=tmp / "logs", name="cli_app")
    try:
        server.start()
        _wait_for_sql(server)
        app.start()
        registration = invoke(server.admin_url, "deployments", "register", app.url, "--yes")
        assert registration.exit_code == 0, registration.output
        yield World(server, app, registration, tmp)
    finally:
        try:
            app.stop()
        finally:
            server.stop()


def _wait_for_sql(server: Server) -> None:
    """restate-server answers /health before its partitions serve SQL ("partition 0 doesn't
    exist on this node" for a moment); wait until a query over every partition works."""

    def answers() -> bool | None:
        with AdminClient(server.admin_url) as admin:
            try:
                admin.query("SELECT COUNT(1) AS n FROM sys_invocation")
            except AdminRequestFailed:
                return None
        return True

    poll_until(answers, timeout=WAIT, what="the server answers SQL", interval=0.1)


def _line(output: str, *parts: str) -> str:
    """The one line of ``output`` that has every part."""
    found = [line for line in output.splitlines() if all(p in line for p in parts)]
    assert len(found) == 1, f"{parts} in:\n{output}"
    return found[0]


def _call(world: World, service: str, handler: str, payload: Any, **kw: Any) -> str:
    resp = world.ingress.call(service, handler, payload, **kw)
    assert resp.status == 200, str(resp)
    invocation_id = resp.header("x-restate-id")
    assert invocation_id is not None
    return invocation_id


# ---- deployments, services, whoami ---------------------------------------------------------


def test_register_list_and_describe_the_deployment(world: World) -> None:
    printed = world.registration.stdout
    dp = printed.split("Registered deployment ")[1].split()[0]
    for name in ("Greeter", "Flaky", "Sleeper", "Caller", "Counter"):
        assert name in _line(printed, name, "1")
    listed = world.ok("deployments", "list").stdout
    assert world.app.url in _line(listed, dp, "active")
    described = world.ok("deployments", "describe", dp).stdout
    assert world.app.url in described and "Counter  (VirtualObject, revision 1)" in described
    again = world.ok("deployments", "register", world.app.url, "-y")
    assert f"already exists with id {dp}" in again.stderr

    services = world.ok("services", "list").stdout
    assert dp in _line(services, "Counter", "VirtualObject")
    assert "add, get" in _line(services, "Counter") or "get, add" in _line(services, "Counter")
    limited = _line(world.ok("services", "describe", "Flaky").stdout, "limited")
    assert "none" in limited
    assert [s["name"] for s in world.json("services", "list")] == sorted(
        ["Greeter", "Flaky", "Sleeper", "Caller", "Counter"]
    )


def test_whoami(world: World) -> None:
    out = world.ok("whoami").stdout
    assert world.server.admin_url in out and "healthy" in out
    assert world.json("whoami")["ingress_url"].rstrip("/") == world.server.ingress_url


# ---- invocations --------------------------------------------------------------------------


def test_a_completed_invocation(world: World) -> None:
    inv = _call(world, "Greeter", "greet", {"name": "Bob"})
    assert inv not in world.ok("invocations", "list").stdout  # completed: hidden by default
    assert "completed" in _line(world.ok("invocations", "list", "--all").stdout, inv)
    out = world.ok("invocations", "describe", inv).stdout
    assert "completed with success" in out
    timeline = [
        "#0",
        "Command: Input",
        "Command: Run [Notification]",
        "Command: Run [Reminder]",
        "Command: Output",
        "└── completed with success",
    ]
    positions = [out.index(part) for part in timeline]
    assert positions == sorted(positions), out


def test_an_invocation_that_failed_twice_then_succeeded(world: World) -> None:
    inv = _call(world, "Greeter", "greet", {"name": "Alice", "failures": 2})
    out = world.ok("invocations", "describe", inv).stdout
    reminder = out.index("Command: Run [Reminder]")
    first = out.index("attempt failed: RuntimeError")
    assert "[SIMULATED] reminder for Alice failed (attempt 1)" in out
    assert "[SIMULATED] reminder for Alice failed (attempt 2)" in out
    assert reminder < first < out.index("Command: Output")
    assert "completed with success" in out
    events = world.json("invocations", "describe", inv)["events"]
    assert [e["event_type"] for e in events] == ["TransientError", "TransientError"]


def test_a_failing_invocation_backing_off_then_killed(world: World) -> None:
    inv = world.ingress.send("Flaky", "always")
    world.wait_for(inv, "has retried", lambda i: (i.get("retry_count") or 0) >= 3)

    def listed_backing_off() -> str | None:
        out = world.ok("invocations", "list").stdout
        return out if "backing-off" in _line(out, inv) else None

    listing = poll_until(listed_backing_off, timeout=WAIT, what="listed as backing-off")
    row = _line(listing, inv)
    assert "Flaky/always" in row and "[SIMULATED] payment gateway unavailable" in row

    out = world.ok("invocations", "describe", inv).stdout
    assert "Last failure (RT0007) in command index 1, Run [Charge]:" in out
    assert "Traceback (most recent call last):" in out
    assert 'raise RuntimeError("[SIMULATED] payment gateway unavailable")' in out
    assert "Command: Run [Charge]" in out and "attempt failed:" in out
    detail = world.invocation(inv)
    assert detail["retry_count"] >= 3 and "Traceback" in detail["last_failure"]

    status = world.ok("services", "status", "Flaky").stdout
    assert inv in _line(status, "always", "backing-off") or inv in _line(
        status, "always", "running"
    )

    killed = world.ok("invocations", "kill", inv, "--yes")
    assert f"✓ {inv}  Flaky/always  killed" in killed.stdout
    done = world.wait_for(inv, "is completed", lambda i: i["status"] == "completed")
    assert done["completion_failure"] == "[409] killed"
    row = _line(world.ok("invocations", "list", "--all").stdout, inv)
    assert "completed (failed)" in row and "[409] killed" in row
    assert "completed with failure: [409] killed" in world.ok("invocations", "describe", inv).stdout


def test_pause_and_resume(world: World) -> None:
    inv = world.ingress.send("Flaky", "limited")  # 2 attempts, then paused
    world.wait_for(inv, "is paused", lambda i: i["status"] == "paused")
    paused = world.ok("invocations", "list", "--status", "paused").stdout
    assert "Flaky/limited" in _line(paused, inv)
    assert "paused" in world.ok("invocations", "describe", inv).stdout

    resumed = world.ok("invocations", "resume", inv, "-y")
    assert f"✓ {inv}  Flaky/limited  resumed" in resumed.stdout
    world.wait_for(inv, "was retried", lambda i: i["status"] != "paused")
    world.wait_for(inv, "is paused again", lambda i: i["status"] == "paused")
    assert "Killed 1 invocation." in world.ok("invocations", "kill", inv, "-y").stderr


def test_a_sleeping_invocation_cancelled_then_purged(world: World) -> None:
    inv = world.ingress.send("Sleeper", "nap", 3600)

    def sleeping() -> dict[str, Any] | None:
        journal = world.json("invocations", "describe", inv)["journal"]
        sleeps = [e for e in journal if e["entry_type"] == "Command: Sleep"]
        return sleeps[0] if sleeps else None

    sleep = poll_until(sleeping, timeout=WAIT, what="the sleep is journaled")
    wake = sleep["sleep_wakeup_at"].replace("T", " ").rstrip("Z")
    out = world.ok("invocations", "describe", inv).stdout
    assert f"Command: Sleep until {wake} UTC (in 59m" in out

    cancelled = world.ok("invocations", "cancel", inv, "--yes")
    assert f"✓ {inv}  Sleeper/nap  cancelled" in cancelled.stdout
    done = world.wait_for(inv, "is completed", lambda i: i["status"] == "completed")
    assert done["completion_failure"] == "[409] cancelled"
    assert (
        "completed with failure: [409] cancelled" in world.ok("invocations", "describe", inv).stdout
    )

    assert f"✓ {inv}  Sleeper/nap  purged" in world.ok("invocations", "purge", inv, "-y").stdout
    gone = world.cli("invocations", "describe", inv)
    assert gone.exit_code == 1 and f"no invocation {inv}" in gone.stderr


def test_calls_show_the_callee_and_the_caller(world: World) -> None:
    caller = _call(world, "Caller", "call", "Carol")
    journal = world.json("invocations", "describe", caller)["journal"]
    [call] = [e for e in journal if e["entry_type"] == "Command: Call"]
    callee = call["invoked_id"]
    assert callee.startswith("inv_") and call["invoked_target"] == "Greeter/greet"
    assert (
        f"Command: Call ─▶ Greeter/greet {callee}"
        in world.ok("invocations", "describe", caller).stdout
    )
    out = world.ok("invocations", "describe", callee).stdout
    assert f"Caller/call {caller}" in out
    assert f"Caller/call ({caller}) ─▶ Greeter/greet  {callee}" in out


def test_many_invocations_by_target_with_a_progress_bar(world: World) -> None:
    ids = [world.ingress.send("Sleeper", "nap", 3600) for _ in range(6)]
    for inv in ids:
        world.wait_for(inv, "is running", lambda i: i["status"] != "pending")
    result = world.ok("invocations", "cancel", "Sleeper/nap", "-y", FORCE_COLOR="1", NO_COLOR=None)
    assert "Cancelling invocations" in result.stderr and "6/6" in result.stderr
    printed = ANSI.sub("", result.stdout)  # FORCE_COLOR colours stdout too
    for inv in ids:
        assert f"✓ {inv}  Sleeper/nap  cancelled" in printed
    for inv in ids:
        world.wait_for(inv, "is cancelled", lambda i: i["status"] == "completed")


def test_an_action_the_server_refuses(world: World) -> None:
    inv = _call(world, "Greeter", "greet", {"name": "Dan"})
    result = world.cli("invocations", "kill", inv, "-y")
    assert result.exit_code == 1
    assert inv in _line(result.stdout, "✗", inv)
    assert "(HTTP 409)" in result.stdout


# ---- state and SQL ------------------------------------------------------------------------


def test_state_get_patch_clear(world: World) -> None:
    assert _call(world, "Counter", "add", 5, key="alice")
    assert _line(world.ok("state", "get", "Counter", "alice").stdout, "count").split() == [
        "count",
        "5",
    ]
    patch = '[{"op": "replace", "path": "/count", "value": 41}]'
    world.ok("state", "patch", "Counter", "alice", "--patch", patch, "-y")
    assert world.json("state", "get", "Counter", "alice")["state"] == {"count": 41}
    assert world.ingress.call("Counter", "get", key="alice").json() == 41
    assert world.ingress.call("Counter", "add", 1, key="alice").json() == 42

    cleared = world.ok("state", "clear", "Counter", "alice", "-y")
    assert "Cleared the state of Counter/alice." in cleared.stderr
    assert "Counter/alice has no state." in world.ok("state", "get", "Counter", "alice").stderr
    assert world.ingress.call("Counter", "get", key="alice").json() == 0


def test_sql(world: World) -> None:
    inv = _call(world, "Greeter", "greet", {"name": "Erin"})
    query = f"SELECT id, status, target, last_failure FROM sys_invocation WHERE id = '{inv}'"
    out = world.ok("sql", query)
    assert _line(out.stdout, inv).split() == [inv, "completed", "Greeter/greet", "NULL"]
    assert "1 row. Query took" in out.stderr
    assert world.json("sql", query) == [
        {"id": inv, "status": "completed", "target": "Greeter/greet", "last_failure": None}
    ]
    bad = world.cli("sql", "SELEC 1")
    assert bad.exit_code == 1 and "ParserError" in bad.stderr


def test_the_installed_entry_point(world: World) -> None:
    inv = _call(world, "Greeter", "greet", {"name": "Fay"})
    out = subprocess.run(
        [sys.executable, "-m", "undying", "invocations", "describe", inv],
        capture_output=True,
        text=True,
        timeout=60,
        env={"UNDYING_ADMIN_URL": world.server.admin_url, "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert inv in out.stdout and "Command: Run [Reminder]" in out.stdout


# ---- last: a second deployment supersedes the first, which is then removed -------------------


def test_remove_a_superseded_deployment(world: World) -> None:
    first = world.json("deployments", "list")
    [old] = [d["id"] for d in first]
    second = python_service(APP, log_dir=world.tmp / "logs", name="cli_app_2").start()
    try:
        registered = world.ok("deployments", "register", second.url, "-y").stdout
        new = registered.split("Registered deployment ")[1].split()[0]
        statuses = {d["id"]: d["status"] for d in world.json("deployments", "list")}
        assert statuses[new] == "active" and statuses[old] in ("draining", "drained")
        refused = world.cli("deployments", "remove", new, "-y")
        assert refused.exit_code == 1 and "--force" in refused.stderr
        removed = world.ok("deployments", "remove", old, "-y")
        assert f"Removed deployment {old}" in removed.stdout
        assert [d["id"] for d in world.json("deployments", "list")] == [new]
        assert _call(world, "Greeter", "greet", {"name": "Gil"})
    finally:
        second.stop()
