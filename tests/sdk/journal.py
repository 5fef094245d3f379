"""Build journals as the runtime sends them (Start + entries, framed), and decode what comes back.

An :data:`Entry` is a ``(type code, message)`` pair: notifications share one protobuf class, so
the code cannot be inferred from the message alone. Commands can be given bare (:func:`cmd`
finds their code).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

from google.protobuf.message import Message

from undying.protocol.framing import FrameDecoder, encode_message
from undying.protocol.messages import MESSAGE_CLASSES, MessageType, pb
from undying.sdk.context import Context, ObjectContext, Request
from undying.sdk.invocation import Invocation
from undying.sdk.serde import JsonSerde
from undying.sdk.vm import Machine

__all__ = [
    "INVOCATION_ID",
    "Entry",
    "attempt",
    "call_completion",
    "call_id",
    "cmd",
    "completion",
    "decode",
    "frame",
    "frames",
    "input_entry",
    "journal",
    "named_signal",
    "run_completion",
    "signal",
    "sleep_completion",
    "start",
]

Entry: TypeAlias = tuple[int, Message]

#: 24 bytes, like Restate's ids: 8-byte partition key + 16-byte uuid.
INVOCATION_ID = bytes(range(1, 25))

_JSON: JsonSerde[Any] = JsonSerde()

_CODES: dict[type[Message], int] = {
    cls: code for code, cls in MESSAGE_CLASSES.items() if cls is not pb.Notification
}


def cmd(message: Message) -> Entry:
    """A command (or control message) with the type code of its class."""
    return _CODES[type(message)], message


def frame(entry: Entry | Message) -> bytes:
    """One framed message."""
    code, message = entry if isinstance(entry, tuple) else cmd(entry)
    return encode_message(code, message)


def frames(entries: Iterable[Entry | Message]) -> bytes:
    """Framed messages, concatenated."""
    return b"".join(frame(e) for e in entries)


def start(
    known_entries: int,
    *,
    invocation_id: bytes = INVOCATION_ID,
    debug_id: str = "inv_1test",
    key: str = "",
    state: Mapping[str, bytes] | None = None,
    partial_state: bool | None = None,
    random_seed: int = 7,
    retry_count: int = 0,
    duration_ms: int = 0,
) -> pb.StartMessage:
    """A ``StartMessage``; the state map is complete when given, partial when not."""
    message = pb.StartMessage(
        id=invocation_id,
        debug_id=debug_id,
        known_entries=known_entries,
        key=key,
        partial_state=state is None if partial_state is None else partial_state,
        random_seed=random_seed,
        retry_count_since_last_stored_entry=retry_count,
        duration_since_last_stored_entry=duration_ms,
    )
    for k, v in (state or {}).items():
        message.state_map.append(pb.StartMessage.StateEntry(key=k.encode(), value=v))
    return message


def input_entry(value: bytes = b"", headers: Sequence[tuple[str, str]] = ()) -> Entry:
    """The journal's first entry."""
    return cmd(
        pb.InputCommandMessage(
            value=pb.Value(content=value), headers=[pb.Header(key=k, value=v) for k, v in headers]
        )
    )


def journal(*entries: Entry | Message, value: bytes = b"", **start_kwargs: Any) -> bytes:
    """Start + Input(``value``) + ``entries``, framed (``start_kwargs`` go to :func:`start`)."""
    all_entries = [input_entry(value), *(e if isinstance(e, tuple) else cmd(e) for e in entries)]
    head = start(len(all_entries), **start_kwargs)
    return frame(head) + frames(all_entries)


def completion(
    code: int,
    cid: int,
    value: bytes | None = None,
    *,
    failure: tuple[int, str] | None = None,
    invocation_id: str | None = None,
) -> Entry:
    """A completion notification of type ``code`` for completion id ``cid`` (void by default)."""
    message = pb.Notification(completion_id=cid)
    _fill(message, value, failure)
    if invocation_id is not None:
        message.invocation_id = invocation_id
    elif value is None and failure is None:
        message.void.SetInParent()
    return code, message


def sleep_completion(cid: int) -> Entry:
    """A fired timer."""
    return completion(MessageType.SLEEP_COMPLETION, cid)


def run_completion(
    cid: int, value: bytes | None = None, *, failure: tuple[int, str] | None = None
) -> Entry:
    """The journaled result of a run."""
    return completion(MessageType.RUN_COMPLETION, cid, value, failure=failure)


def call_id(cid: int, invocation_id: str) -> Entry:
    """The callee's invocation id of a call or send."""
    return completion(MessageType.CALL_INVOCATION_ID_COMPLETION, cid, invocation_id=invocation_id)


def call_completion(
    cid: int, value: bytes | None = None, *, failure: tuple[int, str] | None = None
) -> Entry:
    """The result of a call."""
    return completion(MessageType.CALL_COMPLETION, cid, value, failure=failure)


def signal(
    idx: int, value: bytes | None = None, *, failure: tuple[int, str] | None = None
) -> Entry:
    """A signal by index (1 = cancellation, 17+ = awakeables); void by default."""
    message = pb.Notification(signal_id=idx)
    _fill(message, value, failure)
    if value is None and failure is None:
        message.void.SetInParent()
    return MessageType.SIGNAL, message


def named_signal(name: str, value: bytes) -> Entry:
    """A named signal with a value."""
    message = pb.Notification(signal_name=name)
    message.value.content = value
    return MessageType.SIGNAL, message


def _fill(message: pb.Notification, value: bytes | None, failure: tuple[int, str] | None) -> None:
    if failure is not None:
        message.failure.CopyFrom(pb.Failure(code=failure[0], message=failure[1]))
    elif value is not None:
        message.value.content = value


def decode(data: bytes) -> list[Entry]:
    """Every message in ``data`` (which must hold whole frames only)."""
    decoder = FrameDecoder()
    out: list[Entry] = []
    for f in decoder.feed(data):
        message = MESSAGE_CLASSES[f.type]()
        message.ParseFromString(f.payload)
        out.append((f.type, message))
    assert decoder.pending == 0, "a partial frame at the end"
    return out


# -- driving one attempt ------------------------------------------------------------------------


async def attempt(
    handler: Callable[[Context], Awaitable[Any]],
    data: bytes,
    *,
    more: Sequence[bytes | None] = (),
    context: type[Context] = ObjectContext,
    version: int = 6,
) -> list[Entry]:
    """Run ``handler`` for one attempt and return what the SDK sent.

    ``data`` is fed before the handler starts; ``more`` is what the runtime sends afterwards, one
    chunk per read (``None`` closes the input). Without ``more`` the input is closed at once
    (request/response); with it the attempt is bidirectional and the input closes after it.
    """
    machine = Machine(version)
    machine.feed(data)
    pending = list(more)
    if not pending:
        machine.close_input()
    sent: list[bytes] = []

    async def receive() -> bytes | None:
        return pending.pop(0) if pending else None

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    invocation = Invocation(machine, receive, send)
    assert machine.start is not None and machine.input is not None
    request = Request(
        id=machine.start.debug_id,
        headers={h.key: h.value for h in machine.input.headers},
        body=machine.input.value.content,
        attempt=machine.start.retry_count + 1,
        key=machine.start.key,
    )
    ctx = context(invocation, request)
    await asyncio.wait_for(invocation.run_handler(lambda: handler(ctx), _JSON.serialize), 10)
    return decode(b"".join(sent))
