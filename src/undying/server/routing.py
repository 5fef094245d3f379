"""How invocations get their ids: keyed targets and idempotent or workflow invocations have
deterministic ids (so a repeat finds the same invocation), everything else a fresh one.
The partition key inside the id routes it to its partition."""

from __future__ import annotations

from undying.protocol.ids import InvocationId, partition_key_for

__all__ = ["invocation_id_for", "workflow_run_id"]


def workflow_run_id(service: str, key: str) -> InvocationId:
    """The id of a workflow's run invocation: one per workflow id."""
    return InvocationId.deterministic(partition_key_for(service, key), "wf", service, key)


def invocation_id_for(
    service: str,
    handler: str,
    key: str | None,
    *,
    idempotency_key: str | None = None,
    workflow_run: bool = False,
) -> InvocationId:
    """The id of a new invocation of ``service/[key/]handler``."""
    pk = partition_key_for(service, key) if key is not None else None
    if idempotency_key is not None:
        if pk is None:
            pk = partition_key_for(service, handler, idempotency_key)
        return InvocationId.deterministic(pk, "idem", service, key or "", handler, idempotency_key)
    if workflow_run and key is not None:
        return workflow_run_id(service, key)
    return InvocationId.new(pk)
