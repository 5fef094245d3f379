"""Prometheus metrics: the exposition format, and the server's numbers after real invocations.

The output is parsed with prometheus_client's own parser, so what a Prometheus server would
refuse fails here too.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import undying
from undying.server import metrics
from undying.server.metrics import CONTENT_TYPE, Exposition, Histogram, InvokerStats
from undying.server.partition.records import Body, PatchState
from undying.testing import TestEnvironment

T = TypeVar("T")


def run(test: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(test())  # type: ignore[arg-type]


# ---- the format -----------------------------------------------------------------------------


def _samples(text: str) -> dict[str, list[Sample]]:
    """Samples by family name (prometheus_client strips ``_total`` from counter families)."""
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def test_histogram_buckets_are_cumulative_and_end_with_inf() -> None:
    h = Histogram([0.1, 1.0])
    for value in (0.05, 0.1, 0.5, 3.0, 7.0):
        h.observe(value)
    out = Exposition()
    out.family("x_seconds", "histogram", "a histogram")
    out.histogram("x_seconds", h, {"kind": "a"})
    families = list(text_string_to_metric_families(out.text().decode()))
    assert [f.type for f in families] == ["histogram"]
    got = {(s.name, s.labels.get("le")): s.value for s in families[0].samples}
    assert got == {
        ("x_seconds_bucket", "0.1"): 2,  # the bound itself belongs to its bucket
        ("x_seconds_bucket", "1.0"): 3,
        ("x_seconds_bucket", "+Inf"): 5,
        ("x_seconds_sum", None): pytest.approx(10.65),
        ("x_seconds_count", None): 5,
    }


def test_label_values_and_help_are_escaped() -> None:
    out = Exposition()
    out.counter(
        "odd_total",
        "help with a \\ backslash\nand a newline",
        [({"service": 'a "quoted"\\ name\nnext'}, 3)],
    )
    out.gauge("empty", "a family without samples", [])
    families = {f.name: f for f in text_string_to_metric_families(out.text().decode())}
    odd = families["odd"]
    assert odd.type == "counter"
    assert odd.documentation == "help with a \\ backslash\nand a newline"
    assert [(s.labels, s.value) for s in odd.samples] == [
        ({"service": 'a "quoted"\\ name\nnext'}, 3)
    ]
    assert families["empty"].samples == []


def test_invoker_stats_count_by_labels() -> None:
    stats = InvokerStats()
    stats.attempt_started("A")
    stats.attempt_started("A")
    stats.attempt_failed("A", "transport")
    stats.retried_after("A", "transport")
    stats.attempt_ended("failed", 0.002)
    stats.attempt_ended("ended", 0.5)
    assert stats.started == {"A": 2}
    assert stats.failed == {("A", "transport"): 1}
    assert stats.retried == {("A", "transport"): 1}
    assert {k: h.count for k, h in stats.durations.items()} == {"failed": 1, "ended": 1}


# ---- the server, after real invocations -----------------------------------------------------


class Flaky:
    failures_left = 0


good = undying.Service("Good")


@good.handler()
async def hello(ctx: undying.Context, name: str) -> str:
    return f"hello {name}"


flaky = undying.Service("Flaky")


@flaky.handler()
async def eventually(ctx: undying.Context) -> str:
    if Flaky.failures_left > 0:
        Flaky.failures_left -= 1
        raise RuntimeError("not yet")
    return "done"


hopeless = undying.Service("Hopeless")


@hopeless.handler(retry_policy=undying.RetryPolicy(max_attempts=3, on_max_attempts="kill"))
async def never(ctx: undying.Context) -> str:
    raise RuntimeError("always broken")


refuser = undying.Service("Refuser")


@refuser.handler()
async def refuse(ctx: undying.Context) -> str:
    raise undying.TerminalError("no", status_code=418)


sleeper = undying.Service("Sleeper")


@sleeper.handler()
async def nap(ctx: undying.Context) -> str:
    await ctx.sleep(timedelta(days=1))
    return "rested"


SERVICES = [good, flaky, hopeless, refuser, sleeper]


class Scrape:
    """One scrape of ``/metrics``, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, sample: str, **labels: str) -> float:
        """The value of the one sample named ``sample`` with exactly ``labels``."""
        found = [
            s.value
            for f in self.families.values()
            for s in f.samples
            if s.name == sample and s.labels == labels
        ]
        assert len(found) == 1, f"{sample}{labels}: {found}\n{self.text}"
        return found[0]

    def values(self, sample: str, label: str) -> dict[str, float]:
        """Every sample named ``sample``, by the value of ``label``."""
        return {
            s.labels[label]: s.value
            for f in self.families.values()
            for s in f.samples
            if s.name == sample
        }

    def type_of(self, family: str) -> str:
        kind: str = self.families[family].type
        return kind


