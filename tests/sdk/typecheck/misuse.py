# pyright: strict
"""Deliberate misuse of the SDK: every marked line must be refused by pyright and mypy (strict).

``tests/sdk/test_type_errors.py`` type-checks this file with both and requires, for each marked
line, an error matching each regex given for that checker, and no other error anywhere. Marks
apply to the next line holding code::

    # assert-type-error-pyright: '<regex matched against pyright's message>'
    # assert-type-error-mypy: '<regex matched against mypy's message>'

A case only one checker can see carries ``# only-<that checker>: <why the other cannot>``
instead of the other checker's mark (no case needs one today). This file is never imported or
run (several definitions here would raise DefinitionError at import), and it is excluded from
``make lint``'s pyright run; pytest does not collect it (not ``test_*.py``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import undying
from undying import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    WorkflowContext,
    WorkflowSharedContext,
)


def add(a: int, b: int) -> int:
    return a + b


async def fetch(url: str, *, retries: int = 0) -> bytes:
    await asyncio.sleep(0)
    return url.encode() * (retries + 1)


svc = undying.Service("Misuse")
obj = undying.VirtualObject("MisuseObject")
wf = undying.Workflow("MisuseWorkflow")


@svc.handler()
async def greet(ctx: Context, name: str) -> str:
    return name


@obj.handler()
async def bump(ctx: ObjectContext, delta: int) -> int:
    return delta


@wf.main()
async def run(ctx: WorkflowContext, email: str) -> bool:
    return True


# -- ctx.run: the arguments are checked against the function (ParamSpec) -------------------------


@svc.handler()
async def run_misuse(ctx: Context) -> None:
    # mypy names the argument types rather than the wrong one (ctx.run has two overloads: async
    # and plain functions); pyright points at the argument.
    # assert-type-error-pyright: 'No overloads for "run" match'
    # assert-type-error-pyright: 'Argument of type "Literal\['two'\]" cannot be assigned to parameter "b" of type "int"'
    # assert-type-error-mypy: 'No overload variant of "run" of "Context" matches argument types "str", "Callable\[\[int, int\], int\]", "int", "str"$'
    await ctx.run("add", add, 1, "two")
    # assert-type-error-pyright: 'No overloads for "run" match'
    # assert-type-error-pyright: 'Argument missing for parameter "b"'
    # assert-type-error-mypy: 'No overload variant of "run" of "Context" matches argument types "str", "Callable\[\[int, int\], int\]", "int"$'
    await ctx.run("add", add, 1)
    # assert-type-error-pyright: 'No overloads for "run" match'
    # assert-type-error-pyright: 'Expected 2 positional arguments'
    # assert-type-error-mypy: 'No overload variant of "run" of "Context" matches argument types "str", "Callable\[\[int, int\], int\]", "int", "int", "int"$'
    await ctx.run("add", add, 1, 2, 3)
    # assert-type-error-pyright: 'No overloads for "run" match'
    # assert-type-error-pyright: 'No parameter named "retry"'
    # assert-type-error-mypy: 'Unexpected keyword argument "retry" for "run" of "Context"'
    await ctx.run("fetch", fetch, "http://x", retry=3)
    # The result has the function's return type.
    # assert-type-error-pyright: 'Type "int" is not assignable to declared type "str"'
    # (mypy infers T from the declared type first, so it says that no overload matches)
    # assert-type-error-mypy: 'No overload variant of "run" of "Context" matches argument types "str", "Callable\[\[int, int\], int\]", "int", "int"$'
    _text: str = await ctx.run("add", add, 1, 2)
    # A coroutine object is not a function: ctx.run takes the function and its arguments.
    # assert-type-error-pyright: 'No overloads for "run" match'
    # assert-type-error-pyright: 'Arguments for ParamSpec "P@run" are missing'
    # assert-type-error-pyright: 'Argument of type "CoroutineType\[Any, Any, bytes\]" cannot be assigned to parameter "fn"'
    # assert-type-error-mypy: 'No overload variant of "run" of "Context" matches argument types "str", "Coroutine\[Any, Any, bytes\]"'
    await ctx.run("fetch", fetch("http://x"))


# -- writing state from a shared handler ----------------------------------------------------------


@obj.handler(kind="shared")
async def shared_writes(ctx: ObjectSharedContext) -> None:
    # assert-type-error-pyright: 'Cannot access attribute "set" for class "ObjectSharedContext"'
    # assert-type-error-pyright: 'Type of "set" is unknown'
    # assert-type-error-mypy: '"ObjectSharedContext" has no attribute "set"'
    ctx.set("count", 1)
    # assert-type-error-pyright: 'Cannot access attribute "clear" for class "ObjectSharedContext"'
    # assert-type-error-pyright: 'Type of "clear" is unknown'
    # assert-type-error-mypy: '"ObjectSharedContext" has no attribute "clear"'
    ctx.clear("count")


@wf.handler()
async def workflow_shared_writes(ctx: WorkflowSharedContext) -> None:
    # assert-type-error-pyright: 'Cannot access attribute "set" for class "WorkflowSharedContext"'
    # assert-type-error-pyright: 'Type of "set" is unknown'
    # assert-type-error-mypy: '"WorkflowSharedContext" has no attribute "set"'
    ctx.set("status", "confirmed")
    # assert-type-error-pyright: 'Cannot access attribute "clear_all" for class "WorkflowSharedContext"'
    # assert-type-error-pyright: 'Type of "clear_all" is unknown'
    # assert-type-error-mypy: '"WorkflowSharedContext" has no attribute "clear_all"'
    ctx.clear_all()


# -- a handler whose context does not fit its kind ------------------------------------------------


# assert-type-error-pyright: 'No overloads for "__call__" match'
# assert-type-error-pyright: 'Argument of type .* cannot be assigned to parameter "fn"'
# assert-type-error-pyright: 'Untyped function decorator obscures type of function'
# assert-type-error-mypy: 'Argument 1 to "__call__" of "HandlerDecorator" has incompatible type .*; expected "Callable\[\[ObjectSharedContext\]'
@obj.handler(kind="shared")
async def shared_wants_exclusive(ctx: ObjectContext) -> None:
    pass


# assert-type-error-pyright: 'No overloads for "handler" match'
# assert-type-error-pyright: 'Argument of type "\(ctx: ObjectContext, x: int\) -> .*" cannot be assigned'
# assert-type-error-pyright: 'Untyped function decorator obscures type of function'
# assert-type-error-mypy: 'Argument 1 to "handler" of "Service" has incompatible type "Callable\[\[ObjectContext, int\]'
@svc.handler
async def service_wants_object(ctx: ObjectContext, x: int) -> None:
    pass


# assert-type-error-pyright: 'No overloads for "__call__" match'
# assert-type-error-pyright: 'Argument of type .* cannot be assigned to parameter "fn"'
# assert-type-error-pyright: 'Untyped function decorator obscures type of function'
# assert-type-error-mypy: 'Argument 1 to "__call__" of "HandlerDecorator" has incompatible type .*; expected "Callable\[\[WorkflowSharedContext\]'
@wf.handler()
async def shared_wants_run_context(ctx: WorkflowContext) -> None:
    pass


# -- handler shapes the decorators refuse (also refused at definition time) -----------------------


# assert-type-error-pyright: 'No overloads for "__call__" match'
# assert-type-error-pyright: 'Argument of type .* cannot be assigned to parameter "fn"'
# assert-type-error-pyright: 'Untyped function decorator obscures type of function'
# assert-type-error-mypy: 'Argument 1 to "__call__" of "HandlerDecorator" has incompatible type .*; expected "Callable\[\[Context\]'
@svc.handler()
def not_async(ctx: Context) -> str:
    return "sync"


# assert-type-error-pyright: 'No overloads for "__call__" match'
# assert-type-error-pyright: 'Argument of type .* cannot be assigned to parameter "fn"'
# assert-type-error-pyright: 'Untyped function decorator obscures type of function'
# assert-type-error-mypy: 'Argument 1 to "__call__" of "HandlerDecorator" has incompatible type .*; expected "Callable\[\[Context\]'
@svc.handler()
async def two_inputs(ctx: Context, a: int, b: int) -> int:
    return a + b


# -- combinators take durable futures only ("awaiting a non-durable future") ---------------------


@svc.handler()
async def combine_misuse(ctx: Context) -> None:
    loop = asyncio.get_running_loop()
    plain: asyncio.Future[int] = loop.create_future()
    # assert-type-error-pyright: 'No overloads for "gather" match'
    # assert-type-error-pyright: 'Argument of type "Future\[int\]" cannot be assigned to parameter "futures" of type "DurableFuture\[T@gather\]"'
    # assert-type-error-mypy: 'No overload variant of "gather" matches argument type "Future\[int\]"'
    await undying.gather(plain)
    # assert-type-error-pyright: 'Argument of type "CoroutineType\[Any, Any, None\]" cannot be assigned to parameter "futures"'
    # assert-type-error-mypy: 'No overload variant of "select" matches argument types "DurableFuture\[None\]", "Coroutine\[Any, Any, None\]"'
    await undying.select(ctx.sleep(1), asyncio.sleep(1))
    # assert-type-error-pyright: 'Argument of type "Task\[None\]" cannot be assigned to parameter "futures"'
    # assert-type-error-mypy: 'Argument 1 to "wait_completed" has incompatible type "Task\[None\]"; expected "DurableFuture\[Any\]"'
    await undying.wait_completed(asyncio.ensure_future(asyncio.sleep(1)))


# -- calling a typed handler with the wrong input -------------------------------------------------


@svc.handler()
async def call_misuse(ctx: Context) -> None:
    # assert-type-error-pyright: 'Argument of type "Literal\[42\]" cannot be assigned to parameter "arg"(.|\n)*is not assignable to "str"'
    # assert-type-error-mypy: 'Cannot infer value of type parameter "I" of "service_call" of "Context"'
    ctx.service_call(greet, 42)
    # assert-type-error-pyright: 'Argument of type "Literal\['three'\]" cannot be assigned to parameter "arg"(.|\n)*is not assignable to "int"'
    # assert-type-error-mypy: 'Cannot infer value of type parameter "I" of "object_send" of "Context"'
    ctx.object_send(bump, "apples", "three", delay=timedelta(seconds=1))
    # The key of an object call is not optional.
    # assert-type-error-pyright: 'Argument missing for parameter "arg"'
    # assert-type-error-mypy: 'Missing positional argument "arg" in call to "object_call" of "Context"'
    # assert-type-error-mypy: 'Argument 2 to "object_call" of "Context" has incompatible type "int"; expected "str"'
    ctx.object_call(bump, 3)
    # assert-type-error-pyright: 'Type "bool" is not assignable to declared type "str"'
    # assert-type-error-mypy: 'Argument 1 to "workflow_call" of "Context" has incompatible type "Handler\[str, bool\]"; expected "Handler\[str, str\]"'
    _done: str = await ctx.workflow_call(run, "w1", "a@b.c")


# -- state with the wrong type hint or default ----------------------------------------------------


@obj.handler()
async def state_misuse(ctx: ObjectContext) -> None:
    # assert-type-error-pyright: 'Type "str \| None" is not assignable to declared type "int"'
    # assert-type-error-mypy: 'Incompatible types in assignment \(expression has type "str \| None", variable has type "int"\)'
    _count: int = await ctx.get("count", str)
    # A default of another type widens the value's type (int | str for pyright, object for
    # mypy), as with any generic default: refused where the value is used as an int.
    # assert-type-error-pyright: 'Type "int \| str" is not assignable to declared type "int"'
    # assert-type-error-mypy: 'Argument "default" to "get" of "ObjectSharedContext" has incompatible type "str"; expected "int"'
    _total: int = await ctx.get("total", int, default="zero")
    # A type hint must be a class.
    # assert-type-error-pyright: 'Argument of type "Literal\['int'\]" cannot be assigned to parameter "type_hint"'
    # assert-type-error-mypy: 'No overload variant of "get" of "ObjectSharedContext" matches argument types "str", "str"'
    await ctx.get("count", "int")


# -- a typed durable promise resolved with the wrong type -----------------------------------------


@wf.handler()
async def promise_misuse(ctx: WorkflowSharedContext) -> None:
    # assert-type-error-pyright: 'Argument of type "Literal\[1234\]" cannot be assigned to parameter "value" of type "str"'
    # assert-type-error-mypy: 'Argument 1 to "resolve" of "DurablePromise" has incompatible type "int"; expected "str"'
    await ctx.promise("code", str).resolve(1234)
    # assert-type-error-pyright: 'Type "str" is not assignable to declared type "int"'
    # assert-type-error-mypy: 'Argument 2 to "promise" of "WorkflowSharedContext" has incompatible type "type\[str\]"; expected "type\[int\]"'
    _code: int = await ctx.promise("code", str)
