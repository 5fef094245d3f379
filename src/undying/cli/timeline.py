"""An invocation's journal as a timeline: its entries in order, each failed attempt after the
entry it followed, and where the invocation stands now.

::

    Ingress ─▶ Greeter/greet  inv_1gvu3oYTu4Ot5eY9bY7r0nEr8WFXOutkPL
    ├── #0  04:58:43.982  Command: Input
    ├── #1  04:58:43.988  Command: Run [Notification]
    ├── #3  04:58:43.990  Command: Sleep until 2026-11-24 04:58:44.991 (1.0s after)
    ├── #5  04:58:44.993  Command: Run [Reminder]
    │   ├── ✗ 04:58:44.994  attempt failed: RuntimeError: ... (500, RT0007)
    │   └── ✗ 04:58:45.554  attempt failed: RuntimeError: ... (500, RT0007)
    ├── #6  04:58:48.936  Notification: Run
    ├── #7  04:58:48.938  Command: Output
    └── completed with success
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from undying.cli.render import (
    due,
    first_line,
    format_time,
    parse_time,
    relative,
    status_text,
    text,
)

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree

__all__ = ["Event", "build_timeline", "enrich_entry", "parse_event", "status_summary"]

#: Failed attempts shown after one entry before the middle ones are summed up.
MAX_EVENTS_PER_ENTRY: Final = 6


@dataclass(frozen=True)
class Event:
    """A row of ``sys_journal_events`` (``event_json`` decoded)."""

    after_index: int | None
    appended_at: str | None
    event_type: str
    data: Mapping[str, Any]

    @property
    def message(self) -> str:
        """What happened, in one line."""
        msg = self.data.get("error_message")
        if self.event_type == "TransientError" or msg is not None:
            detail = [str(self.data["error_code"])] if "error_code" in self.data else []
            if self.data.get("restate_doc_error_code"):
                detail.append(str(self.data["restate_doc_error_code"]))
            suffix = f" ({', '.join(detail)})" if detail else ""
            return f"attempt failed: {first_line(msg, 160)}{suffix}"
        return self.event_type


def parse_event(row: Mapping[str, Any]) -> Event:
    """An :class:`Event` from a ``sys_journal_events`` row."""
    try:
        data = json.loads(row.get("event_json") or "{}")
    except ValueError:
        data = {}
    index = row.get("after_journal_entry_index")
    return Event(
        after_index=index if isinstance(index, int) else None,
        appended_at=row.get("appended_at"),
        event_type=str(row.get("event_type") or data.get("ty") or "event"),
        data=data if isinstance(data, dict) else {},
    )


def _target_text(target: object) -> str | None:
    """``Svc/handler`` or ``Obj/key/handler`` from Restate's ``InvocationTarget`` JSON."""
    if not isinstance(target, dict) or len(target) != 1:
        return None
    body = next(iter(target.values()))
    if not isinstance(body, dict) or "name" not in body:
        return None
    parts = [body["name"], body.get("key"), body.get("handler")]
    return "/".join(str(p) for p in parts if p is not None)


