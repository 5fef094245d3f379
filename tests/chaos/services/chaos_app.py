"""Python SDK (restate-sdk 1.2.0) services of the chaos suite (``tests/chaos/``).

- ``Chain.run({tag, n, work_ms, sleep_ms})``: ``ctx.run`` steps ``step1`` … ``step{n}``; the
  side effect of step ``i`` is logged when it starts, then works (``asyncio.sleep``) for
  ``work_ms[i-1]`` milliseconds before it returns, so a kill can strike between a side effect
  and the journaling of its result. A durable sleep of ``sleep_ms[i-1]`` milliseconds follows
  step ``i`` where that is positive. Returns
  ``{"tag", "values", "execs"}``: ``values`` is deterministic (``"{tag}:{i}"`` per step),
  ``execs`` names, per step, the execution whose result the journal kept.
- ``Tally`` (virtual object): ``add(src) -> count`` increments ``count`` and appends ``src`` to
  ``srcs`` (so a lost or repeated add can be named); ``get() -> {"count", "srcs"}`` (shared).
- ``Fanout.run({tag, calls, sends})``: step 1, then ``Tally.add`` on every key of ``calls``
  with ``ctx.object_call`` (awaiting each result) and on every key of ``sends`` with
  ``ctx.object_send`` (one-way), then step 2. Returns ``{"tag", "counts", "sent"}``.

Effects log (``$EFFECTS_LOG``, JSON lines, append mode, fsynced per line). Each handler attempt
first writes ``{"inv", "tag", "step": 0, "attempt", "exec": 0, "ts"}`` (``attempt`` is a random
marker of this attempt, made outside the journal), then every execution of a step's side effect
writes the same with ``step`` = the step number and ``exec`` = how many times this process has
executed that step of that invocation (1, 2, …). ``inv`` is the invocation id
(``ctx.request().id``). The process is never killed by the tests, so its in-memory counters stay
valid across server crashes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import timedelta
from typing import Any

import restate

from undying.testing.asgi import serve_asgi

_EFFECTS_LOG = os.environ["EFFECTS_LOG"]
_fd: int | None = None
_executions: dict[tuple[str, int], int] = {}


def _append(record: dict[str, Any]) -> None:
    """One line, written with a single ``write`` in append mode, then fsynced."""
    global _fd
    if _fd is None:
        _fd = os.open(_EFFECTS_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
    os.fsync(_fd)


def _attempt_started(inv: str, tag: str) -> str:
    attempt = uuid.uuid4().hex[:12]
    _append({"inv": inv, "tag": tag, "step": 0, "attempt": attempt, "exec": 0, "ts": time.time()})
    return attempt


async def _effect(inv: str, tag: str, step: int, attempt: str, work_ms: int) -> dict[str, Any]:
    """The side effect of a step: log this execution, work a while, return a deterministic
    value (plus which execution this was)."""
    count = _executions.get((inv, step), 0) + 1
    _executions[(inv, step)] = count
    _append(
        {"inv": inv, "tag": tag, "step": step, "attempt": attempt, "exec": count, "ts": time.time()}
    )
    if work_ms > 0:
        await asyncio.sleep(work_ms / 1000)
    return {"value": f"{tag}:{step}", "attempt": attempt, "exec": count}


async def _step(
    ctx: restate.Context, inv: str, tag: str, step: int, attempt: str, work_ms: int = 0
) -> Any:
    return await ctx.run_typed(
        f"step{step}", _effect, restate.RunOptions(), inv, tag, step, attempt, work_ms
    )


chain = restate.Service("Chain")


@chain.handler()
async def run(ctx: restate.Context, req: dict[str, Any]) -> dict[str, Any]:
    inv = ctx.request().id
    tag = str(req["tag"])
    attempt = _attempt_started(inv, tag)
    work = [int(ms) for ms in req.get("work_ms", [])]
    sleeps = [int(ms) for ms in req.get("sleep_ms", [])]
    values: list[str] = []
    execs: list[dict[str, Any]] = []
    for step in range(1, int(req["n"]) + 1):
        work_ms = work[step - 1] if step <= len(work) else 0
        result = await _step(ctx, inv, tag, step, attempt, work_ms)
        values.append(result["value"])
        execs.append({"attempt": result["attempt"], "exec": result["exec"]})
        if step <= len(sleeps) and sleeps[step - 1] > 0:
            await ctx.sleep(timedelta(milliseconds=sleeps[step - 1]))
    return {"tag": tag, "values": values, "execs": execs}


tally = restate.VirtualObject("Tally")


@tally.handler()
async def add(ctx: restate.ObjectContext, src: str) -> int:
    count = (await ctx.get("count", type_hint=int) or 0) + 1
    srcs = await ctx.get("srcs", type_hint=list) or []
    ctx.set("count", count)
    ctx.set("srcs", [*srcs, src])
    return count


@tally.handler(kind="shared")
async def get(ctx: restate.ObjectSharedContext) -> dict[str, Any]:
    return {
        "count": await ctx.get("count", type_hint=int) or 0,
        "srcs": await ctx.get("srcs", type_hint=list) or [],
    }


fanout = restate.Service("Fanout")


@fanout.handler("run")
async def fanout_run(ctx: restate.Context, req: dict[str, Any]) -> dict[str, Any]:
    inv = ctx.request().id
    tag = str(req["tag"])
    attempt = _attempt_started(inv, tag)
    execs = [await _step(ctx, inv, tag, 1, attempt)]
    counts: list[int] = []
    for key in req["calls"]:
        counts.append(await ctx.object_call(add, key=key, arg=f"{tag}/call/{key}"))
    for key in req["sends"]:
        ctx.object_send(add, key=key, arg=f"{tag}/send/{key}")
    execs.append(await _step(ctx, inv, tag, 2, attempt))
    return {
        "tag": tag,
        "values": [e["value"] for e in execs],
        "execs": [{"attempt": e["attempt"], "exec": e["exec"]} for e in execs],
        "counts": counts,
        "sent": len(req["sends"]),
    }


app = restate.app(services=[chain, tally, fanout])

if __name__ == "__main__":
    serve_asgi(app)
