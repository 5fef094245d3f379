"""The journal timeline (pure): entries, their results, pending commands and failed attempts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from undying.server.ui.templating import human_duration, relative, timestamp
from undying.server.ui.timeline import MAX_FAILURES, Fact, build_timeline, preview

T0 = datetime(2026, 11, 24, 5, 0, 0, tzinfo=UTC)


def entry(index: int, entry_type: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    side, kind = entry_type.split(": ")
    if side == "Command":
        doc: dict[str, Any] = {"Command": {kind: body}}
    else:
        doc = {"Notification": body}
    return {
        "index": index,
        "entry_type": entry_type,
        "name": body.get("name") or None,
        "entry_json": json.dumps(doc),
        "appended_at": T0 + timedelta(milliseconds=index),
        **extra,
    }


def completion(
    index: int, kind: str, cid: int, result: Any = "Void", **more: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"completion_id": cid, **more}
    if result != "Void":
        body["result"] = result
    return entry(index, f"Notification: {kind}", {"Completion": {kind: body}})


def failure_event(after: int, attempt: int, at_ms: int = 0) -> dict[str, Any]:
    return {
        "after_journal_entry_index": after,
        "appended_at": T0 + timedelta(milliseconds=at_ms or attempt * 100),
        "event_type": "TransientError",
        "event_json": json.dumps(
            {
                "ty": "TransientError",
                "error_code": 500,
                "error_message": f"boom {attempt}",
                "error_stacktrace": f"Traceback...\nValueError: boom {attempt}",
                "restate_doc_error_code": "RT0007",
                "related_command_index": 1,
                "related_command_name": "pay",
                "related_command_type": "Run",
            }
        ),
    }


def test_preview_is_text_or_hex_and_cut() -> None:
    assert preview(list(b'{"a": 1}')) == '{"a": 1}'
    assert preview(b"\xff\x00") == "0xff00"
    assert preview(None) == ""
    long = preview(b"x" * 1000, limit=10)
    assert long == "xxxxxxxxxx… (1000 bytes)"


def test_commands_and_their_results() -> None:
    journal = [
        entry(
            0,
            "Command: Input",
            {
                "headers": [{"name": "content-type", "value": "text/plain"}],
                "payload": list(b"hi"),
                "name": "",
            },
        ),
        entry(1, "Command: Run", {"completion_id": 1, "name": "pay"}),
        completion(2, "Run", 1, {"Success": list(b'"ok"')}),
        entry(3, "Command: Output", {"result": {"Failure": {"code": 400, "message": "no"}}}),
    ]
    items = build_timeline(journal)
    assert [i.title for i in items] == ["Input", "Run", "Run", "Output"]
    assert [i.kind for i in items] == ["command", "command", "notification", "command"]
    assert items[0].value == "hi" and items[0].facts == [Fact("content-type", "text/plain")]
    assert items[1].name == "pay" and items[1].pending is None
    assert items[2].completes == 1 and items[2].name == "pay" and items[2].value == '"ok"'
    assert items[3].failure is not None and (items[3].failure.code, items[3].failure.message) == (
        400,
        "no",
    )
    assert [i.key for i in items] == ["e0", "e1", "e2", "e3"]


def test_a_command_without_its_result_is_pending() -> None:
    wake = int((T0 + timedelta(hours=1)).timestamp() * 1000)
    journal = [
        entry(
            0,
            "Command: Sleep",
            {"wake_up_time": wake, "completion_id": 1, "name": ""},
            sleep_wakeup_at=T0 + timedelta(hours=1),
        ),
        entry(1, "Command: Run", {"completion_id": 2, "name": "step"}),
        entry(
            2,
            "Command: GetPromise",
            {"key": "decision", "completion_id": 3, "name": ""},
            promise_name="decision",
        ),
    ]
    sleep, run, promise = build_timeline(journal)
    assert sleep.pending == "sleeping" and sleep.facts == [
        Fact("wakes up", at=T0 + timedelta(hours=1))
    ]
    assert run.pending == "result not journaled yet"
    assert promise.pending == "waiting for the promise"
    assert promise.facts == [Fact("promise", "decision")]
    woken = build_timeline([*journal[:1], completion(1, "Sleep", 1)])
    assert woken[0].pending is None and woken[1].completes == 0


def test_calls_link_to_their_callee() -> None:
    callee = "inv_1kNOJePtyr2g1shK77lqeDPKuWPaftAeKa"
    target = {
        "VirtualObject": {
            "name": "Counter",
            "key": "a",
            "handler": "add",
            "handler_ty": "Exclusive",
        }
    }
    journal = [
        entry(
            0,
            "Command: Call",
            {
                "request": {
                    "invocation_id": callee,
                    "invocation_target": target,
                    "parameter": list(b"5"),
                    "idempotency_key": None,
                },
                "invocation_id_completion_id": 1,
                "result_completion_id": 2,
                "name": "",
            },
            invoked_id=callee,
            invoked_target="Counter/a/add",
        ),
        completion(1, "CallInvocationId", 1, invocation_id=callee),
        entry(
            2,
            "Command: OneWayCall",
            {
                "request": {
                    "invocation_id": None,
                    "invocation_target": {"Service": {"name": "S", "handler": "h"}},
                    "parameter": [],
                },
                "invoke_time": 0,
                "invocation_id_completion_id": 3,
                "name": "",
            },
        ),
    ]
    call, id_note, send = build_timeline(journal)
    assert call.facts[:2] == [
        Fact("target", "Counter/a/add"),
        Fact("callee", callee, invocation=callee),
    ]
    assert call.value == "5"
    assert call.pending == "waiting for the result"  # its result (completion 2) is not there
    assert id_note.completes == 0 and id_note.facts == [
        Fact("invocation", callee, invocation=callee)
    ]
    assert send.pending is None  # nothing waits on a one-way call
    assert send.facts == [Fact("target", "S/h")]


def test_failed_attempts_follow_the_entry_they_failed_after() -> None:
    journal = [
        entry(0, "Command: Input", {"payload": [], "headers": [], "name": ""}),
        entry(1, "Command: Run", {"completion_id": 1, "name": "pay"}),
    ]
    events = [failure_event(1, 2), failure_event(0, 1), failure_event(5, 3)]
    items = build_timeline(journal, events)
    assert [i.key for i in items] == ["e0", "a1", "e1", "a2", "a3"]
    first = items[1]
    assert first.title == "Attempt 1 failed" and first.kind == "failure"
    assert first.failure is not None
    assert first.failure.message == "boom 1" and first.failure.doc_code == "RT0007"
    assert first.failure.stacktrace.endswith("ValueError: boom 1")
    assert first.facts == [Fact("while running", "Run “pay” (#1)")]


def test_only_the_last_failed_attempts_are_kept() -> None:
    journal = [entry(0, "Command: Run", {"completion_id": 1, "name": "pay"})]
    events = [failure_event(0, n) for n in range(1, MAX_FAILURES + 8)]
    items = build_timeline(journal, events)
    assert items[1].kind == "note" and items[1].title == "7 earlier failed attempts not shown"
    attempts = [i.title for i in items if i.kind == "failure"]
    assert len(attempts) == MAX_FAILURES
    assert (
        attempts[0] == "Attempt 8 failed" and attempts[-1] == f"Attempt {MAX_FAILURES + 7} failed"
    )


def test_unknown_entries_and_events_are_still_shown() -> None:
    rows = [{"index": 0, "entry_type": "Unknown: 0xfc01", "entry_json": None, "appended_at": T0}]
    event = {
        "after_journal_entry_index": 0,
        "appended_at": T0,
        "event_type": "Paused",
        "event_json": '{"ty": "Paused"}',
    }
    items = build_timeline(rows, [event])
    assert [(i.kind, i.title) for i in items] == [
        ("command", "Unknown: 0xfc01"),
        ("note", "Paused"),
    ]


def test_times_and_durations_read_naturally() -> None:
    assert timestamp(T0 + timedelta(milliseconds=42)) == "2026-11-24 05:00:00.042"
    assert timestamp(T0, short=True) == "05:00:00"
    assert [human_duration(s) for s in (0.25, 2.34, 42, 125, 3600 * 3 + 60 * 20, 86400 * 2)] == [
        "250 ms",
        "2.3 s",
        "42 s",
        "2 min 5 s",
        "3 h 20 min",
        "2 days",
    ]
    assert relative(T0 + timedelta(seconds=3), T0) == "in 3.0 s"
    assert relative(T0 - timedelta(minutes=4), T0) == "4 min ago"
    assert relative(T0, T0) == "now"


def test_a_completed_invocation_has_nothing_pending() -> None:
    journal = [entry(0, "Command: Run", {"completion_id": 1, "name": "pay"})]
    (run,) = build_timeline(journal, completed=True)
    assert run.pending == "never completed"
