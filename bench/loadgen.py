"""Load generator: asyncio + aiohttp, keep-alive HTTP/1.1 to an ingress.

Every request is ``POST <ingress>/<service>/<handler>`` with the JSON body ``n`` and must answer
200. Two modes:

- :func:`sequential`: one call in flight; ``warmup`` calls, then ``n`` measured calls.
- :func:`closed_loop`: ``concurrency`` workers, each sending its next call as soon as the
  previous one answered; ``warmup_s`` seconds, then a ``duration_s`` measured window.
  Throughput = calls that completed inside the window / window length; latencies are those of
  the calls that completed inside the window.

CPU is sampled (:class:`bench.quiet.CpuSampler`) exactly at the borders of the measured part.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.quiet import CpuSampler, CpuSnapshot, CpuWindow

__all__ = ["LatencySummary", "LoadResult", "closed_loop", "sequential"]

_HEADERS = {"content-type": "application/json", "accept": "application/json"}
#: Distinct error messages kept per measurement.
_MAX_ERROR_SAMPLES = 10


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class LatencySummary:
    """Latency statistics in milliseconds."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, latencies_ms: list[float]) -> LatencySummary:
        values = sorted(latencies_ms)
        mean = sum(values) / len(values) if values else math.nan
        return cls(
            count=len(values),
            mean=mean,
            p50=percentile(values, 50),
            p90=percentile(values, 90),
            p99=percentile(values, 99),
            p999=percentile(values, 99.9),
            max=values[-1] if values else math.nan,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else round(v, 3))
            for k, v in vars(self).items()
        }


@dataclass
class LoadResult:
    """One measurement."""

    mode: str
    concurrency: int
    #: length of the measured part (s)
    duration_s: float
    completed: int
    errors: int
    latency: LatencySummary
    cpu: CpuWindow
    #: errors during warm-up (not in ``errors``)
    warmup_errors: int = 0
    error_samples: dict[str, int] = field(default_factory=dict)
    #: closed loop only: per second of the window, completions, the slowest call (ms), errors
    per_second: list[tuple[int, float, int]] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else math.nan

    def cpu_ms_per_call(self, group: str) -> float:
        if not self.completed:
            return math.nan
        return self.cpu.groups_cpu_s.get(group, 0.0) * 1000.0 / self.completed

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "completed": self.completed,
            "throughput_per_s": round(self.throughput, 2),
            "errors": self.errors,
            "warmup_errors": self.warmup_errors,
            "error_samples": self.error_samples,
            "latency_ms": self.latency.to_json(),
            "cpu": self.cpu.to_json(),
            "per_second": [
                {"completed": c, "max_ms": round(m, 2), "errors": e} for c, m, e in self.per_second
            ],
        }


class _Caller:
    """Sends calls over one session and classifies failures."""

    def __init__(self, session: aiohttp.ClientSession, url: str, body: bytes) -> None:
        self.session = session
        self.url = url
        self.body = body
        self.errors: Counter[str] = Counter()

    async def call(self) -> bool:
        """One call; ``True`` if it answered 200."""
        try:
            async with self.session.post(self.url, data=self.body, headers=_HEADERS) as resp:
                payload = await resp.read()
                if resp.status == 200:
                    return True
                self._error(f"HTTP {resp.status}: {payload[:200].decode('utf-8', 'replace')}")
        except TimeoutError:
            self._error("timeout")
        except aiohttp.ClientConnectorError as exc:
            code = exc.os_error.errno
            reason = os.strerror(code) if code else str(exc.os_error)
            self._error(f"connect to {exc.host}:{exc.port} failed: errno {code} ({reason})")
        except (aiohttp.ClientError, OSError) as exc:
            self._error(f"{type(exc).__name__}: {exc}")
        return False

    def _error(self, message: str) -> None:
        if message in self.errors or len(self.errors) < _MAX_ERROR_SAMPLES:
            self.errors[message] += 1
        else:
            self.errors["(other messages)"] += 1


