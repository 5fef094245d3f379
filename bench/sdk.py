"""The undying SDK vs restate-sdk, side by side on one server: ``python -m bench.sdk``.

Starts one server (restate-server 1.7.12 by default; ``--server undying`` for ours), two SDK
processes serving the same ``bench`` service, one written with restate-sdk 1.2.0
(``bench/services.py``, service ``bench``) and one with the undying SDK
(``bench/sdk_services.py``, service ``ubench``), both on hypercorn (h2c), both registered with
the official CLI (HTTP/2 bidi). Then it measures one SDK at a time, alternating (ABBA):

- sequential latency (1 in flight): ``noop``, ``steps(0)``, ``steps(3)``, ``steps(10)``, and the
  per-step time = the least-squares slope of latency over ``n`` ∈ {0, 3, 10};
- closed-loop throughput of ``steps(3)`` at concurrency 1/8/32.

Before every measurement it waits until the machine is quiet, and records CPU per process
(server, each SDK, load generator) for the measured window. Prints Markdown tables with the ratio
undying-SDK / restate-sdk and writes every number to ``bench/results/sdk-<stamp>.json`` (plus
``.md`` and the logs). See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import sdk_report
from bench.loadgen import LoadResult
from bench.quiet import CpuSampler, Group, rss_mib, wait_quiet
from bench.run import Cell, environment, measure
from undying.testing import RestateCli, Server, ServiceProcess, create_server, python_service
from undying.testing.httpclient import request

BENCH = Path(__file__).resolve().parent
DEFAULT_RESULTS = BENCH / "results"

#: The two deployments: name -> (service script, service name).
SDKS: dict[str, tuple[Path, str]] = {
    "undying-sdk": (BENCH / "sdk_services.py", "ubench"),
    "restate-sdk": (BENCH / "services.py", "bench"),
}


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.sdk",
        description="Benchmark the undying SDK against restate-sdk on one server.",
    )
    p.add_argument("--server", choices=("restate", "undying"), default="restate")
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 2; --quick: 1)")
    p.add_argument("--quick", action="store_true", help="short smoke run (about 1 minute)")
    p.add_argument("--only", choices=tuple(SDKS), help="start and measure only this SDK")
    p.add_argument("--calls", type=int, default=None, help="sequential calls (noop, steps 0/3)")
    p.add_argument("--calls-steps10", type=int, default=None, help="sequential calls, steps(10)")
    p.add_argument("--warmup-calls", type=int, default=None, help="warm-up calls before each")
    p.add_argument("--warmup", type=float, default=None, help="throughput warm-up seconds")
    p.add_argument("--duration", type=float, default=None, help="throughput window seconds")
    p.add_argument("--concurrency", default="1,8,32", help="throughput concurrencies (1,8,32)")
    p.add_argument("--no-latency", action="store_true", help="skip the sequential runs")
    p.add_argument("--no-throughput", action="store_true", help="skip the throughput runs")
    p.add_argument("--quiet-threshold", type=float, default=25.0, help="%% of one core (25)")
    p.add_argument("--quiet-seconds", type=int, default=None, help="quiet seconds needed (2)")
    p.add_argument("--quiet-max", type=float, default=None, help="max wait for quiet (90 s)")
    p.add_argument("--timeout", type=float, default=60.0, help="per-call timeout seconds")
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--keep-data", action="store_true", help="keep the server's data dir")
    p.add_argument(
        "--undying-src",
        type=Path,
        default=None,
        help="serve the undying SDK from this src/ directory (e.g. an older checkout's, to "
        "compare versions); default: the installed one",
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
            Cell("steps0", "latency", "steps", 0, calls=args.calls),
            Cell("steps3", "latency", "steps", 3, calls=args.calls),
            Cell("steps10", "latency", "steps", 10, calls=args.calls_steps10),
        ]
    if not args.no_throughput:
        cells += [
            Cell(f"steps3_c{c}", "throughput", "steps", 3, concurrency=c) for c in args.concurrency
        ]
    return cells


class Deployment:
    """One SDK's service process, registered on the shared server."""

    def __init__(self, name: str, root: Path, env: dict[str, str] | None = None) -> None:
        script, service_name = SDKS[name]
        self.name = name
        self.service_name = service_name
        self.log_dir = root / name / "logs"
        self.service: ServiceProcess = python_service(
            script, log_dir=self.log_dir, name=name, env=env
        )
        self.deployment_id: str | None = None
        self.ingress_url = ""

    def start(self, server: Server, cli: RestateCli) -> None:
        self.service.start()
        self.ingress_url = server.ingress_url
        result = cli.register(self.service.url)
        if result.returncode != 0:
            raise RuntimeError(f"registration of {self.name} failed:\n{result}")
        self.deployment_id = result.deployment_id

    def url(self, handler: str) -> str:
        return f"{self.ingress_url}/{self.service_name}/{handler}"

    def check(self) -> None:
        """One call of each handler, answers checked (also waits until the service is routable)."""
        for handler, n, expected in (("noop", 0, "ok"), ("steps", 3, "done")):
            resp = request(
                "POST",
                self.url(handler),
                body=json.dumps(n).encode(),
                headers={"content-type": "application/json"},
                timeout=30.0,
            )
            if resp.status != 200 or json.loads(resp.body) != expected:
                raise RuntimeError(
                    f"{self.name}: {handler}({n}) answered {resp.status} {resp.body[:300]!r}"
                )

    @property
    def pid(self) -> int:
        proc = self.service.process
        if proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return proc.pid

    def stop(self) -> None:
        try:
            self.service.stop()
        finally:
            if self.service.running:
                self.service.kill()


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
    peer = sum(v for k, v in cpu.groups_pct.items() if k not in (name, "server", "loadgen"))
    cpu_pct = {
        "server": cpu.groups_pct.get("server", 0.0),
        "sdk": cpu.groups_pct.get(name, 0.0),
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
            "server": round(result.cpu_ms_per_call("server"), 3),
            "sdk": round(result.cpu_ms_per_call(name), 3),
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
        f"[r{rec['round']} {index}/{total}] {rec['system']:<11} {rec['label']:<22} "
        f"{res['throughput_per_s']:7.1f}/s  p50 {f(lat['p50'])}  p99 {f(lat['p99'])}  "
        f"err {res['errors']}  | CPU% srv {cpu['server']:.0f} sdk {cpu['sdk']:.0f} "
        f"lg {cpu['loadgen']:.0f} peer {cpu['peer']:.0f} other {cpu['other']:.0f}  "
        f"ms/inv srv {per['server']:.2f} sdk {per['sdk']:.2f}"
        f"  (quiet {'yes' if rec['quiet']['quiet'] else 'NO'} after "
        f"{rec['quiet']['waited_s']:.0f}s)"
        + ("  FLAGS " + ",".join(rec["flags"]) if rec["flags"] else "")
    )


