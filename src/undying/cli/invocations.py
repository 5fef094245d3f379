"""``undying invocations``: list and describe invocations (the actions on them are in
:mod:`undying.cli.invocation_actions`)."""

from __future__ import annotations

from typing import Any

import click

from undying.cli import queries
from undying.cli.invocation_actions import ACTIONS
from undying.cli.options import Output, admin_url_option, connect, output_option
from undying.cli.render import (
    console,
    emit_json,
    first_line,
    format_time,
    key_values,
    relative,
    status_text,
    table,
    text,
)
from undying.cli.timeline import build_timeline, enrich_entry, parse_event, status_summary

__all__ = ["invocations"]

_JOURNAL_KEYS = (
    "index",
    "entry_type",
    "name",
    "completed",
    "invoked_id",
    "invoked_target",
    "sleep_wakeup_at",
    "promise_name",
    "appended_at",
)


@click.group()
def invocations() -> None:
    """List, describe, cancel, kill, pause, resume and purge invocations."""


for _action in ACTIONS:
    invocations.add_command(_action)


@invocations.command("list")
@click.option("--all", "-a", "show_all", is_flag=True, help="Include completed invocations.")
@click.option(
    "--service", "-s", "services", multiple=True, metavar="NAME", help="Only this service."
)
@click.option("--handler", "handlers", multiple=True, metavar="NAME", help="Only this handler.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(queries.PUBLIC_STATUSES),
    help="Only invocations in this status (repeatable; overrides the default filter).",
)
@click.option("--limit", "-n", type=click.IntRange(min=1), default=100, show_default=True)
@admin_url_option
@output_option
def list_(
    show_all: bool,
    services: tuple[str, ...],
    handlers: tuple[str, ...],
    statuses: tuple[str, ...],
    limit: int,
    admin_url: str | None,
    output: Output,
) -> None:
    """The newest invocations, completed ones only with --all (or --status completed).

    JSON: a list of objects with the sys_invocation columns id, target, target_service_name,
    target_service_key, target_handler_name, target_service_ty, status, created_at,
    modified_at, retry_count, next_retry_at, last_failure, completion_result,
    completion_failure, pinned_deployment_id, invoked_by_id, invoked_by_target,
    idempotency_key (null when not set).
    """
    admin = connect(admin_url)
    filters: dict[str, Any] = {
        "statuses": statuses,
        "services": services,
        "handlers": handlers,
        "include_completed": show_all,
    }
    rows = admin.query(queries.list_invocations(**filters, limit=limit))
    total_rows = admin.query(queries.count_invocations(**filters))
    total = int(total_rows[0].get("total", 0)) if total_rows else len(rows)
    if output == "json":
        emit_json([{c: row.get(c) for c in queries.INVOCATION_COLUMNS} for row in rows])
        return
    err = console(err=True)
    if not rows:
        hint = "" if show_all or statuses else " (completed ones are hidden: --all shows them)"
        err.print(text(f"No invocations{hint}."))
        return
    out = console()
    out.print(
        table(
            ["ID", "TARGET", "STATUS", "AGE", "RETRIES", "LAST FAILURE"],
            (_list_row(row) for row in rows),
            no_wrap=(0, 1, 2),
        )
    )
    hint = "" if show_all or statuses else "; completed ones are hidden (--all)"
    err.print(text(f"Showing {len(rows)}/{total} invocations{hint}."))


def _list_row(row: dict[str, Any]) -> list[Any]:
    status = status_text(row.get("status"))
    if row.get("status") == "completed" and row.get("completion_result") == "failure":
        status.append(" (failed)", style="red")
    failure = row.get("last_failure") or row.get("completion_failure")
    retries = row.get("retry_count")
    return [
        row.get("id"),
        row.get("target"),
        status,
        relative(row.get("created_at")).removesuffix(" ago"),
        "" if retries is None else str(retries),
        text(first_line(failure, 70), "red"),
    ]