def _session(concurrency: int, timeout_s: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        skip_auto_headers=("User-Agent",),
    )


async def sequential(
    url: str,
    body: bytes,
    *,
    n: int,
    warmup: int,
    sampler: CpuSampler,
    timeout_s: float = 60.0,
) -> LoadResult:
    """``warmup`` calls, then ``n`` measured calls, one at a time."""
    async with _session(1, timeout_s) as session:
        caller = _Caller(session, url, body)
        for _ in range(warmup):
            await caller.call()
        warmup_errors = sum(caller.errors.values())
        caller.errors.clear()
        latencies: list[float] = []
        clock = time.perf_counter
        start = sampler.snapshot()
        t0 = clock()
        for _ in range(n):
            began = clock()
            ok = await caller.call()
            if ok:
                latencies.append((clock() - began) * 1000.0)
        t1 = clock()
        end = sampler.snapshot()
        return LoadResult(
            mode="sequential",
            concurrency=1,
            duration_s=t1 - t0,
            completed=len(latencies),
            errors=sum(caller.errors.values()),
            warmup_errors=warmup_errors,
            error_samples=dict(caller.errors),
            latency=LatencySummary.of(latencies),
            cpu=sampler.window(start, end),
        )


async def closed_loop(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    sampler: CpuSampler,
    timeout_s: float = 60.0,
) -> LoadResult:
    """``concurrency`` closed-loop workers; ``warmup_s`` of warm-up, ``duration_s`` measured."""
    clock = time.perf_counter
    async with _session(concurrency, timeout_s) as session:
        caller = _Caller(session, url, body)
        began = clock()
        t0 = began + warmup_s
        t1 = t0 + duration_s
        latencies: list[float] = []
        completions: list[float] = []  # completion times (relative to t0) in the window
        errors_in_window: list[float] = []  # times (relative to t0) of failed calls
        warmup_errors = 0
        snapshots: dict[str, CpuSnapshot] = {}
        snap_times: dict[str, float] = {}

        async def worker() -> None:
            nonlocal warmup_errors
            while clock() < t1:
                start = clock()
                ok = await caller.call()
                end = clock()
                if t0 <= end <= t1:
                    if ok:
                        latencies.append((end - start) * 1000.0)
                        completions.append(end - t0)
                    else:
                        errors_in_window.append(end - t0)
                elif end < t0 and not ok:
                    warmup_errors += 1

        async def sample() -> None:
            await asyncio.sleep(max(0.0, t0 - clock()))
            snap_times["start"] = clock()
            snapshots["start"] = sampler.snapshot()
            await asyncio.sleep(max(0.0, t1 - clock()))
            snap_times["end"] = clock()
            snapshots["end"] = sampler.snapshot()

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await sample()
        # calls still in flight at t1 finish (or time out) but do not count
        done, pending = await asyncio.wait(workers, timeout=timeout_s + 5.0)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()

        seconds = max(1, math.ceil(duration_s))
        per_second_count = [0] * seconds
        per_second_max = [0.0] * seconds
        for at, latency in zip(completions, latencies, strict=True):
            slot = min(int(at), seconds - 1)
            per_second_count[slot] += 1
            per_second_max[slot] = max(per_second_max[slot], latency)
        per_second_errors = [0] * seconds
        for at in errors_in_window:
            per_second_errors[min(int(at), seconds - 1)] += 1
        return LoadResult(
            mode="closed_loop",
            concurrency=concurrency,
            duration_s=duration_s,
            completed=len(latencies),
            errors=len(errors_in_window),
            warmup_errors=warmup_errors,
            error_samples=dict(caller.errors),
            latency=LatencySummary.of(latencies),
            cpu=sampler.window(snapshots["start"], snapshots["end"]),
            per_second=list(zip(per_second_count, per_second_max, per_second_errors, strict=True)),
        )
