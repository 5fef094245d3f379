"""The benchmark service, written with the official Restate Python SDK (restate-sdk 1.2.0).

Service ``bench``:

- ``noop(n: int) -> str``: a durable invocation with no steps; returns ``"ok"``.
- ``steps(n: int) -> str``: ``n`` trivial durable steps (``ctx.run_typed("s", _step)``, each
  returns ``"ok-step"``), then returns ``"done"``.

Served by hypercorn (one process, asyncio, h2c and HTTP/1.1 on one port) through
:func:`undying.testing.asgi.serve_asgi`, which prints ``service listening on 127.0.0.1:PORT``.
The same file is served to undying and to restate-server, one process each.

Run: ``SERVICE_PORT=0 python bench/services.py``.
"""

from __future__ import annotations

import restate

from undying.testing.asgi import serve_asgi

SERVICE_NAME = "bench"

bench = restate.Service(SERVICE_NAME)


def _step() -> str:
    return "ok-step"


@bench.handler()
async def noop(ctx: restate.Context, n: int) -> str:
    return "ok"


@bench.handler()
async def steps(ctx: restate.Context, n: int) -> str:
    for _ in range(n):
        await ctx.run_typed("s", _step)
    return "done"


app = restate.app(services=[bench])

if __name__ == "__main__":
    serve_asgi(app)
