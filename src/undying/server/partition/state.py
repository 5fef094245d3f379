"""The state a partition keeps: invocation statuses and journals (and what they index)."""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from undying.protocol.messages import MessageType, is_notification, pb
from undying.server.partition.records import FailureInfo, Result, Sink, Source, Target

__all__ = [
    "InvocationStatus",
    "JournalEntry",
    "NotificationIndex",
    "Promise",
    "Status",
    "decode_promise",
    "decode_status",
    "encode_promise",
    "encode_status",
]

#: Status names as ``sys_invocation_status`` shows them.
Status = Literal["scheduled", "inboxed", "invoked", "suspended", "paused", "completed"]


class InvocationStatus(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """Everything known about one invocation except its journal."""

    id: bytes
    target: Target
    status: Status
    created_at: int
    modified_at: int
    source: Source = Source()
    idempotency_key: str | None = None
    sinks: tuple[Sink, ...] = ()
    epoch: int = 0
    deployment_id: str | None = None
    protocol_version: int | None = None
    server: str | None = None
    journal_size: int = 0
    commands: int = 0
    waiting_completions: tuple[int, ...] = ()
    waiting_signals: tuple[int, ...] = ()
    waiting_named_signals: tuple[str, ...] = ()
    result: Result | None = None
    execute_at: int | None = None
    inboxed_at: int | None = None
    running_at: int | None = None
    completed_at: int | None = None
    completion_retention_ms: int = 86_400_000
    journal_retention_ms: int = 86_400_000
    retry_count: int = 0
    last_failure: FailureInfo | None = None
    next_retry_at: int | None = None
    last_start_at: int | None = None
    events: int = 0


class Promise(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """A workflow's durable promise: its outcome once completed, and who waits for it."""

    result: Result | None = None
    waiters: tuple[tuple[bytes, int], ...] = ()

    @property
    def completed(self) -> bool:
        return self.result is not None


class JournalEntry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One journal entry: the message type code, its protobuf payload and when it was stored."""

    type: int
    payload: bytes
    appended_at: int


class NotificationIndex:
    """Which completion ids, signal ids and named signals an invocation's journal holds."""

    __slots__ = ("completions", "named", "signals")

    def __init__(self) -> None:
        self.completions: set[int] = set()
        self.signals: set[int] = set()
        self.named: set[str] = set()

    def add(self, entry_type: int, payload: bytes) -> None:
        if not is_notification(entry_type):
            return
        n = pb.Notification.FromString(payload)
        which = n.WhichOneof("id")
        if which == "completion_id":
            self.completions.add(n.completion_id)
        elif which == "signal_id":
            self.signals.add(n.signal_id)
        elif which == "signal_name":
            self.named.add(n.signal_name)

    def add_completion(self, completion_id: int) -> None:
        self.completions.add(completion_id)

    def satisfies(self, status: InvocationStatus) -> bool:
        """Whether any notification a suspended invocation waits for is present."""
        return (
            any(c in self.completions for c in status.waiting_completions)
            or any(s in self.signals for s in status.waiting_signals)
            or any(n in self.named for n in status.waiting_named_signals)
        )

    @classmethod
    def of(cls, journal: list[JournalEntry]) -> NotificationIndex:
        idx = cls()
        for e in journal:
            if e.type == MessageType.SIGNAL or is_notification(e.type):
                idx.add(e.type, e.payload)
        return idx


_ENC: Final = msgspec.msgpack.Encoder()
_DEC: Final = msgspec.msgpack.Decoder(InvocationStatus)
_PROMISE_DEC: Final = msgspec.msgpack.Decoder(Promise)


def encode_promise(p: Promise) -> bytes:
    return _ENC.encode(p)


def decode_promise(data: bytes) -> Promise:
    return _PROMISE_DEC.decode(data)


def encode_status(s: InvocationStatus) -> bytes:
    return _ENC.encode(s)


def decode_status(data: bytes) -> InvocationStatus:
    return _DEC.decode(data)
