"""Serve an ASGI app (a Restate SDK app, or a hand-written deployment) with hypercorn.

One port speaks both HTTP/1.1 and HTTP/2 cleartext with prior knowledge (hypercorn detects the
h2 preface), which is what Restate uses for ``http://`` deployments.

The socket is bound and put into listening state *before* the ready line is printed, so a client
that connects right after seeing the line is queued in the backlog, never refused. Requires the
``hypercorn`` package (a dev dependency).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, Final

from undying.testing.paths import LOOPBACK
from undying.testing.services import ready_line

__all__ = ["patch_hypercorn_late_data", "serve_asgi"]

_BACKLOG: Final = 1024


def patch_hypercorn_late_data() -> None:
    """Make hypercorn's HTTP/2 protocol ignore DATA for streams it has already dropped.

    hypercorn (0.18) forgets a stream as soon as the app has finished the response. If the
    client's request body is still open then, its next DATA frame (even the empty one carrying
    END_STREAM) raises ``KeyError`` in ``H2Protocol._handle_events`` and the whole connection
    dies, taking every other stream multiplexed on it along. Restate-style servers keep request
    streams open (bidi protocol), so a deployment that ends its response first triggers this.
    The patch acknowledges such data (keeping flow control right) and drops it. Idempotent.
    """
    from hypercorn.protocol.h2 import H2Protocol

    if getattr(H2Protocol, "_undying_late_data_patch", False):
        return
    import h2.events

    original = H2Protocol._handle_events

    async def handle_events(self: H2Protocol, events: list[Any]) -> None:
        # One at a time: a stream only exists once its RequestReceived event was handled,
        # which may come in the same batch as its first DATA.
        for event in events:
            late = isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams
            if not late:
                await original(self, [event])
                continue
            try:
                self.connection.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
            except Exception:  # the connection itself may be closing
                pass

    H2Protocol._handle_events = handle_events  # type: ignore[method-assign]
    H2Protocol._undying_late_data_patch = True  # type: ignore[attr-defined]


def serve_asgi(
    app: Any,
    *,
    port: int | None = None,
    keep_alive_max_requests: int = 1_000_000_000,
    graceful_timeout: float = 2.0,
) -> None:
    """Run ``app`` until SIGINT/SIGTERM, after printing the service ready line.

    Applies :func:`patch_hypercorn_late_data` first.

    Args:
        app: the ASGI application.
        port: port to bind; default ``$SERVICE_PORT``, else a free one.
        keep_alive_max_requests: hypercorn closes a connection after this many requests; Restate
            multiplexes every invocation over one long-lived h2 connection, so keep it huge.
        graceful_timeout: seconds hypercorn waits for open streams on shutdown.
    """
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    patch_hypercorn_late_data()
    if port is None:
        port = int(os.environ.get("SERVICE_PORT") or 0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(_BACKLOG)
    bound: int = sock.getsockname()[1]
    fd = sock.detach()  # hypercorn wraps the descriptor in its own socket object and owns it

    config = Config()
    config.bind = [f"fd://{fd}"]
    config.backlog = _BACKLOG
    config.keep_alive_max_requests = keep_alive_max_requests
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    print(ready_line(bound), flush=True)
    try:
        asyncio.run(serve(app, config))
    except KeyboardInterrupt:
        pass
