"""Journal entries as ``sys_journal`` shows them: type names, names and the JSON renderings.

undying stores each entry as the protobuf message the service protocol uses for it. Restate's
``sys_journal`` exposes its own data model instead: ``entry_type`` (``Command: Run``,
``Notification: Sleep``...), the command's ``name``, and two JSON renderings, ``entry_json``
(the full entry; the CLI parses it to show sleep deadlines, call targets, state keys...) and
``entry_lite_json`` (the same without payloads). This module produces those shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from google.protobuf.message import DecodeError

from undying.protocol.messages import MessageType, pb
from undying.server.schema import Schema

__all__ = ["JournalRow", "command_type_name", "render_journal"]

_JSON: Final = msgspec.json.Encoder()

_COMMAND_NAMES: Final[dict[int, str]] = {
    MessageType.INPUT: "Input",
    MessageType.OUTPUT: "Output",
    MessageType.GET_LAZY_STATE: "GetLazyState",
    MessageType.SET_STATE: "SetState",
    MessageType.CLEAR_STATE: "ClearState",
    MessageType.CLEAR_ALL_STATE: "ClearAllState",
    MessageType.GET_LAZY_STATE_KEYS: "GetLazyStateKeys",
    MessageType.GET_EAGER_STATE: "GetEagerState",
    MessageType.GET_EAGER_STATE_KEYS: "GetEagerStateKeys",
    MessageType.GET_PROMISE: "GetPromise",
    MessageType.PEEK_PROMISE: "PeekPromise",
    MessageType.COMPLETE_PROMISE: "CompletePromise",
    MessageType.SLEEP: "Sleep",
    MessageType.CALL: "Call",
    MessageType.ONE_WAY_CALL: "OneWayCall",
    MessageType.SEND_SIGNAL: "SendSignal",
    MessageType.RUN: "Run",
    MessageType.ATTACH_INVOCATION: "AttachInvocation",
    MessageType.GET_INVOCATION_OUTPUT: "GetInvocationOutput",
    MessageType.COMPLETE_AWAKEABLE: "CompleteAwakeable",
}

_COMPLETION_NAMES: Final[dict[int, str]] = {
    MessageType.GET_LAZY_STATE_COMPLETION: "GetLazyState",
    MessageType.GET_LAZY_STATE_KEYS_COMPLETION: "GetLazyStateKeys",
    MessageType.GET_PROMISE_COMPLETION: "GetPromise",
    MessageType.PEEK_PROMISE_COMPLETION: "PeekPromise",
    MessageType.COMPLETE_PROMISE_COMPLETION: "CompletePromise",
    MessageType.SLEEP_COMPLETION: "Sleep",
    MessageType.CALL_COMPLETION: "Call",
    MessageType.CALL_INVOCATION_ID_COMPLETION: "CallInvocationId",
    MessageType.RUN_COMPLETION: "Run",
    MessageType.ATTACH_INVOCATION_COMPLETION: "AttachInvocation",
    MessageType.GET_INVOCATION_OUTPUT_COMPLETION: "GetInvocationOutput",
}

_DAY_MS: Final = 86_400_000

#: Completion kinds whose result has no "Void" case (a missing value reads as empty success).
_NO_VOID: Final = frozenset({"GetPromise", "Call", "Run", "AttachInvocation"})

_ZERO_SPAN: Final = {
    "span_context": {
        "trace_id": [0] * 16,
        "span_id": [0] * 8,
        "trace_flags": 0,
        "is_remote": False,
        "trace_state": "",
    },
    "cause": None,
}


def command_type_name(code: int) -> str | None:
    """``Run`` for the Run command's type code, and so on; None for other codes."""
    return _COMMAND_NAMES.get(code)


