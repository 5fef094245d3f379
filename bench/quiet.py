"""CPU accounting from ``/proc`` and "wait until the machine is quiet".

All CPU figures are in **% of one core** (the machine maximum is ``100 * nproc``), computed from
``utime + stime`` in ``/proc/<pid>/stat`` (all threads of a process) and the first line of
``/proc/stat`` (machine-wide busy = everything but idle and iowait).

A :class:`CpuSampler` knows named *groups* of processes (e.g. ``undying.server``,
``undying.sdk``, ``loadgen``); a group is a set of root pids plus, optionally, all their
descendants at sampling time. :meth:`CpuSampler.window` turns two snapshots into per-group
usage, the machine total and ``other`` (machine minus every group we know of), together with the
busiest processes that are not ours, so a contaminated measurement can be explained.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "CLK_TCK",
    "CpuSampler",
    "CpuSnapshot",
    "CpuWindow",
    "Group",
    "QuietResult",
    "machine_busy_ticks",
    "wait_quiet",
]

CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
NCPU: Final = os.cpu_count() or 1


def machine_busy_ticks() -> tuple[int, int]:
    """``(busy, total)`` jiffies of the whole machine since boot (``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = f.readline().split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice (guest* are in user*)
    values = [int(v) for v in fields[1:9]]
    total = sum(values)
    busy = total - values[3] - values[4]
    return busy, total


def _read_stat(pid: int) -> tuple[int, int, str, int] | None:
    """``(ppid, utime + stime, comm, starttime)`` of ``pid``, or ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            raw = f.read()
    except OSError:
        return None
    close = raw.rfind(")")
    comm = raw[raw.find("(") + 1 : close]
    rest = raw[close + 2 :].split()
    # rest[0] = state (field 3); ppid = field 4; utime = 14; stime = 15; starttime = 22
    return int(rest[1]), int(rest[11]) + int(rest[12]), comm, int(rest[19])


def _all_processes() -> dict[int, tuple[int, int, str, int]]:
    procs: dict[int, tuple[int, int, str, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(int(entry))
            if stat is not None:
                procs[int(entry)] = stat
    return procs


@dataclass(frozen=True)
class Group:
    """Processes counted together: ``roots`` and (if ``tree``) their descendants."""

    name: str
    roots: tuple[int, ...]
    tree: bool = True


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    machine_busy: int
    machine_total: int
    #: pid -> (ppid, ticks, comm, starttime) of every process on the machine
    procs: dict[int, tuple[int, int, str, int]]
    #: group name -> pids that belonged to it at this moment
    members: dict[str, frozenset[int]]


@dataclass
class CpuWindow:
    """CPU usage between two snapshots (percent of one core, and CPU seconds)."""

    elapsed_s: float
    machine_pct: float
    groups_pct: dict[str, float]
    groups_cpu_s: dict[str, float]
    other_pct: float
    #: the busiest processes that are not ours: (comm, pid, % of one core)
    top_other: list[tuple[str, int, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "machine_pct": round(self.machine_pct, 1),
            "other_pct": round(self.other_pct, 1),
            "groups_pct": {k: round(v, 1) for k, v in self.groups_pct.items()},
            "groups_cpu_s": {k: round(v, 3) for k, v in self.groups_cpu_s.items()},
            "top_other": [
                {"comm": c, "pid": p, "pct": round(pct, 1)} for c, p, pct in self.top_other
            ],
        }


class CpuSampler:
    """Snapshots of machine and per-group CPU time."""

    def __init__(self, groups: Iterable[Group]) -> None:
        self.groups = list(groups)

    def snapshot(self) -> CpuSnapshot:
        busy, total = machine_busy_ticks()
        procs = _all_processes()
        wall = time.monotonic()
        children: dict[int, list[int]] = {}
        for pid, (ppid, *_) in procs.items():
            children.setdefault(ppid, []).append(pid)
        members: dict[str, frozenset[int]] = {}
        for group in self.groups:
            found: set[int] = set()
            stack = [pid for pid in group.roots if pid in procs]
            while stack:
                pid = stack.pop()
                if pid in found:
                    continue
                found.add(pid)
                if group.tree:
                    stack.extend(children.get(pid, ()))
            members[group.name] = frozenset(found)
        return CpuSnapshot(wall, busy, total, procs, members)

    def window(self, start: CpuSnapshot, end: CpuSnapshot, top: int = 3) -> CpuWindow:
        elapsed = max(end.wall - start.wall, 1e-9)

        def pct(ticks: float) -> float:
            return ticks / CLK_TCK / elapsed * 100.0

        def delta(pid: int) -> int:
            after = end.procs.get(pid)
            if after is None:
                return 0
            before = start.procs.get(pid)
            # a pid that is new (or was reused) counts from zero
            if before is None or before[3] != after[3]:
                return after[1]
            return after[1] - before[1]

        ours: set[int] = set()
        groups_ticks: dict[str, int] = {}
        for group in self.groups:
            pids = end.members.get(group.name, frozenset()) | start.members.get(
                group.name, frozenset()
            )
            pids = frozenset(p for p in pids if p not in ours)
            ours |= pids
            groups_ticks[group.name] = sum(delta(p) for p in pids)
        machine_ticks = end.machine_busy - start.machine_busy
        other_ticks = machine_ticks - sum(groups_ticks.values())
        strangers = sorted(
            ((delta(pid), pid) for pid in end.procs if pid not in ours), reverse=True
        )[:top]
        return CpuWindow(
            elapsed_s=elapsed,
            machine_pct=pct(machine_ticks),
            groups_pct={k: pct(v) for k, v in groups_ticks.items()},
            groups_cpu_s={k: v / CLK_TCK for k, v in groups_ticks.items()},
            other_pct=pct(other_ticks),
            top_other=[(end.procs[pid][2], pid, pct(t)) for t, pid in strangers if t > 0],
        )


@dataclass
class QuietResult:
    """Outcome of :func:`wait_quiet`."""

    quiet: bool
    waited_s: float
    #: machine busy % of one core, one value per sample interval
    samples: list[float]

    def to_json(self) -> dict[str, Any]:
        return {
            "quiet": self.quiet,
            "waited_s": round(self.waited_s, 2),
            "samples_pct": [round(s, 1) for s in self.samples[-10:]],
        }


def wait_quiet(
    *,
    threshold_pct: float = 25.0,
    consecutive: int = 2,
    interval_s: float = 1.0,
    max_wait_s: float = 90.0,
) -> QuietResult:
    """Block until machine-wide busy CPU stays below ``threshold_pct`` (of one core) for
    ``consecutive`` intervals in a row, or ``max_wait_s`` passed (then ``quiet=False``)."""
    started = time.monotonic()
    samples: list[float] = []
    streak = 0
    busy0, _ = machine_busy_ticks()
    t0 = time.monotonic()
    while True:
        time.sleep(interval_s)
        busy1, _ = machine_busy_ticks()
        t1 = time.monotonic()
        value = (busy1 - busy0) / CLK_TCK / (t1 - t0) * 100.0
        samples.append(value)
        busy0, t0 = busy1, t1
        streak = streak + 1 if value < threshold_pct else 0
        waited = t1 - started
        if streak >= consecutive:
            return QuietResult(True, waited, samples)
        if waited >= max_wait_s:
            return QuietResult(False, waited, samples)


def rss_mib(pids: Mapping[str, int]) -> dict[str, float]:
    """Resident set size (MiB) of each named pid (``VmRSS``); missing processes are skipped."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out[name] = round(int(line.split()[1]) / 1024, 1)
                        break
        except OSError:
            continue
    return out
