"""Building notification payloads (all notifications share one protobuf layout)."""

from __future__ import annotations

from typing import Final

from undying.protocol.messages import pb
from undying.server.partition.records import Result

__all__ = ["notification", "result_notification"]

_VOID: Final = pb.Void()


def notification(
    *,
    completion_id: int | None = None,
    signal_id: int | None = None,
    signal_name: str | None = None,
    value: bytes | None = None,
    failure: tuple[int, str] | None = None,
    void: bool = False,
    state_keys: list[bytes] | None = None,
    invocation_id: str | None = None,
) -> bytes:
    """The payload of a notification with one id and one result."""
    n = pb.Notification()
    if completion_id is not None:
        n.completion_id = completion_id
    elif signal_id is not None:
        n.signal_id = signal_id
    elif signal_name is not None:
        n.signal_name = signal_name
    if value is not None:
        n.value.content = value
    elif failure is not None:
        n.failure.code, n.failure.message = failure
    elif state_keys is not None:
        n.state_keys.keys.extend(state_keys)
    elif invocation_id is not None:
        n.invocation_id = invocation_id
    elif void:
        n.void.CopyFrom(_VOID)
    return n.SerializeToString()


def result_notification(
    result: Result | None,
    *,
    completion_id: int | None = None,
    signal_id: int | None = None,
    signal_name: str | None = None,
) -> bytes:
    """A notification carrying ``result``: value, failure, or void when None."""
    if result is None:
        return notification(
            completion_id=completion_id, signal_id=signal_id, signal_name=signal_name, void=True
        )
    if result.value is not None:
        return notification(
            completion_id=completion_id,
            signal_id=signal_id,
            signal_name=signal_name,
            value=result.value,
        )
    return notification(
        completion_id=completion_id,
        signal_id=signal_id,
        signal_name=signal_name,
        failure=(result.code, result.message),
    )
