"""The attempt driver's output batching: how many writes a step costs."""

from __future__ import annotations

import asyncio

from undying.protocol.messages import MessageType
from undying.sdk.context import Context, ObjectContext, Request
from undying.sdk.invocation import Invocation
from undying.sdk.serde import JsonSerde
from undying.sdk.vm import Machine

from .journal import decode, frames, journal, run_completion

_JSON: JsonSerde[object] = JsonSerde()


def _one(x: int) -> int:
    return x + 1


def _run_bidi(handler_steps: int) -> list[list[int]]:
    """Run a handler of ``handler_steps`` quick runs over a bidi stream; the type codes of each
    write the SDK made, in order."""
    machine = Machine(6)
    machine.feed(journal(value=b"0"))
    writes: list[bytes] = []
    pending: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def receive() -> bytes | None:
        return await pending.get()

    async def send(chunk: bytes) -> None:
        writes.append(chunk)
        # the runtime journals every proposed result and pushes its notification back
        for code, message in decode(chunk):
            if code == MessageType.PROPOSE_RUN_COMPLETION:
                cid = message.result_completion_id  # type: ignore[attr-defined]
                pending.put_nowait(frames([run_completion(cid, message.value)]))  # type: ignore[attr-defined]

    async def handler(ctx: Context) -> int:
        total = 0
        for i in range(handler_steps):
            total = await ctx.run(f"step-{i}", _one, total)
        return total

    async def main() -> None:
        invocation = Invocation(machine, receive, send)
        assert machine.start is not None and machine.input is not None
        request = Request(machine.start.debug_id, {}, b"0", 1, "")
        ctx = ObjectContext(invocation, request)
        await asyncio.wait_for(invocation.run_handler(lambda: handler(ctx), _JSON.serialize), 10)

    asyncio.run(main())
    return [[code for code, _ in decode(chunk)] for chunk in writes]


def test_a_quick_step_is_one_write_command_and_proposal_together() -> None:
    writes = _run_bidi(3)
    run_writes = [w for w in writes if MessageType.RUN in w]
    assert len(run_writes) == 3, writes
    for w in run_writes:
        assert w == [MessageType.RUN, MessageType.PROPOSE_RUN_COMPLETION], writes
    assert writes[-1][-2:] == [MessageType.OUTPUT, MessageType.END]


def _boom(what: str) -> str:
    raise RuntimeError(f"no {what}")


def test_a_failed_step_reports_the_users_stack_trace_not_the_sdks() -> None:
    from .journal import attempt

    async def handler(ctx: Context) -> str:
        return await ctx.run("fails", _boom, "luck")

    sent = asyncio.run(attempt(handler, journal(value=b"0")))
    [error] = [m for code, m in sent if code == MessageType.ERROR]
    trace: str = error.stacktrace  # type: ignore[attr-defined]
    assert "in _boom" in trace and "RuntimeError: no luck" in trace, trace
    assert "sdk/invocation.py" not in trace and "concurrent/futures" not in trace, trace


def test_a_failed_handler_reports_its_own_frames() -> None:
    from .journal import attempt

    async def handler(ctx: Context) -> str:
        del ctx
        return _boom("handler")

    sent = asyncio.run(attempt(handler, journal(value=b"0")))
    [error] = [m for code, m in sent if code == MessageType.ERROR]
    trace: str = error.stacktrace  # type: ignore[attr-defined]
    assert "in handler" in trace and "in _boom" in trace, trace
    assert "sdk/invocation.py" not in trace, trace
