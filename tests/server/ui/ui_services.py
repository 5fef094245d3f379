"""Services the web UI tests look at, written with the undying SDK.

- ``Greeter.greet``: a run step, then a one-hour durable sleep (it stays suspended).
- ``Caller.relay``: calls ``Greeter.greet`` (a call with a link to the callee).
- ``Counter.add``: a virtual object writing state, including a value full of HTML.
- ``Approval``: a workflow waiting on its durable promise ``decision`` (``approve`` resolves it).
- ``Flaky.charge``: always fails in a run step with a stack trace, retried every 200-500 ms.

Imported by the in-process tests; run as a program (``python ui_services.py``) it serves them
on a free port of 127.0.0.1 and prints the service ready line (the browser tests).
"""

from __future__ import annotations

from datetime import timedelta

import undying

greeter = undying.Service("Greeter")
caller = undying.Service("Caller")
counter = undying.VirtualObject("Counter")
approval = undying.Workflow("Approval")
flaky = undying.Service("Flaky")

#: A value that must be shown as text, never interpreted as markup.
HTML_VALUE = "<script>alert('x')</script><b>bold</b> & \"quotes\""


def _notify(name: str) -> None:
    pass


def _charge_card(what: str) -> None:
    raise RuntimeError(f"card declined for {what}")


@greeter.handler()
async def greet(ctx: undying.Context, name: str) -> str:
    await ctx.run("Notification", _notify, name)
    await ctx.sleep(timedelta(hours=1))
    return f"Hello {name}!"


@caller.handler()
async def relay(ctx: undying.Context, name: str) -> str:
    return await ctx.service_call(greet, name)


@counter.handler()
async def add(ctx: undying.ObjectContext, value: int) -> int:
    count = await ctx.get("count", int, default=0) + value
    ctx.set("count", count)
    ctx.set("note", HTML_VALUE)
    return count


@approval.main()
async def run(ctx: undying.WorkflowContext, title: str) -> str:
    ctx.set("title", title)
    return await ctx.promise("decision", str)


@approval.handler()
async def approve(ctx: undying.WorkflowSharedContext, note: str) -> None:
    await ctx.promise("decision", str).resolve(note)


@flaky.handler(
    retry_policy=undying.RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        max_interval=timedelta(milliseconds=500),
        max_attempts=10_000,
    )
)
async def charge(ctx: undying.Context, what: str) -> str:
    await ctx.run("charge card", _charge_card, what)
    return "charged"


SERVICES: list[undying.Service | undying.VirtualObject | undying.Workflow] = [
    greeter,
    caller,
    counter,
    approval,
    flaky,
]

if __name__ == "__main__":
    from undying.testing.asgi import serve_asgi

    serve_asgi(undying.app(SERVICES))
