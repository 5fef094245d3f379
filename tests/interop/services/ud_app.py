"""undying SDK services used by the interop tests: the same scenarios as ``py_app.py``.

- ``Greeter.greet``: the conference demo (uuid, run "Notification", sleep 1 s, run "Reminder").
  ``send_reminder`` fails (plain exception = retryable) for ``Alice`` on its first 3 executions
  per greeting id.
- ``Long.go``: run step1, sleep, run step2, sleep, run step3 (for crash tests).
- ``Failing.terminal``: fails with a terminal error.

Every side-effect execution appends a JSON line to ``$EFFECTS_LOG`` (format in
``undying.testing.effects``). Served by hypercorn (h2c and HTTP/1.1) via ``serve_asgi``.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from typing import Any

import undying
from undying.testing.asgi import serve_asgi

_EFFECTS_LOG = os.environ.get("EFFECTS_LOG")
_ALICE_FAILURES = 3
_executions: dict[tuple[str, str], int] = {}


def _next_attempt(step: str, key: str) -> int:
    count = _executions.get((step, key), 0) + 1
    _executions[(step, key)] = count
    return count


def _log_effect(step: str, key: str, name: str, attempt: int, ok: bool) -> None:
    if not _EFFECTS_LOG:
        return
    line = json.dumps(
        {
            "step": step,
            "id": key,
            "name": name,
            "attempt": attempt,
            "ok": ok,
            "ts": time.time(),
            "sdk": "undying",
        }
    )
    with open(_EFFECTS_LOG, "a", encoding="utf-8") as f:
        f.write(line + "\n")


async def send_notification(greeting_id: str, name: str) -> None:
    _log_effect("Notification", greeting_id, name, _next_attempt("Notification", greeting_id), True)


async def send_reminder(greeting_id: str, name: str) -> None:
    attempt = _next_attempt("Reminder", greeting_id)
    fail = name == "Alice" and attempt <= _ALICE_FAILURES
    _log_effect("Reminder", greeting_id, name, attempt, not fail)
    if fail:
        raise RuntimeError(f"[SIMULATED] reminder for {name} failed (attempt {attempt})")


greeter = undying.Service("Greeter")


@greeter.handler()
async def greet(ctx: undying.Context, req: dict[str, Any]) -> dict[str, Any]:
    name = req["name"]
    greeting_id = str(ctx.uuid())
    await ctx.run("Notification", send_notification, greeting_id, name)
    await ctx.sleep(timedelta(seconds=1))
    await ctx.run("Reminder", send_reminder, greeting_id, name)
    return {"result": f"You said hi to {name}!"}


async def do_step(step: str, tag: str) -> str:
    _log_effect(step, tag, "", _next_attempt(step, tag), True)
    return f"{step}@{time.time():.3f}"


long = undying.Service("Long")


@long.handler()
async def go(ctx: undying.Context, req: dict[str, Any]) -> dict[str, Any]:
    tag = str(req["tag"])
    pause = timedelta(seconds=float(req.get("sleep_seconds", 5)))
    result: dict[str, Any] = {}
    result["step1"] = await ctx.run("step1", do_step, "step1", tag)
    await ctx.sleep(pause)
    result["step2"] = await ctx.run("step2", do_step, "step2", tag)
    await ctx.sleep(pause)
    result["step3"] = await ctx.run("step3", do_step, "step3", tag)
    return result


failing = undying.Service("Failing")


@failing.handler()
async def terminal(ctx: undying.Context, req: dict[str, Any]) -> dict[str, Any]:
    raise undying.TerminalError(f"refused: {req.get('reason', 'no reason')}", status_code=409)


app = undying.app([greeter, long, failing])

if __name__ == "__main__":
    serve_asgi(app)
