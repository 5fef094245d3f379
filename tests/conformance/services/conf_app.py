"""Python SDK (restate-sdk 1.2.0) services of the conformance suite.

The TypeScript app (``conf_app.mjs``) and the undying SDK app (``conf_app_ud.py``) have the same
services with the suffixes ``Ts`` and ``Ud`` (``Counter`` here, ``CounterTs`` and ``CounterUd``
there) and the same behaviour, so the three deployments are registered on one server at once and
every scenario can run against any of the SDKs.

Services (``{S}`` = service name):

- ``Counter`` / ``LazyCounter`` (virtual objects; ``LazyCounter`` has ``enable_lazy_state``):
  ``add(delta) -> count`` (exclusive), ``get() -> count`` (shared), ``put({key, value})``,
  ``read(key)`` (shared), ``keys() -> sorted state keys``, ``clear(key)``, ``clear_all()``,
  ``hold({tag, ms})`` (exclusive: sleeps ``ms`` then appends ``tag`` to the ``log`` list),
  ``append(tag) -> log`` (exclusive), ``log() -> log`` (shared).
- ``Wf`` (workflow): ``run(input)`` sets ``status`` and waits for the durable promise
  ``approval``; shared ``signal(value)``, ``reject(message)``, ``status()``, ``peek()``.
  ``ShortWf``: ``run(input)`` returns at once; workflow retention 2 s.
- ``Caller``: service-to-service calls (request/response, one-way, delayed, to objects and
  workflows, with headers and idempotency keys, attach to another invocation).
- ``Echo``: ``headers()`` (the request's ``x-test-*`` headers), ``raw(bytes)`` (octet-stream in
  and out), ``nothing()`` (no input, no output), ``hello() -> "hello"`` (no input).
- ``Sleeper``: ``sleep(ms) -> ms``.
- ``Awaker``: ``wait(tag)`` creates an awakeable, posts its id to ``Mailbox/{tag}`` and returns
  ``{"id", "value"}`` once it is resolved; ``resolve({id, value})``, ``reject({id, message})``;
  ``wait_signal(name)`` returns the value of the named signal ``name``;
  ``send_signal({id, name, value})`` (or ``{id, name, message, code}`` to reject) sends one.
  ``Mailbox`` (object): ``put(id)``, ``get()`` (shared).
- ``Failing``: ``terminal({code, message})``, ``flaky(tag)`` (fails its first two attempts per
  tag in this process, returns the attempt number), ``exhaust_pause(tag)`` / ``exhaust_kill(tag)``
  (fail until ``heal(tag)``; retry policy: 2 attempts, then pause / kill).
- ``Retention``: ``short() -> "done"`` with an idempotency retention of 2 s.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import restate
from restate.serde import BytesSerde

from undying.testing.asgi import serve_asgi

FAST_RETRIES = restate.InvocationRetryPolicy(
    initial_interval=timedelta(milliseconds=100), exponentiation_factor=1.0
)
SHORT_RETENTION = timedelta(seconds=2)

_attempts: dict[str, int] = {}
_healed: set[str] = set()


def _attempt(tag: str) -> int:
    _attempts[tag] = _attempts.get(tag, 0) + 1
    return _attempts[tag]


# -- objects -----------------------------------------------------------------------------------


def make_counter(name: str, *, lazy: bool) -> tuple[restate.VirtualObject, Any]:
    """The object and its ``add`` handler (for typed calls)."""
    obj = restate.VirtualObject(name, enable_lazy_state=True if lazy else None)

    @obj.handler()
    async def add(ctx: restate.ObjectContext, delta: int) -> int:
        count: int = (await ctx.get("count")) or 0
        count += delta
        ctx.set("count", count)
        return count

    @obj.handler(kind="shared")
    async def get(ctx: restate.ObjectSharedContext) -> int:
        count: int = (await ctx.get("count")) or 0
        return count

    @obj.handler()
    async def put(ctx: restate.ObjectContext, req: dict[str, Any]) -> None:
        ctx.set(req["key"], req["value"])

    @obj.handler(kind="shared")
    async def read(ctx: restate.ObjectSharedContext, key: str) -> Any:
        return await ctx.get(key)

    @obj.handler()
    async def keys(ctx: restate.ObjectContext) -> list[str]:
        return sorted(await ctx.state_keys())

    @obj.handler()
    async def clear(ctx: restate.ObjectContext, key: str) -> None:
        ctx.clear(key)

    @obj.handler()
    async def clear_all(ctx: restate.ObjectContext) -> None:
        ctx.clear_all()

    @obj.handler()
    async def hold(ctx: restate.ObjectContext, req: dict[str, Any]) -> list[str]:
        await ctx.sleep(timedelta(milliseconds=int(req["ms"])))
        entries: list[str] = (await ctx.get("log")) or []
        entries.append(str(req["tag"]))
        ctx.set("log", entries)
        return entries

    @obj.handler()
    async def append(ctx: restate.ObjectContext, tag: str) -> list[str]:
        entries: list[str] = (await ctx.get("log")) or []
        entries.append(tag)
        ctx.set("log", entries)
        return entries

    @obj.handler(kind="shared")
    async def log(ctx: restate.ObjectSharedContext) -> list[str]:
        entries: list[str] = (await ctx.get("log")) or []
        return entries

    return obj, add


counter, counter_add = make_counter("Counter", lazy=False)
lazy_counter, _ = make_counter("LazyCounter", lazy=True)

mailbox = restate.VirtualObject("Mailbox")


@mailbox.handler("put")
async def mailbox_put(ctx: restate.ObjectContext, awakeable_id: str) -> None:
    ctx.set("id", awakeable_id)


@mailbox.handler("get", kind="shared")
async def mailbox_get(ctx: restate.ObjectSharedContext) -> str | None:
    value: str | None = await ctx.get("id")
    return value


# -- workflows ---------------------------------------------------------------------------------

wf = restate.Workflow("Wf")


@wf.main()
async def run(ctx: restate.WorkflowContext, req: Any) -> dict[str, Any]:
    ctx.set("status", "waiting")
    approval = await ctx.promise("approval").value()
    ctx.set("status", "done")
    return {"input": req, "approved_with": approval}


@wf.handler()
async def signal(ctx: restate.WorkflowSharedContext, value: Any) -> str:
    await ctx.promise("approval").resolve(value)
    return "resolved"


@wf.handler()
async def reject(ctx: restate.WorkflowSharedContext, message: str) -> str:
    await ctx.promise("approval").reject(message)
    return "rejected"


@wf.handler()
async def status(ctx: restate.WorkflowSharedContext) -> str | None:
    value: str | None = await ctx.get("status")
    return value


@wf.handler()
async def peek(ctx: restate.WorkflowSharedContext) -> Any:
    return await ctx.promise("approval").peek()


short_wf = restate.Workflow("ShortWf")


@short_wf.main("run", workflow_retention=SHORT_RETENTION)
async def short_run(ctx: restate.WorkflowContext, req: Any) -> dict[str, Any]:
    return {"done": req}


# -- plain services ----------------------------------------------------------------------------

sleeper = restate.Service("Sleeper")


@sleeper.handler()
async def sleep(ctx: restate.Context, ms: int) -> int:
    await ctx.sleep(timedelta(milliseconds=ms))
    return ms


echo = restate.Service("Echo")


@echo.handler()
async def headers(ctx: restate.Context) -> dict[str, str]:
    return {k: v for k, v in ctx.request().headers.items() if k.lower().startswith("x-test-")}


@echo.handler(
    accept="application/octet-stream",
    content_type="application/octet-stream",
    input_serde=BytesSerde(),
    output_serde=BytesSerde(),
)
async def raw(ctx: restate.Context, data: bytes) -> bytes:
    return bytes(reversed(data))


@echo.handler()
async def nothing(ctx: restate.Context) -> None:
    return None


@echo.handler()
async def hello(ctx: restate.Context) -> str:
    return "hello"


caller = restate.Service("Caller")


@caller.handler()
async def call_add(ctx: restate.Context, req: dict[str, Any]) -> int:
    result: int = await ctx.object_call(
        counter_add, key=req["key"], arg=req["delta"], idempotency_key=req.get("idem")
    )
    return result


@caller.handler()
async def send_add(ctx: restate.Context, req: dict[str, Any]) -> str:
    delay = req.get("delay_ms")
    handle = ctx.object_send(
        counter_add,
        key=req["key"],
        arg=req["delta"],
        send_delay=timedelta(milliseconds=delay) if delay else None,
    )
    return await handle.invocation_id()


@caller.handler()
async def call_wf(ctx: restate.Context, req: dict[str, Any]) -> Any:
    return await ctx.workflow_call(run, key=req["key"], arg=req["input"])


@caller.handler()
async def call_headers(ctx: restate.Context, hdrs: dict[str, str]) -> dict[str, str]:
    result: dict[str, str] = await ctx.service_call(headers, arg=None, headers=hdrs)
    return result


@caller.handler()
async def call_sleep(ctx: restate.Context, ms: int) -> int:
    result: int = await ctx.service_call(sleep, arg=ms)
    return result


@caller.handler()
async def call_terminal(ctx: restate.Context, req: dict[str, Any]) -> Any:
    return await ctx.service_call(terminal, arg=req)


@caller.handler()
async def attach(ctx: restate.Context, invocation_id: str) -> Any:
    return await ctx.attach_invocation(invocation_id)


# -- awakeables --------------------------------------------------------------------------------

awaker = restate.Service("Awaker")


@awaker.handler()
async def wait(ctx: restate.Context, tag: str) -> dict[str, Any]:
    awakeable_id, fut = ctx.awakeable()
    ctx.object_send(mailbox_put, key=tag, arg=awakeable_id)
    value = await fut
    return {"id": awakeable_id, "value": value}


@awaker.handler()
async def resolve(ctx: restate.Context, req: dict[str, Any]) -> None:
    ctx.resolve_awakeable(req["id"], req["value"])


@awaker.handler("reject")
async def reject_awakeable(ctx: restate.Context, req: dict[str, Any]) -> None:
    ctx.reject_awakeable(req["id"], req["message"])


@awaker.handler()
async def wait_signal(ctx: restate.Context, name: str) -> Any:
    return await ctx.signal(name)


@awaker.handler()
async def send_signal(ctx: restate.Context, req: dict[str, Any]) -> None:
    if "message" in req:
        ctx.reject_signal(req["id"], req["name"], req["message"], int(req.get("code", 500)))
    else:
        ctx.resolve_signal(req["id"], req["name"], req["value"])


# -- failures ----------------------------------------------------------------------------------

failing = restate.Service("Failing")


@failing.handler()
async def terminal(ctx: restate.Context, req: dict[str, Any]) -> None:
    raise restate.TerminalError(req["message"], status_code=int(req["code"]))


@failing.handler(invocation_retry_policy=FAST_RETRIES)
async def flaky(ctx: restate.Context, tag: str) -> int:
    attempt = _attempt(tag)
    if attempt <= 2:
        raise RuntimeError(f"[SIMULATED] flaky {tag} attempt {attempt}")
    return attempt


@failing.handler(
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=100), max_attempts=2, on_max_attempts="pause"
    )
)
async def exhaust_pause(ctx: restate.Context, tag: str) -> int:
    attempt = _attempt(tag)
    if tag not in _healed:
        raise RuntimeError(f"[SIMULATED] {tag} attempt {attempt}")
    return attempt


@failing.handler(
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=100), max_attempts=2, on_max_attempts="kill"
    )
)
async def exhaust_kill(ctx: restate.Context, tag: str) -> int:
    attempt = _attempt(tag)
    raise RuntimeError(f"[SIMULATED] {tag} attempt {attempt}")


@failing.handler()
async def heal(ctx: restate.Context, tag: str) -> None:
    _healed.add(tag)


@failing.handler()
async def attempts(ctx: restate.Context, tag: str) -> int:
    return _attempts.get(tag, 0)


retention = restate.Service("Retention")


@retention.handler(idempotency_retention=SHORT_RETENTION)
async def short(ctx: restate.Context) -> str:
    return "done"


app = restate.app(
    services=[
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
