"""Failure paths: terminal errors keep their code, retryable errors are retried until the
handler succeeds. (Cancellation, kill, rejected promises and awakeables: see test_control,
test_workflows, test_awakeables.)"""

from __future__ import annotations

import pytest

from .conf_support import Conf, Sdk, unique

pytestmark = pytest.mark.conformance


@pytest.mark.parametrize("code", [400, 409, 418, 500, 503])
def test_terminal_error_status_passes_through(conf: Conf, sdk: Sdk, code: int) -> None:
    resp = conf.call(sdk, "Failing", "terminal", {"code": code, "message": f"failed {code}"})
    assert resp.status == code, str(resp)
    assert resp.json() == {"code": code, "message": f"failed {code}", "source": "invocation"}
    assert resp.header("x-restate-error-source") == "invocation"
    invocation_id = resp.header("x-restate-id")
    assert invocation_id is not None
    row = conf.invocation(invocation_id)
    assert row is not None
    assert row["completion_result"] == "failure"
    assert row["completion_failure"] == f"[{code}] failed {code}"
    # the stored failure is what output and attach return later
    for later in (conf.ingress.output(invocation_id), conf.ingress.attach(invocation_id)):
        assert later.status == code, str(later)
        assert later.json() == resp.json()


def test_retryable_errors_are_retried(conf: Conf, sdk: Sdk) -> None:
    """``flaky`` fails its first two attempts (plain exceptions), the third returns 3."""
    tag = unique("flaky")
    resp = conf.call(sdk, "Failing", "flaky", tag)
    assert resp.status == 200, str(resp)
    assert resp.json() == 3
    assert conf.ok(sdk, "Failing", "attempts", tag) == 3
    invocation_id = resp.header("x-restate-id")
    assert invocation_id is not None
    events = conf.query(
        "SELECT event_type FROM sys_journal_events "
        f"WHERE id = '{invocation_id}' ORDER BY appended_at"
    )
    assert [e["event_type"] for e in events] == ["TransientError", "TransientError"]
