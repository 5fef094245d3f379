"""The SDK's journal machine, sans-IO: bytes from the runtime in, bytes to the runtime out.

One :class:`Machine` serves one attempt of one invocation. The runtime sends a ``StartMessage``
and the journal so far (``known_entries`` messages); the handler's operations are then matched,
in order, against the replayed commands (**replaying**) and, once those are used up, written as
new commands (**processing**). Notifications (completions and signals) wait in a FIFO in journal
order and are moved to the ready set one at a time, only when an await needs them
(:meth:`Machine.poll`), so a race between futures resolves the same way on every replay.

Every result is addressed by a :data:`Key`: a completion id (``int >= 1``), a signal
(``-index``; ``-1`` is cancellation, awakeables use 17 and up) or a named signal (``str``).
Operations return keys; :meth:`Machine.poll` tells whether one of them is ready and
:meth:`Machine.result` gives its :data:`Result`.

Errors that end the attempt raise :class:`~undying.errors.ProtocolError` (code 570 for a journal
mismatch, 571 for a protocol violation); the caller then reports them with :meth:`Machine.fail`.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeAlias

from google.protobuf.message import Message

from undying.errors import ProtocolError, ProtocolViolation, UnsupportedVersion
from undying.protocol.framing import FrameDecoder, encode_message
from undying.protocol.messages import MESSAGE_CLASSES, MessageType, is_command, pb

__all__ = [
    "CANCEL",
    "JOURNAL_MISMATCH",
    "SUPPORTED_VERSIONS",
    "Failure",
    "InvocationIdResult",
    "Key",
    "Machine",
    "Phase",
    "Result",
    "StartInfo",
    "StateKeysResult",
    "Target",
    "VoidResult",
    "content_type_version",
]

#: Protocol versions the SDK speaks.
SUPPORTED_VERSIONS: Final = (5, 6)
JOURNAL_MISMATCH: Final = 570
#: Signal index of cancellation, as a :data:`Key`.
CANCEL: Final = -1
_FIRST_AWAKEABLE_SIGNAL: Final = 17
_CONTENT_TYPE_PREFIX: Final = "application/vnd.restate.invocation.v"

Key: TypeAlias = int | str


@dataclass(frozen=True, slots=True)
class Failure:
    """A terminal failure carried by the journal: code and message."""

    code: int
    message: str


class VoidResult(Enum):
    """The empty result (absent state, a promise not completed yet, a fired timer)."""

    VOID = "void"


@dataclass(frozen=True, slots=True)
class InvocationIdResult:
    """The id of an invocation started by a call or send."""

    invocation_id: str


@dataclass(frozen=True, slots=True)
class StateKeysResult:
    """The list of state keys."""

    keys: tuple[str, ...]


#: A value (bytes), a failure, void, an invocation id or state keys.
Result: TypeAlias = bytes | Failure | VoidResult | InvocationIdResult | StateKeysResult


@dataclass(frozen=True, slots=True)
class Target:
    """What an attach / get-output command points at: exactly one of the three forms."""

    invocation_id: str | None = None
    service: str | None = None
    handler: str | None = None
    key: str | None = None
    idempotency_key: str | None = None
    workflow: str | None = None


@dataclass(frozen=True, slots=True)
class StartInfo:
    """What the ``StartMessage`` told the attempt."""

    id: bytes
    debug_id: str
    key: str
    random_seed: int
    retry_count: int
    duration_since_last_entry_ms: int


class Phase(Enum):
    """Where the machine is in the attempt."""

    WAITING_START = "waiting_start"
    WAITING_REPLAY_ENTRIES = "waiting_replay_entries"
    REPLAYING = "replaying"
    PROCESSING = "processing"
    CLOSED = "closed"


def content_type_version(content_type: str | None) -> int:
    """The protocol version of an invoke request's content type.

    Raises:
        UnsupportedVersion: missing, foreign or unsupported content type.
    """
    if not content_type or not content_type.startswith(_CONTENT_TYPE_PREFIX):
        raise UnsupportedVersion(
            f"content type {content_type!r} is not a Restate invocation protocol; "
            "did this request come through an undying or Restate server?"
        )
    try:
        version = int(content_type[len(_CONTENT_TYPE_PREFIX) :])
    except ValueError:
        raise UnsupportedVersion(f"malformed protocol content type {content_type!r}") from None
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersion(
            f"protocol version {version} is not supported; this SDK speaks "
            f"{SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]}"
        )
    return version


def _mismatch(index: int, expected: Message, actual: Message, why: str = "") -> ProtocolError:
    detail = f" ({why})" if why else ""
    return ProtocolError(
        f"journal mismatch at command {index}{detail}: the journal has "
        f"{type(expected).__name__} {_brief(expected)}, the handler now does "
        f"{type(actual).__name__} {_brief(actual)}; the handler's code changed in a way "
        "that is not replay-safe",
        code=JOURNAL_MISMATCH,
    )


def _brief(message: Message) -> str:
    text = str(message).replace("\n", " ").strip()
    return "{" + (text[:300] + "…" if len(text) > 300 else text) + "}"


def _notification_key(notification: pb.Notification) -> Key:
    which = notification.WhichOneof("id")
    if which == "completion_id":
        return notification.completion_id
    if which == "signal_id":
        return -notification.signal_id
    if which == "signal_name":
        return notification.signal_name
    raise ProtocolViolation("notification without an id")


def _notification_result(notification: pb.Notification) -> Result:
    which = notification.WhichOneof("result")
    if which == "value":
        return notification.value.content
    if which == "failure":
        return Failure(notification.failure.code, notification.failure.message)
    if which == "invocation_id":
        return InvocationIdResult(notification.invocation_id)
    if which == "state_keys":
        return StateKeysResult(tuple(sorted(k.decode() for k in notification.state_keys.keys)))
    return VoidResult.VOID


def _set_result(message: Message, result: bytes | Failure, value: str, failure: str) -> None:
    if isinstance(result, Failure):
        getattr(message, failure).CopyFrom(pb.Failure(code=result.code, message=result.message))
    else:
        getattr(message, value).CopyFrom(pb.Value(content=result))


def _fill_target(message: Message, target: Target) -> None:
    if target.invocation_id is not None:
        message.invocation_id = target.invocation_id  # type: ignore[attr-defined]
    elif target.workflow is not None:
        message.workflow_target.CopyFrom(  # type: ignore[attr-defined]
            pb.WorkflowTarget(workflow_name=target.workflow, workflow_key=target.key or "")
        )
    elif target.idempotency_key is not None and target.service and target.handler:
        irt = pb.IdempotentRequestTarget(
            service_name=target.service,
            handler_name=target.handler,
            idempotency_key=target.idempotency_key,
        )
        if target.key is not None:
            irt.service_key = target.key
        message.idempotent_request_target.CopyFrom(irt)  # type: ignore[attr-defined]
    else:
        raise ValueError(f"incomplete attach target {target!r}")


class Machine:
    """The journal machine of one attempt.

    Args:
        version: the negotiated protocol version (see :func:`content_type_version`).
    """

    def __init__(self, version: int) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise UnsupportedVersion(f"protocol version {version} is not supported")
        self.version = version
        self.phase = Phase.WAITING_START
        self.start: StartInfo | None = None
        self._decoder = FrameDecoder()
        self._out: list[bytes] = []
        self._entries_left = 0
        self._replay: deque[tuple[int, Message]] = deque()
        self._fifo: deque[tuple[Key, Result]] = deque()
        self._ready: dict[Key, Result] = {}
        #: completion ids whose notification is somewhere in the journal (ready or FIFO)
        self._known: set[Key] = set()
        self._input_closed = False
        self._command_index = -1
        self._next_completion = 1
        self._next_signal = _FIRST_AWAKEABLE_SIGNAL
        self._state: dict[str, bytes | None] = {}
        self._state_complete = False
        self._output_written = False
        self.input: pb.InputCommandMessage | None = None
        #: the error that broke the attempt (a mismatch or violation), kept even if user code
        #: swallowed the exception it was raised as
        self.fatal: ProtocolError | None = None

    # -- input --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the runtime.

        Raises:
            ProtocolViolation: malformed frames or a message unexpected in this phase.
        """
        for frame in self._decoder.feed(data):
            cls = MESSAGE_CLASSES.get(frame.type)
            if cls is None:
                raise ProtocolViolation(f"unknown message type {frame.type:#06x}")
            message = cls()
            try:
                message.ParseFromString(frame.payload)
            except Exception as exc:
                raise ProtocolViolation(f"cannot decode {cls.__name__}: {exc}") from None
            self._on_message(frame.type, message)

    def close_input(self) -> None:
        """The runtime closed its side of the stream."""
        self._input_closed = True
        if self.phase in (Phase.WAITING_START, Phase.WAITING_REPLAY_ENTRIES):
            raise ProtocolViolation(
                f"the stream ended before the journal was complete ({self._entries_left} "
                "entries missing)"
            )

    @property
    def input_closed(self) -> bool:
        """Whether no more input will come in this attempt."""
        return self._input_closed

    @property
    def ready_to_execute(self) -> bool:
        """Whether the whole known journal arrived, so the handler can run."""
        return self.phase in (Phase.REPLAYING, Phase.PROCESSING)

    def _on_message(self, code: int, message: Message) -> None:
        phase = self.phase
        if phase is Phase.WAITING_START:
            if code != MessageType.START:
                raise ProtocolViolation(f"expected a StartMessage, got type {code:#06x}")
            assert isinstance(message, pb.StartMessage)
            self._on_start(message)
            return
        if code == MessageType.START:
            raise ProtocolViolation("a second StartMessage")
        if phase is Phase.WAITING_REPLAY_ENTRIES:
            if is_command(code):
                self._replay.append((code, message))
            elif isinstance(message, pb.Notification):
                self._push_notification(message)
            else:
                raise ProtocolViolation(f"unexpected message {code:#06x} in the journal")
            self._entries_left -= 1
            if self._entries_left == 0:
                self._begin()
            return
        if isinstance(message, pb.Notification):
            self._push_notification(message)
        elif code in (MessageType.COMMAND_ACK, MessageType.PROPOSE_RUN_COMPLETION_ACK):
            return
        else:
            raise ProtocolViolation(f"unexpected message {code:#06x} after the journal")

    def _on_start(self, start: pb.StartMessage) -> None:
        seed = start.random_seed
        if self.version < 6 or not seed:
            seed = int.from_bytes(hashlib.blake2b(start.id, digest_size=8).digest(), "big")
        self.start = StartInfo(
            id=start.id,
            debug_id=start.debug_id,
            key=start.key,
            random_seed=seed,
            retry_count=start.retry_count_since_last_stored_entry,
            duration_since_last_entry_ms=start.duration_since_last_stored_entry,
        )
        for entry in start.state_map:
            try:
                self._state[entry.key.decode()] = entry.value
            except UnicodeDecodeError:
                raise ProtocolViolation("a state key is not UTF-8") from None
        self._state_complete = not start.partial_state
        self._entries_left = start.known_entries
        if self._entries_left == 0:
            raise ProtocolViolation("known_entries is 0: the journal must start with Input")
        self.phase = Phase.WAITING_REPLAY_ENTRIES

    def _begin(self) -> None:
        code, first = self._replay.popleft() if self._replay else (-1, None)
        if code != MessageType.INPUT or not isinstance(first, pb.InputCommandMessage):
            raise ProtocolViolation("the journal does not start with an InputCommand")
        self.input = first
        self._command_index = 0
        self.phase = Phase.REPLAYING if self._replay else Phase.PROCESSING

    def _push_notification(self, notification: pb.Notification) -> None:
        key = _notification_key(notification)
        self._known.add(key)
        self._fifo.append((key, _notification_result(notification)))

    # -- output -------------------------------------------------------------------------------

    def take_output(self) -> bytes:
        """The bytes to send to the runtime since the last call (``b""`` if none)."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    @property
    def has_output(self) -> bool:
        """Whether :meth:`take_output` has bytes."""
        return bool(self._out)

    def _write(self, code: int, message: Message) -> None:
        self._out.append(encode_message(code, message))

    # -- readiness ----------------------------------------------------------------------------

    def poll(self, keys: Iterable[Key]) -> bool:
        """Move notifications to the ready set, in journal order, until one of ``keys`` is ready.

        Returns:
            Whether one of ``keys`` is ready.
        """
        wanted = keys if isinstance(keys, (set, frozenset)) else set(keys)
        ready = self._ready
        if any(k in ready for k in wanted):
            return True
        fifo = self._fifo
        while fifo:
            key, result = fifo.popleft()
            if key not in ready:
                ready[key] = result
            if key in wanted:
                return True
        return False

    def is_ready(self, key: Key) -> bool:
        """Whether ``key``'s result is in the ready set (no notification is moved)."""
        return key in self._ready

    def result(self, key: Key) -> Result:
        """The result of a ready key.

        Raises:
            KeyError: ``key`` is not ready.
        """
        return self._ready[key]

    @property
    def replaying(self) -> bool:
        """Whether recorded commands are still to be matched."""
        return self.phase is Phase.REPLAYING

    # -- commands -----------------------------------------------------------------------------

    def _command(self, code: int, message: Message) -> Message | None:
        """Match ``message`` against the next recorded command, or write it.

        Returns:
            The recorded command when replaying, else ``None``.
        """
        if self.fatal is not None:
            raise self.fatal
        if self.phase is Phase.CLOSED:
            raise ProtocolViolation("the attempt is over; no more commands")
        if not self.ready_to_execute:
            raise ProtocolViolation("the journal is not complete yet")
        self._command_index += 1
        if self.phase is Phase.REPLAYING:
            recorded_code, recorded = self._replay.popleft()
            if not self._replay:
                self.phase = Phase.PROCESSING
            if recorded_code != code and not _lazy_eager_pair(recorded_code, code):
                raise self._broken(_mismatch(self._command_index, recorded, message))
            return recorded
        self._write(code, message)
        return None

    def _compare(self, recorded: Message, actual: Message, *, ignore: Sequence[str] = ()) -> None:
        if ignore:
            a = type(actual)()
            a.CopyFrom(actual)
            r = type(recorded)()
            r.CopyFrom(recorded)
            for name in ignore:
                a.ClearField(name)
                r.ClearField(name)
        else:
            a, r = actual, recorded
        if a.SerializeToString(deterministic=True) != r.SerializeToString(deterministic=True):
            raise self._broken(_mismatch(self._command_index, recorded, actual))

    def break_attempt(self, error: ProtocolError) -> ProtocolError:
        """Record ``error`` as what broke the attempt (the first one wins); return it."""
        return self._broken(error)

    def _broken(self, error: ProtocolError) -> ProtocolError:
        if self.fatal is None:
            self.fatal = error
        return error

    def _completion_id(self) -> int:
        cid = self._next_completion
        self._next_completion += 1
        return cid

    def _simple(self, code: int, message: Message, *, ignore: Sequence[str] = ()) -> None:
        recorded = self._command(code, message)
        if recorded is not None:
            self._compare(recorded, message, ignore=ignore)

    def _completable(self, code: int, message: Message, *, ignore: Sequence[str] = ()) -> int:
        cid = self._completion_id()
        message.result_completion_id = cid  # type: ignore[attr-defined]
        self._simple(code, message, ignore=ignore)
        return cid

    # state

    def get_state(self, key: str) -> Key:
        """Read state ``key``: answered from the eager state when possible."""
        cid = self._completion_id()
        eager = self._eager_value(key)
        message: pb.GetEagerStateCommandMessage | pb.GetLazyStateCommandMessage
        if eager is not None:
            message = pb.GetEagerStateCommandMessage(key=key.encode())
            if eager is VoidResult.VOID:
                message.void.SetInParent()
            else:
                assert isinstance(eager, bytes)
                message.value.content = eager
            code: int = MessageType.GET_EAGER_STATE
        else:
            message = pb.GetLazyStateCommandMessage(key=key.encode(), result_completion_id=cid)
            code = MessageType.GET_LAZY_STATE
        recorded = self._command(code, message)
        if recorded is None:
            if eager is not None:
                self._ready[cid] = eager
            return cid
        if isinstance(recorded, pb.GetEagerStateCommandMessage):
            if recorded.key != message.key:
                raise self._broken(_mismatch(self._command_index, recorded, message, "another key"))
            self._ready[cid] = (
                recorded.value.content if recorded.HasField("value") else VoidResult.VOID
            )
        else:
            assert isinstance(recorded, pb.GetLazyStateCommandMessage)
            if recorded.key != message.key or recorded.result_completion_id != cid:
                raise self._broken(_mismatch(self._command_index, recorded, message))
        return cid

    def _eager_value(self, key: str) -> bytes | VoidResult | None:
        if key in self._state:
            value = self._state[key]
            return VoidResult.VOID if value is None else value
        return VoidResult.VOID if self._state_complete else None

    def get_state_keys(self) -> Key:
        """List the state keys."""
        cid = self._completion_id()
        if self._state_complete:
            keys = tuple(sorted(k for k, v in self._state.items() if v is not None))
            message: Message = pb.GetEagerStateKeysCommandMessage(
                value=pb.StateKeys(keys=[k.encode() for k in keys])
            )
            code: int = MessageType.GET_EAGER_STATE_KEYS
        else:
            keys = ()
            message = pb.GetLazyStateKeysCommandMessage(result_completion_id=cid)
            code = MessageType.GET_LAZY_STATE_KEYS
        recorded = self._command(code, message)
        if recorded is None:
            if self._state_complete:
                self._ready[cid] = StateKeysResult(keys)
            return cid
        if isinstance(recorded, pb.GetEagerStateKeysCommandMessage):
            self._ready[cid] = StateKeysResult(
                tuple(sorted(k.decode() for k in recorded.value.keys))
            )
        elif recorded.result_completion_id != cid:  # type: ignore[attr-defined]
            raise self._broken(_mismatch(self._command_index, recorded, message))
        return cid

    def set_state(self, key: str, value: bytes) -> None:
        """Write state ``key``."""
        self._simple(
            MessageType.SET_STATE,
            pb.SetStateCommandMessage(key=key.encode(), value=pb.Value(content=value)),
        )
        self._state[key] = value

    def clear_state(self, key: str) -> None:
        """Delete state ``key``."""
        self._simple(MessageType.CLEAR_STATE, pb.ClearStateCommandMessage(key=key.encode()))
        self._state[key] = None

    def clear_all_state(self) -> None:
        """Delete every state key."""
        self._simple(MessageType.CLEAR_ALL_STATE, pb.ClearAllStateCommandMessage())
        self._state.clear()
        self._state_complete = True

    # timers

    def sleep(self, wake_up_time_ms: int, name: str = "") -> Key:
        """A durable timer firing at ``wake_up_time_ms`` (ms since the epoch)."""
        message = pb.SleepCommandMessage(wake_up_time=wake_up_time_ms, name=name)
        return self._completable(
            MessageType.SLEEP, message, ignore=("wake_up_time", "result_completion_id")
        )

    # calls

    def call(
        self,
        service: str,
        handler: str,
        parameter: bytes,
        *,
        key: str = "",
        headers: Sequence[tuple[str, str]] = (),
        idempotency_key: str | None = None,
        name: str = "",
    ) -> tuple[Key, Key]:
        """A request/response call. Returns the keys of the callee's id and of its result."""
        id_key = self._completion_id()
        message = pb.CallCommandMessage(
            service_name=service,
            handler_name=handler,
            parameter=parameter,
            headers=[pb.Header(key=k, value=v) for k, v in headers],
            key=key,
            invocation_id_notification_idx=id_key,
            name=name,
        )
        if idempotency_key is not None:
            message.idempotency_key = idempotency_key
        result_key = self._completable(MessageType.CALL, message)
        return id_key, result_key

    def send(
        self,
        service: str,
        handler: str,
        parameter: bytes,
        *,
        key: str = "",
        headers: Sequence[tuple[str, str]] = (),
        invoke_time_ms: int = 0,
        idempotency_key: str | None = None,
        name: str = "",
    ) -> Key:
        """A one-way (optionally delayed) call. Returns the key of the callee's id."""
        id_key = self._completion_id()
        message = pb.OneWayCallCommandMessage(
            service_name=service,
            handler_name=handler,
            parameter=parameter,
            invoke_time=invoke_time_ms,
            headers=[pb.Header(key=k, value=v) for k, v in headers],
            key=key,
            invocation_id_notification_idx=id_key,
            name=name,
        )
        if idempotency_key is not None:
            message.idempotency_key = idempotency_key
        self._simple(MessageType.ONE_WAY_CALL, message, ignore=("invoke_time",))
        return id_key

    # side effects

    def run(self, name: str) -> Key:
        """Journal a ``run`` step. Use :meth:`must_execute` to know whether to run the closure."""
        return self._completable(MessageType.RUN, pb.RunCommandMessage(name=name))

    def must_execute(self, key: Key) -> bool:
        """Whether the closure of run ``key`` has to run in this attempt (no result journaled)."""
        return self.phase is not Phase.CLOSED and key not in self._known and key not in self._ready

    def propose_run_completion(self, key: Key, result: bytes | Failure) -> None:
        """Propose the result of a run; it is journaled by the runtime, then notified."""
        if self.phase is Phase.CLOSED:
            return
        assert isinstance(key, int)
        message = pb.ProposeRunCompletionMessage(result_completion_id=key)
        if isinstance(result, Failure):
            message.failure.CopyFrom(pb.Failure(code=result.code, message=result.message))
        else:
            message.value = result
        self._write(MessageType.PROPOSE_RUN_COMPLETION, message)

    # awakeables and signals

    def awakeable(self) -> tuple[str, Key]:
        """A new awakeable: its id in Restate's ``sign_1…`` form and the key of its result."""
        assert self.start is not None
        index = self._next_signal
        self._next_signal += 1
        raw = self.start.id + struct.pack(">I", index)
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return "sign_1" + text, -index

    def complete_awakeable(self, awakeable_id: str, result: bytes | Failure) -> None:
        """Resolve or reject another invocation's awakeable."""
        message = pb.CompleteAwakeableCommandMessage(awakeable_id=awakeable_id)
        _set_result(message, result, "value", "failure")
        self._simple(MessageType.COMPLETE_AWAKEABLE, message)

    def send_signal(
        self,
        invocation_id: str,
        *,
        index: int | None = None,
        name: str | None = None,
        result: bytes | Failure | None = None,
    ) -> None:
        """Send a signal (``index=1`` without result: cancellation) to another invocation."""
        message = pb.SendSignalCommandMessage(target_invocation_id=invocation_id)
        if name is not None:
            message.name = name
        else:
            message.idx = index if index is not None else 1
        if result is None:
            message.void.SetInParent()
        else:
            _set_result(message, result, "value", "failure")
        self._simple(MessageType.SEND_SIGNAL, message)

    # promises

    def get_promise(self, name: str) -> Key:
        """Wait for workflow promise ``name``."""
        return self._completable(MessageType.GET_PROMISE, pb.GetPromiseCommandMessage(key=name))

    def peek_promise(self, name: str) -> Key:
        """Read workflow promise ``name`` without waiting (void if not completed)."""
        return self._completable(MessageType.PEEK_PROMISE, pb.PeekPromiseCommandMessage(key=name))

    def complete_promise(self, name: str, result: bytes | Failure) -> Key:
        """Resolve or reject workflow promise ``name`` (the result says if it was already)."""
        message = pb.CompletePromiseCommandMessage(key=name)
        _set_result(message, result, "completion_value", "completion_failure")
        return self._completable(MessageType.COMPLETE_PROMISE, message)

    # other invocations

    def attach_invocation(self, target: Target) -> Key:
        """Wait for another invocation's result."""
        message = pb.AttachInvocationCommandMessage()
        _fill_target(message, target)
        return self._completable(MessageType.ATTACH_INVOCATION, message)

    def get_invocation_output(self, target: Target) -> Key:
        """Read another invocation's result without waiting (void if not finished)."""
        message = pb.GetInvocationOutputCommandMessage()
        _fill_target(message, target)
        return self._completable(MessageType.GET_INVOCATION_OUTPUT, message)

    # the end of the attempt

    def write_output(self, result: bytes | Failure) -> None:
        """The invocation's result (a failure here is terminal)."""
        message = pb.OutputCommandMessage()
        _set_result(message, result, "value", "failure")
        self._simple(MessageType.OUTPUT, message)
        self._output_written = True

    def end(self) -> None:
        """The invocation is done (after :meth:`write_output`)."""
        if self.phase is Phase.REPLAYING:
            _code, recorded = self._replay[0]
            raise self._broken(
                _mismatch(
                    self._command_index + 1,
                    recorded,
                    pb.EndMessage(),
                    "the handler returned early",
                )
            )
        self._write(MessageType.END, pb.EndMessage())
        self.phase = Phase.CLOSED

    def suspend(self, keys: Iterable[Key]) -> None:
        """End the attempt until one of ``keys`` (or cancellation) is notified."""
        completions: set[int] = set()
        # once the cancellation was consumed it is in the journal: waiting for it again would
        # make the runtime resume the invocation at once, over and over
        signals: set[int] = set() if CANCEL in self._ready else {1}
        names: set[str] = set()
        for key in keys:
            if isinstance(key, str):
                names.add(key)
            elif key > 0:
                completions.add(key)
            else:
                signals.add(-key)
        message = pb.SuspensionMessage(
            waiting_completions=sorted(completions),
            waiting_signals=sorted(signals),
            waiting_named_signals=sorted(names),
        )
        self._write(MessageType.SUSPENSION, message)
        self.phase = Phase.CLOSED

    def fail(
        self,
        code: int,
        message: str,
        *,
        stacktrace: str = "",
        next_retry_delay_ms: int | None = None,
        related_command: tuple[int, str, int] | None = None,
    ) -> None:
        """End the attempt with a retryable error.

        Args:
            related_command: (index, name, type code) of the command the error is about.
        """
        if self.phase is Phase.CLOSED:
            return
        error = pb.ErrorMessage(code=code, message=message, stacktrace=stacktrace)
        if next_retry_delay_ms is not None:
            error.next_retry_delay = next_retry_delay_ms
        if related_command is not None:
            index, name, code_type = related_command
            error.related_command_index = index
            error.related_command_name = name
            error.related_command_type = code_type
        elif self._command_index >= 0 and code == JOURNAL_MISMATCH:
            error.related_command_index = self._command_index
        self._write(MessageType.ERROR, error)
        self.phase = Phase.CLOSED

    @property
    def command_index(self) -> int:
        """Index of the last command issued (Input = 0)."""
        return self._command_index

    @property
    def closed(self) -> bool:
        """Whether the attempt ended (End, Suspension or Error written)."""
        return self.phase is Phase.CLOSED

    @property
    def output_replayed(self) -> bool:
        """Whether the invocation's Output is already in the journal (only End is left)."""
        return self._output_written


_LAZY_EAGER: Final = frozenset(
    {
        (MessageType.GET_LAZY_STATE, MessageType.GET_EAGER_STATE),
        (MessageType.GET_EAGER_STATE, MessageType.GET_LAZY_STATE),
        (MessageType.GET_LAZY_STATE_KEYS, MessageType.GET_EAGER_STATE_KEYS),
        (MessageType.GET_EAGER_STATE_KEYS, MessageType.GET_LAZY_STATE_KEYS),
    }
)


def _lazy_eager_pair(recorded: int, actual: int) -> bool:
    return (recorded, actual) in _LAZY_EAGER
