"""The invoker against scripted deployments, in virtual time: retries, backoff, pause, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from undying.errors import DeploymentError
from undying.protocol import manifest as mf
from undying.protocol.framing import Frame, FrameDecoder, encode_message
from undying.protocol.messages import MessageType, pb
from undying.server.clock import VirtualClock
from undying.server.invoker.invoker import Invoker, InvokerOptions
from undying.server.invoker.streams import AttemptStream
from undying.server.log import Bifrost, MemoryLoglet
from undying.server.partition import actions as act
from undying.server.partition.processor import PartitionProcessor
from undying.server.partition.records import IngressSink, Invoke, Target
from undying.server.partition.state import InvocationStatus
from undying.server.partition.store import PartitionStore
from undying.server.schema import DEFAULT_RETRY_POLICY, DeploymentInfo, Schema, register

INV = bytes(range(24))

#: Given the frames of an attempt's request, the frames to answer (None = never answer).
Behaviour = Callable[[list[Frame]], list[bytes] | None]


def output_end(value: bytes = b'"ok"') -> list[bytes]:
    return [
        encode_message(MessageType.OUTPUT, pb.OutputCommandMessage(value=pb.Value(content=value))),
        encode_message(MessageType.END, pb.EndMessage()),
    ]


def error(code: int = 500, message: str = "boom", delay: int | None = None) -> list[bytes]:
    err = pb.ErrorMessage(code=code, message=message)
    if delay is not None:
        err.next_retry_delay = delay
    return [encode_message(MessageType.ERROR, err)]


class FakeStream:
    def __init__(self, ct: str, answer: list[bytes] | None) -> None:
        self._ct = ct
        self._answer = answer
        self.ended = asyncio.Event()
        self._chunks = list(answer) if answer is not None else []

    async def response(self) -> tuple[int, list[tuple[str, str]]]:
        return 200, [("content-type", self._ct)]

    async def send(self, data: bytes) -> None:
        return None

    async def end(self) -> None:
        self.ended.set()

    async def receive(self) -> bytes:
        if self._answer is None:  # a deployment that only suspends when its input closes
            await self.ended.wait()
            self._answer = []
            susp = pb.SuspensionMessage(waiting_completions=[1], waiting_signals=[1])
            return encode_message(MessageType.SUSPENSION, susp)
        return self._chunks.pop(0) if self._chunks else b""

    def abort(self) -> None:
        return None


@dataclass
class ScriptedConnector:
    behaviours: list[Behaviour]
    clock: VirtualClock
    starts: list[tuple[int, pb.StartMessage]] = field(default_factory=list)
    streams: list[FakeStream] = field(default_factory=list)
    refuse: int = 0

    async def open(
        self,
        deployment: DeploymentInfo,
        path: str,
        headers: list[tuple[str, str]],
        initial: bytes,
        *,
        end_input: bool,
    ) -> AttemptStream:
        if self.refuse:
            self.refuse -= 1
            raise DeploymentError("connection refused")
        frames = FrameDecoder().feed(initial)
        start = pb.StartMessage.FromString(frames[0].payload)
        self.starts.append((self.clock.now_ms(), start))
        behaviour = self.behaviours[min(len(self.starts) - 1, len(self.behaviours) - 1)]
        ct = dict(headers)["content-type"]
        stream = FakeStream(ct, behaviour(frames))
        self.streams.append(stream)
        return stream

    async def discover(
        self, uri: str, headers: list[tuple[str, str]], *, use_http_11: bool, timeout: float
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        raise AssertionError("not used")

    async def aclose(self) -> None:
        return None


def schema(**service_settings: object) -> Schema:
    endpoint = mf.Endpoint(
        min_protocol_version=5,
        max_protocol_version=7,
        protocol_mode="BIDI_STREAM",
        services=[
            mf.Service(
                name="Greeter",
                ty="SERVICE",
                handlers=[mf.Handler(name="greet")],
                **service_settings,  # type: ignore[arg-type]
            )
        ],
    )
    return register(
        Schema(),
        uri="http://fake/",
        endpoint=endpoint,
        use_http_11=False,
        sdk_version="fake/1",
        additional_headers={},
        metadata=None,
        force=False,
        breaking=False,
        now_ms=0,
    ).schema


class World:
    def __init__(
        self,
        behaviours: list[Behaviour],
        *,
        options: InvokerOptions | None = None,
        **service_settings: object,
    ) -> None:
        self.clock = VirtualClock(start_ms=1_000_000)
        self.connector = ScriptedConnector(behaviours, self.clock)
        self.schema = schema(**service_settings)
        self.invoker = Invoker(self.connector, lambda: self.schema, self.clock, options)
        self.responses: list[act.Respond] = []
        self.processor = PartitionProcessor(
            0,
            Bifrost(lambda _: MemoryLoglet()),
            PartitionStore(0),
            self.clock,
            self._on_actions,
        )

    def _on_actions(self, p: PartitionProcessor, actions: list[act.Action]) -> None:
        for a in actions:
            if isinstance(a, act.Invoke):
                self.invoker.invoke(p, a.inv, a.epoch)
            elif isinstance(a, act.Forward):
                self.invoker.forward(a.inv, a.epoch, a.type, a.payload)
            elif isinstance(a, act.Abort):
                self.invoker.abort(a.inv)
            elif isinstance(a, act.Respond):
                self.responses.append(a)

    def status(self) -> InvocationStatus:
        s = self.processor.store.get_status(INV)
        assert s is not None
        return s

    async def run_until(self, done: Callable[[], bool], limit_ms: int = 10**9) -> None:
        """Run the loop; whenever it is idle, jump the clock to the next sleeper (autojump)."""
        start = self.clock.now_ms()
        while not done():
            for _ in range(20):
                await asyncio.sleep(0)
                if done():
                    return
            nxt = self.clock.next_wake_ms
            assert nxt is not None, "nothing left to wait for"
            assert nxt - start <= limit_ms, "ran past the time limit"
            self.clock.set(nxt)

    async def invoke(self) -> None:
        await self.processor.start()
        await self.processor.propose(
            Invoke(id=INV, target=Target("Greeter", "greet"), body=b"{}", sink=IngressSink("r"))
        )


def test_retries_back_off_exponentially_then_succeed() -> None:
    async def main() -> World:
        w = World([lambda f: error(), lambda f: error(), lambda f: error(), lambda f: output_end()])
        await w.invoke()
        await w.run_until(lambda: bool(w.responses))
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    times = [t for t, _ in w.connector.starts]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    for gap, base in zip(gaps, (500, 1000, 2000), strict=True):
        assert base <= gap <= base * 1.3 + 1
    # Retry telemetry in StartMessage: counts failed attempts since the last stored entry.
    assert [s.retry_count_since_last_stored_entry for _, s in w.connector.starts] == [0, 1, 2, 3]
    assert w.responses[0].result is not None and w.responses[0].result.value == b'"ok"'
    s = w.status()
    assert s.status == "completed" and s.retry_count == 0


def test_next_retry_delay_overrides_the_backoff() -> None:
    async def main() -> World:
        w = World([lambda f: error(delay=12_345), lambda f: output_end()])
        await w.invoke()
        await w.run_until(lambda: bool(w.responses))
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    (t1, _), (t2, _) = w.connector.starts
    assert t2 - t1 == 12_345


def test_exhausted_retries_pause_and_record_the_failure() -> None:
    async def main() -> World:
        w = World([lambda f: error(message="always")], retry_policy_max_attempts=3)
        await w.invoke()
        await w.run_until(lambda: w.status().status == "paused")
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    s = w.status()
    assert len(w.connector.starts) == 3
    assert s.retry_count == 3 and s.last_failure is not None
    assert s.last_failure.message == "always"


def test_exhausted_retries_kill_when_configured() -> None:
    async def main() -> World:
        w = World(
            [lambda f: error(code=503, message="down")],
            retry_policy_max_attempts=2,
            retry_policy_on_max_attempts="KILL",
        )
        await w.invoke()
        await w.run_until(lambda: bool(w.responses))
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    result = w.responses[0].result
    assert result is not None and result.code == 503 and result.message == "down"


def test_transport_errors_are_retried() -> None:
    async def main() -> World:
        w = World([lambda f: output_end()])
        w.connector.refuse = 2
        await w.invoke()
        await w.run_until(lambda: bool(w.responses))
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    assert w.status().status == "completed"


def test_stream_ending_without_terminal_message_is_a_failure() -> None:
    async def main() -> World:
        truncated = output_end()[:1]  # Output, but no End
        w = World([lambda f: truncated, lambda f: output_end(b'"second"')])
        await w.invoke()
        await w.run_until(lambda: bool(w.responses))
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    assert len(w.connector.starts) == 2
    s = w.status()
    assert s.result is not None and s.result.value == b'"second"'
    # The Output of the broken attempt was journaled and replayed to the second attempt.
    assert w.connector.starts[1][1].known_entries == 2


def test_inactivity_timeout_half_closes_and_the_deployment_suspends() -> None:
    async def main() -> World:
        w = World([lambda f: None], inactivity_timeout=60_000)
        await w.invoke()
        await w.run_until(lambda: w.status().status == "suspended")
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    t0, _ = w.connector.starts[0]
    assert w.connector.streams[0].ended.is_set()
    assert w.clock.now_ms() - t0 == 60_000


def test_a_protocol_violation_fails_the_attempt() -> None:
    bogus = [encode_message(MessageType.START, pb.StartMessage())]

    async def main() -> World:
        w = World([lambda f: bogus, lambda f: output_end()])
        await w.invoke()
        await w.run_until(lambda: bool(w.responses))
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    assert len(w.connector.starts) == 2


def test_the_server_default_policy_applies_when_the_deployment_sets_none() -> None:
    policy = msgspec.structs.replace(
        DEFAULT_RETRY_POLICY, max_attempts=2, on_max_attempts="Kill", initial_interval_ms=50
    )

    async def main() -> World:
        w = World(
            [lambda f: error(code=502, message="bad")], options=InvokerOptions(default_retry=policy)
        )
        await w.invoke()
        await w.run_until(lambda: bool(w.responses))
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    (t1, _), (t2, _) = w.connector.starts
    assert 50 <= t2 - t1 <= 65
    result = w.responses[0].result
    assert result is not None and result.code == 502


def test_the_deployment_policy_wins_over_the_server_default() -> None:
    policy = msgspec.structs.replace(DEFAULT_RETRY_POLICY, max_attempts=2, on_max_attempts="Kill")

    async def main() -> World:
        w = World(
            [lambda f: error()],
            options=InvokerOptions(default_retry=policy),
            retry_policy_max_attempts=3,
            retry_policy_on_max_attempts="PAUSE",
        )
        await w.invoke()
        await w.run_until(lambda: w.status().status == "paused")
        await w.invoker.stop()
        return w

    w = asyncio.run(main())
    assert len(w.connector.starts) == 3
