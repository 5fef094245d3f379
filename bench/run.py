"""undying vs restate-server 1.7.12, side by side: ``python -m bench.run`` (``make bench``).

Starts both servers (free ephemeral loopback ports), one SDK service process each (the same
``bench/services.py``), registers each with the official CLI, then measures one system at a time,
alternating (ABBA) so drift affects both alike:

- sequential latency (1 in flight): ``noop``, ``steps(3)``, ``steps(10)``;
- closed-loop throughput of ``steps(3)`` at concurrency 1/8/32/128.

Before every measurement it waits until the machine is quiet, and it records machine-wide and
per-process CPU for the measured window. Prints Markdown tables with the ratio undying/restate and
writes every number to ``bench/results/bench-<stamp>.json`` (plus ``.md`` and the logs).
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench import report
from bench.loadgen import LoadResult, closed_loop, sequential
from bench.quiet import CpuSampler, Group, rss_mib, wait_quiet
from bench.systems import System
from undying._version import __version__ as undying_version
from undying.testing.paths import node_binary, restate_cli_argv, restate_server_argv

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO / "bench" / "results"
SYSTEM_NAMES = ("undying", "restate")


@dataclass(frozen=True)
class Cell:
    """One measurement configuration (done once per system per round)."""

    key: str
    kind: str  # "latency" | "throughput"
    handler: str
    n: int
    calls: int = 0
    concurrency: int = 1

    @property
    def label(self) -> str:
        work = "noop" if self.handler == "noop" else f"steps({self.n})"
        if self.kind == "latency":
            return f"{work} seq n={self.calls}"
        return f"{work} c={self.concurrency}"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark undying against restate-server 1.7.12, side by side.",
    )
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 2; --quick: 1)")
    p.add_argument("--quick", action="store_true", help="short smoke run (about 1 minute)")
    p.add_argument("--only", choices=SYSTEM_NAMES, help="start and measure only this system")
    p.add_argument("--calls", type=int, default=None, help="sequential calls (noop, steps(3))")
    p.add_argument("--calls-steps10", type=int, default=None, help="sequential calls, steps(10)")
    p.add_argument("--warmup-calls", type=int, default=None, help="warm-up calls before each")
    p.add_argument("--warmup", type=float, default=None, help="throughput warm-up seconds")
    p.add_argument("--duration", type=float, default=None, help="throughput window seconds")
    p.add_argument(
        "--concurrency",
        default="1,8,32,128",
        help="throughput concurrencies, comma-separated (default 1,8,32,128)",
    )
    p.add_argument("--no-latency", action="store_true", help="skip the sequential runs")
    p.add_argument("--no-throughput", action="store_true", help="skip the throughput runs")
    p.add_argument(
        "--quiet-threshold",
        type=float,
        default=25.0,
        help="machine busy %% of one core that counts as quiet (default 25)",
    )
    p.add_argument("--quiet-seconds", type=int, default=None, help="quiet seconds needed (2)")
    p.add_argument("--quiet-max", type=float, default=None, help="max wait for quiet (90 s)")
    p.add_argument("--timeout", type=float, default=60.0, help="per-call timeout seconds")
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    p.add_argument(
        "--keep-data", action="store_true", help="keep the servers' data dirs (temp dir)"
    )
    args = p.parse_args(argv)
    quick = args.quick
    defaults: dict[str, Any] = {
        "rounds": 1 if quick else 2,
        "calls": 100 if quick else 1000,
        "calls_steps10": 50 if quick else 500,
        "warmup_calls": 20 if quick else 100,
        "warmup": 1.0 if quick else 3.0,
        "duration": 3.0 if quick else 15.0,
        "quiet_seconds": 1 if quick else 2,
        "quiet_max": 10.0 if quick else 90.0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    return args


def _cells(args: argparse.Namespace) -> list[Cell]:
    cells: list[Cell] = []
    if not args.no_latency:
        cells += [
            Cell("noop", "latency", "noop", 0, calls=args.calls),
            Cell("steps3", "latency", "steps", 3, calls=args.calls),
            Cell("steps10", "latency", "steps", 10, calls=args.calls_steps10),
        ]
    if not args.no_throughput:
        cells += [
            Cell(f"steps3_c{c}", "throughput", "steps", 3, concurrency=c) for c in args.concurrency
        ]
    return cells


# -- environment ----------------------------------------------------------------------------------


def _run_text(argv: Sequence[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=30, cwd=cwd, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable: {exc}"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""
    )


def _meminfo_total() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "?"


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    git_head = _run_text(["git", "rev-parse", "HEAD"], cwd=REPO)
    try:
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPO,
            check=False,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        dirty = ["unknown"]
    return {
        "machine": {
            "nproc": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "memory": _meminfo_total(),
            "kernel": platform.release(),
            "platform": platform.platform(),
            "loadavg_at_start": _loadavg(),
        },
        "versions": {
            "python": platform.python_version(),
            "undying": undying_version,
            "undying_git_head": git_head,
            "undying_src_dirty": bool(dirty),
            "undying_src_changes": dirty,
            "sqlite": sqlite3.sqlite_version,
            "restate_server": _run_text([*restate_server_argv(), "--version"]),
            "restate_cli": _run_text([*restate_cli_argv(), "--version"]),
            "node": _run_text([str(node_binary()), "--version"]),
            "restate_sdk": _package("restate-sdk"),
            "hypercorn": _package("hypercorn"),
            "aiohttp": _package("aiohttp"),
            "h2": _package("h2"),
            "uvloop": _package("uvloop"),
            "protobuf": _package("protobuf"),
        },
        "durability": {
            "undying": "embedded SQLite, WAL, synchronous=FULL, group commit (one fsync per "
            "batch): every acknowledged step is fsynced; default 4 partitions",
            "restate": "restate-server 1.7.12 defaults (single node, replicated loglet with the "
            "local log-server, replication 1, RocksDB WAL fsync on; 24 partitions)",
        },
    }


# -- measuring ------------------------------------------------------------------------------------


def _groups(systems: dict[str, System]) -> list[Group]:
    groups = [Group("loadgen", (os.getpid(),), tree=False)]
    for name, system in systems.items():
        groups.append(Group(f"{name}.server", (system.server_pid,)))
        groups.append(Group(f"{name}.sdk", (system.sdk_pid,)))
    return groups


class Target(Protocol):
    """Something serving the bench handlers: a system, or one SDK's deployment."""

    def url(self, handler: str) -> str: ...


