"""Recorded exchanges between restate-server and the reference Python SDK, replayed through ours.

The fixtures in ``traces/`` are the decoded traces of ``/work/shared/reference/traces/`` (one JSON
file per trace; messages in protobuf text format, exactly as decoded there, in the order of the
captured events). Each attempt is replayed through the ASGI endpoint of an app whose handlers do
what the reference's handlers did: the runtime's messages go in (in bidi mode only once our SDK
has sent what the reference had sent before them), and what our SDK sends must match what the
reference SDK sent.

What is compared, for every attempt: the HTTP status (200) and the echoed content type; the
SDK's messages one by one, in order: type code, header flags, and every field, except

- ``SleepCommand.wake_up_time`` and ``OneWayCallCommand.invoke_time``: absolute times, which
  must instead be the moment of the call plus the handler's delay (``relative_ms``);
- the order of the ids in a ``SuspensionMessage``: they are sets (the reference lists them in
  hash order);
- ``ErrorMessage.message`` and ``stacktrace``: SDK-specific text. Of the optional fields, those the
  reference set are compared, except ``related_command_type`` of a journal mismatch (570): the
  reference names there the command the handler attempted; ours leaves it unset.

The ``x-restate-server`` header names each SDK and is not compared. The reference's
``SignalNotificationMessage`` fields ``idx``/``name`` are ``signal_id``/``signal_name`` in our
protobuf schema (same field numbers).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from google.protobuf.message import Message

import undying
from undying import Context, ObjectContext, RunOptions, TerminalError
from undying.protocol.framing import FrameDecoder, encode_message
from undying.protocol.messages import MESSAGE_CLASSES, MessageType, pb

TRACES = Path(__file__).parent / "traces"
CONTENT_TYPE = "application/vnd.restate.invocation.v6"

# -- handlers equivalent to the reference's --------------------------------------------------------

greeter = undying.Service("Greeter")
adv = undying.Service("Adv")
counter = undying.VirtualObject("Counter")
resolver = undying.VirtualObject("Resolver")


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return f"Hello {name}"


@greeter.handler()
async def sleepy(ctx: Context, ms: int) -> str:
    await ctx.sleep(timedelta(milliseconds=ms))
    return "slept"


@greeter.handler()
async def runner(ctx: Context, n: int) -> int:
    def double() -> int:
        return n * 2

    return await ctx.run("double", double)


@greeter.handler()
async def caller(ctx: Context, name: str) -> str:
    reply = await ctx.service_call(greet, name)
    ctx.service_send(greet, "bg", delay=timedelta(seconds=1))
    return f"called:{reply}"


@greeter.handler()
async def awk(ctx: Context, x: str) -> str:
    awakeable_id, done = ctx.awakeable(str)
    ctx.object_send(resolve, "k", awakeable_id)
    return f"awk:{await done}"


@greeter.handler()
async def fails(ctx: Context, x: str) -> str:
    raise TerminalError("nope", 409)


@adv.handler()
async def flaky(ctx: Context, x: str) -> str:
    attempt = ctx.request().attempt

    def step() -> str:
        if attempt < 3:
            raise ValueError(f"boom {attempt}")
        return "ok"

    return await ctx.run(
        RunOptions(name="flaky-step", initial_interval=timedelta(milliseconds=200)), step
    )


@adv.handler()
async def waitsig(ctx: Context, x: str) -> str:
    value = await ctx.signal("go", str)
    return f"sig:{value}"


@adv.handler()
async def sendsig(ctx: Context, target: str) -> None:
    ctx.send_signal(target, "go", "now")


@adv.handler()
async def parent(ctx: Context, x: str) -> str:
    return await ctx.service_call(sleepy, 600000)


@counter.handler()
async def add(ctx: ObjectContext, n: int) -> int:
    count = await ctx.get("count", int, default=0)
    ctx.set("count", count + n)
    await ctx.state_keys()
    return count + n


@resolver.handler()
async def resolve(ctx: ObjectContext, awakeable_id: str) -> None:
    ctx.resolve_awakeable(awakeable_id, "done")


APP = undying.app([greeter, adv, counter, resolver])

# -- fixtures --------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """One message of a fixture."""

    code: int
    message: Message
    relative_ms: int | None = None


@dataclass
class Attempt:
    """One attempt of a recorded invocation."""

    name: str
    handler: str
    invocation_id: str
    bidi: bool
    #: the runtime's chunks (one message each; ``None`` = end of input), each with the number of
    #: messages the reference SDK had sent before it
    chunks: list[tuple[int, bytes | None]] = field(default_factory=list)
    expected: list[Recorded] = field(default_factory=list)


def _parse(entry: dict[str, Any]) -> Recorded:
    code = int(entry["code"], 16)
    message = MESSAGE_CLASSES[code]()
    text: str = entry["text"]
    if entry["type"] == "SignalNotificationMessage":
        text = re.sub(r"^idx:", "signal_id:", re.sub(r"^name:", "signal_name:", text))
    text_format.Parse(text, message)
    return Recorded(code, message, entry.get("relative_ms"))


def _attempts() -> Iterator[Attempt]:
    for path in sorted(TRACES.glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["protocol"] == CONTENT_TYPE
        for index, inv in enumerate(doc["invocations"]):
            invocation_id = inv.get("invocation_id", f"inv_1case{index}")
            for number, recorded in enumerate(inv["attempts"], 1):
                attempt = Attempt(
                    name=f"{path.stem}:{inv['handler']}:{invocation_id}#{number}",
                    handler=inv["handler"],
                    invocation_id=invocation_id,
                    bidi=doc["transport"] == "bidi",
                )
                for step in recorded["exchange"]:
                    if "sdk" in step:
                        attempt.expected += [_parse(e) for e in step["sdk"]]
                    elif step["runtime"] == "eof":
                        attempt.chunks.append((len(attempt.expected), None))
                    else:
                        for entry in step["runtime"]:
                            parsed = _parse(entry)
                            chunk = encode_message(parsed.code, parsed.message)
                            attempt.chunks.append((len(attempt.expected), chunk))
                yield attempt


ATTEMPTS = list(_attempts())

# -- replaying an attempt through the ASGI app -----------------------------------------------------


@dataclass
class Answer:
    """What our SDK answered."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    sent: list[tuple[int, int, Message]] = field(default_factory=list)  # (code, flags, message)


