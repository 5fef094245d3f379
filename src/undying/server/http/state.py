"""Per-server state shared by all connections of one :class:`~undying.server.http.HttpServer`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .types import ASGIApp

if TYPE_CHECKING:
    from .protocol import HttpConnection


class ServerState:
    """What all connections of one :class:`~undying.server.http.HttpServer` share."""

    __slots__ = (
        "all_closed",
        "app",
        "closing",
        "connections",
        "keep_alive_timeout",
        "loop",
        "max_header_bytes",
        "server_line",
        "tasks",
    )

    def __init__(
        self,
        app: ASGIApp,
        loop: asyncio.AbstractEventLoop,
        *,
        keep_alive_timeout: float,
        max_header_bytes: int,
        server_header: str | None,
    ) -> None:
        self.app = app
        self.loop = loop
        self.keep_alive_timeout = keep_alive_timeout
        self.max_header_bytes = max_header_bytes
        self.server_line = (
            b"" if server_header is None else b"server: %s\r\n" % server_header.encode("latin-1")
        )
        self.connections: set[HttpConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self.all_closed = asyncio.Event()
