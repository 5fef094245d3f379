"""Checking and resolving the commands a deployment sends, before they are journaled.

Some commands are *fallible*: their target must exist (calls), their ids must parse (signals,
awakeables, attach), and some are only allowed in certain handlers (state writes, promises).
A command that fails here is not journaled: the attempt fails and is retried, as in Restate.
"""

from __future__ import annotations

from undying.errors import InvalidIdError, ProtocolError
from undying.protocol.ids import AwakeableId, InvocationId
from undying.protocol.messages import MessageType, pb
from undying.server.partition.records import JournalItem, ResolvedCall, Target
from undying.server.routing import invocation_id_for, workflow_run_id
from undying.server.schema import Schema

__all__ = ["CommandRejected", "resolve"]

_SERVICE_TY = {"Service": "service", "VirtualObject": "virtual_object", "Workflow": "workflow"}
_HANDLER_TY = {"Exclusive": "exclusive", "Shared": "shared", "Workflow": "workflow"}
_STATE_WRITES = (MessageType.SET_STATE, MessageType.CLEAR_STATE, MessageType.CLEAR_ALL_STATE)
_STATE_READS = (
    MessageType.GET_LAZY_STATE,
    MessageType.GET_LAZY_STATE_KEYS,
    MessageType.GET_EAGER_STATE,
    MessageType.GET_EAGER_STATE_KEYS,
)
_PROMISES = (MessageType.GET_PROMISE, MessageType.PEEK_PROMISE, MessageType.COMPLETE_PROMISE)


class CommandRejected(ProtocolError):
    """A command the server refuses to journal (the attempt fails and is retried)."""

    code = 400


def resolve(schema: Schema, caller: Target, msg_type: int, payload: bytes) -> JournalItem:
    """The journal item for a command, with whatever the state machine needs resolved."""
    if msg_type in _STATE_WRITES:
        if caller.key is None or caller.handler_ty not in ("exclusive", "workflow"):
            raise CommandRejected(
                f"{caller.display()} cannot change state: only exclusive handlers of virtual "
                "objects and workflow run handlers can"
            )
    elif msg_type in _STATE_READS:
        if caller.key is None:
            raise CommandRejected(f"{caller.display()} has no state: it is not keyed")
    elif msg_type in _PROMISES:
        if caller.service_ty != "workflow":
            raise CommandRejected(f"{caller.display()} is not a workflow: it has no promises")
    elif msg_type in (MessageType.CALL, MessageType.ONE_WAY_CALL):
        return _call(schema, msg_type, payload)
    elif msg_type == MessageType.SEND_SIGNAL:
        cmd = pb.SendSignalCommandMessage.FromString(payload)
        return JournalItem(msg_type, payload, target_id=_parse_id(cmd.target_invocation_id))
    elif msg_type == MessageType.COMPLETE_AWAKEABLE:
        awk = pb.CompleteAwakeableCommandMessage.FromString(payload)
        try:
            parsed = AwakeableId.parse(awk.awakeable_id)
        except InvalidIdError as e:
            raise CommandRejected(str(e)) from None
        return JournalItem(
            msg_type,
            payload,
            target_id=parsed.invocation_id.to_bytes(),
            signal_index=parsed.signal_index,
        )
    elif msg_type in (MessageType.ATTACH_INVOCATION, MessageType.GET_INVOCATION_OUTPUT):
        return JournalItem(msg_type, payload, target_id=_attach_target(msg_type, payload))
    return JournalItem(msg_type, payload)


def _parse_id(text: str) -> bytes:
    try:
        return InvocationId.parse(text).to_bytes()
    except InvalidIdError as e:
        raise CommandRejected(str(e)) from None


def _attach_target(msg_type: int, payload: bytes) -> bytes:
    cmd: pb.AttachInvocationCommandMessage | pb.GetInvocationOutputCommandMessage
    if msg_type == MessageType.ATTACH_INVOCATION:
        cmd = pb.AttachInvocationCommandMessage.FromString(payload)
    else:
        cmd = pb.GetInvocationOutputCommandMessage.FromString(payload)
    which = cmd.WhichOneof("target")
    if which == "invocation_id":
        return _parse_id(cmd.invocation_id)
    if which == "idempotent_request_target":
        t = cmd.idempotent_request_target
        key = t.service_key if t.HasField("service_key") else None
        return invocation_id_for(
            t.service_name, t.handler_name, key, idempotency_key=t.idempotency_key
        ).to_bytes()
    if which == "workflow_target":
        w = cmd.workflow_target
        return workflow_run_id(w.workflow_name, w.workflow_key).to_bytes()
    raise CommandRejected("attach/get-output without a target")


def _call(schema: Schema, msg_type: int, payload: bytes) -> JournalItem:
    cmd: pb.CallCommandMessage | pb.OneWayCallCommandMessage
    if msg_type == MessageType.CALL:
        cmd = pb.CallCommandMessage.FromString(payload)
    else:
        cmd = pb.OneWayCallCommandMessage.FromString(payload)
    svc = schema.services.get(cmd.service_name)
    if svc is None:
        raise CommandRejected(f"the call target service '{cmd.service_name}' is not registered")
    handler = svc.handlers.get(cmd.handler_name)
    if handler is None:
        raise CommandRejected(
            f"the call target handler '{cmd.service_name}/{cmd.handler_name}' is not registered"
        )
    idem = cmd.idempotency_key if cmd.HasField("idempotency_key") else None
    if idem is not None and not idem:
        raise CommandRejected("the idempotency key of a call must not be empty")
    if svc.keyed:
        key: str | None = cmd.key
    elif cmd.key:
        raise CommandRejected(f"the service '{svc.name}' is not keyed, but the call has a key")
    else:
        key = None
    handler_ty = svc.handler_type(handler)
    callee = invocation_id_for(
        svc.name,
        handler.name,
        key,
        idempotency_key=idem,
        workflow_run=handler_ty == "Workflow",
    )
    target = Target(
        svc.name,
        handler.name,
        key,
        _SERVICE_TY[svc.ty],  # type: ignore[arg-type]
        _HANDLER_TY[handler_ty] if handler_ty else None,  # type: ignore[arg-type]
    )
    return JournalItem(
        msg_type,
        payload,
        call=ResolvedCall(
            id=callee.to_bytes(),
            target=target,
            completion_retention_ms=svc.completion_retention_ms(handler),
            journal_retention_ms=svc.effective_journal_retention_ms(handler),
            idempotency_key=idem,
            fresh=idem is None and handler_ty != "Workflow",
        ),
    )
