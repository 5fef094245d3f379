"""Workflows: run once per id, shared handlers alongside, durable promises, workflow attach and
output over ingress, completion retention."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from undying.testing import HttpResponse, poll_until
from undying.testing.waiting import pause_until

from .conf_support import Conf, Sdk, unique

pytestmark = pytest.mark.conformance

ALREADY_INVOKED = {
    "code": 409,
    "message": "the workflow method was already invoked",
    "source": "invocation",
}
#: Completion retention of ``ShortWf`` (seconds).
RETENTION = 2.0
NOT_READY = {
    "code": 470,
    "message": "the invocation exists but has not completed yet",
    "source": "ingress",
}


def wf_path(sdk: Sdk, wf_id: str, what: str, service: str = "Wf") -> str:
    return f"/restate/workflow/{sdk.svc(service)}/{wf_id}/{what}"


def wait_waiting(conf: Conf, sdk: Sdk, wf_id: str) -> None:
    poll_until(
        lambda: True if conf.ok(sdk, "Wf", "status", key=wf_id) == "waiting" else None,
        timeout=20.0,
        what=f"workflow {wf_id} is waiting",
        interval=0.1,
    )


def test_run_once_per_workflow_id(conf: Conf, sdk: Sdk) -> None:
    wf_id = unique("once")
    first = conf.ingress.send_response(sdk.svc("Wf"), "run", {"order": 42}, key=wf_id)
    assert first.status == 202, str(first)
    body = first.json()
    assert body["status"] == "Accepted"
    run_id = body["invocationId"]
    assert first.header("x-restate-id") == run_id

    again = conf.ingress.send_response(sdk.svc("Wf"), "run", {"order": 7}, key=wf_id)
    assert again.status == 202, str(again)
    assert again.json() == {"invocationId": run_id, "status": "PreviouslyAccepted"}

    assert conf.ok(sdk, "Wf", "signal", "yes", key=wf_id) == "resolved"
    done = conf.ingress.request("GET", wf_path(sdk, wf_id, "attach"))
    assert done.status == 200, str(done)
    assert done.json() == {"input": {"order": 42}, "approved_with": "yes"}
    assert done.header("x-restate-id") == run_id

    late = conf.call(sdk, "Wf", "run", {"order": 9}, key=wf_id)
    assert late.status == 409, str(late)
    assert late.json() == ALREADY_INVOKED
    assert late.header("x-restate-id") == run_id
    assert late.header("x-restate-error-source") == "invocation"


def test_shared_handlers_alongside_the_run(conf: Conf, sdk: Sdk) -> None:
    wf_id = unique("shared")
    run_id = conf.send(sdk, "Wf", "run", {"n": 1}, key=wf_id)
    wait_waiting(conf, sdk, wf_id)
    assert conf.ok(sdk, "Wf", "peek", key=wf_id) is None
    status = conf.call(sdk, "Wf", "status", key=wf_id)
    assert status.header("x-restate-id") not in (None, run_id)  # a new invocation

    output = conf.ingress.request("GET", wf_path(sdk, wf_id, "output"))
    assert output.status == 470, str(output)
    assert output.json() == NOT_READY

    assert conf.ok(sdk, "Wf", "signal", {"ok": True}, key=wf_id) == "resolved"
    result = conf.ingress.attach(run_id)
    assert result.status == 200, str(result)
    assert result.json() == {"input": {"n": 1}, "approved_with": {"ok": True}}
    assert conf.ok(sdk, "Wf", "status", key=wf_id) == "done"
    assert conf.ok(sdk, "Wf", "peek", key=wf_id) == {"ok": True}

    output = conf.ingress.request("GET", wf_path(sdk, wf_id, "output"))
    assert output.status == 200, str(output)
    assert output.json() == {"input": {"n": 1}, "approved_with": {"ok": True}}
    assert output.header("x-restate-id") == run_id


def test_promise_resolved_before_the_run_starts(conf: Conf, sdk: Sdk) -> None:
    wf_id = unique("early")
    assert conf.ok(sdk, "Wf", "signal", "early-bird", key=wf_id) == "resolved"
    assert conf.ok(sdk, "Wf", "peek", key=wf_id) == "early-bird"
    resp = conf.call(sdk, "Wf", "run", "go", key=wf_id)
    assert resp.status == 200, str(resp)
    assert resp.json() == {"input": "go", "approved_with": "early-bird"}


def test_blocking_run_returns_after_the_signal(conf: Conf, sdk: Sdk) -> None:
    wf_id = unique("blocking")
    got: dict[str, HttpResponse] = {}
    runner = threading.Thread(
        target=lambda: got.setdefault("run", conf.call(sdk, "Wf", "run", {"order": 1}, key=wf_id))
    )
    runner.start()
    try:
        wait_waiting(conf, sdk, wf_id)
        attached: dict[str, HttpResponse] = {}
        attacher = threading.Thread(
            target=lambda: attached.setdefault(
                "r", conf.ingress.request("GET", wf_path(sdk, wf_id, "attach"))
            )
        )
        attacher.start()
        assert conf.ok(sdk, "Wf", "signal", "sync-ok", key=wf_id) == "resolved"
        attacher.join(30)
    finally:
        runner.join(30)
    expected = {"input": {"order": 1}, "approved_with": "sync-ok"}
    assert got["run"].status == 200, str(got["run"])
    assert got["run"].json() == expected
    assert attached["r"].status == 200, str(attached["r"])
    assert attached["r"].json() == expected


def test_promise_completed_twice_is_409(conf: Conf, sdk: Sdk) -> None:
    wf_id = unique("twice")
    assert conf.ok(sdk, "Wf", "signal", 1, key=wf_id) == "resolved"
    again = conf.call(sdk, "Wf", "signal", 2, key=wf_id)
    assert again.status == 409, str(again)
    assert again.json() == {
        "code": 409,
        "message": "promise was already completed",
        "source": "invocation",
    }
    assert conf.ok(sdk, "Wf", "peek", key=wf_id) == 1


def test_rejected_promise_fails_the_run(conf: Conf, sdk: Sdk) -> None:
    wf_id = unique("reject")
    run_id = conf.send(sdk, "Wf", "run", "x", key=wf_id)
    wait_waiting(conf, sdk, wf_id)
    assert conf.ok(sdk, "Wf", "reject", "not approved", key=wf_id) == "rejected"
    resp = conf.ingress.attach(run_id)
    assert resp.status == 500, str(resp)
    assert resp.json() == {"code": 500, "message": "not approved", "source": "invocation"}
    assert resp.header("x-restate-error-source") == "invocation"
    output = conf.ingress.request("GET", wf_path(sdk, wf_id, "output"))
    assert output.status == 500, str(output)
    assert output.json() == resp.json()
    row = conf.invocation(run_id)
    assert row is not None
    assert row["completion_result"] == "failure"
    assert row["completion_failure"] == "[500] not approved"


def test_unknown_workflow_output_is_404(conf: Conf, sdk: Sdk) -> None:
    resp = conf.ingress.request("GET", wf_path(sdk, unique("never"), "output"))
    assert resp.status == 404, str(resp)
    assert resp.json() == {"code": 404, "message": "invocation not found", "source": "ingress"}


def test_workflow_completion_retention(conf: Conf, sdk: Sdk) -> None:
    """``ShortWf`` keeps its result 2 s (manifest ``workflowCompletionRetention``)."""
    svc = sdk.svc("ShortWf")
    assert conf.admin.service(svc)["workflow_completion_retention"] == "2s"
    wf_id = unique("short")
    first = conf.ingress.call(svc, "run", 1, key=wf_id)
    assert first.status == 200, str(first)
    assert first.json() == {"done": 1}
    output = conf.ingress.request("GET", wf_path(sdk, wf_id, "output", "ShortWf"))
    assert output.status == 200, str(output)
    assert output.header("idempotency-expires") is not None
    again = conf.ingress.call(svc, "run", 2, key=wf_id)
    assert again.status == 409, str(again)

    # Deliberate wait: the retention must run out (nothing to observe before it does).
    pause_until(time.time() + RETENTION)

    def expired() -> Any:
        resp = conf.ingress.request("GET", wf_path(sdk, wf_id, "output", "ShortWf"))
        return resp if resp.status == 404 else None

    poll_until(expired, timeout=10.0, what="workflow output is gone after its retention")
    rerun = conf.ingress.call(svc, "run", 3, key=wf_id)
    assert rerun.status == 200, str(rerun)
    assert rerun.json() == {"done": 3}