def _save(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


def _wait_quiet(args: argparse.Namespace) -> Any:
    return wait_quiet(
        threshold_pct=args.quiet_threshold,
        consecutive=args.quiet_seconds,
        max_wait_s=args.quiet_max,
    )


def run(args: argparse.Namespace) -> int:
    names = [args.only] if args.only else list(SDKS)
    cells = _cells(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out_json = args.results_dir / f"sdk-{stamp}.json"
    out_md = args.results_dir / f"sdk-{stamp}.md"
    run_root = args.results_dir / f"sdk-{stamp}"
    data_root = Path(tempfile.mkdtemp(prefix="undying-bench-sdk-"))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    data: dict[str, Any] = {
        "schema": 1,
        "kind": "sdk",
        "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        "command": [sys.executable, "-m", "bench.sdk", *sys.argv[1:]],
        "settings": settings,
        "environment": environment(),
        "server": {"kind": args.server},
        "systems": {},
        "measurements": [],
    }
    print(f"results: {out_json}\nlogs:    {run_root}\ndata:    {data_root}", file=sys.stderr)
    server = create_server(args.server, data_root / args.server, log_dir=run_root / "server")
    deployments: dict[str, Deployment] = {}
    started = time.monotonic()
    try:
        server.start()
        cli = RestateCli(
            server.admin_url, home=run_root / "cli-home", ingress_url=server.ingress_url
        )
        for name in names:
            env = None
            if name == "undying-sdk" and args.undying_src is not None:
                env = {"PYTHONPATH": str(args.undying_src.resolve())}
            dep = Deployment(name, run_root, env)
            deployments[name] = dep
            dep.start(server, cli)
            dep.check()
            print(
                f"{name}: deployment {dep.service.url} registered ({dep.deployment_id}) on "
                f"{args.server} {server.ingress_url}",
                file=sys.stderr,
            )
        assert server.process is not None
        server_pid = server.process.pid
        data["server"].update({"pid": server_pid, "ingress_url": server.ingress_url})
        for name, dep in deployments.items():
            data["systems"][name] = {
                "deployment_url": dep.service.url,
                "deployment_id": dep.deployment_id,
                "service": dep.service_name,
                "sdk_pid": dep.pid,
                "sdk_argv": dep.service.argv,
                "sdk_env": dep.service.extra_env,
            }
        groups = [Group("loadgen", (os.getpid(),), tree=False), Group("server", (server_pid,))]
        groups += [Group(name, (dep.pid,)) for name, dep in deployments.items()]
        sampler = CpuSampler(groups)
        total = len(cells) * len(names) * args.rounds
        index = 0
        for rnd in range(1, args.rounds + 1):
            for i, cell in enumerate(cells):
                order = names if (i + rnd - 1) % 2 == 0 else names[::-1]
                for name in order:
                    index += 1
                    quiet = _wait_quiet(args)
                    result = asyncio.run(measure(cell, deployments[name], sampler, args))
                    rec = _record(rnd, index, name, cell, result, quiet.to_json(), args)
                    data["measurements"].append(rec)
                    print(_progress(rec, total, index), file=sys.stderr, flush=True)
                    _save(out_json, data)
    except KeyboardInterrupt:
        print("interrupted; writing what was measured", file=sys.stderr)
        data["interrupted"] = True
    finally:
        data["elapsed_s"] = round(time.monotonic() - started, 1)
        for name, dep in deployments.items():
            with contextlib.suppress(Exception):
                data["systems"][name]["rss_mib_at_end"] = rss_mib({"sdk": dep.pid})
            with contextlib.suppress(Exception):
                dep.stop()
        with contextlib.suppress(Exception):
            server.stop()
        if server.running:
            server.kill()
        data["finished_at"] = dt.datetime.now().isoformat(timespec="seconds")
        data["summary"] = sdk_report.summary(data["measurements"])
        _save(out_json, data)
        if not args.keep_data:
            shutil.rmtree(data_root, ignore_errors=True)

    text = sdk_report.render(data["measurements"])
    out_md.write_text(text + "\n")
    print(text)
    print(f"raw numbers: {out_json}\ntables:      {out_md}\nelapsed:     {data['elapsed_s']:.0f} s")
    return 130 if data.get("interrupted") else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every process gets stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
