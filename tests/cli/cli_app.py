"""undying SDK services the CLI tests run against a real server.

- ``Greeter.greet``: run "Notification", run "Reminder"; the reminder fails (retryable) on its
  first ``failures`` executions (request field, default 0), counted in this process.
- ``Flaky.always``: run "Charge" fails on every attempt (retryable): it stays backing-off.
- ``Flaky.limited``: like ``always``, with a retry policy of 2 attempts, then paused.
- ``Sleeper.nap``: a durable sleep of ``seconds``: it stays suspended.
- ``Caller.call``: calls ``Greeter.greet``, so its journal holds the callee's id.
- ``Counter`` (virtual object): ``add`` / ``get`` on the state key ``count``.

Served by hypercorn (h2c and HTTP/1.1) via ``serve_asgi``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import undying
from undying.testing.asgi import serve_asgi

_executions: dict[str, int] = {}


def _attempt(key: str) -> int:
    _executions[key] = _executions.get(key, 0) + 1
    return _executions[key]


greeter = undying.Service("Greeter")


@greeter.handler()
async def greet(ctx: undying.Context, req: dict[str, Any]) -> str:
    name = str(req["name"])
    failures = int(req.get("failures", 0))
    greeting_id = str(ctx.uuid())

    async def notify() -> None:
        return None

    async def remind() -> None:
        attempt = _attempt(greeting_id)
        if attempt <= failures:
            raise RuntimeError(f"[SIMULATED] reminder for {name} failed (attempt {attempt})")

    await ctx.run("Notification", notify)
    await ctx.run("Reminder", remind)
    return f"Hello {name}!"


flaky = undying.Service("Flaky")


async def _charge() -> None:
    raise RuntimeError("[SIMULATED] payment gateway unavailable")


@flaky.handler(
    retry_policy=undying.RetryPolicy(
        initial_interval=timedelta(milliseconds=200), max_interval=timedelta(milliseconds=400)
    )
)
async def always(ctx: undying.Context) -> None:
    await ctx.run("Charge", _charge)


@flaky.handler(
    retry_policy=undying.RetryPolicy(
        initial_interval=timedelta(milliseconds=50), max_attempts=2, on_max_attempts="pause"
    )
)
async def limited(ctx: undying.Context) -> None:
    await ctx.run("Charge", _charge)


sleeper = undying.Service("Sleeper")


@sleeper.handler()
async def nap(ctx: undying.Context, seconds: float) -> str:
    await ctx.sleep(timedelta(seconds=seconds))
    return "rested"


caller = undying.Service("Caller")


@caller.handler()
async def call(ctx: undying.Context, name: str) -> str:
    answer: str = await ctx.service_call(greet, {"name": name})
    return answer


counter = undying.VirtualObject("Counter")


@counter.handler()
async def add(ctx: undying.ObjectContext, delta: int) -> int:
    count: int = await ctx.get("count", int, default=0)
    count += delta
    ctx.set("count", count)
    return count


@counter.handler(kind="shared")
async def get(ctx: undying.ObjectSharedContext) -> int:
    return await ctx.get("count", int, default=0)


app = undying.app([greeter, flaky, sleeper, caller, counter])

if __name__ == "__main__":
    serve_asgi(app)