async def _replay(attempt: Attempt) -> Answer:
    answer = Answer()
    decoder = FrameDecoder()
    progress = asyncio.Event()
    chunks = list(attempt.chunks)

    async def receive() -> MutableMapping[str, Any]:
        if not chunks:
            return {"type": "http.disconnect"}
        after, chunk = chunks.pop(0)
        while len(answer.sent) < after:  # bidi: the reference had answered before this came
            progress.clear()
            await progress.wait()
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            for frame in decoder.feed(message.get("body", b"")):
                parsed = MESSAGE_CLASSES[frame.type]()
                parsed.ParseFromString(frame.payload)
                answer.sent.append((frame.type, frame.flags, parsed))
            progress.set()

    scope = {
        "type": "http",
        "http_version": "2" if attempt.bidi else "1.1",
        "method": "POST",
        "path": f"/invoke/{attempt.handler}",
        "root_path": "",
        "headers": [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"accept", CONTENT_TYPE.encode()),
            (b"x-restate-invocation-id", attempt.invocation_id.encode()),
        ],
    }
    try:
        await asyncio.wait_for(APP(scope, receive, send), 10)
    except TimeoutError:
        pytest.fail(f"the SDK got stuck; it sent {_show(answer.sent)}")
    assert decoder.pending == 0
    return answer