@invocations.command()
@click.argument("invocation_id", metavar="ID", callback=lambda _c, _p, v: _checked(v))
@click.option(
    "--journal-limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show at most this many (the last) journal entries.",
)
@admin_url_option
@output_option
def describe(invocation_id: str, journal_limit: int, admin_url: str | None, output: Output) -> None:
    """Status, target, retries, last failure with its stack trace, and the journal as a
    timeline (entry names, wake-up times, callee ids, failed attempts).

    JSON: {"invocation": {sys_invocation columns}, "journal": [entries, oldest first],
    "events": [{"after_journal_entry_index", "appended_at", "event_type", "event"}]}.
    """
    admin = connect(admin_url)
    found = admin.query(queries.invocation_detail(invocation_id))
    if not found:
        raise click.ClickException(f"no invocation {invocation_id}")
    inv = found[0]
    rows = admin.query(queries.invocation_journal(invocation_id, journal_limit))
    journal = [enrich_entry(row) for row in reversed(rows)]
    event_rows = admin.query(queries.invocation_events(invocation_id))
    events = [parse_event(row) for row in event_rows]
    if output == "json":
        emit_json(
            {
                "invocation": inv,
                "journal": [{k: e.get(k) for k in _JOURNAL_KEYS} for e in journal],
                "events": [
                    {
                        "after_journal_entry_index": e.after_index,
                        "appended_at": e.appended_at,
                        "event_type": e.event_type,
                        "event": dict(e.data),
                    }
                    for e in events
                ],
            }
        )
        return
    out = console()
    out.print(key_values(_summary(inv)))
    failure = inv.get("last_failure") or inv.get("completion_failure")
    if failure:
        out.print()
        out.print(text(_failure_title(inv), "bold red"))
        out.print(text(str(failure).rstrip()), soft_wrap=True)
    out.print()
    size = inv.get("journal_size")
    hidden = int(size) - len(journal) if isinstance(size, int) and size > len(journal) else 0
    out.print(text("Journal", "bold"))
    out.print(build_timeline(inv, journal, events, hidden_entries=hidden))


def _checked(value: str) -> str:
    return queries.check_invocation_id(value)


def _summary(inv: dict[str, Any]) -> list[tuple[str, Any]]:
    kind = inv.get("target_service_ty")
    target = text(str(inv.get("target")), "bold")
    if kind:
        target.append(f"  ({kind})", style="dim")
    invoked_by = "ingress"
    if inv.get("invoked_by_target"):
        invoked_by = f"{inv['invoked_by_target']} {inv.get('invoked_by_id') or ''}".strip()
    deployment = None
    if inv.get("pinned_deployment_id"):
        deployment = text(str(inv["pinned_deployment_id"]))
        if inv.get("pinned_deployment_exists") is False:
            deployment.append("  (removed)", style="yellow")
    attempt = None
    if inv.get("last_start_at"):
        attempt = f"{format_time(inv['last_start_at'])} ({relative(inv['last_start_at'])})"
        if inv.get("last_attempt_server"):
            attempt += f" on {inv['last_attempt_server']}"
    return [
        ("ID", str(inv.get("id"))),
        ("Target", target),
        ("Status", status_summary(inv)),
        ("Retry count", None if inv.get("retry_count") is None else str(inv["retry_count"])),
        ("Next retry", _when(inv.get("next_retry_at"))),
        ("Created", _when(inv.get("created_at"))),
        ("Modified", _when(inv.get("modified_at"))),
        ("Completed", _when(inv.get("completed_at"))),
        ("Invoked by", invoked_by),
        ("Idempotency key", inv.get("idempotency_key")),
        ("Deployment", deployment),
        ("Last attempt", attempt),
        ("Journal size", None if inv.get("journal_size") is None else str(inv["journal_size"])),
    ]


def _when(value: object) -> str | None:
    if not value:
        return None
    return f"{format_time(value)} UTC ({relative(value)})"


def _failure_title(inv: dict[str, Any]) -> str:
    if not inv.get("last_failure"):
        return "Failure:"
    title = "Last failure"
    if inv.get("last_failure_error_code"):
        title += f" ({inv['last_failure_error_code']})"
    index = inv.get("last_failure_related_command_index")
    if index is not None:
        kind = inv.get("last_failure_related_command_type") or "command"
        name = inv.get("last_failure_related_command_name")
        title += f" in command index {index}, {kind}" + (f" [{name}]" if name else "")
    return title + ":"
