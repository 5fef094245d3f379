"""A small, fast HTTP/1.1 server for ASGI apps, run inside an existing asyncio event loop.

Used for undying's ingress and admin APIs. Built on :class:`asyncio.Protocol` and the
``httptools`` C parser; works with the default asyncio loop and with uvloop.
"""

from .server import HttpServer
from .types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ASGIApp", "HttpServer", "Message", "Receive", "Scope", "Send"]
