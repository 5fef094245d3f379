"""``sys_journal`` renderings of every entry kind."""

from __future__ import annotations

import json
from typing import Any

from undying.protocol import manifest as mf
from undying.protocol.messages import MessageType, pb
from undying.server.query.journal import render_journal
from undying.server.schema import Schema, register

CALLEE = "inv_1lluRsLVfXMr1v5M0DKigCoAizdA3WnWp3"


def _schema() -> Schema:
    manifest = mf.parse_manifest(
        b'{"protocolMode": "BIDI_STREAM", "minProtocolVersion": 5, "maxProtocolVersion": 7,'
        b' "services": [{"name": "Counter", "ty": "VIRTUAL_OBJECT", "handlers": ['
        b'{"name": "add", "ty": "EXCLUSIVE"}, {"name": "get", "ty": "SHARED"}]}]}'
    )
    return register(
        Schema(),
        uri="http://localhost:9080/",
        endpoint=manifest,
        use_http_11=False,
        sdk_version=None,
        additional_headers={},
        metadata=None,
        force=False,
        breaking=False,
        now_ms=0,
    ).schema


def render(*entries: tuple[int, Any]) -> list[dict[str, Any]]:
    rows = render_journal([(int(t), m.SerializeToString()) for t, m in entries], _schema())
    out = []
    for r in rows:
        d = {k: v for k, v in vars_of(r).items() if v is not None}
        for key in ("entry_json", "entry_lite_json"):
            if key in d:
                d[key] = json.loads(d[key])
        out.append(d)
    return out


def vars_of(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}


def test_calls_show_target_and_callee_id() -> None:
    call = pb.CallCommandMessage(
        service_name="Counter",
        handler_name="get",
        key="alice",
        parameter=b"1",
        invocation_id_notification_idx=1,
        result_completion_id=2,
        name="ask",
    )
    callee = pb.Notification(completion_id=1, invocation_id=CALLEE)
    result = pb.Notification(completion_id=2, value=pb.Value(content=b"8"))
    rows = render(
        (MessageType.CALL, call),
        (MessageType.CALL_INVOCATION_ID_COMPLETION, callee),
        (MessageType.CALL_COMPLETION, result),
    )
    assert rows[0]["entry_type"] == "Command: Call"
    assert rows[0]["name"] == "ask"
    assert rows[0]["invoked_id"] == CALLEE
    assert rows[0]["invoked_target"] == "Counter/alice/get"
    request = rows[0]["entry_json"]["Command"]["Call"]["request"]
    assert request["invocation_id"] == CALLEE
    assert request["invocation_target"] == {
        "VirtualObject": {
            "name": "Counter",
            "key": "alice",
            "handler": "get",
            "handler_ty": "Shared",
            "scope": None,
        }
    }
    assert request["parameter"] == [49]
    assert rows[0]["entry_lite_json"] == {
        "Command": {
            "Call": {
                "invocation_id": CALLEE,
                "invocation_target": request["invocation_target"],
                "invocation_id_completion_id": 1,
                "result_completion_id": 2,
                "name": "ask",
            }
        }
    }
    assert rows[1]["entry_type"] == "Notification: CallInvocationId"
    assert rows[1]["entry_json"] == {
        "Notification": {
            "Completion": {"CallInvocationId": {"completion_id": 1, "invocation_id": CALLEE}}
        }
    }
    assert rows[2]["entry_json"] == {
        "Notification": {"Completion": {"Call": {"completion_id": 2, "result": {"Success": [56]}}}}
    }
    assert "name" not in rows[1]


def test_one_way_calls_to_plain_services() -> None:
    send = pb.OneWayCallCommandMessage(
        service_name="Greeter",
        handler_name="greet",
        invoke_time=5,
        invocation_id_notification_idx=1,
    )
    [row] = render((MessageType.ONE_WAY_CALL, send))
    assert row["invoked_target"] == "Greeter/greet"
    body = row["entry_json"]["Command"]["OneWayCall"]
    assert body["invoke_time"] == 5
    assert body["request"]["invocation_target"] == {
        "Service": {"name": "Greeter", "handler": "greet", "scope": None}
    }


