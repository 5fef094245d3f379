"""Services (restate-sdk, Python) that leave invocations in every state, for the SQL tests.

- ``Greeter.greet(name)``: a run ``Notification``, a 10 ms sleep, a run ``Reminder``, returns
  ``"Hello {name}"``; ``Greeter.fail(name)`` fails terminally (``[400] no greeting for …``).
- ``Caller.greet(name)``: calls ``Greeter.greet`` and returns its answer.
- ``Retry.always(tag)``: fails every attempt, retried after a minute (stays backing-off);
  ``Retry.pause(tag)``: fails once and is paused (one attempt allowed).
- ``Blocker.block(seconds)``: a run that takes that long (stays running).
- ``Sleeper.sleep(seconds)``: a durable sleep (suspended).

Services whose invocations wait (``Sleeper``, ``Counter``, ``Approval``) have an inactivity timeout
of one second, so that a waiting invocation is suspended at once rather than after a minute.
- ``Counter`` (virtual object): ``add(delta) -> count``, ``hold(seconds)`` (sleeps while holding
  the key's lock, so that a following ``add`` waits in the inbox).
- ``Approval`` (workflow): ``run()`` waits for the promise ``decision``; ``decide(value)``
  resolves it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import restate

from undying.testing.asgi import serve_asgi

#: How long a waiting invocation stays running before the server suspends it.
QUICK: timedelta = timedelta(seconds=1)

greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    await ctx.run("Notification", lambda: None)
    await ctx.sleep(timedelta(milliseconds=10))
    await ctx.run("Reminder", lambda: None)
    return f"Hello {name}"


@greeter.handler()
async def fail(ctx: restate.Context, name: str) -> str:
    raise restate.TerminalError(f"no greeting for {name}", status_code=400)


caller = restate.Service("Caller")


@caller.handler("greet")
async def call_greet(ctx: restate.Context, name: str) -> str:
    answer: str = await ctx.service_call(greet, arg=name)
    return answer


retry = restate.Service("Retry")


@retry.handler(
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(seconds=60), max_attempts=100
    )
)
async def always(ctx: restate.Context, tag: str) -> str:
    raise RuntimeError(f"[SIMULATED] {tag} is not ready")


@retry.handler(
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=100), max_attempts=1, on_max_attempts="pause"
    )
)
async def pause(ctx: restate.Context, tag: str) -> str:
    raise RuntimeError(f"[SIMULATED] {tag} gave up")


blocker = restate.Service("Blocker")


@blocker.handler()
async def block(ctx: restate.Context, seconds: float) -> str:
    async def wait() -> str:
        await asyncio.sleep(seconds)
        return "done"

    return await ctx.run("wait", wait)


sleeper = restate.Service("Sleeper", inactivity_timeout=QUICK)


@sleeper.handler()
async def sleep(ctx: restate.Context, seconds: float) -> str:
    await ctx.sleep(timedelta(seconds=seconds))
    return "woke up"


counter = restate.VirtualObject("Counter", inactivity_timeout=QUICK)


@counter.handler()
async def add(ctx: restate.ObjectContext, delta: int) -> int:
    count: int = (await ctx.get("count")) or 0
    count += delta
    ctx.set("count", count)
    return count


@counter.handler()
async def hold(ctx: restate.ObjectContext, seconds: float) -> str:
    await ctx.sleep(timedelta(seconds=seconds))
    return "released"


approval = restate.Workflow("Approval", inactivity_timeout=QUICK)


@approval.main()
async def run(ctx: restate.WorkflowContext) -> str:
    decision: str = await ctx.promise("decision", type_hint=str).value()
    return decision


@approval.handler()
async def decide(ctx: restate.WorkflowSharedContext, value: str) -> None:
    await ctx.promise("decision", type_hint=str).resolve(value)


app = restate.app(services=[greeter, caller, retry, blocker, sleeper, counter, approval])

if __name__ == "__main__":
    serve_asgi(app)
