"""A small undying-SDK app served by the ASGI server named in ``$ASGI_SERVER``.

``hypercorn`` (h2c + HTTP/1.1), ``granian`` (HTTP/2 only) or ``uvicorn`` (HTTP/1.1). Prints the
ready line of ``undying.testing.services`` once the port accepts connections. With
``$IDENTITY_KEY`` set, the app only accepts requests signed by that key.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import undying
from undying.testing.services import ready_line

svc = undying.Service("Steps")
counter = undying.VirtualObject("Tally")


def square(i: int) -> int:
    return i * i


@svc.handler()
async def steps(ctx: undying.Context, n: int) -> list[int]:
    out: list[int] = []
    for i in range(n):
        out.append(await ctx.run(f"step-{i}", square, i))
    await ctx.sleep(timedelta(milliseconds=50))
    return out


@counter.handler()
async def add(ctx: undying.ObjectContext, delta: int) -> int:
    total = await ctx.get("total", int, default=0) + delta
    ctx.set("total", total)
    return total


keys = [os.environ["IDENTITY_KEY"]] if os.environ.get("IDENTITY_KEY") else []
app = undying.app([svc, counter], identity_keys=keys)


def _announce_when_up(port: int) -> None:
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.02)  # polling a port that a foreign server binds: nothing to wait on
            continue
        print(ready_line(port), flush=True)
        return


def main() -> None:
    server = os.environ.get("ASGI_SERVER", "hypercorn")
    if server == "hypercorn":
        from undying.testing.asgi import serve_asgi

        serve_asgi(app)
        return
    if server == "uvicorn":
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        print(ready_line(sock.getsockname()[1]), flush=True)
        uvicorn.run(app, fd=sock.fileno(), log_level="warning", lifespan="off")
    elif server == "granian":
        # granian binds by itself: take a free port, and announce once it accepts connections
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        threading.Thread(target=_announce_when_up, args=(port,), daemon=True).start()
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces

        Granian(
            "served_app:app",
            address="127.0.0.1",
            port=port,
            interface=Interfaces.ASGI,
            http=HTTPModes.http2,
            working_dir=Path(__file__).resolve().parent,
            log_enabled=False,
        ).serve()
    else:
        sys.exit(f"unknown ASGI_SERVER {server!r}")


if __name__ == "__main__":
    main()