def test_state_promise_signal_and_awakeable_commands() -> None:
    rows = render(
        (
            MessageType.GET_LAZY_STATE,
            pb.GetLazyStateCommandMessage(key=b"count", result_completion_id=1),
        ),
        (MessageType.GET_LAZY_STATE_COMPLETION, pb.Notification(completion_id=1, void=pb.Void())),
        (
            MessageType.SET_STATE,
            pb.SetStateCommandMessage(key=b"count", value=pb.Value(content=b"9")),
        ),
        (MessageType.CLEAR_STATE, pb.ClearStateCommandMessage(key=b"count")),
        (MessageType.CLEAR_ALL_STATE, pb.ClearAllStateCommandMessage()),
        (MessageType.GET_EAGER_STATE, pb.GetEagerStateCommandMessage(key=b"k", void=pb.Void())),
        (
            MessageType.GET_EAGER_STATE_KEYS,
            pb.GetEagerStateKeysCommandMessage(value=pb.StateKeys(keys=[b"a", b"b"])),
        ),
        (
            MessageType.GET_LAZY_STATE_KEYS,
            pb.GetLazyStateKeysCommandMessage(result_completion_id=2),
        ),
        (
            MessageType.GET_LAZY_STATE_KEYS_COMPLETION,
            pb.Notification(completion_id=2, state_keys=pb.StateKeys(keys=[b"a"])),
        ),
        (
            MessageType.GET_PROMISE,
            pb.GetPromiseCommandMessage(key="approval", result_completion_id=3),
        ),
        (
            MessageType.COMPLETE_PROMISE,
            pb.CompletePromiseCommandMessage(
                key="approval",
                completion_failure=pb.Failure(code=409, message="no"),
                result_completion_id=4,
            ),
        ),
        (
            MessageType.SEND_SIGNAL,
            pb.SendSignalCommandMessage(target_invocation_id=CALLEE, idx=17, void=pb.Void()),
        ),
        (
            MessageType.COMPLETE_AWAKEABLE,
            pb.CompleteAwakeableCommandMessage(
                awakeable_id="sign_1x", value=pb.Value(content=b"1")
            ),
        ),
        (
            MessageType.ATTACH_INVOCATION,
            pb.AttachInvocationCommandMessage(invocation_id=CALLEE, result_completion_id=5),
        ),
        (MessageType.SIGNAL, pb.Notification(signal_id=17, value=pb.Value(content=b"ok"))),
        (MessageType.SIGNAL, pb.Notification(signal_name="go", void=pb.Void())),
    )
    types = [r["entry_type"] for r in rows]
    assert types == [
        "Command: GetLazyState",
        "Notification: GetLazyState",
        "Command: SetState",
        "Command: ClearState",
        "Command: ClearAllState",
        "Command: GetEagerState",
        "Command: GetEagerStateKeys",
        "Command: GetLazyStateKeys",
        "Notification: GetLazyStateKeys",
        "Command: GetPromise",
        "Command: CompletePromise",
        "Command: SendSignal",
        "Command: CompleteAwakeable",
        "Command: AttachInvocation",
        "Notification: Signal",
        "Notification: Signal",
    ]
    full = [r["entry_json"] for r in rows]
    assert full[0] == {
        "Command": {"GetLazyState": {"key": "count", "completion_id": 1, "name": ""}}
    }
    assert full[1] == {
        "Notification": {"Completion": {"GetLazyState": {"completion_id": 1, "result": "Void"}}}
    }
    assert full[2] == {"Command": {"SetState": {"key": "count", "value": [57], "name": ""}}}
    assert full[5] == {"Command": {"GetEagerState": {"key": "k", "result": "Void", "name": ""}}}
    assert full[6] == {"Command": {"GetEagerStateKeys": {"state_keys": ["a", "b"], "name": ""}}}
    assert full[8] == {
        "Notification": {
            "Completion": {"GetLazyStateKeys": {"completion_id": 2, "state_keys": ["a"]}}
        }
    }
    assert rows[9]["promise_name"] == "approval"
    assert full[10]["Command"]["CompletePromise"]["value"] == {
        "Failure": {"code": 409, "message": "no"}
    }
    assert full[11] == {
        "Command": {
            "SendSignal": {
                "target_invocation_id": CALLEE,
                "signal_id": {"Index": 17},
                "result": "Void",
                "name": "",
            }
        }
    }
    assert rows[12]["entry_lite_json"] == {
        "Command": {"CompleteAwakeable": {"id": "sign_1x", "result": "Success"}}
    }
    assert rows[13]["invoked_id"] == CALLEE
    assert full[13]["Command"]["AttachInvocation"]["target"] == {"InvocationId": CALLEE}
    assert full[14] == {
        "Notification": {"Signal": {"id": {"Index": 17}, "result": {"Success": [111, 107]}}}
    }
    assert rows[15]["entry_lite_json"] == {
        "Notification": {"ty": "Signal", "id": {"SignalName": "go"}, "result": "Void"}
    }


def test_undecodable_and_unknown_entries_keep_their_type() -> None:
    rows = render_journal([(MessageType.RUN, b"\xff\xff\xff"), (0xFC01, b"")], Schema())
    assert rows[0].entry_type == "Command: Run" and rows[0].entry_json is None
    assert rows[1].entry_type == "Unknown: 0xfc01"
