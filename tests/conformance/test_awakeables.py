"""Awakeables and named signals: ``sign_1…`` ids, resolve/reject from another handler and over
the ingress, rejection surfacing as a terminal error."""

from __future__ import annotations

import re
from typing import Any

import pytest

from undying.testing import HttpResponse

from .conf_support import Conf, Sdk, unique

pytestmark = pytest.mark.conformance

#: ``sign_1`` + base64url (no padding) of 24 invocation-id bytes and a 4-byte signal index.
AWAKEABLE_ID = re.compile(r"^sign_1[A-Za-z0-9_-]{38}$")


def start_waiter(conf: Conf, sdk: Sdk) -> tuple[str, str]:
    """Send ``Awaker.wait``; returns (invocation id, awakeable id)."""
    tag = unique("awk")
    invocation_id = conf.send(sdk, "Awaker", "wait", tag)
    awakeable_id = conf.awakeable_id(sdk, tag)
    assert AWAKEABLE_ID.match(awakeable_id), awakeable_id
    return invocation_id, awakeable_id


def awakeable_request(conf: Conf, awakeable_id: str, action: str, body: Any) -> HttpResponse:
    return conf.ingress.request(
        "POST",
        f"/restate/awakeables/{awakeable_id}/{action}",
        body=body,
        headers={"content-type": "application/json"} if action == "resolve" else None,
    )


def test_resolve_from_another_handler(conf: Conf, sdk: Sdk) -> None:
    invocation_id, awakeable_id = start_waiter(conf, sdk)
    assert conf.status(invocation_id) != "completed"
    assert (
        conf.ok(sdk, "Awaker", "resolve", {"id": awakeable_id, "value": {"approved": True}}) is None
    )
    resp = conf.ingress.attach(invocation_id)
    assert resp.status == 200, str(resp)
    assert resp.json() == {"id": awakeable_id, "value": {"approved": True}}


def test_resolve_over_ingress(conf: Conf, sdk: Sdk) -> None:
    invocation_id, awakeable_id = start_waiter(conf, sdk)
    resp = awakeable_request(conf, awakeable_id, "resolve", b'{"approved":true}')
    assert resp.status == 202, str(resp)
    assert resp.body == b""
    result = conf.ingress.attach(invocation_id)
    assert result.status == 200, str(result)
    assert result.json() == {"id": awakeable_id, "value": {"approved": True}}
    # resolving again is accepted and changes nothing
    again = awakeable_request(conf, awakeable_id, "resolve", b'{"approved":false}')
    assert again.status == 202, str(again)
    assert conf.ingress.attach(invocation_id).json() == result.json()


def test_reject_from_another_handler(conf: Conf, sdk: Sdk) -> None:
    invocation_id, awakeable_id = start_waiter(conf, sdk)
    assert conf.ok(sdk, "Awaker", "reject", {"id": awakeable_id, "message": "denied"}) is None
    resp = conf.ingress.attach(invocation_id)
    assert resp.status == 500, str(resp)
    assert resp.json() == {"code": 500, "message": "denied", "source": "invocation"}
    row = conf.invocation(invocation_id)
    assert row is not None and row["completion_failure"] == "[500] denied"


def test_reject_over_ingress(conf: Conf, sdk: Sdk) -> None:
    invocation_id, awakeable_id = start_waiter(conf, sdk)
    resp = awakeable_request(conf, awakeable_id, "reject", b"denied over http")
    assert resp.status == 202, str(resp)
    result = conf.ingress.attach(invocation_id)
    assert result.status == 500, str(result)
    assert result.json() == {"code": 500, "message": "denied over http", "source": "invocation"}


def test_bad_awakeable_ids_are_400(conf: Conf) -> None:
    resp = awakeable_request(conf, "prom_abc", "reject", b"nope")
    assert resp.status == 400, str(resp)
    assert resp.json() == {
        "code": 400,
        "message": "bad awakeable id 'prom_abc': unrecognized codec version",
        "source": "ingress",
    }
    odd = "sign_1NOTEXISTING00000000000000000000000000000AAAAEQ"
    resp = awakeable_request(conf, odd, "resolve", b"1")
    assert resp.status == 400, str(resp)
    assert resp.json() == {
        "code": 400,
        "message": f"bad awakeable id '{odd}': id doesn't match the expected type",
        "source": "ingress",
    }


@pytest.mark.parametrize("outcome", ["resolve", "reject"])
def test_named_signal(conf: Conf, sdk: Sdk, outcome: str) -> None:
    name = unique("sig")
    invocation_id = conf.send(sdk, "Awaker", "wait_signal", name)
    conf.wait_status(invocation_id, {"running", "suspended"})
    if outcome == "resolve":
        req: dict[str, Any] = {"id": invocation_id, "name": name, "value": {"n": 1}}
    else:
        req = {"id": invocation_id, "name": name, "message": "no signal for you", "code": 403}
    assert conf.ok(sdk, "Awaker", "send_signal", req) is None
    resp = conf.ingress.attach(invocation_id)
    if outcome == "resolve":
        assert resp.status == 200, str(resp)
        assert resp.json() == {"n": 1}
    else:
        assert resp.status == 403, str(resp)
        assert resp.json() == {"code": 403, "message": "no signal for you", "source": "invocation"}