async def scrape(env: TestEnvironment) -> Scrape:
    await env.settle()
    await env.server.db.barrier()
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{env.admin_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    return Scrape(response.text)


class Stored:
    """What the storage holds, counted by scanning it."""

    def __init__(self, env: TestEnvironment) -> None:
        reader = env.server.db.reader
        rows = reader.execute("SELECT status, COUNT(*) FROM inv_status GROUP BY status")
        self.statuses = {str(status): int(n) for status, n in rows}
        entries, size = reader.execute(
            "SELECT COUNT(*), SUM(LENGTH(payload)) FROM journal"
        ).fetchone()
        self.journal_entries = int(entries)
        self.journal_bytes = int(size)


def test_metrics_after_completed_failing_and_retried_invocations(tmp_path: Path) -> None:
    async def test() -> tuple[Scrape, Stored, Scrape]:
        Flaky.failures_left = 2
        async with TestEnvironment(SERVICES, data_dir=tmp_path / "data") as env:
            assert await env.call(hello, "Bob") == "hello Bob"
            assert await env.call(eventually) == "done"
            with pytest.raises(undying.TerminalError):
                await env.call(never)
            with pytest.raises(undying.TerminalError):
                await env.call(refuse)
            await env.send(nap)  # suspended, its timer armed a day ahead
            first = await scrape(env)
            storage = Stored(env)
        # A restart loads the counts of what exists; the event counters start from zero.
        async with TestEnvironment(SERVICES, data_dir=tmp_path / "data") as env:
            second = await scrape(env)
        return first, storage, second

    m, storage, restarted = run(test)

    # invocations by status: the gauge agrees with a scan of the storage
    assert m.type_of("undying_invocations") == "gauge"
    by_status = m.values("undying_invocations", "status")
    assert {s: n for s, n in by_status.items() if n} == {"completed": 4, "suspended": 1}
    assert {s: n for s, n in by_status.items() if n} == storage.statuses
    assert set(by_status) == {"scheduled", "inboxed", "invoked", "suspended", "paused", "completed"}

    assert m.values("undying_invocations_started_total", "service") == {
        "Good": 1,
        "Flaky": 1,
        "Hopeless": 1,
        "Refuser": 1,
        "Sleeper": 1,
    }
    assert m.values("undying_invocations_completed_total", "service") == {
        "Good": 1,
        "Flaky": 1,
        "Hopeless": 1,
        "Refuser": 1,
    }
    assert m.values("undying_invocations_failed_total", "service") == {
        "Hopeless": 1,
        "Refuser": 1,
    }

    # the invoker: Flaky failed twice then ended; Hopeless failed three times and was killed
    assert m.values("undying_invoker_attempts_started_total", "service") == {
        "Good": 1,
        "Flaky": 3,
        "Hopeless": 3,
        "Refuser": 1,
        "Sleeper": 1,
    }
    assert (
        m.value("undying_invoker_attempts_failed_total", service="Flaky", reason="handler_error")
        == 2
    )
    assert (
        m.value("undying_invoker_attempts_failed_total", service="Hopeless", reason="handler_error")
        == 3
    )
    assert (
        m.value("undying_invoker_attempts_retried_total", service="Flaky", reason="handler_error")
        == 2
    )
    assert (
        m.value(
            "undying_invoker_attempts_retried_total", service="Hopeless", reason="handler_error"
        )
        == 2
    )
    assert m.values("undying_invoker_retries_exhausted_total", "service") == {"Hopeless": 1}
    assert (
        m.value("undying_invoker_retries_exhausted_total", service="Hopeless", action="kill") == 1
    )
    durations = m.values("undying_invoker_attempt_duration_seconds_count", "outcome")
    assert durations == {"ended": 3, "failed": 5, "suspended": 1}
    assert (
        m.value("undying_invoker_attempt_duration_seconds_bucket", outcome="failed", le="+Inf") == 5
    )
    assert m.value("undying_invoker_invocations_running") == 0
    assert m.value("undying_invoker_invocations_backing_off") == 0

    # the log and the journals: every appended record was applied, nothing is queued
    appended = m.values("undying_log_records_appended_total", "partition")
    applied = m.values("undying_partition_applied_lsn", "partition")
    assert appended == applied and sum(appended.values()) > 0
    assert set(m.values("undying_partition_queue_depth", "partition").values()) == {0}
    assert sum(m.values("undying_log_bytes_appended_total", "partition").values()) > sum(
        appended.values()
    )
    appends = sum(m.values("undying_log_appends_total", "partition").values())
    assert 0 < appends <= sum(appended.values())
    # the journals as stored: Good, Flaky, Refuser input + output, Hopeless input (killed),
    # Sleeper input + sleep
    entries = sum(m.values("undying_journal_entries_appended_total", "partition").values())
    assert entries == storage.journal_entries == 9
    journal_bytes = sum(m.values("undying_journal_bytes_appended_total", "partition").values())
    assert journal_bytes == storage.journal_bytes
    assert sum(m.values("undying_timers_armed", "partition").values()) == 1

    # storage: one histogram observation per group commit
    commits = m.value("undying_storage_commits_total")
    assert commits > 0
    assert m.value("undying_storage_commit_batch_size_count") == commits
    assert m.value("undying_storage_commit_batch_size_sum") == m.value("undying_storage_jobs_total")
    assert m.value("undying_storage_commit_duration_seconds_count") == commits
    assert m.value("undying_storage_commit_duration_seconds_bucket", le="+Inf") == commits
    assert 0 < m.value("undying_storage_commit_duration_seconds_sum") < commits * 5
    assert m.type_of("undying_storage_commit_duration_seconds") == "histogram"

    # after a restart: what exists is counted again, what happened before is not
    again = restarted.values("undying_invocations", "status")
    assert {s: n for s, n in again.items() if n} == {"completed": 4, "suspended": 1}
    assert restarted.values("undying_invocations_started_total", "service") == {}
    assert restarted.values("undying_invocations_completed_total", "service") == {}
    assert sum(restarted.values("undying_timers_armed", "partition").values()) == 1


def test_queue_depth_counts_records_proposed_and_not_applied() -> None:
    async def test() -> tuple[list[float], list[float]]:
        async with TestEnvironment([good]) as env:
            processor = env.server.partitions[0]
            bodies: list[Body] = [PatchState("Nowhere", f"k{i}", {b"a": b"1"}) for i in range(3)]
            futures = [*processor.propose_many(bodies[:2]), processor.propose(bodies[2])]
            # no await in between: the commit cannot have been applied yet
            before = [processor.queued_records, _queue_depth(env, "0")]
            await asyncio.gather(*futures)
            after = [processor.queued_records, _queue_depth(env, "0")]
            return before, after

    before, after = run(test)
    assert before == [3, 3]
    assert after == [0, 0]


def _queue_depth(env: TestEnvironment, partition: str) -> float:
    text = metrics.render(env.server).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "undying_partition_queue_depth" and s.labels == {"partition": partition}:
                return float(s.value)
    raise AssertionError(f"no queue depth for partition {partition}:\n{text}")


def test_metrics_is_get_only_and_exact_path() -> None:
    async def test() -> tuple[int, int]:
        async with TestEnvironment([good]) as env, httpx.AsyncClient() as client:
            post = await client.post(f"{env.admin_url}/metrics")
            versioned = await client.get(f"{env.admin_url}/v1/metrics")
            return post.status_code, versioned.status_code

    post, versioned = run(test)
    assert post == 405
    assert versioned == 400  # as every admin path: the v1 API is not supported


def test_no_nan_or_negative_values() -> None:
    async def test() -> str:
        async with TestEnvironment([good]) as env:
            await env.call(hello, "Ann")
            return (await scrape(env)).text

    for family in text_string_to_metric_families(run(test)):
        for s in family.samples:
            assert not math.isnan(s.value) and s.value >= 0, s
