"""undying SDK services of the conformance suite.

The same services, handlers and behaviour as ``conf_app.py`` (see its docstring), written with
``import undying`` and named with the suffix ``Ud`` (``CounterUd``, ``WfUd``, ...), so this
deployment is registered on the same server as the Python and TypeScript ones.

Like the TypeScript app, ``CallerUd`` also has ``output(invocation_id)``: the target's result
without waiting (``GetInvocationOutputCommand``), as ``{"ready": false}``,
``{"ready": true, "value": ...}`` or ``{"ready": true, "failure": {"code", "message"}}``.

Served by hypercorn (``undying.testing.asgi.serve_asgi``): HTTP/2 cleartext and HTTP/1.1 on one
port, ``$SERVICE_PORT`` (0 = any free one).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import undying
from undying.testing.asgi import serve_asgi

SUFFIX = "Ud"
FAST_RETRIES = undying.RetryPolicy(
    initial_interval=timedelta(milliseconds=100), exponentiation_factor=1.0
)
SHORT_RETENTION = timedelta(seconds=2)

_attempts: dict[str, int] = {}
_healed: set[str] = set()


def _attempt(tag: str) -> int:
    _attempts[tag] = _attempts.get(tag, 0) + 1
    return _attempts[tag]


# -- objects -----------------------------------------------------------------------------------


def make_counter(
    name: str, *, lazy: bool
) -> tuple[undying.VirtualObject, undying.Handler[int, int]]:
    """The object and its ``add`` handler (for typed calls)."""
    obj = undying.VirtualObject(name + SUFFIX, enable_lazy_state=lazy)

    @obj.handler()
    async def add(ctx: undying.ObjectContext, delta: int) -> int:
        count: int = (await ctx.get("count")) or 0
        count += delta
        ctx.set("count", count)
        return count

    @obj.handler(kind="shared")
    async def get(ctx: undying.ObjectSharedContext) -> int:
        count: int = (await ctx.get("count")) or 0
        return count

    @obj.handler()
    async def put(ctx: undying.ObjectContext, req: dict[str, Any]) -> None:
        ctx.set(req["key"], req["value"])

    @obj.handler(kind="shared")
    async def read(ctx: undying.ObjectSharedContext, key: str) -> Any:
        return await ctx.get(key)

    @obj.handler()
    async def keys(ctx: undying.ObjectContext) -> list[str]:
        return sorted(await ctx.state_keys())

    @obj.handler()
    async def clear(ctx: undying.ObjectContext, key: str) -> None:
        ctx.clear(key)

    @obj.handler()
    async def clear_all(ctx: undying.ObjectContext) -> None:
        ctx.clear_all()

    @obj.handler()
    async def hold(ctx: undying.ObjectContext, req: dict[str, Any]) -> list[str]:
        await ctx.sleep(timedelta(milliseconds=int(req["ms"])))
        entries: list[str] = (await ctx.get("log")) or []
        entries.append(str(req["tag"]))
        ctx.set("log", entries)
        return entries

    @obj.handler()
    async def append(ctx: undying.ObjectContext, tag: str) -> list[str]:
        entries: list[str] = (await ctx.get("log")) or []
        entries.append(tag)
        ctx.set("log", entries)
        return entries

    @obj.handler(kind="shared")
    async def log(ctx: undying.ObjectSharedContext) -> list[str]:
        entries: list[str] = (await ctx.get("log")) or []
        return entries

    return obj, add


counter, counter_add = make_counter("Counter", lazy=False)
lazy_counter, _ = make_counter("LazyCounter", lazy=True)

mailbox = undying.VirtualObject("Mailbox" + SUFFIX)


@mailbox.handler("put")
async def mailbox_put(ctx: undying.ObjectContext, awakeable_id: str) -> None:
    ctx.set("id", awakeable_id)


@mailbox.handler("get", kind="shared")
async def mailbox_get(ctx: undying.ObjectSharedContext) -> str | None:
    value: str | None = await ctx.get("id")
    return value


# -- workflows ---------------------------------------------------------------------------------

wf = undying.Workflow("Wf" + SUFFIX)


@wf.main()
async def run(ctx: undying.WorkflowContext, req: Any) -> dict[str, Any]:
    ctx.set("status", "waiting")
    approval = await ctx.promise("approval").value()
    ctx.set("status", "done")
    return {"input": req, "approved_with": approval}


@wf.handler()
async def signal(ctx: undying.WorkflowSharedContext, value: Any) -> str:
    await ctx.promise("approval").resolve(value)
    return "resolved"


@wf.handler()
async def reject(ctx: undying.WorkflowSharedContext, message: str) -> str:
    await ctx.promise("approval").reject(message)
    return "rejected"


@wf.handler()
async def status(ctx: undying.WorkflowSharedContext) -> str | None:
    value: str | None = await ctx.get("status")
    return value


@wf.handler()
async def peek(ctx: undying.WorkflowSharedContext) -> Any:
    return await ctx.promise("approval").peek()


short_wf = undying.Workflow("ShortWf" + SUFFIX)


@short_wf.main("run", workflow_retention=SHORT_RETENTION)
async def short_run(ctx: undying.WorkflowContext, req: Any) -> dict[str, Any]:
    return {"done": req}


# -- plain services ----------------------------------------------------------------------------

sleeper = undying.Service("Sleeper" + SUFFIX)


@sleeper.handler()
async def sleep(ctx: undying.Context, ms: int) -> int:
    await ctx.sleep(timedelta(milliseconds=ms))
    return ms


echo = undying.Service("Echo" + SUFFIX)


@echo.handler()
async def headers(ctx: undying.Context) -> dict[str, str]:
    return {k: v for k, v in ctx.request().headers.items() if k.lower().startswith("x-test-")}


@echo.handler()
async def raw(ctx: undying.Context, data: bytes) -> bytes:
    return bytes(reversed(data))


@echo.handler()
async def nothing(ctx: undying.Context) -> None:
    return None


@echo.handler()
async def hello(ctx: undying.Context) -> str:
    return "hello"


caller = undying.Service("Caller" + SUFFIX)


@caller.handler()
async def call_add(ctx: undying.Context, req: dict[str, Any]) -> int:
    return await ctx.object_call(
        counter_add, req["key"], req["delta"], idempotency_key=req.get("idem")
    )


@caller.handler()
async def send_add(ctx: undying.Context, req: dict[str, Any]) -> str:
    delay = req.get("delay_ms")
    handle = ctx.object_send(
        counter_add,
        req["key"],
        req["delta"],
        delay=timedelta(milliseconds=delay) if delay else None,
    )
    return await handle.invocation_id()


@caller.handler()
async def call_wf(ctx: undying.Context, req: dict[str, Any]) -> Any:
    return await ctx.workflow_call(run, req["key"], req["input"])


@caller.handler()
async def call_headers(ctx: undying.Context, hdrs: dict[str, str]) -> dict[str, str]:
    return await ctx.service_call(headers, None, headers=hdrs)


@caller.handler()
async def call_sleep(ctx: undying.Context, ms: int) -> int:
    return await ctx.service_call(sleep, ms)


@caller.handler()
async def call_terminal(ctx: undying.Context, req: dict[str, Any]) -> Any:
    return await ctx.service_call(terminal, req)


@caller.handler()
async def attach(ctx: undying.Context, invocation_id: str) -> Any:
    return await ctx.attach_invocation(invocation_id)


@caller.handler()
async def output(ctx: undying.Context, invocation_id: str) -> dict[str, Any]:
    try:
        data = await ctx.invocation_output(invocation_id, bytes)
    except undying.TerminalError as exc:
        return {"ready": True, "failure": {"code": exc.status_code, "message": exc.message}}
    if data is None:
        return {"ready": False}
    return {"ready": True, "value": json.loads(data) if data else None}


# -- awakeables --------------------------------------------------------------------------------

awaker = undying.Service("Awaker" + SUFFIX)


@awaker.handler()
async def wait(ctx: undying.Context, tag: str) -> dict[str, Any]:
    fut: undying.DurableFuture[Any]
    awakeable_id, fut = ctx.awakeable()
    ctx.object_send(mailbox_put, tag, awakeable_id)
    value = await fut
    return {"id": awakeable_id, "value": value}


@awaker.handler()
async def resolve(ctx: undying.Context, req: dict[str, Any]) -> None:
    ctx.resolve_awakeable(req["id"], req["value"])


@awaker.handler("reject")
async def reject_awakeable(ctx: undying.Context, req: dict[str, Any]) -> None:
    ctx.reject_awakeable(req["id"], req["message"])


@awaker.handler()
async def wait_signal(ctx: undying.Context, name: str) -> Any:
    return await ctx.signal(name)


@awaker.handler()
async def send_signal(ctx: undying.Context, req: dict[str, Any]) -> None:
    if "message" in req:
        ctx.reject_signal(req["id"], req["name"], req["message"], code=int(req.get("code", 500)))
    else:
        ctx.send_signal(req["id"], req["name"], req["value"])


# -- failures ----------------------------------------------------------------------------------

failing = undying.Service("Failing" + SUFFIX)


@failing.handler()
async def terminal(ctx: undying.Context, req: dict[str, Any]) -> None:
    raise undying.TerminalError(req["message"], status_code=int(req["code"]))


@failing.handler(retry_policy=FAST_RETRIES)
async def flaky(ctx: undying.Context, tag: str) -> int:
    attempt = _attempt(tag)
    if attempt <= 2:
        raise RuntimeError(f"[SIMULATED] flaky {tag} attempt {attempt}")
    return attempt


@failing.handler(
    retry_policy=undying.RetryPolicy(
        initial_interval=timedelta(milliseconds=100), max_attempts=2, on_max_attempts="pause"
    )
)
async def exhaust_pause(ctx: undying.Context, tag: str) -> int:
    attempt = _attempt(tag)
    if tag not in _healed:
        raise RuntimeError(f"[SIMULATED] {tag} attempt {attempt}")
    return attempt


@failing.handler(
    retry_policy=undying.RetryPolicy(
        initial_interval=timedelta(milliseconds=100), max_attempts=2, on_max_attempts="kill"
    )
)
async def exhaust_kill(ctx: undying.Context, tag: str) -> int:
    attempt = _attempt(tag)
    raise RuntimeError(f"[SIMULATED] {tag} attempt {attempt}")


@failing.handler()
async def heal(ctx: undying.Context, tag: str) -> None:
    _healed.add(tag)


@failing.handler()
async def attempts(ctx: undying.Context, tag: str) -> int:
    return _attempts.get(tag, 0)


retention = undying.Service("Retention" + SUFFIX)


@retention.handler(idempotency_retention=SHORT_RETENTION)
async def short(ctx: undying.Context) -> str:
    return "done"


app = undying.app(
    [
        counter,
        lazy_counter,
        mailbox,
        wf,
        short_wf,
        sleeper,
        echo,
        caller,
        awaker,
        failing,
        retention,
    ]
)

if __name__ == "__main__":
    serve_asgi(app)
