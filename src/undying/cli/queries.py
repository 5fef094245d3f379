"""The SQL the CLI sends to ``POST /query``, built in one place.

The columns and tables are Restate's (``sys_invocation``, ``sys_journal``,
``sys_journal_events``, ``state``...), so the same queries work against undying and
restate-server. Values are quoted with :func:`literal`; invocation ids are checked first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

import click

from undying.protocol.statuses import INVOCATION_STATUSES

__all__ = [
    "INVOCATION_COLUMNS",
    "PUBLIC_STATUSES",
    "check_invocation_id",
    "count_invocations",
    "deployment_load",
    "invocation_detail",
    "invocation_events",
    "invocation_journal",
    "list_invocations",
    "literal",
    "lookup_invocations",
    "object_state",
    "service_status",
    "target_invocations",
]

#: ``sys_invocation.status`` values.
PUBLIC_STATUSES: Final = INVOCATION_STATUSES
_INVOCATION_ID: Final = re.compile(r"^inv_[0-9A-Za-z]{8,}$")

#: The columns of an invocation in listings (``inv`` is ``sys_invocation``).
INVOCATION_COLUMNS: Final = (
    "id",
    "target",
    "target_service_name",
    "target_service_key",
    "target_handler_name",
    "target_service_ty",
    "status",
    "created_at",
    "modified_at",
    "retry_count",
    "next_retry_at",
    "last_failure",
    "completion_result",
    "completion_failure",
    "pinned_deployment_id",
    "invoked_by_id",
    "invoked_by_target",
    "idempotency_key",
)
#: ... and the further ones ``invocations describe`` shows.
_DETAIL_COLUMNS: Final = (
    "scheduled_at",
    "running_at",
    "completed_at",
    "last_start_at",
    "last_attempt_deployment_id",
    "last_attempt_server",
    "last_failure_error_code",
    "last_failure_related_command_index",
    "last_failure_related_command_name",
    "last_failure_related_command_type",
    "journal_size",
    "trace_id",
)
_JOURNAL_COLUMNS: Final = (
    "index",
    "entry_type",
    "name",
    "completed",
    "invoked_id",
    "invoked_target",
    "sleep_wakeup_at",
    "promise_name",
    "appended_at",
    "entry_lite_json",
)


def literal(value: str) -> str:
    """``value`` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def check_invocation_id(value: str) -> str:
    """``value`` if it looks like an invocation id (``inv_…``), else a usage error."""
    if not _INVOCATION_ID.match(value):
        raise click.BadParameter(f"{value!r} is not an invocation id (inv_…)")
    return value


def _select(columns: Iterable[str], prefix: str) -> str:
    return ", ".join(f"{prefix}.{c}" for c in columns)


def _invocation_filter(
    *,
    statuses: Sequence[str],
    services: Sequence[str],
    handlers: Sequence[str],
    include_completed: bool,
) -> str:
    clauses = []
    if statuses:
        clauses.append(f"inv.status IN ({', '.join(literal(s) for s in statuses)})")
    elif not include_completed:
        clauses.append("inv.status != 'completed'")
    if services:
        clauses.append(f"inv.target_service_name IN ({', '.join(literal(s) for s in services)})")
    if handlers:
        clauses.append(f"inv.target_handler_name IN ({', '.join(literal(h) for h in handlers)})")
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def list_invocations(
    *,
    statuses: Sequence[str],
    services: Sequence[str],
    handlers: Sequence[str] = (),
    include_completed: bool,
    limit: int,
) -> str:
    """The newest ``limit`` invocations matching the filters."""
    where = _invocation_filter(
        statuses=statuses,
        services=services,
        handlers=handlers,
        include_completed=include_completed,
    )
    return (
        f"SELECT {_select(INVOCATION_COLUMNS, 'inv')} FROM sys_invocation inv {where} "
        f"ORDER BY inv.created_at DESC, inv.id LIMIT {int(limit)}"
    )


