"""What the UI shows, read with SQL through the admin API's query engine.

Every page reads the same tables as ``POST /query`` (``sys_invocation``, ``sys_journal``,
``sys_journal_events``, ``state``, ``sys_promise``), so it shows exactly what a user's SQL or the
official CLI would. Values from the request (service names, keys, ids) only reach SQL as string
literals built by :func:`literal`; invocation ids are parsed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from undying.server.query import QueryEngine

__all__ = ["SINCE_CHOICES", "STATUS_FILTERS", "InvocationFilter", "UiData", "literal"]

#: The ``since`` filter: label and milliseconds back from now.
SINCE_CHOICES: Final[dict[str, tuple[str, int]]] = {
    "5m": ("last 5 minutes", 5 * 60_000),
    "15m": ("last 15 minutes", 15 * 60_000),
    "1h": ("last hour", 3_600_000),
    "24h": ("last 24 hours", 86_400_000),
    "7d": ("last 7 days", 7 * 86_400_000),
}

#: The ``status`` filter: label and SQL condition.
STATUS_FILTERS: Final[dict[str, tuple[str, str]]] = {
    "active": ("not completed", "status <> 'completed'"),
    "pending": ("pending", "status = 'pending'"),
    "scheduled": ("scheduled", "status = 'scheduled'"),
    "ready": ("ready", "status = 'ready'"),
    "running": ("running", "status = 'running'"),
    "backing-off": ("backing-off", "status = 'backing-off'"),
    "suspended": ("suspended", "status = 'suspended'"),
    "paused": ("paused", "status = 'paused'"),
    "completed": ("completed", "status = 'completed'"),
    "succeeded": (
        "completed: succeeded",
        "status = 'completed' AND completion_result = 'success'",
    ),
    "failed": ("completed: failed", "status = 'completed' AND completion_result = 'failure'"),
}

_LIST_COLUMNS: Final = (
    "id, target, target_service_name, target_service_key, target_handler_name, status, "
    "completion_result, retry_count, created_at, modified_at, next_retry_at, last_failure"
)

_DETAIL_COLUMNS: Final = (
    "id, target, target_service_name, target_service_key, target_handler_name, "
    "target_service_ty, idempotency_key, invoked_by, invoked_by_id, invoked_by_target, "
    "pinned_deployment_id, pinned_service_protocol_version, journal_size, "
    "journal_commands_size, created_at, modified_at, inboxed_at, scheduled_start_at, "
    "running_at, completed_at, completion_retention, journal_retention, "
    "suspended_waiting_for_completions, suspended_waiting_for_signals, retry_count, "
    "last_start_at, next_retry_at, last_attempt_deployment_id, last_attempt_server, "
    "last_failure, last_failure_error_code, last_failure_related_command_index, "
    "last_failure_related_command_name, last_failure_related_command_type, status, "
    "completion_result, completion_failure"
)

Row = dict[str, Any]


def literal(text: str) -> str:
    """``text`` as a SQL string literal (single quotes doubled; no escape sequences exist)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class InvocationFilter:
    """The filters of the invocations list; empty strings mean "any"."""

    service: str = ""
    key: str = ""
    status: str = ""
    since: str = ""
    limit: int = 100

    @classmethod
    def from_params(cls, params: dict[str, str]) -> InvocationFilter:
        """From query parameters; unknown status and since values are ignored."""
        status = params.get("status", "")
        since = params.get("since", "")
        try:
            limit = int(params.get("limit", "100"))
        except ValueError:
            limit = 100
        return cls(
            service=params.get("service", "").strip(),
            key=params.get("key", ""),
            status=status if status in STATUS_FILTERS else "",
            since=since if since in SINCE_CHOICES else "",
            limit=min(max(limit, 1), 1000),
        )

    def params(self) -> dict[str, str]:
        """The query parameters that give this filter back (defaults left out)."""
        out = {"service": self.service, "key": self.key, "status": self.status}
        out["since"] = self.since
        if self.limit != 100:
            out["limit"] = str(self.limit)
        return {k: v for k, v in out.items() if v}

    def where(self, now_ms: int) -> str:
        """The SQL condition (``TRUE`` when nothing is filtered)."""
        parts = []
        if self.service:
            parts.append(f"target_service_name = {literal(self.service)}")
        if self.key:
            parts.append(f"target_service_key = {literal(self.key)}")
        if self.status:
            parts.append(f"({STATUS_FILTERS[self.status][1]})")
        if self.since:
            cutoff = now_ms - SINCE_CHOICES[self.since][1]
            parts.append(f"created_at >= to_timestamp_millis({cutoff})")
        return " AND ".join(parts) or "TRUE"


