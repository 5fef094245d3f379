"""Ingress details: attach/output by invocation id, GET handlers, input content-type
validation, output content types, ``x-restate-id`` where Restate sends it, error bodies."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from undying.testing import HttpResponse

from .conf_support import JSON, PY, SDKS, TS, UD, Conf, Sdk, unique

pytestmark = pytest.mark.conformance

NOT_READY = {
    "code": 470,
    "message": "the invocation exists but has not completed yet",
    "source": "ingress",
}


def assert_ingress_error(resp: HttpResponse, status: int, message: str) -> None:
    """An error of the ingress itself: no invocation, no ``x-restate-id``."""
    assert resp.status == status, str(resp)
    assert resp.header("content-type") == "application/json"
    assert resp.header("x-restate-error-source") == "ingress"
    assert resp.header("x-restate-id") is None
    assert resp.json() == {"code": status, "message": message, "source": "ingress"}


def test_output_is_470_while_running_and_attach_waits(conf: Conf, sdk: Sdk) -> None:
    invocation_id = conf.send(sdk, "Sleeper", "sleep", 1000)
    early = conf.ingress.output(invocation_id)
    assert early.status == 470, str(early)
    assert early.json() == NOT_READY
    attached = conf.ingress.attach(invocation_id)
    assert attached.status == 200, str(attached)
    assert attached.json() == 1000
    assert attached.header("x-restate-id") == invocation_id
    output = conf.ingress.output(invocation_id)
    assert output.status == 200, str(output)
    assert output.json() == 1000
    assert output.header("x-restate-id") == invocation_id
    assert output.header("idempotency-expires") is not None


def test_get_handlers_without_body(conf: Conf, sdk: Sdk) -> None:
    key = unique("get")
    conf.ok(sdk, "Counter", "add", 3, key=key)
    resp = conf.ingress.request("GET", f"/{sdk.svc('Counter')}/{key}/get")
    assert resp.status == 200, str(resp)
    assert resp.json() == 3
    assert (resp.header("x-restate-id") or "").startswith("inv_")
    hello = conf.ingress.request("GET", f"/{sdk.svc('Echo')}/hello")
    assert hello.status == 200, str(hello)
    assert hello.json() == "hello"


def test_wrong_input_content_type_is_400(conf: Conf, sdk: Sdk) -> None:
    resp = conf.ingress.request(
        "POST", f"/{sdk.svc('Counter')}/k/add", body=b"1", headers={"content-type": "text/plain"}
    )
    assert_ingress_error(
        resp,
        400,
        "input validation error: Content-type 'text/plain' does not match 'application/json'",
    )
    raw = conf.ingress.request("POST", f"/{sdk.svc('Echo')}/raw", body=b"1", headers=JSON)
    assert_ingress_error(
        raw,
        400,
        "input validation error: Content-type 'application/json' does not match "
        "'application/octet-stream'",
    )


def test_body_without_content_type_is_400(conf: Conf, sdk: Sdk) -> None:
    resp = conf.ingress.request("POST", f"/{sdk.svc('Echo')}/raw", body=b"abc")
    assert_ingress_error(resp, 400, "input validation error: Empty content-type")


@pytest.mark.parametrize("sdk", [PY, UD], ids=lambda s: s.name)
def test_no_input_handler_rejects_a_body(conf: Conf, sdk: Sdk) -> None:
    """Python and undying handlers without a parameter declare an empty input (``"input": {}``)."""
    resp = conf.ingress.request("POST", f"/{sdk.svc('Echo')}/hello", body=b"1", headers=JSON)
    assert_ingress_error(
        resp,
        400,
        "input validation error: Expected body and content-type to be empty, but wasn't with "
        "content-type 'Some(\"application/json\")'",
    )
    bare = conf.ingress.request("POST", f"/{sdk.svc('Echo')}/hello", body=b"1")
    assert_ingress_error(
        bare,
        400,
        "input validation error: Expected body and content-type to be empty, but wasn't with "
        "content-type 'None'",
    )


def test_ts_no_input_handler_accepts_a_json_body(conf: Conf) -> None:
    """The TS SDK declares JSON input (not required) even for handlers without a parameter."""
    ts = conf.ingress.request("POST", f"/{TS.svc('Echo')}/hello", body=b"1", headers=JSON)
    assert ts.status == 200, str(ts)


def test_json_input_is_not_required(conf: Conf, sdk: Sdk) -> None:
    """Both SDKs declare ``"required": false``: no body and no content-type is accepted."""
    resp = conf.ingress.request("POST", f"/{sdk.svc('Wf')}/{unique('noinput')}/signal")
    assert resp.status == 200, str(resp)
    assert resp.json() == "resolved"


def test_output_content_types(conf: Conf, sdk: Sdk) -> None:
    raw = conf.ingress.request(
        "POST",
        f"/{sdk.svc('Echo')}/raw",
        body=b"\x00abc\xff",
        headers={"content-type": "application/octet-stream"},
    )
    assert raw.status == 200, str(raw)
    assert raw.header("content-type") == "application/octet-stream"
    assert raw.body == b"\xffcba\x00"
    nothing = conf.call(sdk, "Echo", "nothing")
    assert nothing.status == 200, str(nothing)
    assert nothing.body == b""
    assert nothing.header("content-type") is None  # setContentTypeIfEmpty is false
    hello = conf.call(sdk, "Echo", "hello")
    assert hello.header("content-type") == "application/json"


def test_invocation_id_header(conf: Conf, sdk: Sdk) -> None:
    ok = conf.call(sdk, "Echo", "hello")
    assert (ok.header("x-restate-id") or "").startswith("inv_")
    sent = conf.ingress.send_response(sdk.svc("Echo"), "hello")
    assert sent.status == 202, str(sent)
    assert sent.header("x-restate-id") == sent.json()["invocationId"]
    failed = conf.call(sdk, "Failing", "terminal", {"code": 400, "message": "no"})
    assert failed.status == 400, str(failed)
    assert (failed.header("x-restate-id") or "").startswith("inv_")
    assert failed.header("x-restate-error-source") == "invocation"
    assert failed.json() == {"code": 400, "message": "no", "source": "invocation"}


def test_unknown_service_and_handler_are_404(conf: Conf, sdk: Sdk) -> None:
    assert_ingress_error(
        conf.ingress.call("Nope", "greet", {"name": "Bob"}),
        404,
        "service 'Nope' not found, make sure to register the service before calling it.",
    )
    assert_ingress_error(
        conf.call(sdk, "Echo", "nope"),
        404,
        f"the service '{sdk.svc('Echo')}' exists, but the handler 'nope' was not found, check "
        "that the handler exists in the latest registered service version.",
    )


def test_bad_invocation_id_is_400(conf: Conf) -> None:
    for what in ("attach", "output"):
        resp = conf.ingress.request("GET", f"/restate/invocation/inv_bogus/{what}")
        assert_ingress_error(resp, 400, "bad invocation id 'inv_bogus': unrecognized codec version")


def test_delayed_send_over_ingress(conf: Conf, sdk: Sdk) -> None:
    sent_at = time.time()
    resp = conf.ingress.send_response(sdk.svc("Sleeper"), "sleep", 10, delay="1500ms")
    assert resp.status == 202, str(resp)
    body = resp.json()
    assert body["status"] == "Accepted"
    assert resp.header("x-restate-id") == body["invocationId"]
    execution = datetime.fromisoformat(body["executionTime"].replace("000000Z", "+00:00"))
    assert abs(execution.timestamp() - sent_at - 1.5) < 0.5, body
    assert conf.status(body["invocationId"]) == "scheduled"
    attached = conf.ingress.attach(body["invocationId"])
    assert attached.status == 200, str(attached)
    assert attached.json() == 10
    assert time.time() - sent_at >= 1.45


def test_health_lists_the_services(conf: Conf) -> None:
    resp = conf.ingress.request("GET", "/restate/health")
    assert resp.status == 200, str(resp)
    services = set(resp.json()["services"])
    for base in ("Counter", "LazyCounter", "Wf", "Caller", "Echo", "Sleeper", "Awaker"):
        assert {sdk.svc(base) for sdk in SDKS} <= services
