"""An invocation's journal as the UI shows it: one timeline of entries and failed attempts.

The input is what the SQL tables hold: ``sys_journal`` rows (``entry_json`` is the whole entry
with payloads as byte lists) and ``sys_journal_events`` rows (``TransientError`` events, one per
failed attempt, placed after the journal entry that was last when the attempt failed). The
output is a list of :class:`Item` in time order, ready for a template: titles, facts with
optional links, payload previews and failures with their stack traces. Pure functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

__all__ = ["Fact", "Failure", "Item", "build_timeline", "preview"]

#: Failed attempts shown on one timeline; older ones are summed up in one line.
MAX_FAILURES: Final = 50
#: Characters of a payload shown before it is cut.
PREVIEW_CHARS: Final = 400

_COMPLETION_KEYS: Final = ("completion_id", "result_completion_id", "invocation_id_completion_id")

Kind = Literal["command", "notification", "failure", "note"]


@dataclass(frozen=True, slots=True)
class Fact:
    """One labelled detail of an item: text, a link (``href`` under the UI) or a time."""

    label: str
    text: str = ""
    invocation: str | None = None  # an invocation id to link to
    at: datetime | None = None  # shown as a time, with how far from now


@dataclass(frozen=True, slots=True)
class Failure:
    """An error: code, message, and the stack trace if the service sent one."""

    code: int | None
    message: str
    stacktrace: str = ""
    doc_code: str | None = None


@dataclass(slots=True)
class Item:
    """One line of the timeline."""

    kind: Kind
    title: str
    index: int | None = None  # journal index (None for failed attempts and notes)
    entry_type: str = ""  # "Command: Run", "Notification: Sleep", "TransientError"
    name: str | None = None
    at: datetime | None = None
    facts: list[Fact] = field(default_factory=list)
    value: str | None = None  # a payload preview
    failure: Failure | None = None
    completes: int | None = None  # for a notification: the index of its command
    pending: str | None = None  # for a command still waiting: what it waits for
    key: str = ""  # stable id for the page (entries and attempts never change once written)


def preview(raw: Iterable[int] | bytes | None, limit: int = PREVIEW_CHARS) -> str:
    """A payload as text: UTF-8 if it is, else hex; cut after ``limit`` characters."""
    if raw is None:
        return ""
    data = raw if isinstance(raw, bytes) else bytes(raw)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "0x" + data.hex()
    if len(text) > limit:
        return text[:limit] + f"… ({len(data)} bytes)"
    return text


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int) and value > 0:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return None


def _loads(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _single(obj: Any) -> tuple[str, dict[str, Any]]:
    """``{"Kind": {...}}`` as ``("Kind", {...})``; ``("", {})`` for anything else."""
    if isinstance(obj, dict) and len(obj) == 1:
        ((k, v),) = obj.items()
        return str(k), v if isinstance(v, dict) else {}
    return "", {}


def _result(item: Item, result: Any) -> None:
    """Fill a Success value or a Failure from ``{"Success": [...]}`` / ``{"Failure": {...}}``."""
    kind, _ = _single(result) if isinstance(result, dict) else ("", {})
    if kind == "Success":
        item.value = preview(result["Success"])
    elif kind == "Failure":
        f = result["Failure"]
        item.failure = Failure(f.get("code"), str(f.get("message", "")))


def _target_text(target: Any) -> str:
    kind, body = _single(target)
    if not kind:
        return ""
    name = body.get("name", "")
    if "key" in body:
        return f"{name}/{body['key']}/{body.get('handler', '')}"
    return f"{name}/{body.get('handler', '')}"


def _command(row: Mapping[str, Any], kind: str, body: dict[str, Any], item: Item) -> None:
    """The facts, preview and failure of one command."""
    facts = item.facts
    if kind == "Input":
        item.value = preview(body.get("payload"))
        headers = {h.get("name"): h.get("value") for h in body.get("headers", [])}
        if headers.get("content-type"):
            facts.append(Fact("content-type", str(headers["content-type"])))
    elif kind == "Output":
        _result(item, body.get("result"))
    elif kind == "Sleep":
        wake = _time(row.get("sleep_wakeup_at")) or _time(body.get("wake_up_time"))
        if wake is not None:
            facts.append(Fact("wakes up", at=wake))
    elif kind in ("Call", "OneWayCall"):
        request = body.get("request", {})
        target = row.get("invoked_target") or _target_text(request.get("invocation_target"))
        facts.append(Fact("target", str(target)))
        callee = row.get("invoked_id") or request.get("invocation_id")
        if callee:
            facts.append(Fact("callee", str(callee), invocation=str(callee)))
        if request.get("idempotency_key"):
            facts.append(Fact("idempotency key", str(request["idempotency_key"])))
        invoke_time = _time(body.get("invoke_time"))
        if invoke_time is not None:
            facts.append(Fact("delivered at", at=invoke_time))
        item.value = preview(request.get("parameter"))
    elif kind in ("GetLazyState", "GetEagerState", "SetState", "ClearState"):
        facts.append(Fact("state key", str(body.get("key", ""))))
        if kind == "SetState":
            item.value = preview(body.get("value"))
        elif kind == "GetEagerState":
            _result(item, body.get("result"))
    elif kind == "GetEagerStateKeys":
        facts.append(Fact("keys", ", ".join(map(str, body.get("state_keys", [])))))
    elif kind in ("GetPromise", "PeekPromise", "CompletePromise"):
        facts.append(Fact("promise", str(row.get("promise_name") or body.get("key", ""))))
        if kind == "CompletePromise":
            _result(item, body.get("value"))
    elif kind == "SendSignal":
        target = body.get("target_invocation_id")
        if target:
            facts.append(Fact("to", str(target), invocation=str(target)))
        sid_kind, _ = _single(body.get("signal_id"))
        if sid_kind:
            facts.append(Fact("signal", str(body["signal_id"][sid_kind])))
        _result(item, body.get("result"))
    elif kind in ("AttachInvocation", "GetInvocationOutput"):
        target_kind, target = _single(body.get("target"))
        if target_kind == "InvocationId" or row.get("invoked_id"):
            inv = str(row.get("invoked_id") or body["target"]["InvocationId"])
            facts.append(Fact("invocation", inv, invocation=inv))
        elif target_kind:
            facts.append(Fact("target", ", ".join(f"{k}={v}" for k, v in target.items() if v)))
    elif kind == "CompleteAwakeable":
        facts.append(Fact("awakeable", str(body.get("id", ""))))
        _result(item, body.get("result"))


def _notification(body: dict[str, Any], item: Item) -> int | None:
    """Fill a notification item; the completion id it carries, if any."""
    shape, inner = _single(body)
    if shape == "Signal":
        sid_kind, _ = _single(inner.get("id"))
        if sid_kind:
            item.facts.append(Fact("signal", str(inner["id"][sid_kind])))
        _result(item, inner.get("result"))
        return None
    kind, completion = _single(inner)
    if not kind:
        return None
    if "invocation_id" in completion:
        inv = str(completion["invocation_id"])
        item.facts.append(Fact("invocation", inv, invocation=inv))
    if "state_keys" in completion:
        item.facts.append(Fact("keys", ", ".join(map(str, completion["state_keys"]))))
    _result(item, completion.get("result"))
    cid = completion.get("completion_id")
    return cid if isinstance(cid, int) else None


def _entry(row: Mapping[str, Any]) -> tuple[Item, list[int], int | None, int | None]:
    """An item for a journal row; for a command, the completion ids it is answered with and
    the one carrying its result; for a notification, the completion id it brings."""
    entry_type = str(row.get("entry_type") or "")
    index = int(row.get("index") or 0)
    name = row.get("name") or None
    at = _time(row.get("appended_at"))
    entry = _loads(row.get("entry_json"))
    side, rest = _single(entry)
    if side == "Command":
        kind, body = _single(rest)
        title = kind or entry_type.removeprefix("Command: ")
        item = Item("command", title, index, entry_type, name, at, key=f"e{index}")
        _command(row, kind, body, item)
        answered = [body[k] for k in _COMPLETION_KEYS if isinstance(body.get(k), int)]
        result = body.get("result_completion_id", body.get("completion_id"))
        return item, answered, result if isinstance(result, int) else None, None
    if side == "Notification":
        title = entry_type.removeprefix("Notification: ") or "Notification"
        item = Item("notification", title, index, entry_type, name, at, key=f"e{index}")
        return item, [], None, _notification(rest, item)
    title = entry_type or "Entry"
    kind_of: Kind = "notification" if entry_type.startswith("Notification") else "command"
    return Item(kind_of, title, index, entry_type, name, at, key=f"e{index}"), [], None, None


def _failure_item(event: Mapping[str, Any], attempt: int, commands: list[int]) -> Item:
    data = _loads(event.get("event_json"))
    event_type = str(event.get("event_type") or data.get("ty") or "Event")
    at = _time(event.get("appended_at"))
    key = f"a{attempt}"
    if event_type != "TransientError":
        item = Item("note", event_type, None, event_type, at=at, key=key)
        item.value = json.dumps(data, indent=1) if data else None
        return item
    code = data.get("error_code")
    item = Item(
        "failure",
        f"Attempt {attempt} failed",
        None,
        event_type,
        at=at,
        key=key,
        failure=Failure(
            code if isinstance(code, int) else None,
            str(data.get("error_message", "")),
            str(data.get("error_stacktrace") or ""),
            data.get("restate_doc_error_code"),
        ),
    )
    cmd = data.get("related_command_index")
    if isinstance(cmd, int):
        what = " ".join(
            str(p)
            for p in (data.get("related_command_type"), _quoted(data.get("related_command_name")))
            if p
        )
        where = f"#{commands[cmd]}" if 0 <= cmd < len(commands) else f"command {cmd}"
        item.facts.append(Fact("while running", f"{what} ({where})" if what else where))
    return item


def _quoted(name: Any) -> str:
    return f"“{name}”" if name else ""


def build_timeline(
    journal: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]] = (),
    *,
    completed: bool = False,
) -> list[Item]:
    """The timeline of one invocation from its ``sys_journal`` and ``sys_journal_events`` rows.

    Notifications say which command they complete; commands still waiting for theirs are
    marked ``pending`` (a sleep until its wake-up time, a run whose result is not journaled
    yet...), or, once the invocation is ``completed``, as never completed. Each failed attempt
    comes after the entry that was last when it failed; only the last :data:`MAX_FAILURES` are
    kept, the others summed up in one note.
    """
    rows = sorted(journal, key=lambda r: int(r.get("index") or 0))
    items: list[Item] = []
    answers: dict[int, Item] = {}  # completion id -> the command it answers
    waiting: dict[int, Item] = {}  # result completion id -> the command still waiting for it
    commands: list[int] = []  # command index -> journal index
    for row in rows:
        item, answered, result, brings = _entry(row)
        if item.kind == "command":
            commands.append(item.index or 0)
            for cid in answered:
                answers[cid] = item
            if result is not None:
                waiting[result] = item
        elif brings is not None and brings in answers:
            command = answers[brings]
            waiting.pop(brings, None)
            item.completes = command.index
            if command.name and not item.name:
                item.name = command.name
        items.append(item)
    for command in waiting.values():
        if completed:
            command.pending = "never completed"
        elif command.title == "Sleep":
            command.pending = "sleeping"
        elif command.title in ("GetPromise", "PeekPromise"):
            command.pending = "waiting for the promise"
        elif command.title == "Run":
            command.pending = "result not journaled yet"
        else:
            command.pending = "waiting for the result"
    return _with_failures(items, events, commands)


def _with_failures(
    items: list[Item], events: Sequence[Mapping[str, Any]], commands: list[int]
) -> list[Item]:
    ordered = sorted(
        enumerate(events),
        key=lambda p: (_time(p[1].get("appended_at")) or datetime.min.replace(tzinfo=UTC), p[0]),
    )
    failures = [(i + 1, e) for i, (_, e) in enumerate(ordered)]
    skipped = max(0, len(failures) - MAX_FAILURES)
    after: dict[int, list[Item]] = {}
    if skipped:
        first = failures[skipped][1]
        note = Item(
            "note",
            f"{skipped} earlier failed attempts not shown",
            key=f"skipped{skipped}",
            at=_time(failures[0][1].get("appended_at")),
        )
        after.setdefault(_after_index(first), []).append(note)
    for attempt, event in failures[skipped:]:
        after.setdefault(_after_index(event), []).append(_failure_item(event, attempt, commands))
    out: list[Item] = []
    last_index = -1
    for item in items:
        out.append(item)
        if item.index is not None:
            last_index = item.index
            out.extend(after.pop(item.index, []))
    # events placed after entries the journal does not have: past its end, or before it
    before = [i for index in sorted(after) if index <= last_index for i in after[index]]
    past = [i for index in sorted(after) if index > last_index for i in after[index]]
    return before + out + past


def _after_index(event: Mapping[str, Any]) -> int:
    value = event.get("after_journal_entry_index")
    return int(value) if isinstance(value, int) else -1