class UiData:
    """The queries behind the pages."""

    def __init__(self, engine: QueryEngine) -> None:
        self._engine = engine

    async def rows(self, sql: str) -> list[Row]:
        """Run ``sql``; the rows as dicts (timestamps as aware datetimes). Raises QueryError."""
        table = await self._engine.execute(sql)
        rows: list[Row] = table.to_pylist()
        return rows

    # ---- overview ---------------------------------------------------------------------------

    async def counts(self) -> dict[str, dict[str, int]]:
        """Invocations per service and status (``{service: {status: n}}``)."""
        rows = await self.rows(
            "SELECT target_service_name AS service, status, count(*) AS n "
            "FROM sys_invocation GROUP BY target_service_name, status"
        )
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(str(r["service"]), {})[str(r["status"])] = int(r["n"])
        return out

    async def failing(self, limit: int = 10) -> list[Row]:
        """Invocations not completed whose last attempt failed, most recently changed first."""
        return await self.rows(
            f"SELECT {_LIST_COLUMNS} FROM sys_invocation "
            "WHERE status <> 'completed' AND last_failure IS NOT NULL "
            f"ORDER BY modified_at DESC LIMIT {int(limit)}"
        )

    # ---- invocations --------------------------------------------------------------------------

    async def invocations(self, f: InvocationFilter, now_ms: int) -> tuple[list[Row], int]:
        """The newest invocations matching ``f`` (at most ``f.limit``) and how many match."""
        rows = await self.rows(
            f"SELECT {_LIST_COLUMNS}, count(*) OVER () AS total FROM sys_invocation "
            f"WHERE {f.where(now_ms)} ORDER BY created_at DESC, id LIMIT {f.limit}"
        )
        total = int(rows[0]["total"]) if rows else 0
        return rows, total

    async def invocation(self, invocation_id: str) -> Row | None:
        """One invocation's ``sys_invocation`` row (``invocation_id`` must be a parsed id)."""
        rows = await self.rows(
            f"SELECT {_DETAIL_COLUMNS} FROM sys_invocation WHERE id = {literal(invocation_id)}"
        )
        return rows[0] if rows else None

    async def journal(self, invocation_id: str) -> list[Row]:
        """Its ``sys_journal`` rows in index order."""
        return await self.rows(
            "SELECT index, entry_type, name, invoked_id, invoked_target, sleep_wakeup_at, "
            "promise_name, entry_json, appended_at FROM sys_journal "
            f"WHERE id = {literal(invocation_id)} ORDER BY index"
        )

    async def events(self, invocation_id: str) -> list[Row]:
        """Its ``sys_journal_events`` rows (failed attempts) in time order."""
        return await self.rows(
            "SELECT after_journal_entry_index, appended_at, event_type, event_json "
            f"FROM sys_journal_events WHERE id = {literal(invocation_id)} ORDER BY appended_at"
        )

    # ---- keyed services ----------------------------------------------------------------------

    async def state_keys(self, service: str, limit: int = 500) -> list[Row]:
        """The keys of ``service`` that have state: entries and bytes per key."""
        return await self.rows(
            "SELECT service_key, count(*) AS entries, sum(value_length) AS bytes FROM state "
            f"WHERE service_name = {literal(service)} GROUP BY service_key "
            f"ORDER BY service_key LIMIT {int(limit)}"
        )

    async def state(self, service: str, key: str) -> list[Row]:
        """The state entries of one object or workflow key."""
        return await self.rows(
            "SELECT key, value_utf8, value, value_length FROM state "
            f"WHERE service_name = {literal(service)} AND service_key = {literal(key)} "
            "ORDER BY key"
        )

    async def promise_keys(self, service: str, limit: int = 500) -> list[Row]:
        """The workflow ids of ``service`` that have promises, with their counts."""
        return await self.rows(
            "SELECT service_key, count(*) AS promises, "
            "sum(CASE WHEN completed THEN 1 ELSE 0 END) AS completed FROM sys_promise "
            f"WHERE service_name = {literal(service)} GROUP BY service_key "
            f"ORDER BY service_key LIMIT {int(limit)}"
        )

    async def promises(self, service: str, key: str) -> list[Row]:
        """The promises of one workflow run."""
        return await self.rows(
            "SELECT key, completed, completion_success_value_utf8, completion_success_value, "
            "completion_failure FROM sys_promise "
            f"WHERE service_name = {literal(service)} AND service_key = {literal(key)} "
            "ORDER BY key"
        )

    async def runs(self, service: str, key: str) -> list[Row]:
        """The invocations of one object or workflow key, newest first."""
        return await self.rows(
            f"SELECT {_LIST_COLUMNS} FROM sys_invocation "
            f"WHERE target_service_name = {literal(service)} "
            f"AND target_service_key = {literal(key)} ORDER BY created_at DESC LIMIT 20"
        )
