"""Invocations per status in one partition, and how many started, completed and failed.

Kept by the store as statuses change (no scan): it remembers the last status it counted for
every invocation that is not completed, so a change shows as one decrement and one increment.
Completed invocations are only counted, since most of them are not even in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from undying.server.partition.state import InvocationStatus

__all__ = ["STATUSES", "StatusCounts"]

#: Every status, in the order of an invocation's life.
STATUSES: Final = ("scheduled", "inboxed", "invoked", "suspended", "paused", "completed")
#: Statuses an invocation has before it first runs.
_NOT_STARTED: Final = (None, "scheduled", "inboxed")


class StatusCounts:
    """Counts of one partition's invocations: by status, and started/completed/failed by service.

    The store calls :meth:`put` for every stored status, :meth:`delete` for every deleted one,
    :meth:`load_live` / :meth:`load_completed` when it loads what exists.
    """

    __slots__ = ("_live", "by_status", "completed", "failed", "started")

    def __init__(self) -> None:
        self.by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
        #: service -> invocations that began running
        self.started: dict[str, int] = {}
        #: service -> invocations that completed (successfully or not)
        self.completed: dict[str, int] = {}
        #: service -> invocations that completed with a failure
        self.failed: dict[str, int] = {}
        self._live: dict[bytes, str] = {}

    def load_live(self, s: InvocationStatus) -> None:
        """``s`` (not completed) exists at start."""
        self._live[s.id] = s.status
        self.by_status[s.status] += 1

    def load_completed(self, n: int) -> None:
        """``n`` completed invocations exist at start."""
        self.by_status["completed"] += n

    def reset_events(self) -> None:
        """Forget started/completed/failed (after a recovery replayed records counted before)."""
        self.started.clear()
        self.completed.clear()
        self.failed.clear()

    def put(self, s: InvocationStatus, known: Mapping[bytes, InvocationStatus]) -> None:
        """``s`` is stored; ``known`` holds what the store had in memory before this call."""
        new = s.status
        prev = self._live.get(s.id)
        if prev == new:
            return
        if prev is None and new == "completed" and s.id in known:
            return  # a completed invocation changed (its journal expired): nothing to count
        by_status = self.by_status
        if prev is not None:
            by_status[prev] -= 1
        by_status[new] += 1
        if new == "completed":
            self._live.pop(s.id, None)
            self._completed(s)
        else:
            self._live[s.id] = new
            if new == "invoked" and prev in _NOT_STARTED:
                service = s.target.service
                self.started[service] = self.started.get(service, 0) + 1

    def delete(self, inv: bytes, s: InvocationStatus | None) -> None:
        """The status of ``inv`` is deleted; ``s`` is what the store had in memory for it."""
        prev = self._live.pop(inv, None)
        if prev is not None:
            self.by_status[prev] -= 1
            if s is not None and s.status == "completed":
                self._completed(s)  # completed and purged at once (no retention)
        elif s is not None and s.status == "completed":
            self.by_status["completed"] -= 1

    def _completed(self, s: InvocationStatus) -> None:
        service = s.target.service
        self.completed[service] = self.completed.get(service, 0) + 1
        if s.result is not None and not s.result.ok:
            self.failed[service] = self.failed.get(service, 0) + 1
