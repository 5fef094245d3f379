"""Service-to-service: request/response calls, one-way and delayed sends, calls to objects and
workflows, attach from a handler, invocation-id notifications, headers and idempotency keys."""

from __future__ import annotations

import threading
import time

import pytest

from undying.testing import HttpResponse, poll_until

from .conf_support import TS, UD, Conf, Sdk, unique

pytestmark = pytest.mark.conformance


def test_call_to_an_object(conf: Conf, sdk: Sdk) -> None:
    key = unique("call")
    resp = conf.call(sdk, "Caller", "call_add", {"key": key, "delta": 4})
    assert resp.status == 200, str(resp)
    assert resp.json() == 4
    assert conf.ok(sdk, "Caller", "call_add", {"key": key, "delta": 6}) == 10
    assert conf.ok(sdk, "Counter", "get", key=key) == 10
    parent = resp.header("x-restate-id")
    assert parent is not None
    children = conf.children(parent)
    assert [c["target"] for c in children] == [f"{sdk.svc('Counter')}/{key}/add"]
    assert children[0]["status"] == "completed"


def test_one_way_send_returns_the_invocation_id(conf: Conf, sdk: Sdk) -> None:
    key = unique("send")
    child = conf.ok(sdk, "Caller", "send_add", {"key": key, "delta": 3})
    assert isinstance(child, str) and child.startswith("inv_"), child
    resp = conf.ingress.attach(child)
    assert resp.status == 200, str(resp)
    assert resp.json() == 3
    row = conf.invocation(child)
    assert row is not None
    assert row["target"] == f"{sdk.svc('Counter')}/{key}/add"
    assert row["invoked_by"] == "service"


def test_delayed_send(conf: Conf, sdk: Sdk) -> None:
    key = unique("delayed")
    delay = 1.5
    sent_at = time.time()
    child = conf.ok(sdk, "Caller", "send_add", {"key": key, "delta": 1, "delay_ms": 1500})
    assert time.time() - sent_at < delay, "the send itself must not wait for the delay"
    assert conf.status(child) == "scheduled"
    assert conf.ok(sdk, "Counter", "get", key=key) == 0
    resp = conf.ingress.attach(child)
    assert resp.status == 200, str(resp)
    assert resp.json() == 1
    assert time.time() - sent_at >= delay - 0.05
    assert conf.ok(sdk, "Counter", "get", key=key) == 1


def test_call_to_a_workflow(conf: Conf, sdk: Sdk) -> None:
    wf_id = unique("called-wf")
    got: dict[str, HttpResponse] = {}

    def call() -> None:
        got["r"] = conf.call(sdk, "Caller", "call_wf", {"key": wf_id, "input": {"via": "call"}})

    caller = threading.Thread(target=call)
    caller.start()
    try:
        poll_until(
            lambda: True if conf.ok(sdk, "Wf", "status", key=wf_id) == "waiting" else None,
            timeout=20.0,
            what="called workflow is waiting",
            interval=0.1,
        )
        assert conf.ok(sdk, "Wf", "signal", "from-test", key=wf_id) == "resolved"
    finally:
        caller.join(30)
    assert got["r"].status == 200, str(got["r"])
    assert got["r"].json() == {"input": {"via": "call"}, "approved_with": "from-test"}


def test_headers_reach_the_handler(conf: Conf, sdk: Sdk) -> None:
    direct = conf.ok(sdk, "Echo", "headers", headers={"x-test-direct": "yes"})
    assert direct == {"x-test-direct": "yes"}
    via_call = conf.ok(sdk, "Caller", "call_headers", {"x-test-a": "1", "x-test-b": "two"})
    assert via_call == {"x-test-a": "1", "x-test-b": "two"}


def test_idempotency_key_on_a_call(conf: Conf, sdk: Sdk) -> None:
    key = unique("idem-call")
    payload = {"key": key, "delta": 5, "idem": unique("K")}
    assert conf.ok(sdk, "Caller", "call_add", payload) == 5
    assert conf.ok(sdk, "Caller", "call_add", payload) == 5
    assert conf.ok(sdk, "Caller", "call_add", {**payload, "delta": 100}) == 5
    assert conf.ok(sdk, "Counter", "get", key=key) == 5
    assert conf.ok(sdk, "Caller", "call_add", {**payload, "idem": unique("K2")}) == 10


def test_attach_from_a_handler(conf: Conf, sdk: Sdk) -> None:
    target = conf.send(sdk, "Sleeper", "sleep", 500)
    assert conf.ok(sdk, "Caller", "attach", target) == 500
    # attaching to a completed invocation returns its result at once
    assert conf.ok(sdk, "Caller", "attach", target) == 500


def test_attach_from_a_handler_to_a_failed_invocation(conf: Conf, sdk: Sdk) -> None:
    target = conf.send(sdk, "Failing", "terminal", {"code": 422, "message": "bad thing"})
    resp = conf.call(sdk, "Caller", "attach", target)
    assert resp.status == 422, str(resp)
    assert resp.json() == {"code": 422, "message": "bad thing", "source": "invocation"}


@pytest.mark.parametrize("sdk", [TS, UD], ids=lambda s: s.name)
def test_get_invocation_output_from_a_handler(conf: Conf, sdk: Sdk) -> None:
    """GetInvocationOutputCommand (not the Python SDK: it has no API for it)."""
    target = conf.send(sdk, "Sleeper", "sleep", 1500)
    assert conf.ok(sdk, "Caller", "output", target) == {"ready": False}
    assert conf.ingress.attach(target).status == 200
    assert conf.ok(sdk, "Caller", "output", target) == {"ready": True, "value": 1500}


def test_terminal_error_propagates_through_a_call(conf: Conf, sdk: Sdk) -> None:
    resp = conf.call(sdk, "Caller", "call_terminal", {"code": 418, "message": "teapot"})
    assert resp.status == 418, str(resp)
    assert resp.json() == {"code": 418, "message": "teapot", "source": "invocation"}
    assert resp.header("x-restate-error-source") == "invocation"
