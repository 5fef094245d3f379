"""A counter per key: a virtual object with durable state.

Each key (``/Counter/{key}/...``) has its own state. Exclusive handlers (``add``, ``reset``)
of one key run one at a time, so ``add`` never loses an update; the shared handler ``get``
runs alongside them and only reads. Run it with ``make run`` or
``undying dev examples/counter.py``, then:

    curl -X POST localhost:8080/Counter/apples/add -H 'content-type: application/json' -d '3'
    # 3
    curl -X POST localhost:8080/Counter/apples/get
    # 3
    curl -X POST localhost:8080/Counter/apples/reset
"""

from __future__ import annotations

import undying

counter = undying.VirtualObject("Counter")


@counter.handler()
async def add(ctx: undying.ObjectContext, delta: int) -> int:
    """Add ``delta`` to the count and return the new count."""
    count: int = await ctx.get("count", int, default=0)
    count += delta
    ctx.set("count", count)
    return count


@counter.handler(kind="shared")
async def get(ctx: undying.ObjectSharedContext) -> int:
    """The current count (0 for a key never added to)."""
    return await ctx.get("count", int, default=0)


@counter.handler()
async def reset(ctx: undying.ObjectContext) -> None:
    """Forget the count."""
    ctx.clear("count")


app = undying.app([counter])
