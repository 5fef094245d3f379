"""The benchmark service of ``bench/services.py``, written with the undying SDK.

Service ``ubench`` (its own name, so both SDKs' deployments can be registered on one server):

- ``noop(n: int) -> str``: a durable invocation with no steps; returns ``"ok"``.
- ``steps(n: int) -> str``: ``n`` trivial durable steps (``ctx.run("s", _step)``, each returns
  ``"ok-step"``), then returns ``"done"``.

The handlers mirror the restate-sdk ones line for line: the same plain (synchronous) ``_step``,
which both SDKs run in the event loop's thread pool. Served the same way too: hypercorn (one
process, asyncio, h2c and HTTP/1.1 on one port) through :func:`undying.testing.asgi.serve_asgi`,
which prints ``service listening on 127.0.0.1:PORT``.

Run: ``SERVICE_PORT=0 python bench/sdk_services.py``.
"""

from __future__ import annotations

import undying
from undying.testing.asgi import serve_asgi

SERVICE_NAME = "ubench"

bench = undying.Service(SERVICE_NAME)


def _step() -> str:
    return "ok-step"


@bench.handler()
async def noop(ctx: undying.Context, n: int) -> str:
    return "ok"


@bench.handler()
async def steps(ctx: undying.Context, n: int) -> str:
    for _ in range(n):
        await ctx.run("s", _step)
    return "done"


app = undying.app([bench])

if __name__ == "__main__":
    serve_asgi(app)
