"""The SQL tables of the admin ``/query`` endpoint: names, columns and Arrow types.

Column names, order and types follow Restate's introspection tables (``LargeUtf8`` strings,
``LargeBinary`` values, millisecond timestamps in UTC, millisecond durations). All columns are
nullable except ``sys_invocation.status``. Tables undying has no data for yet (the vqueue and
limits machinery) exist with their columns and no rows, so that schema probes and ``DESCRIBE``
answer as Restate does.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["TABLE_SCHEMAS", "table_schema"]

_S: Final = pa.large_string()
_B: Final = pa.large_binary()
_U64: Final = pa.uint64()
_U32: Final = pa.uint32()
_BOOL: Final = pa.bool_()
_TS: Final = pa.timestamp("ms", tz="+00:00")
_DUR: Final = pa.duration("ms")
_LU32: Final = pa.list_(pa.uint32())
_LS: Final = pa.list_(pa.large_string())


def _schema(spec: str, **types: Any) -> Any:
    """A schema from a list of column names; ``types`` overrides the default (``LargeUtf8``).

    A name ending in ``!`` is not nullable.
    """
    fields = []
    for raw in spec.split():
        name = raw.rstrip("!")
        fields.append(pa.field(name, types.get(name, _S), nullable=not raw.endswith("!")))
    return pa.schema(fields)


_INVOCATION_STATUS_TYPES: Final[dict[str, Any]] = {
    "partition_key": _U64,
    "pinned_service_protocol_version": _U32,
    "journal_size": _U32,
    "journal_commands_size": _U32,
    "created_at": _TS,
    "modified_at": _TS,
    "inboxed_at": _TS,
    "scheduled_at": _TS,
    "scheduled_start_at": _TS,
    "running_at": _TS,
    "completed_at": _TS,
    "completion_retention": _DUR,
    "journal_retention": _DUR,
    "suspended_waiting_for_completions": _LU32,
    "suspended_waiting_for_signals": _LU32,
}

_INVOCATION_STATE_TYPES: Final[dict[str, Any]] = {
    "partition_key": _U64,
    "in_flight": _BOOL,
    "retry_count": _U64,
    "last_start_at": _TS,
    "next_retry_at": _TS,
    "last_failure_related_command_index": _U64,
    "last_failure_related_entry_index": _U64,
}

_VQUEUE_DURATIONS: Final = dict.fromkeys(
    [
        "invoker_concurrency_block_duration",
        "throttling_rules_block_duration",
        "invoker_throttling_block_duration",
        "invoker_memory_block_duration",
        "concurrency_rules_block_duration",
        "lock_block_duration",
        "deployment_concurrency_block_duration",
        "avg_queue_duration",
        "avg_inbox_duration",
        "avg_run_duration",
        "avg_suspension_duration",
        "avg_end_to_end_duration",
        "avg_blocked_on_concurrency_rules",
        "avg_blocked_on_invoker_concurrency",
        "avg_blocked_on_invoker_throttling",
        "avg_blocked_on_lock",
    ],
    _DUR,
)

_VQUEUE_ENTRY_TYPES: Final[dict[str, Any]] = {
    "partition_key": _U64,
    "has_lock": _BOOL,
    "next_at": _TS,
    "run_at": _TS,
    "sequence_number": _U64,
    "created_at": _TS,
    "transitioned_at": _TS,
    "num_attempts": _U32,
    "num_errors": _U32,
    "num_pauses": _U32,
    "num_suspensions": _U32,
    "num_yields": _U32,
    "first_attempt_at": _TS,
    "latest_attempt_at": _TS,
    "first_runnable_at": _TS,
    "needed_memory": _U64,
    "retry_attempts": _U32,
    "retry_count_since_last_stored_command": _U32,
    **{
        f"{prefix}_{what}": _DUR
        for prefix in ("latest_attempt_blocked_on", "total_blocked_on")
        for what in (
            "invoker_concurrency",
            "throttling_rules",
            "invoker_throttling",
            "invoker_memory",
            "concurrency_rules",
            "lock",
            "deployment_concurrency",
        )
    },
}

#: Every table, in Restate's column order.
TABLE_SCHEMAS: Final[dict[str, Any]] = {
    "state": _schema(
        "partition_key scope service_name service_key key key_length value_utf8 value value_length",
        partition_key=_U64,
        key_length=_U64,
        value=_B,
        value_length=_U64,
    ),
    "sys_deployment": _schema(
        "id ty endpoint created_at min_service_protocol_version max_service_protocol_version "
        "services",
        created_at=_TS,
        min_service_protocol_version=_U32,
        max_service_protocol_version=_U32,
        services=_LS,
    ),
    "sys_inbox": _schema(
        "partition_key service_name service_key id sequence_number created_at",
        partition_key=_U64,
        sequence_number=_U64,
        created_at=_TS,
    ),
    "sys_invocation": _schema(
        "id vqueue_id target target_service_name target_service_key target_handler_name "
        "target_service_ty scope limit_key idempotency_key invoked_by invoked_by_service_name "
        "invoked_by_id invoked_by_subscription_id invoked_by_target restarted_from "
        "pinned_deployment_id pinned_service_protocol_version trace_id journal_size "
        "journal_commands_size created_at created_using_restate_version modified_at "
        "inboxed_at scheduled_at scheduled_start_at running_at completed_at "
        "completion_retention journal_retention suspended_waiting_for_completions "
        "suspended_waiting_for_signals suspended_waiting_future_json retry_count "
        "last_start_at next_retry_at last_attempt_deployment_id last_attempt_server "
        "last_failure last_failure_error_code last_failure_related_entry_index "
        "last_failure_related_entry_name last_failure_related_entry_type "
        "last_failure_related_command_index last_failure_related_command_name "
        "last_failure_related_command_type last_awaiting_on_future_json status! "
        "completion_result completion_failure",
        **(_INVOCATION_STATUS_TYPES | _INVOCATION_STATE_TYPES),
    ),
    "sys_invocation_state": _schema(
        "partition_key id in_flight retry_count last_start_at last_attempt_deployment_id "
        "last_attempt_server next_retry_at last_failure last_failure_error_code "
        "last_failure_related_command_index last_failure_related_command_name "
        "last_failure_related_command_type last_failure_related_entry_index "
        "last_failure_related_entry_name last_failure_related_entry_type "
        "last_awaiting_on_future_json",
        **_INVOCATION_STATE_TYPES,
    ),
    "sys_invocation_status": _schema(
        "partition_key id vqueue_id status completion_result completion_failure target "
        "target_service_name target_service_key target_handler_name target_service_ty scope "
        "limit_key idempotency_key invoked_by invoked_by_id invoked_by_subscription_id "
        "invoked_by_service_name invoked_by_target restarted_from pinned_deployment_id "
        "pinned_service_protocol_version trace_id journal_size journal_commands_size "
        "created_at created_using_restate_version modified_at inboxed_at scheduled_at "
        "scheduled_start_at running_at completed_at completion_retention journal_retention "
        "suspended_waiting_for_completions suspended_waiting_for_signals "
        "suspended_waiting_future_json",
        **_INVOCATION_STATUS_TYPES,
    ),
    "sys_journal": _schema(
        "partition_key id index entry_type name completed invoked_id invoked_target "
        "sleep_wakeup_at promise_name raw raw_length version entry_json entry_lite_json "
        "appended_at",
        partition_key=_U64,
        index=_U32,
        completed=_BOOL,
        sleep_wakeup_at=_TS,
        raw=_B,
        raw_length=_U64,
        version=_U32,
        appended_at=_TS,
    ),
    "sys_journal_events": _schema(
        "partition_key id after_journal_entry_index appended_at event_type event_json",
        partition_key=_U64,
        after_journal_entry_index=_U32,
        appended_at=_TS,
    ),
    "sys_keyed_service_status": _schema(
        "partition_key service_name service_key invocation_id", partition_key=_U64
    ),
    "sys_locks": _schema(
        "partition_key scope lock_name acquired_at acquired_by",
        partition_key=_U64,
        acquired_at=_TS,
    ),
    "sys_promise": _schema(
        "partition_key scope service_name service_key key completed completion_success_value "
        "completion_success_value_utf8 completion_failure",
        partition_key=_U64,
        completed=_BOOL,
        completion_success_value=_B,
    ),
    "sys_rules": _schema(
        "pattern concurrency description disabled version last_modified",
        concurrency=_U32,
        disabled=_BOOL,
        version=_U32,
        last_modified=_TS,
    ),
    "sys_scheduler": _schema(
        "partition_key id num_inbox status head_entry_id scheduled_at blocked_on "
        "blocked_on_json invoker_concurrency_block_duration throttling_rules_block_duration "
        "invoker_throttling_block_duration invoker_memory_block_duration "
        "concurrency_rules_block_duration lock_block_duration "
        "deployment_concurrency_block_duration",
        partition_key=_U64,
        num_inbox=_U64,
        scheduled_at=_TS,
        **_VQUEUE_DURATIONS,
    ),
    "sys_service": _schema("name revision public ty deployment_id", revision=_U64, public=_BOOL),
    "sys_user_limits": _schema(
        "partition_key scope l1 l2 level usage concurrency_limit rule_pattern available "
        "num_waiters",
        partition_key=_U64,
        usage=_U32,
        concurrency_limit=_U32,
        available=_U32,
        num_waiters=_U64,
    ),
    "sys_vqueue_entry_status": _schema(
        "partition_key entry_id vqueue_id stage status has_lock next_at sequence_number "
        "entry_kind created_at transitioned_at num_attempts num_errors num_pauses "
        "num_suspensions num_yields first_attempt_at latest_attempt_at first_runnable_at "
        "deployment needed_memory retry_attempts retry_count_since_last_stored_command "
        "latest_attempt_blocked_on_invoker_concurrency "
        "latest_attempt_blocked_on_throttling_rules "
        "latest_attempt_blocked_on_invoker_throttling latest_attempt_blocked_on_invoker_memory "
        "latest_attempt_blocked_on_concurrency_rules latest_attempt_blocked_on_lock "
        "latest_attempt_blocked_on_deployment_concurrency "
        "total_blocked_on_invoker_concurrency total_blocked_on_throttling_rules "
        "total_blocked_on_invoker_throttling total_blocked_on_invoker_memory "
        "total_blocked_on_concurrency_rules total_blocked_on_lock "
        "total_blocked_on_deployment_concurrency",
        **_VQUEUE_ENTRY_TYPES,
    ),
    "sys_vqueue_meta": _schema(
        "partition_key id is_active queue_is_paused service_name scope limit_key lock_name "
        "created_at last_enqueued_at last_start_at last_attempt_at last_finish_at "
        "avg_queue_duration avg_inbox_duration avg_run_duration avg_suspension_duration "
        "avg_end_to_end_duration avg_blocked_on_concurrency_rules "
        "avg_blocked_on_invoker_concurrency avg_blocked_on_invoker_throttling "
        "avg_blocked_on_lock num_inbox num_running num_suspended num_paused num_finished",
        partition_key=_U64,
        is_active=_BOOL,
        queue_is_paused=_BOOL,
        created_at=_TS,
        last_enqueued_at=_TS,
        last_start_at=_TS,
        last_attempt_at=_TS,
        last_finish_at=_TS,
        num_inbox=_U64,
        num_running=_U64,
        num_suspended=_U64,
        num_paused=_U64,
        num_finished=_U64,
        **_VQUEUE_DURATIONS,
    ),
    "sys_vqueues": _schema(
        "partition_key id stage status has_lock run_at sequence_number entry_id entry_kind "
        "created_at transitioned_at num_attempts num_errors num_pauses num_suspensions "
        "num_yields first_attempt_at latest_attempt_at first_runnable_at deployment",
        **_VQUEUE_ENTRY_TYPES,
    ),
}


def table_schema(name: str) -> Any:
    """The Arrow schema of table ``name`` (KeyError if there is no such table)."""
    return TABLE_SCHEMAS[name]
