"""Prometheus metrics of the server, served by the admin API at ``/metrics``.

Nothing here sits on a hot path. The components count for themselves in plain attributes (ints,
dicts, :class:`Histogram`), which costs an addition or a dict update where it happens, and
:func:`render` reads them all when ``/metrics`` is scraped and writes the text exposition format
(version 0.0.4). Gauges are read from what the server keeps anyway (invocations per status are
counted by the partition stores as statuses change, queue depths by the processors), never by
scanning storage.

Counters count since the server started.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, Literal

from undying._version import __version__

if TYPE_CHECKING:
    from undying.server.partition.processor import PartitionProcessor
    from undying.server.server import Server

__all__ = [
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "SIZE_BUCKETS",
    "Exposition",
    "Histogram",
    "InvokerStats",
    "render",
]

#: The ``content-type`` of the text exposition format.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds: from 100 µs (a fast commit) to a minute (a long attempt).
DURATION_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
#: Counts: powers of two up to the largest group commit (4096 jobs).
SIZE_BUCKETS: Final = tuple(float(2**i) for i in range(13))

Kind = Literal["counter", "gauge", "histogram"]


class Histogram:
    """Counts of observations per bucket, and their sum; :meth:`observe` is all a hot path pays.

    Not locked: one thread observes (the storage writer, or the event loop), the scrape reads,
    and a scrape that races an observation is off by that one observation.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        #: per bucket (not cumulative); the last one is ``+Inf``
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)


class InvokerStats:
    """What the invoker counts: attempts started, failed (by reason), retried, exhausted."""

    __slots__ = ("durations", "exhausted", "failed", "retried", "started")

    def __init__(self) -> None:
        #: service -> attempts started
        self.started: dict[str, int] = {}
        #: (service, reason) -> failed attempts
        self.failed: dict[tuple[str, str], int] = {}
        #: (service, reason) -> failed attempts followed by another attempt
        self.retried: dict[tuple[str, str], int] = {}
        #: (service, action) -> invocations paused or killed when their attempts ran out
        self.exhausted: dict[tuple[str, str], int] = {}
        #: outcome -> wall-clock duration of attempts, in seconds
        self.durations: dict[str, Histogram] = {}

    def attempt_started(self, service: str) -> None:
        self.started[service] = self.started.get(service, 0) + 1

    def attempt_ended(self, outcome: str, seconds: float) -> None:
        h = self.durations.get(outcome)
        if h is None:
            h = self.durations[outcome] = Histogram(DURATION_BUCKETS)
        h.observe(seconds)

    def attempt_failed(self, service: str, reason: str) -> None:
        key = (service, reason)
        self.failed[key] = self.failed.get(key, 0) + 1

    def retried_after(self, service: str, reason: str) -> None:
        key = (service, reason)
        self.retried[key] = self.retried.get(key, 0) + 1

    def exhausted_with(self, service: str, action: str) -> None:
        key = (service, action)
        self.exhausted[key] = self.exhausted.get(key, 0) + 1


# ---- the text exposition format ---------------------------------------------------------------


