"""The :class:`HttpServer`: an HTTP/1.1 server for ASGI apps running in the caller's loop."""

from __future__ import annotations

import asyncio
import contextlib

from ._common import logger
from .protocol import HttpConnection
from .state import ServerState
from .types import ASGIApp

__all__ = ["HttpServer"]


class HttpServer:
    """A lean HTTP/1.1 server for an ASGI 3 app, started as part of an existing event loop.

    Requests are parsed with ``httptools`` on a plain :class:`asyncio.Protocol`; each request
    runs the app in its own task. Works with the default asyncio loop and with uvloop.

    Usage::

        server = HttpServer(app, port=8080)
        await server.start()
        ...
        await server.stop()
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_alive_timeout: float = 75.0,
        max_header_bytes: int = 64 * 1024,
        server_header: str | None = None,
    ) -> None:
        """Configure the server; nothing is bound until :meth:`start`.

        ``keep_alive_timeout`` bounds how long an idle connection (no request in progress)
        may take to send the next complete request head. ``max_header_bytes`` limits the
        request line plus headers (answered with 431). ``server_header``, if given, is sent
        as the ``server`` response header.
        """
        self._app = app
        self._host = host
        self._requested_port = port
        self._keep_alive_timeout = keep_alive_timeout
        self._max_header_bytes = max_header_bytes
        self._server_header = server_header
        self._server: asyncio.Server | None = None
        self._state: ServerState | None = None
        self._port = 0
        self._stopped: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The bound TCP port (of the first listening socket); valid after :meth:`start`."""
        if self._server is None:
            raise RuntimeError("HttpServer is not started")
        return self._port

    @property
    def host(self) -> str:
        """The host the server binds to."""
        return self._host

    async def start(self) -> None:
        """Bind and start accepting connections; ``port=0`` picks a free ephemeral port."""
        if self._server is not None:
            raise RuntimeError("HttpServer already started")
        loop = asyncio.get_running_loop()
        state = ServerState(
            self._app,
            loop,
            keep_alive_timeout=self._keep_alive_timeout,
            max_header_bytes=self._max_header_bytes,
            server_header=self._server_header,
        )
        server = await loop.create_server(
            lambda: HttpConnection(state),
            self._host,
            self._requested_port,
            reuse_address=True,
            backlog=1024,
        )
        self._state = state
        self._server = server
        sockets = server.sockets
        self._port = int(sockets[0].getsockname()[1]) if sockets else self._requested_port
        logger.debug("HTTP server listening on %s:%d", self._host, self._port)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop gracefully.

        Stops accepting, closes idle keep-alive connections, lets in-flight requests
        finish for up to ``grace`` seconds (their responses carry ``connection: close``;
        pipelined requests not yet started are dropped), then aborts the remaining
        connections and cancels the remaining application tasks. A connection whose last
        response was sent is closed when the client closes it, or at the latest after the
        short linger period (or ``grace``). Returns once everything is closed; calling it
        again (or concurrently) just waits for that.
        """
        server = self._server
        state = self._state
        if server is None or state is None:
            return
        if self._stopped is not None:  # stop() already running or done: wait for it
            await self._stopped.wait()
            return
        self._stopped = asyncio.Event()
        try:
            await self._stop(server, state, grace)
        finally:
            self._stopped.set()

    async def _stop(self, server: asyncio.Server, state: ServerState, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        state.closing = True
        server.close()
        for conn in list(state.connections):
            conn.shutdown()
        if state.tasks:
            await asyncio.wait(set(state.tasks), timeout=max(0.0, deadline - loop.time()))
        if state.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    state.all_closed.wait(), timeout=max(0.0, deadline - loop.time())
                )
        for conn in list(state.connections):
            conn.abort()
        pending = [task for task in state.tasks if not task.done()]
        if pending:
            logger.warning("cancelling %d ASGI task(s) still running after stop", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if state.connections:
            await state.all_closed.wait()
        await server.wait_closed()
        logger.debug("HTTP server on %s:%d stopped", self._host, self._port)
