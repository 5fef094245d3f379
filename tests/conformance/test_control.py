"""Cancellation and control through the admin API, with Restate's status codes: cancel 202,
kill 200, purge 200, pause 202, resume 200; 404 for unknown invocations, 409 for a kill of a
completed one; retry-policy exhaustion pausing or killing as the manifest says."""

from __future__ import annotations

import threading

import pytest

from undying.testing import HttpResponse

from .conf_support import Conf, Sdk, unique

pytestmark = pytest.mark.conformance

LONG_MS = 60_000
KILLED = {"code": 409, "message": "killed", "source": "invocation"}
NOT_FOUND = {"code": 404, "message": "invocation not found", "source": "ingress"}


def cancelled(sdk: Sdk) -> dict[str, object]:
    """The SDK turns the cancel signal into a terminal error; its message is the SDK's."""
    message = "Cancelled" if sdk.name == "ts" else "cancelled"
    return {"code": 409, "message": message, "source": "invocation"}


def sleeping(conf: Conf, sdk: Sdk, ms: int = LONG_MS) -> str:
    """Send ``Sleeper.sleep(ms)`` and wait until the sleep is journaled."""
    invocation_id = conf.send(sdk, "Sleeper", "sleep", ms)
    conf.wait_journal_entry(invocation_id, "Command: Sleep")
    return invocation_id


def assert_empty(resp: HttpResponse, status: int) -> None:
    assert resp.status == status, str(resp)
    assert resp.body == b"", str(resp)


def test_cancel_during_a_sleep(conf: Conf, sdk: Sdk) -> None:
    invocation_id = sleeping(conf, sdk)
    assert_empty(conf.admin.invocation_command(invocation_id, "cancel"), 202)
    resp = conf.ingress.attach(invocation_id)
    assert resp.status == 409, str(resp)
    assert resp.json() == cancelled(sdk)
    assert resp.header("x-restate-id") == invocation_id
    row = conf.wait_status(invocation_id, {"completed"})
    assert row["completion_result"] == "failure"
    assert row["completion_failure"] == f"[409] {cancelled(sdk)['message']}"


def test_cancel_during_a_call_propagates_to_the_callee(conf: Conf, sdk: Sdk) -> None:
    parent = conf.send(sdk, "Caller", "call_sleep", LONG_MS)
    children: list[dict[str, object]] = []

    def child_sleeping() -> bool | None:
        children[:] = conf.children(parent)
        return True if children else None

    from undying.testing import poll_until

    poll_until(child_sleeping, timeout=20.0, what="the callee exists", interval=0.1)
    child = str(children[0]["id"])
    conf.wait_journal_entry(child, "Command: Sleep")
    assert_empty(conf.admin.invocation_command(parent, "cancel"), 202)
    for invocation_id in (parent, child):
        resp = conf.ingress.attach(invocation_id)
        assert resp.status == 409, f"{invocation_id}: {resp}"
        assert resp.json() == cancelled(sdk)


def test_kill_answers_every_waiter_with_409_killed(conf: Conf, sdk: Sdk) -> None:
    idem = unique("kill-waiter")
    invocation_id = conf.ingress.send(
        sdk.svc("Sleeper"), "sleep", LONG_MS, headers={"idempotency-key": idem}
    )
    conf.wait_journal_entry(invocation_id, "Command: Sleep")
    waiters: dict[str, HttpResponse] = {}
    threads = [
        threading.Thread(
            target=lambda: waiters.setdefault("attach", conf.ingress.attach(invocation_id))
        ),
        threading.Thread(
            target=lambda: waiters.setdefault(
                "call",
                conf.call(sdk, "Sleeper", "sleep", LONG_MS, headers={"idempotency-key": idem}),
            )
        ),
    ]
    for t in threads:
        t.start()
    try:
        # both waiters are attached once the blocking call has been accepted; neither can
        # announce it, so wait until the in-flight invocation is still the one being waited on
        conf.wait_status(invocation_id, {"running", "suspended"})
        assert_empty(conf.admin.invocation_command(invocation_id, "kill"), 200)
    finally:
        for t in threads:
            t.join(30)
    for name, resp in waiters.items():
        assert resp.status == 409, f"{name}: {resp}"
        assert resp.json() == KILLED, name
        assert resp.header("x-restate-error-source") == "invocation"
    output = conf.ingress.output(invocation_id)
    assert output.status == 409, str(output)
    assert output.json() == KILLED
    row = conf.invocation(invocation_id)
    assert row is not None and row["completion_failure"] == "[409] killed"


