from __future__ import annotations

import pytest

from undying.errors import ProtocolViolation
from undying.protocol.framing import Frame, FrameDecoder, encode_frame, encode_message
from undying.protocol.messages import MessageType, pb


def test_known_byte_layouts() -> None:
    # From the reference captures (protocol.md section 4).
    assert encode_frame(MessageType.END, b"") == bytes.fromhex("0003000000000000")
    out = pb.OutputCommandMessage(value=pb.Value(content=b'"hi"'))
    assert encode_message(MessageType.OUTPUT, out) == bytes.fromhex(
        "040100000000000872060a0422686922"
    )
    sleep = pb.SleepCommandMessage(wake_up_time=1795496346405, result_completion_id=1)
    assert encode_message(MessageType.SLEEP, sleep) == bytes.fromhex(
        "040c00000000000908a586b0dfa0345801"
    )
    susp = pb.SuspensionMessage(waiting_completions=[1], waiting_signals=[1])
    assert encode_message(MessageType.SUSPENSION, susp) == bytes.fromhex(
        "00010000000000060a0101120101"
    )
    sig = pb.Notification(signal_id=1, void=pb.Void())
    assert encode_message(MessageType.SIGNAL, sig) == bytes.fromhex("fbff00000000000410012200")


def test_decoder_handles_any_chunking() -> None:
    frames = [
        encode_frame(MessageType.START, b"\x01\x02\x03"),
        encode_frame(MessageType.END, b""),
        encode_frame(MessageType.PROPOSE_RUN_COMPLETION, b"\x08\x01r\x0242", flags=0x8000),
    ]
    data = b"".join(frames)
    for step in range(1, len(data) + 1):
        decoder = FrameDecoder()
        got: list[Frame] = []
        for i in range(0, len(data), step):
            got.extend(decoder.feed(data[i : i + step]))
        assert got == [
            Frame(0x0000, 0, b"\x01\x02\x03"),
            Frame(0x0003, 0, b""),
            Frame(0x0005, 0x8000, b"\x08\x01r\x0242"),
        ]
        assert decoder.pending == 0


def test_oversized_message_is_a_violation() -> None:
    decoder = FrameDecoder(max_message_size=10)
    with pytest.raises(ProtocolViolation):
        decoder.feed(encode_frame(MessageType.INPUT, b"x" * 11))
