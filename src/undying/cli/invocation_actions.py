"""``undying invocations cancel|kill|purge|pause|resume``: one action on many invocations.

Each argument is an invocation id (``inv_…``) or a target: ``Service``, ``Service/handler`` or
``Object/key/handler``, standing for its invocations in a status the action applies to (as
``restate invocations cancel Long/go`` does). The CLI looks them up with SQL, shows them, asks
for confirmation (unless ``--yes``), then sends one ``PATCH /invocations/{id}/{action}`` per
invocation, with a progress bar when there are many. The exit code is 1 if any failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import click

from undying.cli import queries
from undying.cli.admin_client import AdminClient, path_segment
from undying.cli.options import (
    Output,
    admin_url_option,
    confirm,
    connect,
    output_option,
    yes_option,
)
from undying.cli.render import console, emit_json, status_text, table, text
from undying.errors import AdminRequestFailed

__all__ = ["ACTIONS", "PROGRESS_FROM", "Action"]

#: With this many invocations or more, a progress bar shows how far the action is.
PROGRESS_FROM: Final = 5
#: Most invocations one target argument stands for.
TARGET_LIMIT: Final = 10_000
_LOOKUP_CHUNK: Final = 500


@dataclass(frozen=True)
class Action:
    """One action of the admin API on an invocation."""

    name: str
    doing: str
    past: str
    help: str
    #: Statuses of the invocations a target argument selects.
    applies_to: tuple[str, ...]


_NOT_COMPLETED: Final = tuple(s for s in queries.PUBLIC_STATUSES if s != "completed")
_DEFINITIONS: Final = (
    Action(
        "cancel",
        "Cancelling",
        "Cancelled",
        "Cancel invocations: each one stops at its next await, runs its compensations and "
        "ends with a cancellation failure.",
        _NOT_COMPLETED,
    ),
    Action(
        "kill",
        "Killing",
        "Killed",
        "Kill invocations: they end at once, without running any more code.",
        _NOT_COMPLETED,
    ),
    Action(
        "purge",
        "Purging",
        "Purged",
        "Purge completed invocations: forget their result, journal and idempotency key.",
        ("completed",),
    ),
    Action(
        "pause",
        "Pausing",
        "Paused",
        "Pause running invocations (resume them later).",
        ("running", "backing-off"),
    ),
    Action(
        "resume",
        "Resuming",
        "Resumed",
        "Resume paused invocations (a backing-off one is retried at once).",
        ("paused", "backing-off", "suspended"),
    ),
)


@dataclass
class _Target:
    id: str
    target: str | None
    status: str | None


@dataclass
class _Outcome:
    target: _Target
    status: int | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.target.id,
            "target": self.target.target,
            "ok": self.error is None,
            "http_status": self.status,
            "message": self.error,
        }


def _resolve(admin: AdminClient, action: Action, args: Sequence[str]) -> list[_Target]:
    """The invocations ``args`` stand for, in order, each once."""
    ids = [a for a in args if a.startswith("inv_")]
    for value in ids:
        queries.check_invocation_id(value)
    known: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        for row in admin.query(queries.lookup_invocations(ids[start : start + _LOOKUP_CHUNK])):
            known[str(row["id"])] = row
    found: dict[str, _Target] = {}
    for arg in args:
        if arg.startswith("inv_"):
            row = known.get(arg, {})
            found.setdefault(arg, _Target(arg, row.get("target"), row.get("status")))
            continue
        if not arg.strip("/"):
            raise click.BadParameter(f"{arg!r} is neither an invocation id nor a target")
        sql = queries.target_invocations(
            arg.strip("/"), include_completed=action.name == "purge", limit=TARGET_LIMIT
        )
        rows = [r for r in admin.query(sql) if r.get("status") in action.applies_to]
        if not rows:
            console(err=True).print(text(f"No invocations of {arg} to {action.name}."))
        for row in rows:
            inv = str(row["id"])
            found.setdefault(inv, _Target(inv, row.get("target"), row.get("status")))
    return list(found.values())


def _apply(admin: AdminClient, action: Action, targets: Sequence[_Target]) -> list[_Outcome]:
    outcomes: list[_Outcome] = []

    def one(target: _Target) -> None:
        if target.status is None:
            outcomes.append(_Outcome(target, None, "no such invocation"))
            return
        path = f"/invocations/{path_segment(target.id)}/{action.name}"
        try:
            resp = admin.request("PATCH", path)
        except AdminRequestFailed as e:
            outcomes.append(_Outcome(target, e.status, f"{e.message} (HTTP {e.status})"))
        else:
            outcomes.append(_Outcome(target, resp.status, None))

    _with_progress(action.doing, targets, one)
    return outcomes


def _with_progress(what: str, items: Sequence[_Target], fn: Callable[[_Target], None]) -> None:
    if len(items) < PROGRESS_FROM:
        for item in items:
            fn(item)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    err = console(err=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task(f"{what} invocations", total=len(items))
        for item in items:
            fn(item)
            progress.advance(task)


def _make(action: Action) -> click.Command:
    @click.command(action.name, help=action.help)
    @click.argument("invocations", metavar="ID_OR_TARGET...", nargs=-1, required=True)
    @yes_option
    @admin_url_option
    @output_option
    def command(
        invocations: tuple[str, ...], yes: bool, admin_url: str | None, output: Output
    ) -> None:
        admin = connect(admin_url)
        targets = _resolve(admin, action, invocations)
        err = console(err=True)
        if not targets:
            if output == "json":
                emit_json([])
            return
        if not yes:
            err.print(
                table(
                    ["ID", "TARGET", "STATUS"],
                    (
                        [t.id, t.target or "", status_text(t.status) if t.status else "not found"]
                        for t in targets
                    ),
                    no_wrap=(0,),
                )
            )
        confirm(f"{action.name.capitalize()} {_count(len(targets))}?", yes=yes)
        outcomes = _apply(admin, action, targets)
        failed = [o for o in outcomes if o.error is not None]
        if output == "json":
            emit_json([o.to_json() for o in outcomes])
        else:
            _report(action, outcomes)
        if failed:
            click.get_current_context().exit(1)

    return command


def _report(action: Action, outcomes: Sequence[_Outcome]) -> None:
    """One line per invocation on stdout, the sum on stderr."""
    out = console()
    for o in outcomes:
        line = text("✓ " if o.error is None else "✗ ", "green" if o.error is None else "red")
        line.append(o.target.id)
        if o.target.target:
            line.append(f"  {o.target.target}", style="dim")
        line.append(f"  {action.past.lower()}" if o.error is None else f"  {o.error}")
        out.print(line)
    failed = sum(1 for o in outcomes if o.error is not None)
    done = len(outcomes) - failed
    if failed:
        summary = f"{action.past} {done} of {_count(len(outcomes))}; {failed} failed."
        console(err=True).print(text(summary, "red"))
    else:
        console(err=True).print(text(f"{action.past} {_count(done)}.", "green"))


def _count(n: int) -> str:
    return f"{n} invocation" + ("" if n == 1 else "s")


ACTIONS: Final = tuple(_make(a) for a in _DEFINITIONS)
