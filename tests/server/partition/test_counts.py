"""Invocation counts per status, kept by the store as statuses change (no scan)."""

from __future__ import annotations

import random

from undying.server.partition.counts import STATUSES
from undying.server.partition.records import Result, Target
from undying.server.partition.state import InvocationStatus, Status
from undying.server.partition.store import PartitionStore


def _status(n: int, service: str = "S") -> InvocationStatus:
    return InvocationStatus(
        id=n.to_bytes(24, "big"),
        target=Target(service, "h"),
        status="scheduled",
        created_at=0,
        modified_at=0,
    )


def _nonzero(store: PartitionStore) -> dict[str, int]:
    return {s: n for s, n in store.counts.by_status.items() if n}


def test_a_life_counts_once_in_each_status_and_starts_once() -> None:
    store = PartitionStore(0)
    s = _status(1)
    store.put_status(s)
    assert _nonzero(store) == {"scheduled": 1}
    lives: tuple[Status, ...] = ("invoked", "suspended", "invoked", "paused", "invoked")
    for status in lives:
        s.status = status
        store.put_status(s)
        store.put_status(s)  # stored again unchanged: nothing moves
        assert _nonzero(store) == {status: 1}
    assert store.counts.started == {"S": 1}  # resumed runs are not new starts
    s.status = "completed"
    s.result = Result(value=b"ok")
    store.put_status(s)
    store.put_status(s)  # a completed one changed again (journal expired): still one
    assert _nonzero(store) == {"completed": 1}
    assert store.counts.completed == {"S": 1}
    assert store.counts.failed == {}
    store.delete_status(s.id)  # purged
    assert _nonzero(store) == {}
    assert store.counts.completed == {"S": 1}


def test_failures_cancelled_before_start_and_purged_at_completion() -> None:
    store = PartitionStore(0)
    cancelled = _status(1, "A")
    store.put_status(cancelled)
    cancelled.status = "completed"
    cancelled.result = Result(code=409, message="cancelled")
    store.put_status(cancelled)
    # completed without retention: its status is deleted without ever being stored completed
    gone = _status(2, "B")
    gone.status = "invoked"
    store.put_status(gone)
    gone.status = "completed"
    gone.result = Result(code=500, message="boom")
    store.delete_status(gone.id)
    assert _nonzero(store) == {"completed": 1}
    assert store.counts.started == {"B": 1}
    assert store.counts.completed == {"A": 1, "B": 1}
    assert store.counts.failed == {"A": 1, "B": 1}


def test_random_lives_agree_with_a_scan() -> None:
    rng = random.Random(5)
    store = PartitionStore(0)
    live: dict[int, InvocationStatus] = {}
    next_id = 0
    completions = failures = 0
    for _ in range(3000):
        if not live or rng.random() < 0.2:
            next_id += 1
            s = _status(next_id)
            s.status = rng.choice(("scheduled", "inboxed", "invoked"))
            live[next_id] = s
            store.put_status(s)
            continue
        n = rng.choice(list(live))
        s = live[n]
        if s.status == "completed" and rng.random() < 0.5:
            store.delete_status(s.id)
            del live[n]
            continue
        if s.status != "completed":
            new: Status = rng.choice(STATUSES)
            s.status = new
            if new == "completed":
                completions += 1
                ok = rng.random() < 0.5
                failures += not ok
                s.result = Result(value=b"") if ok else Result(code=500)
        store.put_status(s)
    scan = {status: 0 for status in STATUSES}
    for s in live.values():
        scan[s.status] += 1
    assert store.counts.by_status == scan
    assert store.counts.completed == {"S": completions}
    assert store.counts.failed == {"S": failures}
