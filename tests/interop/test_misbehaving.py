"""A deployment that breaks the protocol: every broken attempt is retried, the failure is
recorded, and other services keep working meanwhile."""

from __future__ import annotations

from typing import Any

import pytest
from interop_support import App, AppFactory, register

from undying.testing import InvocationFailure, RestateCli, Server, poll_until
from undying.testing.httpclient import request

pytestmark = pytest.mark.interop

MISBEHAVIOURS = ("garbage", "bad_protobuf", "close_early", "wrong_content_type", "status_500")
BAD_ATTEMPTS = 2
NEVER = 1_000_000


@pytest.fixture(scope="module")
def misbehaving(app_factory: AppFactory, cli: RestateCli) -> App:
    app = app_factory.start("misbehaving")
    register(cli, app)
    return app


@pytest.fixture(scope="module")
def greeter(app_factory: AppFactory, cli: RestateCli) -> App:
    app = app_factory.start("python", name="misbehaving-greeter")
    register(cli, app)
    return app


@pytest.fixture(scope="module")
def recovering(server: Server, misbehaving: App) -> dict[str, str]:
    """One invocation per misbehaviour, bad on its first 2 attempts; all sent at once."""
    return {
        name: server.ingress.send("Misbehaving", name, {"bad_attempts": BAD_ATTEMPTS})
        for name in MISBEHAVIOURS
    }


@pytest.fixture(scope="module")
def stuck(server: Server, misbehaving: App) -> dict[str, str]:
    """One invocation per misbehaviour that never gets a good answer."""
    return {
        name: server.ingress.send("Misbehaving", name, {"bad_attempts": NEVER})
        for name in MISBEHAVIOURS
    }


def attempts_seen(app: App) -> dict[str, Any]:
    resp = request("GET", app.url + "attempts", timeout=5.0)
    assert resp.status == 200, str(resp)
    seen: dict[str, Any] = resp.json()
    return seen


def wait_for_attempts(app: App, invocation_id: str, count: int) -> int:
    def check() -> int | None:
        seen = attempts_seen(app).get(invocation_id, {}).get("attempts", 0)
        return seen if seen >= count else None

    return poll_until(
        check,
        timeout=20.0,
        what=f"{invocation_id} reached the deployment {count} times",
        describe=lambda: str(attempts_seen(app).get(invocation_id)),
    )


def wait_for_recorded_failure(server: Server, invocation_id: str) -> InvocationFailure:
    """Poll ``sys_invocation`` until it shows at least 2 attempts and a failure message."""

    def check() -> InvocationFailure | None:
        info = server.admin.invocation_failure(invocation_id)
        if info is None or info.retry_count < 2 or not info.last_failure:
            return None
        return info

    return poll_until(
        check,
        timeout=20.0,
        what=f"sys_invocation records the failures of {invocation_id}",
        describe=lambda: str(server.admin.invocation_failure(invocation_id)),
    )


@pytest.mark.parametrize("name", MISBEHAVIOURS)
def test_broken_attempts_are_retried_until_success(
    server: Server, misbehaving: App, recovering: dict[str, str], name: str
) -> None:
    invocation_id = recovering[name]
    resp = server.ingress.attach(invocation_id, timeout=30.0)
    assert resp.status == 200, str(resp)
    assert resp.json() == {"handler": name, "attempt": BAD_ATTEMPTS + 1}
    assert resp.header("x-restate-id") == invocation_id
    seen = attempts_seen(misbehaving)[invocation_id]
    assert seen == {"handler": name, "attempts": BAD_ATTEMPTS + 1}


@pytest.mark.parametrize("name", MISBEHAVIOURS)
def test_failure_is_recorded_while_retrying(
    server: Server, misbehaving: App, stuck: dict[str, str], name: str
) -> None:
    invocation_id = stuck[name]
    wait_for_attempts(misbehaving, invocation_id, 2)
    info = wait_for_recorded_failure(server, invocation_id)
    assert info.id == invocation_id
    assert info.retry_count >= 2
    assert info.last_failure
    if name == "status_500":
        assert "500" in info.last_failure
    # still not completed: the output is not available yet
    assert server.ingress.output(invocation_id).status == 470


def test_other_services_work_while_one_is_stuck(
    server: Server, misbehaving: App, greeter: App, stuck: dict[str, str]
) -> None:
    for invocation_id in stuck.values():
        wait_for_attempts(misbehaving, invocation_id, 2)
    resp = server.ingress.call("Greeter", "greet", {"name": "Bob"})
    assert resp.status == 200, str(resp)
    assert resp.json() == {"result": "You said hi to Bob!"}
    assert resp.elapsed < 3.0
    # and the stuck ones are still being retried
    counts = {i: attempts_seen(misbehaving)[i]["attempts"] for i in stuck.values()}
    assert all(count >= 2 for count in counts.values()), counts