async def measure(cell: Cell, target: Target, sampler: CpuSampler, args: Any) -> LoadResult:
    """Run ``cell``'s load against ``target``."""
    url = target.url(cell.handler)
    body = json.dumps(cell.n).encode()
    if cell.kind == "latency":
        return await sequential(
            url,
            body,
            n=cell.calls,
            warmup=args.warmup_calls,
            sampler=sampler,
            timeout_s=args.timeout,
        )
    return await closed_loop(
        url,
        body,
        concurrency=cell.concurrency,
        warmup_s=args.warmup,
        duration_s=args.duration,
        sampler=sampler,
        timeout_s=args.timeout,
    )


def _record(
    rnd: int,
    order: int,
    name: str,
    cell: Cell,
    result: LoadResult,
    quiet: dict[str, Any],
    args: Any,
) -> dict[str, Any]:
    cpu = result.cpu
    peer = sum(v for k, v in cpu.groups_pct.items() if k.split(".")[0] not in (name, "loadgen"))
    cpu_pct = {
        "server": cpu.groups_pct.get(f"{name}.server", 0.0),
        "sdk": cpu.groups_pct.get(f"{name}.sdk", 0.0),
        "loadgen": cpu.groups_pct.get("loadgen", 0.0),
        "peer": peer,
        "other": cpu.other_pct,
        "machine": cpu.machine_pct,
    }
    flags: list[str] = []
    if cpu.other_pct > args.quiet_threshold:
        flags.append(f"other>{args.quiet_threshold:g}%")
    if not quiet["quiet"]:
        flags.append("noisy-start")
    if result.errors or result.warmup_errors:
        flags.append("errors")
    return {
        "round": rnd,
        "order": order,
        "system": name,
        "cell": cell.key,
        "label": cell.label,
        "kind": cell.kind,
        "handler": cell.handler,
        "n": cell.n,
        "concurrency": cell.concurrency,
        "quiet": quiet,
        "result": result.to_json(),
        "cpu_pct": {k: round(v, 1) for k, v in cpu_pct.items()},
        "cpu_ms_per_call": {
            "server": round(result.cpu_ms_per_call(f"{name}.server"), 3),
            "sdk": round(result.cpu_ms_per_call(f"{name}.sdk"), 3),
            "loadgen": round(result.cpu_ms_per_call("loadgen"), 3),
        },
        "flags": flags,
        "finished_at": dt.datetime.now().isoformat(timespec="seconds"),
    }


