"""``undying invocations cancel|kill|purge|pause|resume`` against a scripted admin API."""

from __future__ import annotations

import json

import pytest

from .conftest import Run
from .fake_admin import FakeAdmin, Reply

A = "inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
B = "inv_1bbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
DONE = "inv_1cccccccccccccccccccccccccccccc"
MISSING = "inv_1dddddddddddddddddddddddddddddd"


@pytest.fixture
def world(fake: FakeAdmin) -> FakeAdmin:
    fake.on_query(
        "SELECT id, target, status FROM sys_invocation WHERE id IN",
        [
            {"id": A, "target": "Long/go", "status": "suspended"},
            {"id": B, "target": "Counter/k/add", "status": "backing-off"},
            {"id": DONE, "target": "Greeter/greet", "status": "completed"},
        ],
    )
    for inv in (A, B):
        for action in ("cancel", "kill", "pause", "resume", "purge"):
            fake.on("PATCH", f"/invocations/{inv}/{action}", Reply(202))
    fake.on(
        "PATCH",
        f"/invocations/{DONE}/kill",
        Reply(409, {"message": f"The invocation '{DONE}' was already completed."}),
    )
    return fake


def _patched(fake: FakeAdmin) -> list[str]:
    return [r.path for r in fake.sent("PATCH")]


def test_asks_first_and_does_nothing_on_no(run: Run, world: FakeAdmin) -> None:
    result = run("invocations", "cancel", A, B, input="n\n")
    assert result.exit_code == 1
    assert A in result.stderr and B in result.stderr and "Long/go" in result.stderr
    assert "Cancel 2 invocations? [y/N]" in result.stderr and "Aborted" in result.stderr
    assert _patched(world) == []


def test_on_yes_sends_one_patch_per_invocation(run: Run, world: FakeAdmin) -> None:
    result = run("invocations", "cancel", A, B, input="y\n")
    assert result.exit_code == 0, result.output
    assert _patched(world) == [f"/v4/invocations/{A}/cancel", f"/v4/invocations/{B}/cancel"]
    assert f"✓ {A}  Long/go  cancelled" in result.stdout
    assert f"✓ {B}  Counter/k/add  cancelled" in result.stdout
    assert "Cancelled 2 invocations." in result.stderr


@pytest.mark.parametrize(
    ("action", "past"),
    [("kill", "killed"), ("pause", "paused"), ("resume", "resumed"), ("purge", "purged")],
)
def test_yes_skips_the_question(run: Run, world: FakeAdmin, action: str, past: str) -> None:
    result = run("invocations", action, A, "--yes")
    assert result.exit_code == 0, result.output
    assert "?" not in result.stderr
    assert _patched(world) == [f"/v4/invocations/{A}/{action}"]
    assert f"✓ {A}  Long/go  {past}" in result.stdout


def test_failures_carry_the_servers_message_and_exit_1(run: Run, world: FakeAdmin) -> None:
    result = run("invocations", "kill", A, DONE, MISSING, "-y")
    assert result.exit_code == 1
    assert f"✓ {A}  Long/go  killed" in result.stdout
    assert (
        f"✗ {DONE}  Greeter/greet  The invocation '{DONE}' was already completed. (HTTP 409)"
        in result.stdout
    )
    assert f"✗ {MISSING}  no such invocation" in result.stdout
    assert "Killed 1 of 3 invocations; 2 failed." in result.stderr
    assert _patched(world) == [f"/v4/invocations/{A}/kill", f"/v4/invocations/{DONE}/kill"]


def test_json_output(run: Run, world: FakeAdmin) -> None:
    result = run("invocations", "kill", A, DONE, "-y", "-o", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {"id": A, "target": "Long/go", "ok": True, "http_status": 202, "message": None},
        {
            "id": DONE,
            "target": "Greeter/greet",
            "ok": False,
            "http_status": 409,
            "message": f"The invocation '{DONE}' was already completed. (HTTP 409)",
        },
    ]


def test_a_target_stands_for_its_invocations_in_a_status_the_action_applies_to(
    run: Run, world: FakeAdmin
) -> None:
    world.queries.insert(
        0,
        (
            "target_service_name = 'Long' AND target_handler_name = 'go'",
            [
                {"id": A, "target": "Long/go", "status": "suspended"},
                {"id": B, "target": "Long/go", "status": "running"},
            ],
        ),
    )
    world.on("PATCH", f"/invocations/{B}/pause", Reply(202))
    result = run("invocations", "pause", "Long/go", "-y")
    assert result.exit_code == 0, result.output
    assert _patched(world) == [f"/v4/invocations/{B}/pause"]  # a suspended one does not pause
    lookup = world.sql()[0]
    assert "status != 'completed'" in lookup and lookup.endswith("LIMIT 10000")


def test_a_target_without_invocations(run: Run, world: FakeAdmin) -> None:
    world.queries.insert(0, ("target_service_name = 'Nobody'", []))
    result = run("invocations", "cancel", "Nobody", "-y")
    assert result.exit_code == 0
    assert "No invocations of Nobody to cancel." in result.stderr
    assert _patched(world) == []


def test_purge_by_target_looks_among_completed_invocations(run: Run, world: FakeAdmin) -> None:
    world.queries.insert(0, ("target = 'Counter/k/add'", []))
    run("invocations", "purge", "Counter/k/add", "-y")
    assert "status != 'completed'" not in world.sql()[0]


def test_many_invocations_show_a_progress_bar(run: Run, fake: FakeAdmin) -> None:
    ids = [f"inv_1{str(i) * 30}"[:34] for i in range(1, 8)]
    fake.on_query("WHERE id IN", [{"id": i, "target": "Long/go", "status": "running"} for i in ids])
    for inv in ids:
        fake.on("PATCH", f"/invocations/{inv}/cancel", Reply(202))
    result = run("invocations", "cancel", *ids, "-y", FORCE_COLOR="1", NO_COLOR=None)
    assert result.exit_code == 0, result.output
    assert "Cancelling invocations" in result.stderr and "7/7" in result.stderr
    assert len(fake.sent("PATCH")) == 7


def test_few_invocations_show_no_progress_bar(run: Run, world: FakeAdmin) -> None:
    result = run("invocations", "cancel", A, B, "-y", FORCE_COLOR="1", NO_COLOR=None)
    assert "Cancelling invocations" not in result.stderr


def test_bad_ids_are_refused_before_anything_is_sent(run: Run, world: FakeAdmin) -> None:
    result = run("invocations", "kill", A, "inv_'; DROP", "-y")
    assert result.exit_code == 2
    assert world.requests == []
