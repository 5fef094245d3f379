"""The in-process test harness: virtual time, calls, sends, state and journal inspection, cleanup.

Every test runs a real undying server and the services (undying SDK, HTTP/1.1) in one event loop.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest

import undying
from undying.server.clock import VirtualClock
from undying.testing import InvocationPaused, RequestRejected, TestEnvironment

T = TypeVar("T")


def run(test: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(test())  # type: ignore[arg-type]


class Probe:
    """What the services below record, in virtual time (set ``clock`` before using them)."""

    clock: VirtualClock | None = None
    times: list[int] = []
    failures_left = 0
    gate: asyncio.Event | None = None
    entered: asyncio.Event | None = None

    @classmethod
    def reset(cls, clock: VirtualClock, failures: int = 0) -> None:
        cls.clock = clock
        cls.times = []
        cls.failures_left = failures

    @classmethod
    def now(cls) -> int:
        assert cls.clock is not None
        return cls.clock.now_ms()


# ---- services -------------------------------------------------------------------------------

sleeper = undying.Service("Sleeper")


@sleeper.handler()
async def nap(ctx: undying.Context, days: int) -> str:
    await ctx.sleep(timedelta(days=days))
    return f"slept {days} days"


@sleeper.handler()
async def hourly(ctx: undying.Context, hours: int) -> int:
    """Sleep one hour at a time: each timer is armed only once the previous one fired."""
    for _ in range(hours):
        await ctx.sleep(timedelta(hours=1))
    return hours


@sleeper.handler()
async def stamp(ctx: undying.Context) -> float:
    return await ctx.time()


def flaky_step() -> str:
    Probe.times.append(Probe.now())
    if Probe.failures_left > 0:
        Probe.failures_left -= 1
        raise ConnectionError("the payment provider is down")
    return "paid"


async def blocked_step() -> str:
    assert Probe.gate is not None and Probe.entered is not None
    Probe.entered.set()
    await Probe.gate.wait()  # real-world I/O: the test opens the gate
    return "done"


steps = undying.Service("Steps")


@steps.handler()
async def pay(ctx: undying.Context) -> str:
    options = undying.RunOptions(
        name="charge", initial_interval=timedelta(seconds=10), factor=2.0, max_attempts=5
    )
    return await ctx.run(options, flaky_step)


@steps.handler()
async def fragile(ctx: undying.Context) -> str:
    """Fails as a whole (not in a step) until ``failures_left`` runs out."""
    Probe.times.append(Probe.now())
    if Probe.failures_left > 0:
        Probe.failures_left -= 1
        raise RuntimeError("not yet")
    return "finally"


@steps.handler(retry_policy=undying.RetryPolicy(max_attempts=3, on_max_attempts="pause"))
async def hopeless(ctx: undying.Context) -> str:
    raise RuntimeError("always broken")


@steps.handler()
async def refuse(ctx: undying.Context, why: str) -> str:
    raise undying.TerminalError(why, status_code=418)


@steps.handler()
async def wait_for_gate(ctx: undying.Context) -> str:
    return await ctx.run("wait for the gate", blocked_step)


@steps.handler()
async def greet(ctx: undying.Context, name: str) -> str:
    await ctx.run("notify", lambda: None)
    await ctx.sleep(timedelta(seconds=1), name="pause")
    return f"Hello {name}"


counter = undying.VirtualObject("Counter")


@counter.handler()
async def add(ctx: undying.ObjectContext, delta: int) -> int:
    count: int = await ctx.get("count", int, default=0)
    count += delta
    ctx.set("count", count)
    ctx.set("history", [*(await ctx.get("history", list[int], default=[])), delta])
    return count


@counter.handler()
async def reset(ctx: undying.ObjectContext) -> None:
    ctx.clear_all()


@counter.handler()
async def ask(ctx: undying.ObjectContext) -> str:
    """Park an awakeable id in the state and wait for someone to resolve it."""
    awakeable_id, answer = ctx.awakeable(str)
    ctx.set("awakeable", awakeable_id)
    return await answer


approval = undying.Workflow("Approval")


@approval.main()
async def request_approval(ctx: undying.WorkflowContext, amount: int) -> str:
    ctx.set("status", "pending")
    decision = await ctx.promise("decision", str)
    ctx.set("status", decision)
    return f"{amount}: {decision}"


@approval.handler()
async def decide(ctx: undying.WorkflowSharedContext, decision: str) -> None:
    await ctx.promise("decision", str).resolve(decision)


SERVICES: list[undying.Service | undying.VirtualObject | undying.Workflow] = [
    sleeper,
    steps,
    counter,
    approval,
]


# ---- virtual time ---------------------------------------------------------------------------


def test_a_30_day_sleep_completes_at_once_in_virtual_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def test() -> tuple[str, timedelta, float]:
        async with TestEnvironment(SERVICES) as env:
            start = env.now()
            began = time.perf_counter()
            out = await env.call(nap, 30)
            real = time.perf_counter() - began
            return out, env.now() - start, real

    out, virtual, real = run(test)
    assert out == "slept 30 days"
    assert virtual == timedelta(days=30)
    with capsys.disabled():
        print(f"\n30-day sleep: {real * 1000:.1f} ms of real time")


def test_the_sdk_reads_the_virtual_clock() -> None:
    async def test() -> tuple[float, int]:
        async with TestEnvironment(SERVICES) as env:
            await env.advance(timedelta(hours=5))
            return await env.call(stamp), env.clock.now_ms()

    stamped, now_ms = run(test)
    assert stamped == now_ms / 1000


def test_advance_fires_what_falls_due_in_order() -> None:
    async def test() -> None:
        async with TestEnvironment(SERVICES, auto_advance=False) as env:
            start = env.now()
            later = await env.send(nap, 1, delay=timedelta(hours=12))
            chained = await env.send(hourly, 3)
            await env.advance(timedelta(hours=2, minutes=59))
            assert env.status(later) == "scheduled"
            assert env.status(chained) == "suspended"
            assert len([e for e in env.journal(chained) if e.type == "Command: Sleep"]) == 3
            await env.advance(timedelta(minutes=1))
            assert env.status(chained) == "completed"
            assert await chained.result() == 3
            await env.advance(timedelta(hours=9))
            assert env.status(later) == "suspended"  # started at 12 h, sleeping for a day
            await env.advance(timedelta(days=1))
            assert env.status(later) == "completed"
            assert await later.result() == "slept 1 days"
            assert env.now() - start == timedelta(days=1, hours=12)

    run(test)


def test_time_does_not_skip_while_a_step_runs() -> None:
    async def test() -> None:
        Probe.gate, Probe.entered = asyncio.Event(), asyncio.Event()
        async with TestEnvironment(SERVICES) as env:
            start = env.now()
            napping = await env.send(nap, 1)
            await env.settle()  # it suspends, its timer armed
            blocked = asyncio.ensure_future(env.call(wait_for_gate))
            await Probe.entered.wait()
            for _ in range(200):  # plenty of turns for a skip to happen, if one could
                await asyncio.sleep(0)
            assert env.now() == start
            assert env.status(napping) == "suspended"
            Probe.gate.set()
            assert await blocked == "done"
            assert await napping.result() == "slept 1 days"
            assert env.now() - start == timedelta(days=1)

    run(test)


def test_a_failing_step_is_retried_with_its_backoff_in_virtual_time() -> None:
    async def test() -> str:
        async with TestEnvironment(SERVICES) as env:
            Probe.reset(env.clock, failures=2)
            out = await env.call(pay)
            rows = await env.query("SELECT entry_type, name FROM sys_journal")
            assert {"entry_type": "Command: Run", "name": "charge"} in rows
            return out

    assert run(test) == "paid"
    gaps = [b - a for a, b in zip(Probe.times, Probe.times[1:], strict=False)]
    assert gaps == [10_000, 20_000]


def test_a_failing_handler_is_retried_with_the_server_backoff() -> None:
    async def test() -> str:
        async with TestEnvironment(SERVICES, auto_advance=False) as env:
            Probe.reset(env.clock, failures=2)
            handle = await env.send(fragile)
            await env.settle()
            assert env.status(handle) == "invoked"  # backing off
            wake = env.server.next_wake_ms
            assert wake is not None and 500 <= wake - env.clock.now_ms() <= 650
            await env.advance(timedelta(seconds=2))
            return await handle.result()

    assert run(test) == "finally"
    gaps = [b - a for a, b in zip(Probe.times, Probe.times[1:], strict=False)]
    assert len(gaps) == 2
    assert 500 <= gaps[0] <= 650 and 1000 <= gaps[1] <= 1300


def test_completed_invocations_are_forgotten_after_their_retention_in_virtual_time() -> None:
    async def test() -> None:
        async with TestEnvironment(SERVICES, auto_advance=False) as env:
            handle = await env.send(nap, 0)
            assert await handle.result() == "slept 0 days"
            await env.advance(timedelta(hours=23))
            assert env.status(handle) == "completed" and env.journal(handle)
            await env.advance(timedelta(hours=1))  # the default retention: one day
            assert env.status(handle) is None and env.journal(handle) == []

    run(test)


def test_awaiting_a_paused_invocation_raises() -> None:
    async def test() -> None:
        async with TestEnvironment(SERVICES) as env:
            with pytest.raises(InvocationPaused, match="always broken") as caught:
                await env.call(hopeless)
            assert env.status(caught.value.invocation_id) == "paused"

    run(test)


# ---- results, state, journals ---------------------------------------------------------------


def test_terminal_errors_and_rejected_requests() -> None:
    async def test() -> None:
        async with TestEnvironment(SERVICES) as env:
            with pytest.raises(undying.TerminalError) as caught:
                await env.call(refuse, "teapot")
            assert (caught.value.message, caught.value.status_code) == ("teapot", 418)
            with pytest.raises(TypeError, match="needs a key"):
                await env.call(add, 1)
            with pytest.raises(TypeError, match="takes no key"):
                await env.call(nap, 1, key="k")
            stranger = undying.Service("NotDeployed")

            @stranger.handler()
            async def hello(ctx: undying.Context) -> None:
                return None

            with pytest.raises(RequestRejected) as rejected:
                await env.call(hello)
            assert rejected.value.status == 404

    run(test)


def test_object_state_is_inspected_decoded() -> None:
    async def test() -> None:
        async with TestEnvironment(SERVICES) as env:
            assert await env.call(add, 3, key="alice") == 3
            assert await env.call(add, 4, key="alice") == 7
            assert await env.call(add, 1, key="bob/ü") == 1
            assert env.state(counter, "alice") == {"count": 7, "history": [3, 4]}
            assert env.state("Counter", "bob/ü") == {"count": 1, "history": [1]}
            assert env.state(counter, "carol") == {}
            await env.call(reset, key="alice")
            assert env.state(counter, "alice") == {}
            rows = await env.query(
                "SELECT service_key, key, value_utf8 FROM state ORDER BY service_key, key"
            )
            assert rows == [
                {"service_key": "bob/ü", "key": "count", "value_utf8": "1"},
                {"service_key": "bob/ü", "key": "history", "value_utf8": "[1]"},
            ]

    run(test)


def test_the_journal_lists_every_step() -> None:
    async def test() -> None:
        async with TestEnvironment(SERVICES) as env:
            start = env.now()
            handle = await env.send(greet, "Bob")
            assert await handle.result() == "Hello Bob"
            journal = env.journal(handle)
            assert [(e.index, e.type, e.name) for e in journal] == [
                (0, "Command: Input", None),
                (1, "Command: Run", "notify"),
                (2, "Notification: Run", None),
                (3, "Command: Sleep", "pause"),
                (4, "Notification: Sleep", None),
                (5, "Command: Output", None),
            ]
            assert journal[3].sleep_wakeup_at == start + timedelta(seconds=1)
            assert journal[5].appended_at == start + timedelta(seconds=1)
            assert bytes(journal[0].entry["Command"]["Input"]["payload"]) == b'"Bob"'

    run(test)


def test_a_workflow_waits_for_a_promise_resolved_by_a_shared_handler() -> None:
    async def test() -> None:
        async with TestEnvironment(SERVICES) as env:
            handle = await env.send(request_approval, 450, key="exp-1")
            await env.settle()
            assert env.state(approval, "exp-1") == {"status": "pending"}
            assert env.status(handle) == "suspended"
            await env.call(decide, "approved", key="exp-1")
            assert await handle.result() == "450: approved"
            assert env.state(approval, "exp-1") == {"status": "approved"}
            promise = [e for e in env.journal(handle) if e.type == "Command: GetPromise"]
            assert [e.promise_name for e in promise] == ["decision"]

    run(test)


def test_awakeables_are_resolved_from_the_test() -> None:
    async def test() -> None:
        async with TestEnvironment(SERVICES) as env:
            handle = await env.send(ask, key="k")
            await env.settle()
            awakeable_id = env.state(counter, "k")["awakeable"]
            await env.resolve_awakeable(awakeable_id, "forty-two")
            assert await handle.result() == "forty-two"

    run(test)


# ---- cleanup --------------------------------------------------------------------------------


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.socket() as s:
        code = s.connect_ex((parts.hostname, parts.port))
    return code == errno.ECONNREFUSED


def test_everything_started_is_stopped() -> None:
    before = {t.ident for t in threading.enumerate()}

    async def test() -> tuple[list[str], Path]:
        env = TestEnvironment(SERVICES)
        async with env:
            await env.call(add, 1, key="x")
            urls = [env.ingress_url, env.admin_url, env.deployment_url]
            data_dir = env.server.config.data_dir
            assert data_dir.is_dir()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        await env.stop()  # a second stop does nothing
        return urls, data_dir

    urls, data_dir = run(test)
    assert all(_refused(url) for url in urls)
    assert not data_dir.exists()
    left = [t for t in threading.enumerate() if t.ident not in before]
    assert left == []


def test_a_failed_start_stops_what_it_started(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")

    async def test() -> None:
        env = TestEnvironment(SERVICES, data_dir=not_a_directory)
        with pytest.raises(Exception):  # noqa: B017 - whatever the storage raises
            await env.start()
        with pytest.raises(RuntimeError, match="not started"):
            env.server  # noqa: B018
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(test)
