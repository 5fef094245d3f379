"""ASGI type aliases shared by undying's HTTP components.

Kept deliberately loose (``MutableMapping[str, Any]``) in the same style as
Starlette, so that any ASGI framework's callables type-check against them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

Scope: TypeAlias = MutableMapping[str, Any]
"""The connection scope passed to an ASGI application."""

Message: TypeAlias = MutableMapping[str, Any]
"""One ASGI event, received from ``receive()`` or passed to ``send()``."""

Receive: TypeAlias = Callable[[], Awaitable[Message]]
"""Awaitable callable yielding the next incoming ASGI event."""

Send: TypeAlias = Callable[[Message], Awaitable[None]]
"""Awaitable callable accepting an outgoing ASGI event."""

ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application: ``await app(scope, receive, send)``."""