class Exposition:
    """Writes metric families in the Prometheus text format, version 0.0.4."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: Kind, help_text: str) -> None:
        """Start a family; its samples follow."""
        escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self._lines.append(f"# HELP {name} {escaped}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        self._lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(self, name: str, h: Histogram, labels: Mapping[str, str] | None = None) -> None:
        """The ``_bucket``, ``_sum`` and ``_count`` samples of ``h`` (a family started before)."""
        counts = list(h.counts)  # one snapshot, so the buckets and the count agree
        total = 0
        base = dict(labels or {})
        for bound, n in zip((*h.bounds, math.inf), counts, strict=True):
            total += n
            self.sample(f"{name}_bucket", total, {**base, "le": _number(bound)})
        self.sample(f"{name}_sum", h.sum, base)
        self.sample(f"{name}_count", total, base)

    def counter(
        self, name: str, help_text: str, values: Iterable[tuple[Mapping[str, str], float]]
    ) -> None:
        """A whole counter family (``name`` ends with ``_total``)."""
        self.family(name, "counter", help_text)
        for labels, value in values:
            self.sample(name, value, labels)

    def gauge(
        self, name: str, help_text: str, values: Iterable[tuple[Mapping[str, str], float]]
    ) -> None:
        """A whole gauge family."""
        self.family(name, "gauge", help_text)
        for labels, value in values:
            self.sample(name, value, labels)

    def text(self) -> bytes:
        return ("\n".join(self._lines) + "\n").encode()


def _labels(labels: Mapping[str, str] | None) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(value)


# ---- the server's metrics ---------------------------------------------------------------------


def render(server: Server) -> bytes:
    """Every metric of ``server``, in the text exposition format."""
    out = Exposition()
    out.gauge(
        "undying_build_info", "The undying version (always 1).", [({"version": __version__}, 1)]
    )
    _invocations(out, server)
    _partitions(out, server)
    _storage(out, server)
    _invoker(out, server)
    return out.text()


def _by_service(counts: Iterable[Mapping[str, int]]) -> list[tuple[Mapping[str, str], float]]:
    total: dict[str, int] = {}
    for c in counts:
        for service, n in c.items():
            total[service] = total.get(service, 0) + n
    return [({"service": s}, n) for s, n in sorted(total.items())]


def _invocations(out: Exposition, server: Server) -> None:
    counts = [p.store.counts for p in server.partitions]
    by_status: dict[str, int] = {}
    for c in counts:
        for status, n in c.by_status.items():
            by_status[status] = by_status.get(status, 0) + n
    out.gauge(
        "undying_invocations",
        "Invocations known to the server, by status (completed ones until they are purged).",
        [({"status": s}, n) for s, n in by_status.items()],
    )
    out.counter(
        "undying_invocations_started_total",
        "Invocations that began running (left scheduled or inboxed for their first attempt).",
        _by_service(c.started for c in counts),
    )
    out.counter(
        "undying_invocations_completed_total",
        "Invocations that completed, successfully or not.",
        _by_service(c.completed for c in counts),
    )
    out.counter(
        "undying_invocations_failed_total",
        "Invocations that completed with a failure (terminal error, killed, cancelled).",
        _by_service(c.failed for c in counts),
    )


def _partitions(out: Exposition, server: Server) -> None:
    parts = server.partitions

    def each(value: Callable[[PartitionProcessor], float]) -> list[tuple[Mapping[str, str], float]]:
        return [({"partition": str(p.partition)}, value(p)) for p in parts]

    out.counter(
        "undying_log_appends_total",
        "Appends to the partition's log (one durable write each, of one or more records).",
        each(lambda p: p.appends),
    )
    out.counter(
        "undying_log_records_appended_total",
        "Records appended to the partition's log.",
        each(lambda p: p.appended_records),
    )
    out.counter(
        "undying_log_bytes_appended_total",
        "Bytes of the records appended to the partition's log.",
        each(lambda p: p.appended_bytes),
    )
    out.counter(
        "undying_journal_entries_appended_total",
        "Entries added to invocation journals (commands and notifications).",
        each(lambda p: p.store.journal_entries),
    )
    out.counter(
        "undying_journal_bytes_appended_total",
        "Bytes of the entries added to invocation journals.",
        each(lambda p: p.store.journal_bytes),
    )
    out.gauge(
        "undying_partition_queue_depth",
        "Records proposed to the partition and not applied yet (waiting for their commit).",
        each(lambda p: p.queued_records),
    )
    out.gauge(
        "undying_partition_applied_lsn",
        "The last log position the partition's state machine applied.",
        each(lambda p: p.store.applied_lsn),
    )
    out.gauge(
        "undying_timers_armed",
        "Durable timers stored (sleeps and delayed invocations not fired yet).",
        each(lambda p: p.store.timers_armed),
    )


def _storage(out: Exposition, server: Server) -> None:
    db = server.db
    out.counter(
        "undying_storage_commits_total",
        "Group commits of the storage writer (one transaction and one fsync each).",
        [({}, db.commits)],
    )
    out.counter(
        "undying_storage_jobs_total",
        "Write jobs committed (log appends, state flushes, metadata).",
        [({}, db.jobs)],
    )
    out.gauge(
        "undying_storage_write_queue_depth",
        "Write jobs queued for the storage writer and not taken yet.",
        [({}, db.queued)],
    )
    out.family(
        "undying_storage_commit_batch_size",
        "histogram",
        "Write jobs per group commit: how many writes share one fsync.",
    )
    out.histogram("undying_storage_commit_batch_size", db.batch_sizes)
    out.family(
        "undying_storage_commit_duration_seconds",
        "histogram",
        "Duration of a group commit, from BEGIN to the end of COMMIT (its fsync included).",
    )
    out.histogram("undying_storage_commit_duration_seconds", db.commit_seconds)


def _invoker(out: Exposition, server: Server) -> None:
    invoker = server.invoker
    stats = invoker.stats
    out.counter(
        "undying_invoker_attempts_started_total",
        "Attempts started (requests to a deployment, or attempts failing before one).",
        [({"service": s}, n) for s, n in sorted(stats.started.items())],
    )
    out.counter(
        "undying_invoker_attempts_failed_total",
        "Attempts that failed, by reason.",
        [({"service": s, "reason": r}, n) for (s, r), n in sorted(stats.failed.items())],
    )
    out.counter(
        "undying_invoker_attempts_retried_total",
        "Failed attempts followed by a retry, by the reason of the failure.",
        [({"service": s, "reason": r}, n) for (s, r), n in sorted(stats.retried.items())],
    )
    out.counter(
        "undying_invoker_retries_exhausted_total",
        "Invocations whose attempts ran out, by what happened to them (pause or kill).",
        [({"service": s, "action": a}, n) for (s, a), n in sorted(stats.exhausted.items())],
    )
    out.family(
        "undying_invoker_attempt_duration_seconds",
        "histogram",
        "Wall-clock duration of attempts, by outcome (ended, suspended, failed, aborted).",
    )
    for outcome, h in sorted(stats.durations.items()):
        out.histogram("undying_invoker_attempt_duration_seconds", h, {"outcome": outcome})
    out.gauge(
        "undying_invoker_invocations_running",
        "Invocations the invoker runs attempts for (in flight or backing off).",
        [({}, invoker.running)],
    )
    out.gauge(
        "undying_invoker_invocations_backing_off",
        "Invocations waiting for their next attempt after a failure.",
        [({}, invoker.running - invoker.attempting)],
    )
