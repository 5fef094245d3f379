"""Durable timers: on time, thousands at once, across a server restart."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from undying.testing import poll_until

from .conf_support import Conf, Sdk

pytestmark = pytest.mark.conformance

#: Timers of the scale scenario, and how long each sleeps.
MANY = 2000
MANY_SLEEP_MS = 2000
#: Latest acceptable completion after a timer's wake-up time, under that load (2 cores).
MAX_LATENESS = 8.0


def ts(value: str) -> float:
    """A ``sys_invocation`` timestamp (``2026-11-24T04:58:43.982Z``) as epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_sleep_fires_on_time(conf: Conf, sdk: Sdk) -> None:
    started = time.monotonic()
    assert conf.ok(sdk, "Sleeper", "sleep", 1000) == 1000
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0, elapsed


def test_sleep_survives_a_restart(conf: Conf, sdk: Sdk) -> None:
    invocation_id = conf.send(sdk, "Sleeper", "sleep", 3000)
    conf.wait_journal_entry(invocation_id, "Command: Sleep")
    conf.server.restart()
    resp = conf.ingress.attach(invocation_id, timeout=60.0)
    assert resp.status == 200, str(resp)
    assert resp.json() == 3000
    row = conf.invocation(invocation_id)
    assert row is not None
    assert ts(row["completed_at"]) - ts(row["created_at"]) >= 3.0 - 0.01, row


@pytest.mark.slow
def test_thousands_of_concurrent_sleeps(conf: Conf, sdk: Sdk) -> None:
    """2,000 invocations, each sleeping 2 s, sent at once: all fire, none early, none late."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(
            pool.map(lambda _: conf.send(sdk, "Sleeper", "sleep", MANY_SLEEP_MS), range(MANY))
        )
    assert len(ids) == MANY
    target = f"{sdk.svc('Sleeper')}/sleep"
    rows: dict[str, dict[str, object]] = {}

    def all_completed() -> bool | None:
        found = conf.query(
            "SELECT id, status, created_at, completed_at FROM sys_invocation "
            f"WHERE target = '{target}' AND status = 'completed'"
        )
        rows.clear()
        rows.update({str(r["id"]): r for r in found if r["id"] in ids})
        return True if len(rows) == MANY else None

    poll_until(
        all_completed,
        timeout=MANY_SLEEP_MS / 1000 + 60.0,
        what=f"{MANY} sleeps completed",
        interval=0.5,
        describe=lambda: f"{len(rows)} of {MANY} completed",
    )
    lateness = sorted(
        ts(str(r["completed_at"])) - ts(str(r["created_at"])) - MANY_SLEEP_MS / 1000
        for r in rows.values()
    )
    print(
        f"{MANY} sleeps: lateness min {lateness[0]:.3f}s, median {lateness[MANY // 2]:.3f}s, "
        f"p99 {lateness[int(MANY * 0.99)]:.3f}s, max {lateness[-1]:.3f}s"
    )
    assert lateness[0] >= -0.01, "a timer fired before its wake-up time"
    assert lateness[-1] <= MAX_LATENESS
