"""kill -9 of the server while objects hold queued invocations (inbox) and workflows wait on
promises; restart on the same data dir; everything completes exactly once."""

from __future__ import annotations

import pytest

from undying.testing import poll_until

from .conf_support import SDKS, Conf, unique

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

QUEUED = 5
WORKFLOWS = 3
HOLD_MS = 4000


def test_kill_with_queued_invocations_and_waiting_workflows(conf: Conf) -> None:
    plan = {}
    for sdk in SDKS:
        key = unique(f"crash-{sdk.name}")
        holder = conf.send(sdk, "Counter", "hold", {"tag": "held", "ms": HOLD_MS}, key=key)
        queued = [conf.send(sdk, "Counter", "add", 1, key=key) for _ in range(QUEUED)]
        workflows = {}
        for i in range(WORKFLOWS):
            wf_id = unique(f"crash-wf-{sdk.name}")
            workflows[wf_id] = conf.send(sdk, "Wf", "run", {"i": i}, key=wf_id)
        plan[sdk] = (key, holder, queued, workflows)

    for sdk, (_key, holder, queued, workflows) in plan.items():
        conf.wait_journal_entry(holder, "Command: Sleep")
        for invocation_id in queued:
            conf.wait_status(invocation_id, {"pending"})
        for wf_id in workflows:
            poll_until(
                lambda wf_id=wf_id, sdk=sdk: (
                    True if conf.ok(sdk, "Wf", "status", key=wf_id) == "waiting" else None
                ),
                timeout=20.0,
                what=f"{wf_id} waits on its promise",
                interval=0.1,
            )

    for _, holder, _, _ in plan.values():
        assert conf.status(holder) != "completed", "the key was no longer held at the crash"
    conf.server.kill()
    conf.server.start()

    for sdk, (key, holder, queued, workflows) in plan.items():
        for i, wf_id in enumerate(workflows):
            assert conf.ok(sdk, "Wf", "signal", f"ok-{i}", key=wf_id) == "resolved"
        held = conf.ingress.attach(holder, timeout=60.0)
        assert held.status == 200, str(held)
        assert held.json() == ["held"]
        values = []
        for invocation_id in queued:
            resp = conf.ingress.attach(invocation_id, timeout=60.0)
            assert resp.status == 200, str(resp)
            values.append(resp.json())
        assert sorted(values) == list(range(1, QUEUED + 1))
        assert conf.ok(sdk, "Counter", "get", key=key) == QUEUED
        assert conf.ok(sdk, "Counter", "log", key=key) == ["held"]
        for i, (wf_id, run_id) in enumerate(workflows.items()):
            resp = conf.ingress.attach(run_id, timeout=60.0)
            assert resp.status == 200, str(resp)
            assert resp.json() == {"input": {"i": i}, "approved_with": f"ok-{i}"}
            assert conf.ok(sdk, "Wf", "status", key=wf_id) == "done"