@dataclass(slots=True)
class JournalRow:
    """The derived columns of one ``sys_journal`` row."""

    entry_type: str
    name: str | None = None
    invoked_id: str | None = None
    invoked_target: str | None = None
    sleep_wakeup_at: int | None = None
    promise_name: str | None = None
    entry_json: str | None = None
    entry_lite_json: str | None = None


def render_journal(entries: Sequence[tuple[int, bytes]], schema: Schema) -> list[JournalRow]:
    """Render a whole journal (``(type, payload)`` in index order).

    The whole journal is needed because a call's callee id is in a later notification.
    """
    callee_ids: dict[int, str] = {}
    for code, payload in entries:
        if code == MessageType.CALL_INVOCATION_ID_COMPLETION:
            try:
                n = pb.Notification.FromString(payload)
            except DecodeError:
                continue
            if n.WhichOneof("id") == "completion_id" and n.WhichOneof("result") == "invocation_id":
                callee_ids[n.completion_id] = n.invocation_id
    return [_render(code, payload, schema, callee_ids) for code, payload in entries]


def _render(code: int, payload: bytes, schema: Schema, callee_ids: dict[int, str]) -> JournalRow:
    name = _COMMAND_NAMES.get(code)
    try:
        if name is not None:
            row = JournalRow(f"Command: {name}")
            full, lite = _command(code, name, payload, schema, callee_ids, row)
            row.entry_json = _dump({"Command": {name: full}})
            row.entry_lite_json = _dump({"Command": {name: lite}})
            return row
        if code == MessageType.SIGNAL or code in _COMPLETION_NAMES:
            return _notification(code, payload)
    except (DecodeError, UnicodeDecodeError, ValueError):
        return JournalRow(f"Command: {name}" if name is not None else _unknown_type(code))
    return JournalRow(_unknown_type(code))


def _unknown_type(code: int) -> str:
    return f"Unknown: 0x{code:04x}"


def _dump(obj: Any) -> str:
    return _JSON.encode(obj).decode()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _failure(f: pb.Failure) -> dict[str, Any]:
    out: dict[str, Any] = {"code": f.code, "message": f.message}
    if len(f.metadata):
        out["metadata"] = [{"key": m.key, "value": m.value} for m in f.metadata]
    return out


def _headers(headers: Any) -> list[dict[str, str]]:
    return [{"name": h.key, "value": h.value} for h in headers]


def _value_or_failure(msg: Any, value_field: str, failure_field: str) -> tuple[Any, str]:
    """``{"Success": [...]}`` or ``{"Failure": {...}}`` (full) and its lite word."""
    which = msg.WhichOneof(msg.DESCRIPTOR.fields_by_name[value_field].containing_oneof.name)
    if which == failure_field:
        return {"Failure": _failure(getattr(msg, failure_field))}, "Failure"
    if which == value_field:
        value = getattr(msg, value_field)
        content = value.content if hasattr(value, "content") else value
        return {"Success": list(content)}, "Success"
    return {"Success": []}, "Success"


def _target(schema: Schema, service: str, handler: str, key: str) -> tuple[dict[str, Any], str]:
    """Restate's ``InvocationTarget`` JSON and its display (``Svc/handler``, ``Svc/key/h``)."""
    svc = schema.services.get(service)
    ty = svc.ty if svc is not None else ("VirtualObject" if key else "Service")
    if ty == "Service":
        target = {"name": service, "handler": handler, "scope": None}
        return {"Service": target}, f"{service}/{handler}"
    handler_ty: str | None = None
    if svc is not None:
        h = svc.handlers.get(handler)
        if h is not None:
            handler_ty = svc.handler_type(h)
    if handler_ty is None:
        handler_ty = "Exclusive" if ty == "VirtualObject" else "Workflow"
    body = {
        "name": service,
        "key": key,
        "handler": handler,
        "handler_ty": handler_ty,
        "scope": None,
    }
    return {ty: body}, f"{service}/{key}/{handler}"


