"""Invocation status names as Restate's SQL table ``sys_invocation`` shows them."""

from __future__ import annotations

from typing import Final

__all__ = ["INVOCATION_STATUSES"]

#: ``sys_invocation.status`` values, in the order of an invocation's life.
INVOCATION_STATUSES: Final = (
    "pending",
    "scheduled",
    "ready",
    "running",
    "backing-off",
    "suspended",
    "paused",
    "completed",
)