def _progress(rec: dict[str, Any], total: int, index: int) -> str:
    res = rec["result"]
    lat = res["latency_ms"]
    cpu = rec["cpu_pct"]
    per = rec["cpu_ms_per_call"]

    def f(value: float | None, digits: int = 2) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    return (
        f"[r{rec['round']} {index}/{total}] {rec['system']:<7} {rec['label']:<22} "
        f"{res['throughput_per_s']:7.1f}/s  p50 {f(lat['p50'])}  p99 {f(lat['p99'])}  "
        f"max {f(lat['max'], 1)} ms  err {res['errors']}  | CPU% srv {cpu['server']:.0f} "
        f"sdk {cpu['sdk']:.0f} lg {cpu['loadgen']:.0f} peer {cpu['peer']:.0f} "
        f"other {cpu['other']:.0f}  ms/inv srv {per['server']:.2f} sdk {per['sdk']:.2f}"
        f"  (quiet {'yes' if rec['quiet']['quiet'] else 'NO'} after "
        f"{rec['quiet']['waited_s']:.0f}s)"
        + ("  FLAGS " + ",".join(rec["flags"]) if rec["flags"] else "")
    )


def _idle_cpu(sampler: CpuSampler, seconds: float) -> dict[str, Any]:
    start = sampler.snapshot()
    time.sleep(seconds)
    return sampler.window(start, sampler.snapshot()).to_json()


def _save(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


def run(args: argparse.Namespace) -> int:
    names = [args.only] if args.only else list(SYSTEM_NAMES)
    cells = _cells(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out_json = args.results_dir / f"bench-{stamp}.json"
    out_md = args.results_dir / f"bench-{stamp}.md"
    run_root = args.results_dir / f"bench-{stamp}"
    data_root = Path(tempfile.mkdtemp(prefix="undying-bench-"))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    data: dict[str, Any] = {
        "schema": 1,
        "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        "command": [sys.executable, "-m", "bench.run", *sys.argv[1:]],
        "settings": settings,
        "environment": environment(),
        "systems": {},
        "measurements": [],
    }
    print(f"results: {out_json}\nlogs:    {run_root}\ndata:    {data_root}", file=sys.stderr)
    systems: dict[str, System] = {}
    started = time.monotonic()
    try:
        for name in names:
            system = System(name, run_root / name, data_root)
            systems[name] = system
            t = time.monotonic()
            system.start()
            system.check()
            print(
                f"{name}: ingress {system.server.ingress_url}, deployment {system.service.url} "
                f"registered ({system.deployment_id}) in {time.monotonic() - t:.1f}s",
                file=sys.stderr,
            )
        sampler = CpuSampler(_groups(systems))
        for name, system in systems.items():
            data["systems"][name] = system.describe()
        quiet0 = wait_quiet(
            threshold_pct=args.quiet_threshold,
            consecutive=args.quiet_seconds,
            max_wait_s=args.quiet_max,
        )
        data["idle_cpu"] = {"quiet": quiet0.to_json(), "window": _idle_cpu(sampler, 3.0)}
        total = len(cells) * len(names) * args.rounds
        index = 0
        for rnd in range(1, args.rounds + 1):
            for i, cell in enumerate(cells):
                order = names if (i + rnd - 1) % 2 == 0 else names[::-1]
                for name in order:
                    index += 1
                    quiet = wait_quiet(
                        threshold_pct=args.quiet_threshold,
                        consecutive=args.quiet_seconds,
                        max_wait_s=args.quiet_max,
                    )
                    result = asyncio.run(measure(cell, systems[name], sampler, args))
                    rec = _record(rnd, index, name, cell, result, quiet.to_json(), args)
                    data["measurements"].append(rec)
                    print(_progress(rec, total, index), file=sys.stderr, flush=True)
                    _save(out_json, data)
    except KeyboardInterrupt:
        print("interrupted; writing what was measured", file=sys.stderr)
        data["interrupted"] = True
    finally:
        data["elapsed_s"] = round(time.monotonic() - started, 1)
        data["environment"]["machine"]["loadavg_at_end"] = _loadavg()
        for name, system in systems.items():
            info = data["systems"].setdefault(name, {})
            with contextlib.suppress(Exception):
                info["rss_mib_at_end"] = rss_mib(
                    {"server": system.server_pid, "sdk": system.sdk_pid}
                )
            with contextlib.suppress(Exception):
                system.stop()
            info["data_mib_at_end"] = system.data_size_mib()
            info["log_problems"] = system.log_problems()
        data["finished_at"] = dt.datetime.now().isoformat(timespec="seconds")
        data["targets"] = report.targets(data["measurements"])
        _save(out_json, data)
        if not args.keep_data:
            shutil.rmtree(data_root, ignore_errors=True)

    text = report.render(data["measurements"])
    out_md.write_text(text + "\n")
    print(text)
    for name, info in data["systems"].items():
        for log, facts in info.get("log_problems", {}).items():
            if facts["problems"]:
                path = run_root / name / "logs" / log
                print(f"{name}: {facts['problems']} warning/error lines in {path}")
    print(f"raw numbers: {out_json}\ntables:      {out_md}\nelapsed:     {data['elapsed_s']:.0f} s")
    return 130 if data.get("interrupted") else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the servers get stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
