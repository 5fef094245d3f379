"""Records: the only way anything in a partition changes.

A record is appended to the partition's log by ingress, the invoker, the timer service, the admin
API or another partition; once durable, the partition's state machine applies it. Records carry
every input the state machine needs (including the time, ``Envelope.ts``), so that applying the
same records always builds the same state.

Encoded with msgspec msgpack as tagged, array-like structs.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

__all__ = [
    "AdminCommand",
    "AttachRequest",
    "AttemptFailed",
    "Body",
    "Dedup",
    "End",
    "Entries",
    "Envelope",
    "Expire",
    "FailureInfo",
    "IngressSink",
    "InvocationResponse",
    "InvocationSink",
    "Invoke",
    "JournalItem",
    "OutboxEntry",
    "Pinned",
    "ResolvedCall",
    "PatchState",
    "Result",
    "Signal",
    "Sink",
    "Source",
    "Suspend",
    "Target",
    "TimerFired",
    "TimerKey",
    "TruncateOutbox",
    "decode_envelope",
    "encode_envelope",
]


class _R(msgspec.Struct, array_like=True, frozen=True, omit_defaults=True, gc=False):
    pass


ServiceTy = Literal["service", "virtual_object", "workflow"]
HandlerTy = Literal["exclusive", "shared", "workflow"]


class Target(_R, frozen=True):
    """What an invocation runs: service, handler, object/workflow key and their kinds."""

    service: str
    handler: str
    key: str | None = None
    service_ty: ServiceTy = "service"
    handler_ty: HandlerTy | None = None

    def display(self) -> str:
        if self.key is None:
            return f"{self.service}/{self.handler}"
        return f"{self.service}/{self.key}/{self.handler}"


class Result(_R, frozen=True):
    """The outcome of an invocation: a value, or a terminal failure (code + message)."""

    value: bytes | None = None
    code: int = 0
    message: str = ""
    #: Only in the answer to those waiting when a failure happens, never stored.
    stacktrace: str = ""

    @property
    def ok(self) -> bool:
        return self.value is not None


class FailureInfo(_R, frozen=True):
    """What went wrong in one attempt (retryable failure)."""

    code: int
    message: str
    stacktrace: str = ""
    related_command_index: int | None = None
    related_command_name: str | None = None
    related_command_type: int | None = None
    doc_code: str | None = None


# ---- sinks: who waits for an invocation's result -----------------------------------------------


class IngressSink(_R, frozen=True, tag="ingress"):
    """An ingress request waiting in this process (lost on restart, by design)."""

    request_id: str


class InvocationSink(_R, frozen=True, tag="invocation"):
    """Another invocation waiting on ``completion_id`` in its journal."""

    caller: bytes
    completion_id: int
    kind: Literal["call", "attach", "output"] = "call"


Sink = IngressSink | InvocationSink


class Source(_R, frozen=True):
    """Who started an invocation: ingress, or another invocation (its id and target)."""

    kind: Literal["ingress", "service", "admin"] = "ingress"
    caller: bytes | None = None
    caller_target: str | None = None


# ---- record bodies -----------------------------------------------------------------------------


class Invoke(_R, frozen=True, tag="invoke"):
    """Start (or attach to, when deduplicated) an invocation."""

    id: bytes
    target: Target
    body: bytes
    headers: list[tuple[str, str]] = []
    source: Source = Source()
    idempotency_key: str | None = None
    sink: Sink | None = None
    execute_at: int | None = None
    completion_retention_ms: int = 86_400_000
    journal_retention_ms: int = 86_400_000
    #: "call" answers the sink with the result; "send" only acknowledges acceptance.
    mode: Literal["call", "send"] = "call"
    #: The id was just made up (random): no earlier invocation can have it, skip the lookup.
    fresh: bool = False


class ResolvedCall(_R, frozen=True):
    """The target of a Call/OneWayCall command as resolved by the invoker against the schema."""

    id: bytes
    target: Target
    completion_retention_ms: int
    journal_retention_ms: int
    idempotency_key: str | None = None
    fresh: bool = False


class JournalItem(_R, frozen=True):
    """A message the deployment sent: a command or a run proposal (type 0x0005)."""

    type: int
    payload: bytes
    #: Call / OneWayCall: the callee as the invoker resolved it.
    call: ResolvedCall | None = None
    #: SendSignal, CompleteAwakeable, AttachInvocation, GetInvocationOutput: the target id.
    target_id: bytes | None = None
    #: CompleteAwakeable: the signal index the awakeable id names.
    signal_index: int | None = None


class Pinned(_R, frozen=True, tag="pinned"):
    """The invoker chose the deployment and protocol version for this invocation."""

    id: bytes
    epoch: int
    deployment_id: str
    protocol_version: int
    server: str | None = None


class Entries(_R, frozen=True, tag="entries"):
    """Commands and run proposals from an attempt, in the order the deployment sent them."""

    id: bytes
    epoch: int
    items: list[JournalItem]


class Suspend(_R, frozen=True, tag="suspend"):
    """The attempt suspended, waiting for any of these notifications."""

    id: bytes
    epoch: int
    completions: list[int] = []
    signals: list[int] = []
    named_signals: list[str] = []


class End(_R, frozen=True, tag="end"):
    """The deployment ended the invocation (its result is the journaled Output)."""

    id: bytes
    epoch: int


class AttemptFailed(_R, frozen=True, tag="failed"):
    """An attempt failed; the invoker retries at ``next_retry_at`` or gives up (``action``)."""

    id: bytes
    epoch: int
    failure: FailureInfo
    retry_count: int
    next_retry_at: int | None = None
    action: Literal["retry", "pause", "kill"] = "retry"


class TimerKey(_R, frozen=True):
    """What a timer does when it fires."""

    kind: Literal["sleep", "invoke"]
    id: bytes
    completion_id: int = 0


class TimerFired(_R, frozen=True, tag="timer"):
    key: TimerKey
    wake_at: int


class AdminCommand(_R, frozen=True, tag="admin"):
    """Operator commands on one invocation."""

    id: bytes
    command: Literal["cancel", "kill", "purge", "pause", "resume"]
    request_id: str | None = None


class InvocationResponse(_R, frozen=True, tag="response"):
    """The answer to a waiting invocation: a call's result, an attach, or a get-output.

    ``result`` None means "not completed yet" (get-output only).
    """

    caller: bytes
    completion_id: int
    kind: Literal["call", "attach", "output"]
    result: Result | None = None
    callee: bytes | None = None


class Signal(_R, frozen=True, tag="signal"):
    """A signal for an invocation: cancel (index 1), an awakeable (index >= 17), or named."""

    target: bytes
    index: int | None = None
    name: str | None = None
    #: "void", "value" or "failure" (value in ``result.value``, failure in code/message).
    kind: Literal["void", "value", "failure"] = "void"
    result: Result | None = None


class AttachRequest(_R, frozen=True, tag="attach"):
    """Someone wants an invocation's result: wait for it (attach) or peek (output)."""

    target: bytes
    kind: Literal["attach", "output"]
    sink: Sink


