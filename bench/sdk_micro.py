"""SDK cost without server or network: ``python -m bench.sdk_micro``.

Drives each SDK's ASGI app (the services of ``bench/sdk_services.py`` and ``bench/services.py``)
in-process with a scripted runtime: a bidi (HTTP/2-style) ``/invoke/<service>/steps`` request
that sends ``StartMessage`` + ``Input``, answers every ``ProposeRunCompletion`` with its
``RunCompletion`` notification and closes the input after ``End``. Nothing else runs, so the
time per invocation is the SDK's own cost: protocol handling, the handler's task, the executor
hop of each ``ctx.run`` closure, event-loop turns. It is the quick, low-noise check for changes
to the SDK core; :mod:`bench.sdk` measures the real thing on a server.

Reports, per SDK, wall and CPU time per invocation of ``steps(n)`` for n in 0, 3, 10, and the
per-step time (least-squares slope over ``n``), alternating the SDKs over several rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.sdk_report import slope
from undying.protocol.framing import FrameDecoder, encode_message
from undying.protocol.messages import MessageType, pb

BENCH = Path(__file__).resolve().parent
#: name -> (service module file, service name)
SDKS: dict[str, tuple[Path, str]] = {
    "undying-sdk": (BENCH / "sdk_services.py", "ubench"),
    "restate-sdk": (BENCH / "services.py", "bench"),
}
_CONTENT_TYPE = b"application/vnd.restate.invocation.v6"

Message = MutableMapping[str, Any]
App = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


def load_module(path: Path, name: str) -> ModuleType:
    """Import a service file by path (it need not be on ``sys.path``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _request_body(n: int, seq: int) -> bytes:
    invocation_id = seq.to_bytes(8, "big") * 3
    start = pb.StartMessage(
        id=invocation_id,
        debug_id=f"inv_micro{seq}",
        known_entries=1,
        partial_state=True,
        random_seed=seq + 1,
    )
    entry = pb.InputCommandMessage(value=pb.Value(content=str(n).encode()))
    return encode_message(MessageType.START, start) + encode_message(MessageType.INPUT, entry)


async def invoke(app: App, service: str, n: int, seq: int) -> bytes:
    """One bidi invocation of ``service/steps(n)``, answered like a runtime would.

    Returns:
        The value of the handler's ``Output``.
    """
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": _request_body(n, seq), "more_body": True})
    decoder = FrameDecoder()
    ended = False
    output = b""

    async def receive() -> Message:
        return await inbox.get()

    async def send(message: Message) -> None:
        nonlocal ended, output
        if message["type"] != "http.response.body":
            return
        for frame in decoder.feed(message.get("body", b"")):
            if frame.type == MessageType.PROPOSE_RUN_COMPLETION:
                proposal = pb.ProposeRunCompletionMessage.FromString(frame.payload)
                notification = pb.Notification(
                    completion_id=proposal.result_completion_id,
                    value=pb.Value(content=proposal.value),
                )
                body = encode_message(MessageType.RUN_COMPLETION, notification)
                inbox.put_nowait({"type": "http.request", "body": body, "more_body": True})
            elif frame.type == MessageType.OUTPUT:
                output = pb.OutputCommandMessage.FromString(frame.payload).value.content
            elif frame.type in (MessageType.END, MessageType.ERROR, MessageType.SUSPENSION):
                ended = frame.type == MessageType.END
                inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})

    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "2",
        "method": "POST",
        "scheme": "http",
        "path": f"/invoke/{service}/steps",
        "raw_path": f"/invoke/{service}/steps".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", _CONTENT_TYPE), (b"accept", _CONTENT_TYPE)],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "extensions": {},
    }
    await app(scope, receive, send)
    if not ended:
        raise RuntimeError(f"{service}/steps({n}) did not end")
    return output


async def measure(app: App, service: str, n: int, calls: int, warmup: int) -> tuple[float, float]:
    """Median wall ms and mean CPU ms per invocation of ``steps(n)``."""
    for seq in range(warmup):
        await invoke(app, service, n, seq)
    walls = []
    cpu0 = time.process_time()
    for seq in range(calls):
        began = time.perf_counter()
        await invoke(app, service, n, warmup + seq)
        walls.append((time.perf_counter() - began) * 1000.0)
    cpu = (time.process_time() - cpu0) * 1000.0 / calls
    return statistics.median(walls), cpu


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.sdk_micro", description=__doc__)
    p.add_argument("--calls", type=int, default=500, help="invocations per measurement")
    p.add_argument("--warmup", type=int, default=50, help="warm-up invocations")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", default="0,3,10", help="values of n (default 0,3,10)")
    p.add_argument("--only", choices=tuple(SDKS))
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    ns = [int(v) for v in args.steps.split(",")]
    names = [args.only] if args.only else list(SDKS)
    apps: dict[str, App] = {}
    for name in names:
        path, _ = SDKS[name]
        apps[name] = load_module(path, f"bench_micro_{path.stem}").app
    per_step: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for rnd in range(1, args.rounds + 1):
        order = names if rnd % 2 else names[::-1]
        for name in order:
            service = SDKS[name][1]
            walls, cpus = [], []
            for n in ns:
                wall, cpu = asyncio.run(measure(apps[name], service, n, args.calls, args.warmup))
                walls.append((float(n), wall))
                cpus.append((float(n), cpu))
            sw, sc = slope(walls) or 0.0, slope(cpus) or 0.0
            per_step[name].append((sw, sc))
            cells = "  ".join(
                f"steps({int(n)}) {w:.3f}/{c:.3f}"
                for (n, w), (_, c) in zip(walls, cpus, strict=True)
            )
            print(
                f"r{rnd} {name:<11} wall/cpu ms per invocation: {cells}  | per step: "
                f"wall {sw:.3f} cpu {sc:.3f}",
                flush=True,
            )
    print()
    for name in names:
        step_walls = [w for w, _ in per_step[name]]
        step_cpus = [c for _, c in per_step[name]]
        print(
            f"{name:<11} per step (median of {len(step_walls)} rounds): wall "
            f"{statistics.median(step_walls):.3f} ms, cpu {statistics.median(step_cpus):.3f} ms"
        )
    if len(names) == 2:
        (a, b) = (per_step[names[0]], per_step[names[1]])
        wall_ratio = statistics.median(w for w, _ in a) / statistics.median(w for w, _ in b)
        cpu_ratio = statistics.median(c for _, c in a) / statistics.median(c for _, c in b)
        print(f"ratio {names[0]} / {names[1]}: wall {wall_ratio:.2f}, cpu {cpu_ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