def _iso(millis: int) -> str:
    at = datetime.datetime.fromtimestamp(millis / 1000, datetime.UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


def enrich_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` with ``sleep_wakeup_at``, ``invoked_id`` and ``invoked_target`` filled from
    ``entry_lite_json`` when the columns are NULL (restate-server leaves them NULL for the
    journal entries of protocol v4+ and has them only in the JSON), and the JSON removed."""
    out = {k: v for k, v in entry.items() if k != "entry_lite_json"}
    try:
        lite = json.loads(entry.get("entry_lite_json") or "{}")
    except ValueError:
        return out
    command = lite.get("Command") if isinstance(lite, dict) else None
    if not isinstance(command, dict) or len(command) != 1:
        return out
    body = next(iter(command.values()))
    if not isinstance(body, dict):
        return out
    if out.get("sleep_wakeup_at") is None and isinstance(body.get("wake_up_time"), int):
        out["sleep_wakeup_at"] = _iso(body["wake_up_time"])
    if out.get("invoked_id") is None and isinstance(body.get("invocation_id"), str):
        out["invoked_id"] = body["invocation_id"]
    if out.get("invoked_target") is None:
        out["invoked_target"] = _target_text(body.get("invocation_target"))
    if isinstance(body.get("invoke_time"), int) and body["invoke_time"] > 0:
        out["invoke_at"] = _iso(body["invoke_time"])
    return out


def _clock(value: object) -> str:
    parsed = parse_time(value)
    return "" if parsed is None else f"{parsed:%H:%M:%S}.{parsed.microsecond // 1000:03d}"


def _entry_label(entry: Mapping[str, Any]) -> Text:
    label = text(f"#{entry.get('index')}", "bold")
    label.append(f"  {_clock(entry.get('appended_at'))}  ", style="dim")
    kind = str(entry.get("entry_type") or "?")
    label.append(kind, style="cyan" if kind.startswith("Command") else "")
    if entry.get("name"):
        label.append(f" [{entry['name']}]", style="bold")
    if entry.get("promise_name"):
        label.append(f" promise {entry['promise_name']!r}")
    if entry.get("sleep_wakeup_at"):
        label.append(f" until {format_time(entry['sleep_wakeup_at'])} UTC")
        label.append(f" ({relative(entry['sleep_wakeup_at'])})", style="dim")
    if entry.get("invoked_target") or entry.get("invoked_id"):
        label.append(" ─▶ ")
        label.append(str(entry.get("invoked_target") or "?"), style="bold")
        if entry.get("invoked_id"):
            label.append(f" {entry['invoked_id']}")
        if entry.get("invoke_at"):
            label.append(f" at {format_time(entry['invoke_at'])} UTC")
    if entry.get("completed") is False:
        label.append(" (waiting)", style="yellow")
    return label


def _event_label(event: Event) -> Text:
    label = text("✗ ", "red")
    label.append(f"{_clock(event.appended_at)}  ", style="dim")
    label.append(event.message, style="red")
    return label


def status_summary(inv: Mapping[str, Any]) -> Text:
    """Where the invocation stands: ``completed with success``, ``backing-off (retry 3 in
    2s)``, ``paused after 2 attempts``..."""
    status = str(inv.get("status") or "?")
    out = status_text(status)
    if status == "completed":
        if inv.get("completion_result") == "failure":
            out.append(" with failure", style="red")
            if inv.get("completion_failure"):
                out.append(f": {first_line(inv['completion_failure'], 160)}", style="red")
        elif inv.get("completion_result"):
            out.append(f" with {inv['completion_result']}")
        return out
    retries = inv.get("retry_count")
    if status == "backing-off":
        when = due(inv.get("next_retry_at")) or "due"
        out.append(f" (retried {retries} time(s), next retry {when})")
    elif status == "paused" and retries:
        out.append(f" after {retries} attempt(s): resume it with `undying invocations resume`")
    elif retries and int(retries) > 1:
        out.append(f" (attempt {retries})")
    return out


def build_timeline(
    inv: Mapping[str, Any],
    journal: Sequence[Mapping[str, Any]],
    events: Sequence[Event],
    *,
    hidden_entries: int = 0,
) -> Tree:
    """The timeline of ``inv`` from its journal entries (in index order) and events."""
    from rich.tree import Tree

    root_label = text(str(inv.get("invoked_by_target") or "Ingress"), "bold")
    if inv.get("invoked_by_id"):
        root_label.append(f" ({inv['invoked_by_id']})", style="dim")
    root_label.append(" ─▶ ")
    root_label.append(str(inv.get("target") or "?"), style="bold")
    root_label.append(f"  {inv.get('id')}")
    tree = Tree(root_label, guide_style="dim")
    if hidden_entries > 0:
        tree.add(text(f"… {hidden_entries} earlier entries not shown (--journal-limit)", "dim"))

    by_entry: dict[int, list[Event]] = {}
    loose: list[Event] = []
    known = {e.get("index") for e in journal}
    for event in events:
        if event.after_index in known and event.after_index is not None:
            by_entry.setdefault(event.after_index, []).append(event)
        else:
            loose.append(event)

    for entry in journal:
        node = tree.add(_entry_label(entry))
        index = entry.get("index")
        if isinstance(index, int):
            _add_events(node, by_entry.get(index, []))
    _add_events(tree, loose)
    tree.add(status_summary(inv))
    return tree


def _add_events(node: Tree, events: Sequence[Event]) -> None:
    if len(events) <= MAX_EVENTS_PER_ENTRY:
        for event in events:
            node.add(_event_label(event))
        return
    keep = MAX_EVENTS_PER_ENTRY // 2
    for event in events[:keep]:
        node.add(_event_label(event))
    node.add(text(f"… {len(events) - 2 * keep} more failed attempts …", "red"))
    for event in events[-keep:]:
        node.add(_event_label(event))
