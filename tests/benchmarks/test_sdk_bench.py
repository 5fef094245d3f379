"""Smoke tests of the SDK benchmark (``bench/sdk*.py``): the two services it compares exist, are
the same service, and answer; its report computes per-step time. No timing is asserted."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import undying

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _bench_importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(ROOT))
    yield


def _bench(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


def test_the_undying_sdk_service_defines_noop_and_steps() -> None:
    services = _bench("sdk_services")
    assert isinstance(services.bench, undying.Service)
    assert services.bench.name == services.SERVICE_NAME == "ubench"
    assert sorted(services.bench.handlers) == ["noop", "steps"]
    assert isinstance(services.app, undying.Endpoint)


def test_both_deployments_serve_the_same_handlers_under_their_own_names() -> None:
    sdk = _bench("sdk")
    ours, theirs = _bench("sdk_services"), _bench("services")
    assert sdk.SDKS["undying-sdk"] == (ROOT / "bench" / "sdk_services.py", ours.SERVICE_NAME)
    assert sdk.SDKS["restate-sdk"] == (ROOT / "bench" / "services.py", theirs.SERVICE_NAME)
    assert ours.SERVICE_NAME != theirs.SERVICE_NAME  # both are registered on one server
    assert sorted(theirs.bench.handlers) == sorted(ours.bench.handlers)


@pytest.mark.parametrize("sdk_name", ["undying-sdk", "restate-sdk"])
@pytest.mark.parametrize("n", [0, 3])
def test_the_scripted_runtime_drives_each_service_to_its_output(sdk_name: str, n: int) -> None:
    micro = _bench("sdk_micro")
    path, service = micro.SDKS[sdk_name]
    app: Any = micro.load_module(path, f"bench_smoke_{path.stem}").app
    output = asyncio.run(micro.invoke(app, service, n, seq=1))
    assert output == b'"done"'


def test_per_step_time_is_the_slope_over_n() -> None:
    report = _bench("sdk_report")
    assert report.slope([(0.0, 3.0), (3.0, 4.5), (10.0, 8.0)]) == pytest.approx(0.5)
    assert report.slope([(3.0, 1.0), (3.0, 2.0)]) is None


def _record(system: str, cell: str, n: int, p50: float) -> dict[str, Any]:
    latency = {"p50": p50, "p99": p50 * 2, "mean": p50}
    return {
        "round": 1,
        "order": 0,
        "system": system,
        "cell": cell,
        "label": cell,
        "kind": "latency",
        "n": n,
        "concurrency": 1,
        "result": {"latency_ms": latency, "throughput_per_s": 1000 / p50, "errors": 0},
        "cpu_pct": dict.fromkeys(("server", "sdk", "loadgen", "peer", "other"), 0.0),
        "cpu_ms_per_call": {"server": 0.0, "sdk": 0.0},
        "flags": [],
    }


def test_the_report_gives_the_per_step_ratio_and_the_target() -> None:
    report = _bench("sdk_report")
    records = [
        _record(system, f"steps{n}", n, base + n * per_step)
        for system, base, per_step in (("undying-sdk", 2.0, 0.6), ("restate-sdk", 2.0, 1.0))
        for n in (0, 3, 10)
    ]
    (entry,) = report.summary(records)
    assert entry["per_step_ms_p50"] == {
        "undying-sdk": pytest.approx(0.6),
        "restate-sdk": pytest.approx(1.0),
    }
    assert entry["per_step_ratio"] == pytest.approx(0.6)
    assert entry["per_step_met"] is True
    assert entry["per_step_goal_met"] is True
    assert "0.60 / 1.00 ms = 0.60" in report.render(records)
