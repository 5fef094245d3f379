"""Deadlines, and the one polling helper of the test harness.

Prefer events (a line on a process's stdout, an HTTP response) over polling. Poll only what
cannot announce itself: an external process's HTTP endpoint or a file another process appends to.
All such polling goes through :func:`poll_until`, so its interval and error reporting live in one
place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, TypeVar

__all__ = ["DEFAULT_POLL_INTERVAL", "Deadline", "WaitTimeout", "pause_until", "poll_until"]

T = TypeVar("T")

#: Pause between two checks of :func:`poll_until`: short, so waits end soon after the condition.
DEFAULT_POLL_INTERVAL: Final = 0.05


class WaitTimeout(AssertionError):
    """A condition did not come true before its deadline.

    It is an ``AssertionError`` so that pytest reports it as a failed expectation.
    """


class Deadline:
    """A point in time, ``timeout`` seconds after creation (monotonic clock).

    >>> d = Deadline(5.0)
    >>> 4.0 < d.remaining() <= 5.0
    True
    """

    __slots__ = ("_at", "timeout")

    def __init__(self, timeout: float) -> None:
        if timeout < 0:
            raise ValueError(f"`timeout` must be non-negative, got {timeout}")
        self.timeout = timeout
        self._at = time.monotonic() + timeout

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._at


def poll_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = DEFAULT_POLL_INTERVAL,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``check`` until it returns something other than ``None``, and return that.

    Exceptions raised by ``check`` propagate at once (use them for "this can never come true",
    e.g. the process died).

    Args:
        check: returns the awaited value, or ``None`` for "not yet".
        timeout: seconds before giving up with :class:`WaitTimeout`.
        what: the awaited condition, for the error message ("admin /health answers 200").
        interval: pause between checks.
        describe: called on timeout; its text (e.g. the last value seen) ends the message.
    """
    deadline = Deadline(timeout)
    while True:
        result = check()
        if result is not None:
            return result
        left = deadline.remaining()
        if left <= 0:
            detail = f": {describe()}" if describe is not None else ""
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting until {what}{detail}")
        time.sleep(min(interval, left))


def pause_until(wall_time: float) -> None:
    """Let wall-clock time pass until ``wall_time`` (``time.time()`` scale).

    This is not a wait for a condition: scenarios such as "the server stays down past a timer's
    wake-up time" need real time to elapse, and nothing else can signal that.
    """
    left = wall_time - time.time()
    if left > 0:
        time.sleep(left)
