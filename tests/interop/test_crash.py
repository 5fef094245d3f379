"""kill -9 of the server in the middle of an invocation; restart on the same data dir.

``Long.go`` runs step1, sleeps, runs step2, sleeps, runs step3. Each test has its own server
(it gets killed); the deployment (the official Python SDK, then the undying SDK) is shared and
re-registered with each server.
"""

from __future__ import annotations

from collections import Counter

import pytest
from interop_support import App, AppFactory, AppKind, ServerFactory, cli_for, register

from undying.testing import Effect, Server
from undying.testing.waiting import pause_until

pytestmark = [pytest.mark.interop, pytest.mark.slow]

#: How far into a durable sleep the server is killed: long enough after the step's side effect
#: for the step's result and the sleep to be journaled (milliseconds in practice).
KILL_INTO_SLEEP = 1.0


@pytest.fixture(scope="module", params=["python", "undying"])
def app(request: pytest.FixtureRequest, app_factory: AppFactory) -> App:
    kind: AppKind = request.param
    return app_factory.start(kind, name=f"crash-{kind}")


def start_registered(
    server_factory: ServerFactory, app: App, name: str, tmp_path_factory: pytest.TempPathFactory
) -> Server:
    server = server_factory.start(f"{name}-{app.kind}")  # a fresh data dir per deployment
    register(cli_for(server, tmp_path_factory.mktemp("cli-home")), app)
    return server


def wait_for_step(app: App, tag: str, step: str, mark: int, timeout: float) -> Effect:
    def has_step(entries: list[Effect]) -> bool:
        return any(e.id == tag and e.step == step for e in entries)

    entries = app.effects.wait_for(
        has_step, timeout=timeout, what=f"{step} of {tag} ran", since=mark
    )
    return next(e for e in entries if e.id == tag and e.step == step)


def assert_each_step_once(app: App, tag: str, mark: int) -> dict[str, Effect]:
    entries = [e for e in app.effects.since(mark) if e.id == tag]
    assert Counter(e.step for e in entries) == {"step1": 1, "step2": 1, "step3": 1}, entries
    assert all(e.attempt == 1 for e in entries), entries
    return {e.step: e for e in entries}


def test_kill_during_sleeps_then_restart(
    server_factory: ServerFactory, app: App, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = start_registered(server_factory, app, "kill-during-sleep", tmp_path_factory)
    tag = "kill-during-sleep"
    sleep = 3.0
    mark = app.effects.mark()
    invocation_id = server.ingress.send("Long", "go", {"tag": tag, "sleep_seconds": sleep})

    step1 = wait_for_step(app, tag, "step1", mark, timeout=10.0)
    pause_until(step1.ts + KILL_INTO_SLEEP)
    server.kill()
    server.start()  # same data dir, same ports

    step2 = wait_for_step(app, tag, "step2", mark, timeout=sleep + 10.0)
    # the timer survived the crash and kept its original wake-up time
    assert step2.ts - step1.ts >= sleep - 0.05, (step1, step2)

    pause_until(step2.ts + KILL_INTO_SLEEP)
    server.kill()
    server.start()

    resp = server.ingress.attach(invocation_id, timeout=sleep + 20.0)
    assert resp.status == 200, str(resp)
    result = resp.json()
    assert set(result) == {"step1", "step2", "step3"}
    assert all(result[s].startswith(f"{s}@") for s in result)
    steps = assert_each_step_once(app, tag, mark)
    assert steps["step3"].ts - steps["step2"].ts >= sleep - 0.05


def test_overdue_timer_fires_right_after_restart(
    server_factory: ServerFactory, app: App, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = start_registered(server_factory, app, "down-past-wakeup", tmp_path_factory)
    tag = "down-past-wakeup"
    sleep = 2.0
    mark = app.effects.mark()
    invocation_id = server.ingress.send("Long", "go", {"tag": tag, "sleep_seconds": sleep})

    step1 = wait_for_step(app, tag, "step1", mark, timeout=10.0)
    pause_until(step1.ts + KILL_INTO_SLEEP / 2)
    server.kill()
    # stay down until well past the wake-up time of the first sleep
    pause_until(step1.ts + sleep + 1.5)
    server.start()

    step2 = wait_for_step(app, tag, "step2", mark, timeout=10.0)
    fired = step2.ts - server.ready_wall
    ready = server.ready_wall - server.started_wall
    print(f"restarted server ready after {ready:.2f}s; overdue step2 at {fired:+.2f}s from ready")
    assert step2.ts >= server.started_wall, "step2 ran while the server was down?"
    assert step2.ts - server.ready_wall <= 1.5, (
        f"overdue timer fired {step2.ts - server.ready_wall:.2f}s after the server was ready"
    )

    resp = server.ingress.attach(invocation_id, timeout=sleep + 20.0)
    assert resp.status == 200, str(resp)
    assert set(resp.json()) == {"step1", "step2", "step3"}
    assert_each_step_once(app, tag, mark)
