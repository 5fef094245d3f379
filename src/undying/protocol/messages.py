"""Message type codes of the service protocol and their protobuf classes.

Type namespaces: ``0x0000-0x03FF`` control, ``0x0400-0x7FFF`` commands, ``0x8000-0xFBFF``
notifications, ``0xFC00-0xFFFF`` custom entries (not supported).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from google.protobuf.message import Message

from undying.protocol._pb import undying_protocol_pb2 as pb

__all__ = [
    "MESSAGE_CLASSES",
    "REQUESTED_ACK",
    "MessageType",
    "completion_type_for",
    "is_command",
    "is_notification",
    "pb",
]

#: Header flag bit 47 of the frame header, seen from the 16-bit flags field.
REQUESTED_ACK: Final = 0x8000


class MessageType(IntEnum):
    """Every message type code of protocol versions 5 to 7."""

    START = 0x0000
    SUSPENSION = 0x0001
    ERROR = 0x0002
    END = 0x0003
    COMMAND_ACK = 0x0004
    PROPOSE_RUN_COMPLETION = 0x0005
    AWAITING_ON = 0x0006
    PROPOSE_RUN_COMPLETION_ACK = 0x0007

    INPUT = 0x0400
    OUTPUT = 0x0401
    GET_LAZY_STATE = 0x0402
    SET_STATE = 0x0403
    CLEAR_STATE = 0x0404
    CLEAR_ALL_STATE = 0x0405
    GET_LAZY_STATE_KEYS = 0x0406
    GET_EAGER_STATE = 0x0407
    GET_EAGER_STATE_KEYS = 0x0408
    GET_PROMISE = 0x0409
    PEEK_PROMISE = 0x040A
    COMPLETE_PROMISE = 0x040B
    SLEEP = 0x040C
    CALL = 0x040D
    ONE_WAY_CALL = 0x040E
    SEND_SIGNAL = 0x0410
    RUN = 0x0411
    ATTACH_INVOCATION = 0x0412
    GET_INVOCATION_OUTPUT = 0x0413
    COMPLETE_AWAKEABLE = 0x0414

    GET_LAZY_STATE_COMPLETION = 0x8002
    GET_LAZY_STATE_KEYS_COMPLETION = 0x8006
    GET_PROMISE_COMPLETION = 0x8009
    PEEK_PROMISE_COMPLETION = 0x800A
    COMPLETE_PROMISE_COMPLETION = 0x800B
    SLEEP_COMPLETION = 0x800C
    CALL_COMPLETION = 0x800D
    CALL_INVOCATION_ID_COMPLETION = 0x800E
    RUN_COMPLETION = 0x8011
    ATTACH_INVOCATION_COMPLETION = 0x8012
    GET_INVOCATION_OUTPUT_COMPLETION = 0x8013
    SIGNAL = 0xFBFF


MESSAGE_CLASSES: Final[dict[int, type[Message]]] = {
    MessageType.START: pb.StartMessage,
    MessageType.SUSPENSION: pb.SuspensionMessage,
    MessageType.ERROR: pb.ErrorMessage,
    MessageType.END: pb.EndMessage,
    MessageType.COMMAND_ACK: pb.CommandAckMessage,
    MessageType.PROPOSE_RUN_COMPLETION: pb.ProposeRunCompletionMessage,
    MessageType.AWAITING_ON: pb.AwaitingOnMessage,
    MessageType.PROPOSE_RUN_COMPLETION_ACK: pb.ProposeRunCompletionAckMessage,
    MessageType.INPUT: pb.InputCommandMessage,
    MessageType.OUTPUT: pb.OutputCommandMessage,
    MessageType.GET_LAZY_STATE: pb.GetLazyStateCommandMessage,
    MessageType.SET_STATE: pb.SetStateCommandMessage,
    MessageType.CLEAR_STATE: pb.ClearStateCommandMessage,
    MessageType.CLEAR_ALL_STATE: pb.ClearAllStateCommandMessage,
    MessageType.GET_LAZY_STATE_KEYS: pb.GetLazyStateKeysCommandMessage,
    MessageType.GET_EAGER_STATE: pb.GetEagerStateCommandMessage,
    MessageType.GET_EAGER_STATE_KEYS: pb.GetEagerStateKeysCommandMessage,
    MessageType.GET_PROMISE: pb.GetPromiseCommandMessage,
    MessageType.PEEK_PROMISE: pb.PeekPromiseCommandMessage,
    MessageType.COMPLETE_PROMISE: pb.CompletePromiseCommandMessage,
    MessageType.SLEEP: pb.SleepCommandMessage,
    MessageType.CALL: pb.CallCommandMessage,
    MessageType.ONE_WAY_CALL: pb.OneWayCallCommandMessage,
    MessageType.SEND_SIGNAL: pb.SendSignalCommandMessage,
    MessageType.RUN: pb.RunCommandMessage,
    MessageType.ATTACH_INVOCATION: pb.AttachInvocationCommandMessage,
    MessageType.GET_INVOCATION_OUTPUT: pb.GetInvocationOutputCommandMessage,
    MessageType.COMPLETE_AWAKEABLE: pb.CompleteAwakeableCommandMessage,
    **{
        code: pb.Notification
        for code in (
            MessageType.GET_LAZY_STATE_COMPLETION,
            MessageType.GET_LAZY_STATE_KEYS_COMPLETION,
            MessageType.GET_PROMISE_COMPLETION,
            MessageType.PEEK_PROMISE_COMPLETION,
            MessageType.COMPLETE_PROMISE_COMPLETION,
            MessageType.SLEEP_COMPLETION,
            MessageType.CALL_COMPLETION,
            MessageType.CALL_INVOCATION_ID_COMPLETION,
            MessageType.RUN_COMPLETION,
            MessageType.ATTACH_INVOCATION_COMPLETION,
            MessageType.GET_INVOCATION_OUTPUT_COMPLETION,
            MessageType.SIGNAL,
        )
    },
}

_COMPLETIONS: Final[dict[int, int]] = {
    MessageType.GET_LAZY_STATE: MessageType.GET_LAZY_STATE_COMPLETION,
    MessageType.GET_LAZY_STATE_KEYS: MessageType.GET_LAZY_STATE_KEYS_COMPLETION,
    MessageType.GET_PROMISE: MessageType.GET_PROMISE_COMPLETION,
    MessageType.PEEK_PROMISE: MessageType.PEEK_PROMISE_COMPLETION,
    MessageType.COMPLETE_PROMISE: MessageType.COMPLETE_PROMISE_COMPLETION,
    MessageType.SLEEP: MessageType.SLEEP_COMPLETION,
    MessageType.CALL: MessageType.CALL_COMPLETION,
    MessageType.RUN: MessageType.RUN_COMPLETION,
    MessageType.ATTACH_INVOCATION: MessageType.ATTACH_INVOCATION_COMPLETION,
    MessageType.GET_INVOCATION_OUTPUT: MessageType.GET_INVOCATION_OUTPUT_COMPLETION,
}


def is_command(code: int) -> bool:
    """Whether ``code`` is in the command range."""
    return 0x0400 <= code < 0x8000


def is_notification(code: int) -> bool:
    """Whether ``code`` is in the notification range."""
    return 0x8000 <= code < 0xFC00


def completion_type_for(command: int) -> int | None:
    """The notification type that completes ``command`` (its result notification), if any."""
    return _COMPLETIONS.get(command)