def _show(sent: list[tuple[int, int, Message]] | list[Recorded]) -> str:
    lines = []
    for item in sent:
        code, message = (
            (item.code, item.message) if isinstance(item, Recorded) else (item[0], item[2])
        )
        lines.append(
            f"  {MessageType(code).name} {text_format.MessageToString(message, as_one_line=True)}"
        )
    return "\n" + "\n".join(lines)


def _normalized(code: int, message: Message, reference: Message) -> Message:
    copy = type(message)()
    copy.CopyFrom(message)
    if code == MessageType.SLEEP:
        copy.ClearField("wake_up_time")
    elif code == MessageType.ONE_WAY_CALL:
        copy.ClearField("invoke_time")
    elif code == MessageType.SUSPENSION:
        assert isinstance(copy, pb.SuspensionMessage)
        for ids in (copy.waiting_completions, copy.waiting_signals, copy.waiting_named_signals):
            ids.sort()
    elif code == MessageType.ERROR:
        assert isinstance(copy, pb.ErrorMessage) and isinstance(reference, pb.ErrorMessage)
        copy.ClearField("message")
        copy.ClearField("stacktrace")
        for name in ("related_command_index", "related_command_name", "related_command_type"):
            if not reference.HasField(name) or (
                name == "related_command_type" and reference.code == 570
            ):
                copy.ClearField(name)
        if not reference.HasField("next_retry_delay"):
            copy.ClearField("next_retry_delay")
    return copy


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[a.name for a in ATTEMPTS])
def test_replayed_attempt_sends_what_the_reference_sent(attempt: Attempt) -> None:
    before = int(time.time() * 1000)
    answer = asyncio.run(_replay(attempt))
    after = int(time.time() * 1000)
    assert answer.status == 200
    assert answer.headers["content-type"] == CONTENT_TYPE
    assert "x-restate-server" in answer.headers
    ours = [
        (code, _normalized(code, m, r.message))
        for (code, _, m), r in zip(answer.sent, attempt.expected, strict=False)
    ]
    reference = [(r.code, _normalized(r.code, r.message, r.message)) for r in attempt.expected]
    assert len(answer.sent) == len(attempt.expected) and ours == reference, (
        f"ours:{_show(answer.sent)}\nreference:{_show(attempt.expected)}"
    )
    assert all(flags == 0 for _, flags, _ in answer.sent)
    for (code, _, message), recorded in zip(answer.sent, attempt.expected, strict=False):
        if recorded.relative_ms is None:
            continue
        absolute = message.wake_up_time if code == MessageType.SLEEP else message.invoke_time  # type: ignore[attr-defined]
        assert before + recorded.relative_ms <= absolute <= after + recorded.relative_ms


def test_the_fixtures_cover_the_recorded_scenarios() -> None:
    handlers = {a.handler for a in ATTEMPTS}
    assert handlers == {
        "Greeter/greet",
        "Greeter/sleepy",
        "Greeter/runner",
        "Greeter/caller",
        "Greeter/awk",
        "Greeter/fails",
        "Adv/flaky",
        "Adv/waitsig",
        "Adv/sendsig",
        "Adv/parent",
        "Counter/add",
        "Resolver/resolve",
    }
    assert sum(a.bidi for a in ATTEMPTS) == 5
    assert len(ATTEMPTS) == 34 and len({a.name for a in ATTEMPTS}) == 34


def test_awakeable_id_is_the_one_the_reference_made() -> None:
    # the id is derived from StartMessage.id and the signal index (17): same bytes, same id
    (awk_first,) = [a for a in ATTEMPTS if a.handler == "Greeter/awk" and a.name.endswith("#1")]
    answer = asyncio.run(_replay(awk_first))
    code, _, message = answer.sent[0]
    assert code == MessageType.ONE_WAY_CALL and isinstance(message, pb.OneWayCallCommandMessage)
    assert message.parameter == b'"sign_1nsXwhaMIBFRYN_fs639qyMKUP3hCe5c8AAAAEQ"'
