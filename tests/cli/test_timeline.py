"""The journal timeline: where failed attempts go, and how the invocation stands."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from undying.cli.timeline import build_timeline, enrich_entry, parse_event, status_summary

INV: dict[str, Any] = {"id": "inv_1x", "target": "Svc/h", "status": "running"}


def _render(renderable: Any) -> str:
    console = Console(width=200, no_color=True, record=True)
    console.print(renderable)
    return console.export_text()


def _event(after: int | None, message: str, at: str = "2026-11-24T04:58:44.000Z") -> Any:
    data = {"ty": "TransientError", "error_code": 500, "error_message": message}
    return parse_event(
        {
            "after_journal_entry_index": after,
            "appended_at": at,
            "event_type": "TransientError",
            "event_json": json.dumps(data),
        }
    )


def test_failures_follow_their_entry_and_unknown_ones_go_last() -> None:
    journal = [
        {"index": 0, "entry_type": "Command: Input", "appended_at": "2026-11-24T04:58:43.000Z"},
        {"index": 1, "entry_type": "Command: Run", "name": "Pay"},
    ]
    shown = _render(
        build_timeline(INV, journal, [_event(0, "first"), _event(1, "second"), _event(9, "third")])
    ).splitlines()
    assert shown[0] == "Ingress ─▶ Svc/h  inv_1x"
    assert "#0" in shown[1] and "first" in shown[2]
    assert "#1" in shown[3] and "Command: Run [Pay]" in shown[3] and "second" in shown[4]
    assert "third" in shown[5]
    assert shown[6] == "└── running"


def test_other_events_and_odd_json() -> None:
    event = parse_event({"event_type": "Paused", "event_json": "not json"})
    assert event.message == "Paused" and event.after_index is None
    assert _event(1, "x\nTraceback").message == "attempt failed: x (500)"


def test_awaited_promises_and_pending_commands() -> None:
    journal = [
        {
            "index": 3,
            "entry_type": "Command: GetPromise",
            "promise_name": "approval",
            "completed": False,
        }
    ]
    shown = _render(build_timeline(INV, journal, []))
    assert "Command: GetPromise promise 'approval' (waiting)" in shown


def test_status_summary() -> None:
    def summary(**inv: Any) -> str:
        return status_summary(inv).plain

    assert summary(status="completed", completion_result="success") == "completed with success"
    assert (
        summary(status="completed", completion_result="failure", completion_failure="[409] killed")
        == "completed with failure: [409] killed"
    )
    assert summary(status="backing-off", retry_count=3, next_retry_at=None) == (
        "backing-off (retried 3 time(s), next retry due)"
    )
    assert summary(status="paused", retry_count=2).startswith("paused after 2 attempt(s)")
    assert summary(status="running", retry_count=1) == "running"
    assert summary(status="running", retry_count=4) == "running (attempt 4)"


def test_restate_leaves_call_and_sleep_columns_null_the_lite_json_has_them() -> None:
    call = {
        "index": 1,
        "entry_type": "Command: Call",
        "invoked_id": None,
        "entry_lite_json": json.dumps(
            {
                "Command": {
                    "Call": {
                        "invocation_id": "inv_1juQwZIhqp6106ADf7kK1zcTGCLGIMiThn",
                        "invocation_target": {
                            "VirtualObject": {"name": "Counter", "key": "bob", "handler": "add"}
                        },
                        "invocation_id_completion_id": 1,
                        "result_completion_id": 2,
                    }
                }
            }
        ),
    }
    assert enrich_entry(call) == {
        "index": 1,
        "entry_type": "Command: Call",
        "invoked_id": "inv_1juQwZIhqp6106ADf7kK1zcTGCLGIMiThn",
        "invoked_target": "Counter/bob/add",
    }
    sleep = {
        "entry_type": "Command: Sleep",
        "entry_lite_json": '{"Command":{"Sleep":{"wake_up_time":1795496324991,"completion_id":2}}}',
    }
    assert enrich_entry(sleep)["sleep_wakeup_at"] == "2026-11-24T04:58:44.991Z"
    send = {
        "entry_type": "Command: OneWayCall",
        "entry_lite_json": json.dumps(
            {
                "Command": {
                    "OneWayCall": {
                        "invocation_id": "inv_1x",
                        "invocation_target": {"Service": {"name": "S", "handler": "h"}},
                        "invoke_time": 1795496324991,
                    }
                }
            }
        ),
    }
    shown = _render(build_timeline(INV, [enrich_entry(send)], []))
    assert "Command: OneWayCall ─▶ S/h inv_1x at 2026-11-24 04:58:44.991 UTC" in shown


def test_columns_win_over_the_lite_json_and_bad_json_is_ignored() -> None:
    entry = {
        "invoked_id": "inv_col",
        "entry_lite_json": '{"Command":{"Call":{"invocation_id":"inv_json"}}}',
    }
    assert enrich_entry(entry)["invoked_id"] == "inv_col"
    assert enrich_entry({"index": 0, "entry_lite_json": "{"}) == {"index": 0}
    assert enrich_entry({"index": 0, "entry_lite_json": None}) == {"index": 0}
