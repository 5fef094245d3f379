"""1,000 invocations across 100 object keys, half blocking calls and half one-way sends, each
``add(1)``: every counter ends at exactly 10, nothing lost or duplicated."""

from __future__ import annotations

import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from undying.testing import poll_until

from .conf_support import Conf, Sdk, sql_str, unique

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

KEYS = 100
PER_KEY = 10


def test_counters_are_exact(conf: Conf, sdk: Sdk) -> None:
    prefix = unique("conc")
    keys = [f"{prefix}-{i:03d}" for i in range(KEYS)]
    jobs = [(key, i % 2 == 0) for key in keys for i in range(PER_KEY)]
    random.Random(7).shuffle(jobs)

    def run(job: tuple[str, bool]) -> tuple[str, int | str]:
        key, blocking = job
        if blocking:
            resp = conf.call(sdk, "Counter", "add", 1, key=key)
            assert resp.status == 200, str(resp)
            value: int = resp.json()
            return key, value
        return key, conf.send(sdk, "Counter", "add", 1, key=key)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run, jobs))

    seen: dict[str, list[int]] = defaultdict(list)
    sent: list[str] = []
    for key, value in results:
        if isinstance(value, int):
            seen[key].append(value)
        else:
            sent.append(value)
    assert len(sent) == KEYS * PER_KEY // 2
    # each blocking call saw its own increment: values per key are distinct, within 1..10
    for key, values in seen.items():
        assert len(values) == len(set(values)), (key, values)
        assert set(values) <= set(range(1, PER_KEY + 1)), (key, values)

    service = sdk.svc("Counter")
    counts: dict[str, int] = {}

    def all_done() -> bool | None:
        rows = conf.query(
            "SELECT service_key, value_utf8 FROM state "
            f"WHERE service_name = {sql_str(service)} AND key = 'count' "
            f"AND service_key LIKE {sql_str(prefix + '-%')}"
        )
        counts.clear()
        counts.update({str(r["service_key"]): int(r["value_utf8"]) for r in rows})
        return True if counts == dict.fromkeys(keys, PER_KEY) else None

    poll_until(
        all_done,
        timeout=60.0,
        what="every counter reached 10",
        interval=0.2,
        describe=lambda: (
            f"{sum(counts.values())} increments, not 10: "
            f"{ {k: v for k, v in counts.items() if v != PER_KEY} }"
        ),
    )
    invocations = conf.query(
        "SELECT status, COUNT(*) AS n FROM sys_invocation "
        f"WHERE target_service_name = {sql_str(service)} AND target_handler_name = 'add' "
        f"AND target_service_key LIKE {sql_str(prefix + '-%')} GROUP BY status"
    )
    assert {r["status"]: r["n"] for r in invocations} == {"completed": KEYS * PER_KEY}
    for key in random.Random(1).sample(keys, 5):
        assert conf.ok(sdk, "Counter", "get", key=key) == PER_KEY