class Expire(_R, frozen=True, tag="expire"):
    """Forget completed invocations whose retention ran out (the cleaner found them)."""

    ids: list[bytes]


class TruncateOutbox(_R, frozen=True, tag="truncate"):
    """Messages of this partition's outbox up to ``seq`` were delivered."""

    seq: int


class PatchState(_R, frozen=True, tag="state"):
    """Replace the whole K/V state of an object or workflow key (admin API), if the state
    still has ``version`` (:func:`~undying.server.partition.state_version.state_version`;
    ``None``: whatever it is)."""

    service: str
    key: str
    entries: dict[bytes, bytes]
    version: str | None = None


Body = (
    Invoke
    | Pinned
    | Entries
    | Suspend
    | End
    | AttemptFailed
    | TimerFired
    | AdminCommand
    | InvocationResponse
    | Signal
    | AttachRequest
    | TruncateOutbox
    | PatchState
    | Expire
)


class Dedup(_R, frozen=True):
    """Where a message between partitions comes from: its source partition and sequence."""

    source: int
    seq: int


class OutboxEntry(_R, frozen=True):
    """A message waiting in a partition's outbox for delivery to ``partition_key``'s log."""

    partition_key: int
    body: Body


class Envelope(_R, frozen=True):
    """A record: the body, the partition it is for, and the time it was appended (ms)."""

    partition: int
    ts: int
    body: Body
    dedup: Dedup | None = None


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(Envelope)


def encode_envelope(env: Envelope) -> bytes:
    return _ENCODER.encode(env)


def decode_envelope(data: bytes) -> Envelope:
    return _DECODER.decode(data)