def test_kill_of_a_completed_invocation_is_409(conf: Conf, sdk: Sdk) -> None:
    resp = conf.call(sdk, "Echo", "hello")
    invocation_id = resp.header("x-restate-id")
    assert invocation_id is not None
    killed = conf.admin.invocation_command(invocation_id, "kill")
    assert killed.status == 409, str(killed)
    assert killed.json() == {
        "message": f"The invocation '{invocation_id}' was already completed.",
        "restate_code": None,
    }


def test_pause_of_a_completed_invocation_is_409(conf: Conf, sdk: Sdk) -> None:
    resp = conf.call(sdk, "Echo", "hello")
    invocation_id = resp.header("x-restate-id")
    assert invocation_id is not None
    paused = conf.admin.invocation_command(invocation_id, "pause")
    assert paused.status == 409, str(paused)
    assert invocation_id in paused.json()["message"], paused.json()
    row = conf.invocation(invocation_id)
    assert row is not None and row["status"] == "completed"


def test_purge_then_output_is_404(conf: Conf, sdk: Sdk) -> None:
    resp = conf.call(sdk, "Echo", "hello")
    invocation_id = resp.header("x-restate-id")
    assert invocation_id is not None
    assert conf.ingress.output(invocation_id).status == 200
    assert_empty(conf.admin.invocation_command(invocation_id, "purge"), 200)
    output = conf.ingress.output(invocation_id)
    assert output.status == 404, str(output)
    assert output.json() == NOT_FOUND
    assert conf.invocation(invocation_id) is None
    # every command on an invocation that no longer exists is 404
    for command in ("cancel", "kill", "purge", "pause", "resume"):
        again = conf.admin.invocation_command(invocation_id, command)
        assert again.status == 404, f"{command}: {again}"
        assert again.json() == {
            "message": f"The requested invocation '{invocation_id}' does not exist",
            "restate_code": None,
        }


def test_pause_then_resume(conf: Conf, sdk: Sdk) -> None:
    invocation_id = sleeping(conf, sdk, 1500)
    assert_empty(conf.admin.invocation_command(invocation_id, "pause"), 202)
    conf.wait_status(invocation_id, {"paused"})
    assert_empty(conf.admin.invocation_command(invocation_id, "resume"), 200)
    resp = conf.ingress.attach(invocation_id)
    assert resp.status == 200, str(resp)
    assert resp.json() == 1500


def test_retry_exhaustion_pauses(conf: Conf, sdk: Sdk) -> None:
    """``exhaust_pause``: retry policy of 2 attempts, then pause (manifest v4 retry fields)."""
    handler = conf.admin.service(sdk.svc("Failing"))
    policy = next(h for h in handler["handlers"] if h["name"] == "exhaust_pause")["retry_policy"]
    assert policy["max_attempts"] == 2
    assert policy["on_max_attempts"] == "Pause"
    tag = unique("pause")
    invocation_id = conf.send(sdk, "Failing", "exhaust_pause", tag)
    conf.wait_status(invocation_id, {"paused"})
    assert conf.ok(sdk, "Failing", "attempts", tag) == 2
    assert conf.ok(sdk, "Failing", "heal", tag) is None
    assert_empty(conf.admin.invocation_command(invocation_id, "resume"), 200)
    resp = conf.ingress.attach(invocation_id)
    assert resp.status == 200, str(resp)
    assert resp.json() == 3


def test_retry_exhaustion_kills(conf: Conf, sdk: Sdk) -> None:
    """``exhaust_kill``: 2 attempts, then the invocation fails with the last attempt's error."""
    tag = unique("kill")
    invocation_id = conf.send(sdk, "Failing", "exhaust_kill", tag)
    resp = conf.ingress.attach(invocation_id)
    assert resp.status == 500, str(resp)
    body = resp.json()
    assert (body["code"], body["source"]) == (500, "invocation"), body
    # the message is the SDK's rendering of the exception (``RuntimeError('…')`` in Python, the
    # bare message in TS, ``RuntimeError: …`` in undying); what counts is that it is the last
    # attempt's error, in the live answer and in the stored result alike
    error = f"[SIMULATED] {tag} attempt 2"
    message = body["message"]
    assert error in message, body
    assert error in body["stacktrace"]
    assert conf.ok(sdk, "Failing", "attempts", tag) == 2
    row = conf.wait_status(invocation_id, {"completed"})
    assert row["completion_result"] == "failure"
    assert row["completion_failure"] == f"[500] {message}"
