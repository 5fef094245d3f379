"""Actions: what the state machine asks the partition's leader to do after applying a record.

Actions are not persisted; after a restart or a leader change the leader derives the ones still
needed from the state (invocations to run, timers to arm, messages to deliver).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from undying.server.partition.records import Body, Result, Target, TimerKey

__all__ = [
    "Abort",
    "Action",
    "ArmTimer",
    "Forward",
    "Invoke",
    "Respond",
    "Send",
]


class Invoke(NamedTuple):
    """Run attempts of this invocation (epoch = the state machine's generation of the run)."""

    inv: bytes
    epoch: int


class Forward(NamedTuple):
    """Push a newly stored notification to a live bidi attempt of this epoch."""

    inv: bytes
    epoch: int
    type: int
    payload: bytes


class Abort(NamedTuple):
    """Stop any attempt of this invocation (completed, killed, paused)."""

    inv: bytes


class ArmTimer(NamedTuple):
    key: TimerKey
    wake_at: int


class Respond(NamedTuple):
    """Answer an ingress request waiting in this process."""

    request_id: str
    inv: bytes
    kind: Literal["result", "accepted", "previously_accepted", "not_ready", "not_found"]
    result: Result | None = None
    #: For results: when the stored result expires (ms), if it is retained.
    expires_at: int | None = None
    #: Whether the answer comes from a stored result (deduplicated request, attach).
    stored: bool = False
    #: What the invocation ran (for the response content type).
    target: Target | None = None


class Send(NamedTuple):
    """Deliver outbox message ``seq`` (a record) to the partition of ``partition_key``."""

    partition_key: int
    body: Body
    seq: int


Action = Invoke | Forward | Abort | ArmTimer | Respond | Send
