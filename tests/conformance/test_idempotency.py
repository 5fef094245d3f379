"""Idempotency keys and retention: dedup of calls and sends, the first result for a repeated
key whatever the body, attach and output by key, ``idempotency-expires``, and a handler's
idempotency retention from the manifest."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime

import pytest

from undying.testing import HttpResponse, poll_until
from undying.testing.waiting import pause_until

from .conf_support import Conf, Sdk, unique

pytestmark = pytest.mark.conformance

#: ``2026-11-25T07:58:44.968+00:00`` (Restate drops the fraction when it is zero).
EXPIRES = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")
NOT_READY = {
    "code": 470,
    "message": "the invocation exists but has not completed yet",
    "source": "ingress",
}
NOT_FOUND = {"code": 404, "message": "invocation not found", "source": "ingress"}
#: Idempotency retention of ``Retention.short`` (seconds).
RETENTION = 2.0


def expires_at(resp: HttpResponse) -> float:
    value = resp.header("idempotency-expires")
    assert value is not None and EXPIRES.match(value), str(resp)
    return datetime.fromisoformat(value).timestamp()


def by_key(sdk: Sdk, service: str, handler: str, idem: str, what: str, key: str = "") -> str:
    object_key = f"/{key}" if key else ""
    return f"/restate/invocation/{sdk.svc(service)}{object_key}/{handler}/{idem}/{what}"


def test_same_key_twice_executes_once(conf: Conf, sdk: Sdk) -> None:
    key = unique("idem")
    idem = {"idempotency-key": unique("K")}
    first = conf.call(sdk, "Counter", "add", 1, key=key, headers=idem)
    assert first.status == 200, str(first)
    assert first.json() == 1
    second = conf.call(sdk, "Counter", "add", 50, key=key, headers=idem)  # different body
    assert second.status == 200, str(second)
    assert second.json() == 1  # the first result
    assert second.header("x-restate-id") == first.header("x-restate-id")
    # about a day: the default retention of 1.7.12
    assert abs(expires_at(second) - time.time() - 86400) < 120
    assert conf.ok(sdk, "Counter", "get", key=key) == 1
    row = conf.invocation(str(first.header("x-restate-id")))
    assert row is not None and row["idempotency_key"] == idem["idempotency-key"]


def test_same_key_on_another_target_is_another_invocation(conf: Conf, sdk: Sdk) -> None:
    key = unique("idem-scope")
    idem = {"idempotency-key": unique("K")}
    one = conf.call(sdk, "Counter", "add", 1, key=key, headers=idem)
    other = conf.call(sdk, "Counter", "add", 1, key=key + "-b", headers=idem)
    assert one.status == other.status == 200
    assert one.header("x-restate-id") != other.header("x-restate-id")
    assert conf.ok(sdk, "Counter", "get", key=key + "-b") == 1


def test_send_twice_is_previously_accepted(conf: Conf, sdk: Sdk) -> None:
    key = unique("idem-send")
    idem = {"idempotency-key": unique("K")}
    first = conf.ingress.send_response(sdk.svc("Counter"), "add", 2, key=key, headers=idem)
    assert first.status == 202, str(first)
    assert first.json()["status"] == "Accepted"
    invocation_id = first.json()["invocationId"]
    second = conf.ingress.send_response(sdk.svc("Counter"), "add", 9, key=key, headers=idem)
    assert second.status == 202, str(second)
    assert second.json() == {"invocationId": invocation_id, "status": "PreviouslyAccepted"}
    assert second.header("x-restate-id") == invocation_id
    assert conf.ingress.attach(invocation_id).json() == 2
    assert conf.ok(sdk, "Counter", "get", key=key) == 2


def test_blocking_call_joins_an_in_flight_send(conf: Conf, sdk: Sdk) -> None:
    idem = {"idempotency-key": unique("K")}
    invocation_id = conf.ingress.send(sdk.svc("Sleeper"), "sleep", 1000, headers=idem)
    resp = conf.call(sdk, "Sleeper", "sleep", 5, headers=idem)
    assert resp.status == 200, str(resp)
    assert resp.json() == 1000
    assert resp.header("x-restate-id") == invocation_id


def test_attach_and_output_by_key_for_a_service(conf: Conf, sdk: Sdk) -> None:
    idem = unique("K")
    invocation_id = conf.ingress.send(
        sdk.svc("Sleeper"), "sleep", 1000, headers={"idempotency-key": idem}
    )
    early = conf.ingress.request("GET", by_key(sdk, "Sleeper", "sleep", idem, "output"))
    assert early.status == 470, str(early)
    assert early.json() == NOT_READY
    attached = conf.ingress.request("GET", by_key(sdk, "Sleeper", "sleep", idem, "attach"))
    assert attached.status == 200, str(attached)
    assert attached.json() == 1000
    assert attached.header("x-restate-id") == invocation_id
    output = conf.ingress.request("GET", by_key(sdk, "Sleeper", "sleep", idem, "output"))
    assert output.status == 200, str(output)
    assert output.json() == 1000
    assert output.header("x-restate-id") == invocation_id
    expires_at(output)


def test_attach_and_output_by_key_for_an_object(conf: Conf, sdk: Sdk) -> None:
    key = unique("idem-obj")
    idem = unique("K")
    first = conf.call(sdk, "Counter", "add", 7, key=key, headers={"idempotency-key": idem})
    assert first.status == 200, str(first)
    for what in ("attach", "output"):
        resp = conf.ingress.request("GET", by_key(sdk, "Counter", "add", idem, what, key))
        assert resp.status == 200, f"{what}: {resp}"
        assert resp.json() == 7
        assert resp.header("x-restate-id") == first.header("x-restate-id")


def test_unknown_key(conf: Conf, sdk: Sdk) -> None:
    idem = unique("nokey")
    output = conf.ingress.request("GET", by_key(sdk, "Echo", "hello", idem, "output"))
    assert output.status == 404, str(output)
    assert output.json() == NOT_FOUND
    attach = conf.ingress.request("GET", by_key(sdk, "Echo", "hello", idem, "attach"))
    assert attach.status == 404, str(attach)
    assert attach.json() == {"code": 404, "message": "not found", "source": "invocation"}


def test_every_ingress_invocation_gets_an_idempotency_key(conf: Conf, sdk: Sdk) -> None:
    """Restate 1.7 gives requests without the header a generated key, usable to look up."""
    resp = conf.call(sdk, "Echo", "hello")
    assert resp.status == 200, str(resp)
    row = conf.invocation(str(resp.header("x-restate-id")))
    assert row is not None
    generated = str(row.get("idempotency_key"))
    assert re.match(r"^[0-9A-Z]{26}$", generated), row
    output = conf.ingress.request("GET", by_key(sdk, "Echo", "hello", generated, "output"))
    assert output.status == 200, str(output)
    assert output.json() == "hello"


def test_idempotency_retention_from_the_manifest(conf: Conf, sdk: Sdk) -> None:
    """``Retention.short`` keeps its result 2 s; then the key is free again."""
    svc = sdk.svc("Retention")
    handler = conf.admin.service(svc)["handlers"][0]
    assert handler["name"] == "short"
    idem = {"idempotency-key": unique("K")}
    first = conf.ingress.call(svc, "short", headers=idem)
    assert first.status == 200, str(first)
    done_at = time.time()
    second = conf.ingress.call(svc, "short", headers=idem)
    assert second.header("x-restate-id") == first.header("x-restate-id")
    expiry = expires_at(second)
    assert abs(expiry - done_at - RETENTION) < 1.0, (expiry, done_at)
    row = conf.invocation(str(first.header("x-restate-id")))
    assert row is not None and row["completion_retention"] == "PT2S"

    # Deliberate wait: the retention must run out (nothing to observe before it does).
    pause_until(expiry)
    path = by_key(sdk, "Retention", "short", idem["idempotency-key"], "output")

    def gone() -> HttpResponse | None:
        resp = conf.ingress.request("GET", path)
        return resp if resp.status == 404 else None

    assert poll_until(gone, timeout=10.0, what="output by key is gone").json() == NOT_FOUND
    third = conf.ingress.call(svc, "short", headers=idem)
    assert third.status == 200, str(third)
    # a new execution: the id is derived from target and key, so it is the same id again
    assert third.header("x-restate-id") == first.header("x-restate-id")
    assert third.header("idempotency-expires") is None
    again = conf.invocation(str(third.header("x-restate-id")))
    assert again is not None and again["created_at"] > row["created_at"]


def test_concurrent_calls_with_one_key_execute_once(conf: Conf, sdk: Sdk) -> None:
    key = unique("idem-race")
    idem = {"idempotency-key": unique("K")}
    results: list[HttpResponse] = []

    def one() -> None:
        results.append(conf.call(sdk, "Counter", "add", 1, key=key, headers=idem))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status for r in results} == {200}
    assert {r.json() for r in results} == {1}
    assert len({r.header("x-restate-id") for r in results}) == 1
    assert conf.ok(sdk, "Counter", "get", key=key) == 1
