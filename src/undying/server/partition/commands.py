"""What each journaled command does in the partition (state, timers, promises, messages).

Each handler runs right after its command was appended to the invocation's journal. Commands the
invoker had to resolve against the schema (calls, signals, attach) carry the resolution in the
``JournalItem``, so applying them needs nothing outside the records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from undying.protocol.ids import InvocationId
from undying.protocol.messages import MessageType, pb
from undying.server.partition import actions as act
from undying.server.partition.notifications import notification, result_notification
from undying.server.partition.records import (
    AttachRequest,
    InvocationSink,
    Invoke,
    JournalItem,
    Result,
    Signal,
    Source,
    TimerKey,
)
from undying.server.partition.state import InvocationStatus, Promise

if TYPE_CHECKING:
    from undying.server.partition.machine import StateMachine

__all__ = ["COMMANDS"]

Handler = Callable[["StateMachine", InvocationStatus, JournalItem], None]


def _sleep(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.SleepCommandMessage.FromString(item.payload)
    key = TimerKey("sleep", s.id, cmd.result_completion_id)
    m.store.add_timer(key, cmd.wake_up_time)
    m.actions.append(act.ArmTimer(key, cmd.wake_up_time))


# ---- K/V state ---------------------------------------------------------------------------------


def _object_state(m: StateMachine, s: InvocationStatus) -> dict[bytes, bytes]:
    if s.target.key is None:
        return {}
    return m.store.state(s.target.service, s.target.key)


def _get_lazy_state(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.GetLazyStateCommandMessage.FromString(item.payload)
    value = _object_state(m, s).get(cmd.key)
    cid = cmd.result_completion_id
    body = (
        notification(completion_id=cid, void=True)
        if value is None
        else notification(completion_id=cid, value=value)
    )
    m.notify(s, MessageType.GET_LAZY_STATE_COMPLETION, body)


def _get_lazy_state_keys(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.GetLazyStateKeysCommandMessage.FromString(item.payload)
    keys = sorted(_object_state(m, s))
    body = notification(completion_id=cmd.result_completion_id, state_keys=keys)
    m.notify(s, MessageType.GET_LAZY_STATE_KEYS_COMPLETION, body)


def _set_state(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.SetStateCommandMessage.FromString(item.payload)
    if s.target.key is not None:
        m.store.set_state(s.target.service, s.target.key, cmd.key, cmd.value.content)


def _clear_state(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.ClearStateCommandMessage.FromString(item.payload)
    if s.target.key is not None:
        m.store.clear_state(s.target.service, s.target.key, cmd.key)


def _clear_all_state(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    if s.target.key is not None:
        m.store.clear_all_state(s.target.service, s.target.key)


# ---- durable promises (workflows) --------------------------------------------------------------


def _promise_key(s: InvocationStatus, name: str) -> tuple[str, str, str]:
    return (s.target.service, s.target.key or "", name)


def _get_promise(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.GetPromiseCommandMessage.FromString(item.payload)
    key = _promise_key(s, cmd.key)
    p = m.store.promise(*key)
    cid = cmd.result_completion_id
    if p is not None and p.result is not None:
        m.notify(
            s, MessageType.GET_PROMISE_COMPLETION, result_notification(p.result, completion_id=cid)
        )
        return
    p = Promise() if p is None else p
    p.waiters = (*p.waiters, (s.id, cid))
    m.store.put_promise(*key, p)


def _peek_promise(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.PeekPromiseCommandMessage.FromString(item.payload)
    p = m.store.promise(*_promise_key(s, cmd.key))
    result = p.result if p is not None else None
    body = result_notification(result, completion_id=cmd.result_completion_id)
    m.notify(s, MessageType.PEEK_PROMISE_COMPLETION, body)


def _complete_promise(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.CompletePromiseCommandMessage.FromString(item.payload)
    key = _promise_key(s, cmd.key)
    p = m.store.promise(*key)
    cid = cmd.result_completion_id
    if p is not None and p.result is not None:
        body = notification(completion_id=cid, failure=(409, "promise was already completed"))
        m.notify(s, MessageType.COMPLETE_PROMISE_COMPLETION, body)
        return
    if cmd.WhichOneof("completion") == "completion_failure":
        f = cmd.completion_failure
        result = Result(code=f.code, message=f.message)
    else:
        result = Result(value=cmd.completion_value.content)
    waiters = p.waiters if p is not None else ()
    m.store.put_promise(*key, Promise(result=result))
    m.notify(s, MessageType.COMPLETE_PROMISE_COMPLETION, notification(completion_id=cid, void=True))
    for inv, wcid in waiters:
        waiter = m.store.get_status(inv)
        if waiter is not None and waiter.status != "completed":
            body = result_notification(result, completion_id=wcid)
            m.notify(waiter, MessageType.GET_PROMISE_COMPLETION, body)


# ---- messages to other invocations -------------------------------------------------------------


def _call(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    resolved = item.call
    if resolved is None:  # pragma: no cover - the invoker always resolves calls
        return
    one_way = item.type == MessageType.ONE_WAY_CALL
    if one_way:
        cmd: pb.CallCommandMessage | pb.OneWayCallCommandMessage = (
            pb.OneWayCallCommandMessage.FromString(item.payload)
        )
    else:
        cmd = pb.CallCommandMessage.FromString(item.payload)
    callee = InvocationId.from_bytes(resolved.id)
    m.notify(
        s,
        MessageType.CALL_INVOCATION_ID_COMPLETION,
        notification(completion_id=cmd.invocation_id_notification_idx, invocation_id=str(callee)),
    )
    execute_at = None
    sink = None
    if isinstance(cmd, pb.OneWayCallCommandMessage):
        if cmd.invoke_time > m.now:
            execute_at = cmd.invoke_time
    else:
        sink = InvocationSink(s.id, cmd.result_completion_id, "call")
    m.send(
        callee.partition_key,
        Invoke(
            id=resolved.id,
            target=resolved.target,
            body=cmd.parameter,
            headers=[(h.key, h.value) for h in cmd.headers],
            source=Source("service", s.id, s.target.display()),
            idempotency_key=resolved.idempotency_key,
            sink=sink,
            execute_at=execute_at,
            completion_retention_ms=resolved.completion_retention_ms,
            journal_retention_ms=resolved.journal_retention_ms,
            mode="send" if one_way else "call",
            fresh=resolved.fresh,
        ),
    )


def _send_signal(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.SendSignalCommandMessage.FromString(item.payload)
    if item.target_id is None:  # pragma: no cover - resolved by the invoker
        return
    which = cmd.WhichOneof("result")
    result: Result | None = None
    if which == "value":
        result = Result(value=cmd.value.content)
    elif which == "failure":
        result = Result(code=cmd.failure.code, message=cmd.failure.message)
    kind = "void" if which in (None, "void") else which
    signal = Signal(
        target=item.target_id,
        index=cmd.idx if cmd.WhichOneof("signal_id") == "idx" else None,
        name=cmd.name if cmd.WhichOneof("signal_id") == "name" else None,
        kind=kind,  # type: ignore[arg-type]
        result=result,
    )
    m.send(InvocationId.from_bytes(item.target_id).partition_key, signal)


def _complete_awakeable(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    cmd = pb.CompleteAwakeableCommandMessage.FromString(item.payload)
    if item.target_id is None or item.signal_index is None:  # pragma: no cover
        return
    if cmd.WhichOneof("result") == "failure":
        signal = Signal(
            item.target_id,
            index=item.signal_index,
            kind="failure",
            result=Result(code=cmd.failure.code, message=cmd.failure.message),
        )
    else:
        signal = Signal(
            item.target_id,
            index=item.signal_index,
            kind="value",
            result=Result(value=cmd.value.content),
        )
    m.send(InvocationId.from_bytes(item.target_id).partition_key, signal)


def _attach(m: StateMachine, s: InvocationStatus, item: JournalItem) -> None:
    output = item.type == MessageType.GET_INVOCATION_OUTPUT
    if output:
        cid = pb.GetInvocationOutputCommandMessage.FromString(item.payload).result_completion_id
    else:
        cid = pb.AttachInvocationCommandMessage.FromString(item.payload).result_completion_id
    if item.target_id is None:  # pragma: no cover
        return
    sink = InvocationSink(s.id, cid, "output" if output else "attach")
    request = AttachRequest(item.target_id, "output" if output else "attach", sink)
    m.send(InvocationId.from_bytes(item.target_id).partition_key, request)


COMMANDS: Final[dict[int, Handler]] = {
    MessageType.SLEEP: _sleep,
    MessageType.GET_LAZY_STATE: _get_lazy_state,
    MessageType.GET_LAZY_STATE_KEYS: _get_lazy_state_keys,
    MessageType.SET_STATE: _set_state,
    MessageType.CLEAR_STATE: _clear_state,
    MessageType.CLEAR_ALL_STATE: _clear_all_state,
    MessageType.GET_PROMISE: _get_promise,
    MessageType.PEEK_PROMISE: _peek_promise,
    MessageType.COMPLETE_PROMISE: _complete_promise,
    MessageType.CALL: _call,
    MessageType.ONE_WAY_CALL: _call,
    MessageType.SEND_SIGNAL: _send_signal,
    MessageType.COMPLETE_AWAKEABLE: _complete_awakeable,
    MessageType.ATTACH_INVOCATION: _attach,
    MessageType.GET_INVOCATION_OUTPUT: _attach,
}
