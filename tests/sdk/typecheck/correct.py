# pyright: strict
"""Idiomatic use of the SDK: must type-check with zero errors under pyright and mypy (strict).

Checked by ``tests/sdk/test_type_errors.py``; it catches false positives of the SDK's types (a
correct program the checkers would refuse) and pins the types the SDK infers, with
:func:`typing.assert_type`. It is also imported by that test, so every definition here is
valid at registration time too. Its handlers are never run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, assert_type
from uuid import UUID

import undying
from undying import (
    CallFuture,
    Context,
    DurableFuture,
    DurablePromise,
    Handler,
    ObjectContext,
    ObjectSharedContext,
    Request,
    RunOptions,
    SendHandle,
    TerminalError,
    WorkflowContext,
    WorkflowSharedContext,
)


@dataclass
class Order:
    item: str
    quantity: int


def charge(amount: int, currency: str = "EUR") -> str:
    return f"charged {amount} {currency}"


async def fetch(url: str, *, retries: int = 0) -> bytes:
    await asyncio.sleep(0)
    return url.encode() * (retries + 1)


def nothing() -> None:
    pass


# -- a service -----------------------------------------------------------------------------------

shop = undying.Service("Shop")


@shop.handler()
async def greet(ctx: Context, name: str) -> str:
    request = ctx.request()
    assert_type(request, Request)
    assert_type(request.headers.get("x-id"), str | None)
    assert_type(ctx.random(), float)
    assert_type(ctx.uuid(), UUID)
    assert_type(ctx.rand.randint(1, 6), int)
    assert_type(await ctx.time(), float)
    await ctx.sleep(timedelta(milliseconds=10))
    await ctx.sleep(0.5, name="nap")
    return f"Hello {name}!"


@shop.handler(name="place", description="Place an order.")
async def place_order(ctx: Context, order: Order) -> int:
    # ctx.run: the result type comes from the function, the arguments are checked against it.
    receipt = await ctx.run("charge", charge, order.quantity * 10)
    assert_type(receipt, str)
    assert_type(ctx.run("charge", charge, 1, currency="USD"), DurableFuture[str])
    body = await ctx.run(RunOptions(name="fetch", max_attempts=3), fetch, "http://x", retries=1)
    assert_type(body, bytes)
    assert_type(await ctx.run("lambda", lambda: order.quantity), int)
    assert_type(await ctx.run("void", nothing), None)
    if order.quantity <= 0:
        raise TerminalError("nothing to order", status_code=400)
    return order.quantity


@shop.handler
async def ping(ctx: Context) -> None:
    pass


assert_type(greet, Handler[str, str])
assert_type(place_order, Handler[Order, int])
assert_type(ping, Handler[None, None])


# -- a virtual object ----------------------------------------------------------------------------

counter = undying.VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    count = await ctx.get("count", int, default=0)
    assert_type(count, int)
    ctx.set("count", count + delta)
    ctx.set("last", Order("apple", delta))
    return count + delta


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    assert_type(ctx.key(), str)
    maybe = await ctx.get("count", int)
    assert_type(maybe, int | None)
    untyped = await ctx.get("count")
    assert_type(untyped, Any | None)
    assert_type(await ctx.state_keys(), list[str])
    return maybe or 0


@counter.handler
async def reset(ctx: ObjectContext) -> None:
    ctx.clear("count")
    ctx.clear_all()


@counter.handler(kind="shared")
async def describe(ctx: Context) -> str:  # needing less than it gets is fine
    return "a counter"


assert_type(add, Handler[int, int])
assert_type(get, Handler[None, int])


# -- a workflow ----------------------------------------------------------------------------------

signup = undying.Workflow("Signup")


@signup.main()
async def run(ctx: WorkflowContext, email: str) -> bool:
    ctx.set("email", email)
    code = ctx.promise("code", str)
    assert_type(code, DurablePromise[str])
    assert_type(await code, str)
    assert_type(await code.value(), str)
    assert_type(await code.peek(), str | None)
    return True


@signup.handler()
async def confirm(ctx: WorkflowSharedContext, code: str) -> None:
    await ctx.promise("code", str).resolve(code)
    email = await ctx.get("email", str, default="")
    assert_type(email, str)


@signup.handler
async def cancel(ctx: WorkflowSharedContext) -> None:
    await ctx.promise("code").reject("cancelled", code=409)


assert_type(run, Handler[str, bool])
assert_type(confirm, Handler[str, None])


# -- calling other handlers, and combining futures -----------------------------------------------

caller = undying.Service("Caller")


@caller.handler()
async def orchestrate(ctx: Context, name: str) -> list[str]:
    greeting = ctx.service_call(greet, name, idempotency_key="k", headers={"x": "y"})
    assert_type(greeting, CallFuture[str])
    assert_type(await greeting.invocation_id(), str)
    total = ctx.object_call(add, "apples", 3)
    assert_type(total, CallFuture[int])
    current = ctx.object_call(get, "apples", None)
    assert_type(current, CallFuture[int])
    assert_type(ctx.service_call(ping, None), CallFuture[None])
    assert_type(ctx.workflow_call(run, "w1", "a@b.c"), CallFuture[bool])
    handle = ctx.service_send(greet, name, delay=timedelta(seconds=1))
    assert_type(handle, SendHandle)
    ctx.object_send(reset, "apples", None)
    ctx.workflow_send(confirm, "w1", "1234")
    raw = ctx.generic_call("Shop", "greet", b'"Bob"')
    assert_type(raw, CallFuture[bytes])
    ctx.generic_send("Counter", "add", b"1", key="apples")

    both = await undying.gather(greeting, total)
    assert_type(both, tuple[str, int])
    many = await undying.gather(*[ctx.sleep(1) for _ in range(5)])
    assert_type(many, tuple[None, ...])

    awakeable_id, approval = ctx.awakeable(bool)
    assert_type(awakeable_id, str)
    assert_type(approval, DurableFuture[bool])
    timeout = ctx.sleep(timedelta(hours=1))
    winner = await undying.select(approval, timeout)
    assert_type(winner, int)
    if winner == 0 and await approval:
        ctx.resolve_awakeable("other", {"ok": True})
    done, pending = await undying.wait_completed(greeting, timeout)
    assert_type(done, list[DurableFuture[Any]])
    assert_type(pending, list[DurableFuture[Any]])
    results: list[str] = []
    async for future in undying.as_completed(greeting, ctx.service_call(greet, "Alice")):
        results.append(str(await future))

    assert_type(await ctx.attach_invocation("inv_1", str), str)
    assert_type(await ctx.invocation_output("inv_1", int), int | None)
    assert_type(await ctx.signal("go", int), int)
    ctx.send_signal("inv_1", "go", 1)
    ctx.cancel_invocation("inv_2")
    return results


# Handlers stay callable like the functions they wrap (in unit tests, with any context).
async def unit_test(ctx: Context) -> None:
    assert_type(await greet(ctx, "Bob"), str)
    assert_type(await ping(ctx), None)


app = undying.app([shop, counter, signup, caller])
assert_type(app, undying.Endpoint)