def count_invocations(
    *,
    statuses: Sequence[str],
    services: Sequence[str],
    handlers: Sequence[str] = (),
    include_completed: bool,
) -> str:
    """How many invocations match the filters (column ``total``)."""
    where = _invocation_filter(
        statuses=statuses,
        services=services,
        handlers=handlers,
        include_completed=include_completed,
    )
    return f"SELECT COUNT(1) AS total FROM sys_invocation inv {where}"


def invocation_detail(invocation_id: str) -> str:
    """One invocation with every column ``describe`` shows, and whether its deployment exists."""
    columns = _select((*INVOCATION_COLUMNS, *_DETAIL_COLUMNS), "inv")
    return (
        f"SELECT {columns}, dp.id IS NOT NULL AS pinned_deployment_exists "
        "FROM sys_invocation inv LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id "
        f"WHERE inv.id = {literal(invocation_id)}"
    )


def invocation_journal(invocation_id: str, limit: int) -> str:
    """The last ``limit`` journal entries of an invocation, newest first."""
    return (
        f"SELECT {_select(_JOURNAL_COLUMNS, 'sj')} FROM sys_journal sj "
        f"WHERE sj.id = {literal(invocation_id)} ORDER BY sj.index DESC LIMIT {int(limit)}"
    )


def invocation_events(invocation_id: str) -> str:
    """The journal events (failed attempts...) of an invocation, oldest first."""
    return (
        "SELECT after_journal_entry_index, appended_at, event_type, event_json "
        f"FROM sys_journal_events WHERE id = {literal(invocation_id)} ORDER BY appended_at"
    )


def lookup_invocations(ids: Sequence[str]) -> str:
    """Target and status of the given invocations."""
    listed = ", ".join(literal(i) for i in ids)
    return f"SELECT id, target, status FROM sys_invocation WHERE id IN ({listed})"


def target_invocations(target: str, *, include_completed: bool, limit: int) -> str:
    """Invocations of a service (``Svc``), a handler (``Svc/handler``) or an object key's
    handler (``Obj/key/handler``), as ``restate invocations cancel TARGET`` finds them."""
    parts = target.split("/")
    if len(parts) == 1:
        clause = f"target_service_name = {literal(parts[0])}"
    elif len(parts) == 2:
        clause = (
            f"target_service_name = {literal(parts[0])} "
            f"AND target_handler_name = {literal(parts[1])}"
        )
    else:
        clause = f"target = {literal(target)}"
    status = "" if include_completed else " AND status != 'completed'"
    return (
        f"SELECT id, target, status FROM sys_invocation WHERE {clause}{status} "
        f"ORDER BY created_at, id LIMIT {int(limit)}"
    )


def service_status(services: Sequence[str]) -> str:
    """Invocations per service, handler and status, with the oldest of each group."""
    where = ""
    if services:
        where = f"WHERE target_service_name IN ({', '.join(literal(s) for s in services)}) "
    return (
        "SELECT target_service_name, target_handler_name, status, COUNT(1) AS num_invocations, "
        "MIN(created_at) AS oldest_at, FIRST_VALUE(id ORDER BY created_at ASC) AS "
        f"oldest_invocation FROM sys_invocation {where}"
        "GROUP BY target_service_name, target_handler_name, status "
        "ORDER BY target_service_name, target_handler_name, status"
    )


def deployment_load() -> str:
    """Invocations not completed, per pinned deployment."""
    return (
        "SELECT pinned_deployment_id, COUNT(1) AS num_invocations FROM sys_invocation_status "
        "WHERE status != 'completed' AND pinned_deployment_id IS NOT NULL "
        "GROUP BY pinned_deployment_id"
    )


def object_state(service: str, key: str) -> str:
    """The K/V state of one virtual object or workflow key (values hex-encoded)."""
    return (
        f"SELECT key, value FROM state WHERE service_name = {literal(service)} "
        f"AND service_key = {literal(key)} ORDER BY key"
    )
