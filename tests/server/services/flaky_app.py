"""An undying SDK service whose handler fails (retryably) twice per process, then succeeds.

``Flaky.eventually`` returns ``"done"`` on its third execution. Served by hypercorn via
``serve_asgi`` (``$SERVICE_PORT`` or a free port; prints the service ready line).
"""

from __future__ import annotations

import undying
from undying.testing.asgi import serve_asgi

_FAILURES = 2
_executions = 0

flaky = undying.Service("Flaky")


@flaky.handler()
async def eventually(ctx: undying.Context) -> str:
    global _executions
    _executions += 1
    if _executions <= _FAILURES:
        raise RuntimeError(f"not yet ({_executions})")
    return "done"


app = undying.app([flaky])

if __name__ == "__main__":
    serve_asgi(app)