def _retentions(schema: Schema, service: str, handler: str) -> tuple[int, int]:
    """How long the callee keeps its result and its journal (ms), as the call request has it."""
    svc = schema.services.get(service)
    h = svc.handlers.get(handler) if svc is not None else None
    if svc is None or h is None:
        return _DAY_MS, _DAY_MS
    return svc.completion_retention_ms(h), svc.effective_journal_retention_ms(h)


def _duration(ms: int) -> dict[str, int]:
    """A Rust ``Duration`` as serde writes it."""
    return {"secs": ms // 1000, "nanos": (ms % 1000) * 1_000_000}


def _attach_target(cmd: Any) -> dict[str, Any]:
    which = cmd.WhichOneof("target")
    if which == "idempotent_request_target":
        t = cmd.idempotent_request_target
        return {
            "IdempotentRequest": {
                "service_name": t.service_name,
                "service_key": t.service_key if t.HasField("service_key") else None,
                "service_handler": t.handler_name,
                "idempotency_key": t.idempotency_key,
            }
        }
    if which == "workflow_target":
        w = cmd.workflow_target
        return {"Workflow": {"service_name": w.workflow_name, "key": w.workflow_key}}
    return {"InvocationId": cmd.invocation_id}


def _command(
    code: int,
    kind: str,
    payload: bytes,
    schema: Schema,
    callee_ids: dict[int, str],
    row: JournalRow,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The full and lite JSON bodies of a command; fills the row's derived columns."""
    if code == MessageType.INPUT:
        inp = pb.InputCommandMessage.FromString(payload)
        row.name = inp.name
        full = {
            "headers": _headers(inp.headers),
            "payload": list(inp.value.content),
            "name": inp.name,
        }
        return full, {}
    if code == MessageType.OUTPUT:
        out = pb.OutputCommandMessage.FromString(payload)
        row.name = out.name
        result, word = _value_or_failure(out, "value", "failure")
        return {"result": result, "name": out.name}, {"result": word}
    if code in (MessageType.GET_LAZY_STATE, MessageType.GET_PROMISE, MessageType.PEEK_PROMISE):
        keyed: Any
        if code == MessageType.GET_LAZY_STATE:
            keyed = pb.GetLazyStateCommandMessage.FromString(payload)
        elif code == MessageType.GET_PROMISE:
            keyed = pb.GetPromiseCommandMessage.FromString(payload)
        else:
            keyed = pb.PeekPromiseCommandMessage.FromString(payload)
        key = keyed.key if isinstance(keyed.key, str) else _text(keyed.key)
        row.name = keyed.name
        if code != MessageType.GET_LAZY_STATE:
            row.promise_name = key
        cid = keyed.result_completion_id
        full = {"key": key, "completion_id": cid, "name": keyed.name}
        return full, {"key": key, "completion_id": cid}
    if code == MessageType.SET_STATE:
        st = pb.SetStateCommandMessage.FromString(payload)
        row.name = st.name
        key = _text(st.key)
        return {"key": key, "value": list(st.value.content), "name": st.name}, {"key": key}
    if code == MessageType.CLEAR_STATE:
        cl = pb.ClearStateCommandMessage.FromString(payload)
        row.name = cl.name
        key = _text(cl.key)
        return {"key": key, "name": cl.name}, {"key": key}
    if code == MessageType.CLEAR_ALL_STATE:
        ca = pb.ClearAllStateCommandMessage.FromString(payload)
        row.name = ca.name
        return {"name": ca.name}, {}
    if code == MessageType.GET_LAZY_STATE_KEYS:
        gk = pb.GetLazyStateKeysCommandMessage.FromString(payload)
        row.name = gk.name
        cid = gk.result_completion_id
        return {"completion_id": cid, "name": gk.name}, {"completion_id": cid}
    if code == MessageType.GET_EAGER_STATE:
        ge = pb.GetEagerStateCommandMessage.FromString(payload)
        row.name = ge.name
        key = _text(ge.key)
        state: Any = "Void"
        if ge.WhichOneof("result") == "value":
            state = {"Success": list(ge.value.content)}
        return {"key": key, "result": state, "name": ge.name}, {"key": key}
    if code == MessageType.GET_EAGER_STATE_KEYS:
        gek = pb.GetEagerStateKeysCommandMessage.FromString(payload)
        row.name = gek.name
        keys = [_text(k) for k in gek.value.keys]
        return {"state_keys": keys, "name": gek.name}, {}
    if code == MessageType.COMPLETE_PROMISE:
        cp = pb.CompletePromiseCommandMessage.FromString(payload)
        row.name = cp.name
        row.promise_name = cp.key
        value, _ = _value_or_failure(cp, "completion_value", "completion_failure")
        cid = cp.result_completion_id
        full = {"key": cp.key, "value": value, "completion_id": cid, "name": cp.name}
        return full, {"key": cp.key, "completion_id": cid}
    if code == MessageType.SLEEP:
        sl = pb.SleepCommandMessage.FromString(payload)
        row.name = sl.name
        row.sleep_wakeup_at = sl.wake_up_time
        cid = sl.result_completion_id
        full = {"wake_up_time": sl.wake_up_time, "completion_id": cid, "name": sl.name}
        lite: dict[str, Any] = {"wake_up_time": sl.wake_up_time, "completion_id": cid}
        if sl.name:
            lite["name"] = sl.name
        return full, lite
    if code in (MessageType.CALL, MessageType.ONE_WAY_CALL):
        return _call(code, payload, schema, callee_ids, row)
    if code == MessageType.SEND_SIGNAL:
        ss = pb.SendSignalCommandMessage.FromString(payload)
        row.name = ss.entry_name
        signal_id: dict[str, Any] = (
            {"Name": ss.name} if ss.WhichOneof("signal_id") == "name" else {"Index": ss.idx}
        )
        which = ss.WhichOneof("result")
        sresult: Any = "Void"
        word = "Void"
        if which == "value":
            sresult, word = {"Success": list(ss.value.content)}, "Success"
        elif which == "failure":
            sresult, word = {"Failure": _failure(ss.failure)}, "Failure"
        full = {
            "target_invocation_id": ss.target_invocation_id,
            "signal_id": signal_id,
            "result": sresult,
            "name": ss.entry_name,
        }
        lite_s = {
            "target_invocation_id": ss.target_invocation_id,
            "signal_id": signal_id,
            "result": word,
        }
        return full, lite_s
    if code == MessageType.RUN:
        run = pb.RunCommandMessage.FromString(payload)
        row.name = run.name
        cid = run.result_completion_id
        lite_r: dict[str, Any] = {"completion_id": cid}
        if run.name:
            lite_r["name"] = run.name
        return {"completion_id": cid, "name": run.name}, lite_r
    if code in (MessageType.ATTACH_INVOCATION, MessageType.GET_INVOCATION_OUTPUT):
        acls = (
            pb.AttachInvocationCommandMessage
            if code == MessageType.ATTACH_INVOCATION
            else pb.GetInvocationOutputCommandMessage
        )
        at = acls.FromString(payload)
        row.name = at.name
        target = _attach_target(at)
        if "InvocationId" in target:
            row.invoked_id = target["InvocationId"]
        cid = at.result_completion_id
        full = {"target": target, "completion_id": cid, "name": at.name}
        return full, {"target": target, "completion_id": cid}
    if code == MessageType.COMPLETE_AWAKEABLE:
        aw = pb.CompleteAwakeableCommandMessage.FromString(payload)
        row.name = aw.name
        aresult, word = _value_or_failure(aw, "value", "failure")
        full = {"id": aw.awakeable_id, "result": aresult, "name": aw.name}
        return full, {"id": aw.awakeable_id, "result": word}
    raise ValueError(f"no rendering for command {kind}")  # pragma: no cover - exhaustive


def _call(
    code: int, payload: bytes, schema: Schema, callee_ids: dict[int, str], row: JournalRow
) -> tuple[dict[str, Any], dict[str, Any]]:
    one_way = code == MessageType.ONE_WAY_CALL
    cmd: Any = (
        pb.OneWayCallCommandMessage.FromString(payload)
        if one_way
        else pb.CallCommandMessage.FromString(payload)
    )
    row.name = cmd.name
    target, display = _target(schema, cmd.service_name, cmd.handler_name, cmd.key)
    callee = callee_ids.get(cmd.invocation_id_notification_idx)
    row.invoked_target = display
    row.invoked_id = callee
    completion_ms, journal_ms = _retentions(schema, cmd.service_name, cmd.handler_name)
    request = {
        "invocation_id": callee,
        "invocation_target": target,
        "span_context": _ZERO_SPAN,
        "parameter": list(cmd.parameter),
        "headers": _headers(cmd.headers),
        "idempotency_key": cmd.idempotency_key if cmd.HasField("idempotency_key") else None,
        "completion_retention_duration": _duration(completion_ms),
        "journal_retention_duration": _duration(journal_ms),
    }
    full: dict[str, Any] = {"request": request}
    lite: dict[str, Any] = {"invocation_id": callee, "invocation_target": target}
    if one_way:
        full["invoke_time"] = lite["invoke_time"] = cmd.invoke_time
    full["invocation_id_completion_id"] = lite["invocation_id_completion_id"] = (
        cmd.invocation_id_notification_idx
    )
    if not one_way:
        full["result_completion_id"] = lite["result_completion_id"] = cmd.result_completion_id
    full["name"] = cmd.name
    if cmd.name:
        lite["name"] = cmd.name
    return full, lite


def _notification(code: int, payload: bytes) -> JournalRow:
    n = pb.Notification.FromString(payload)
    which_id = n.WhichOneof("id")
    which = n.WhichOneof("result")
    if which_id == "completion_id" and code in _COMPLETION_NAMES:
        kind = _COMPLETION_NAMES[code]
        body: dict[str, Any] = {"completion_id": n.completion_id}
        word = "Void"
        if kind == "CallInvocationId":
            body["invocation_id"] = n.invocation_id
            word = "InvocationId"
        elif kind == "GetLazyStateKeys":
            body["state_keys"] = [_text(k) for k in n.state_keys.keys]
            word = "StateKeys"
        elif kind != "Sleep":
            body["result"], word = _notification_result(n, which, void=kind not in _NO_VOID)
        full = {"Notification": {"Completion": {kind: body}}}
        lite = {
            "Notification": {
                "ty": {"Completion": kind},
                "id": {"CompletionId": n.completion_id},
                "result": word,
            }
        }
        return JournalRow(
            f"Notification: {kind}", entry_json=_dump(full), entry_lite_json=_dump(lite)
        )
    if which_id == "signal_name":
        full_id: dict[str, Any] = {"Name": n.signal_name}
        lite_id: dict[str, Any] = {"SignalName": n.signal_name}
    else:
        full_id = {"Index": n.signal_id}
        lite_id = {"SignalIndex": n.signal_id}
    result, word = _notification_result(n, which, void=True)
    full = {"Notification": {"Signal": {"id": full_id, "result": result}}}
    lite = {"Notification": {"ty": "Signal", "id": lite_id, "result": word}}
    return JournalRow("Notification: Signal", entry_json=_dump(full), entry_lite_json=_dump(lite))


def _notification_result(n: Any, which: str | None, *, void: bool) -> tuple[Any, str]:
    if which == "value":
        return {"Success": list(n.value.content)}, "Success"
    if which == "failure":
        return {"Failure": _failure(n.failure)}, "Failure"
    if void:
        return "Void", "Void"
    return {"Success": []}, "Success"
