"""Replay properties of random handlers against a simulated runtime.

A handler is a small program (:class:`Op` list): ``ctx.run`` steps, timers, state reads and
writes, calls, awakeables, and ``select`` / ``gather`` over two of them. It runs once against a
:class:`Runtime` that journals what the SDK sends and completes things in a random order:
attempts are request/response or bidirectional at random; in bidirectional ones notifications
arrive in random batches cut at random byte offsets, and the runtime half-closes at random
moments (the SDK then suspends). That records a journal, which is then replayed:

- whole: the handler reaches the same result and writes no command (only ``End``);
- without its ``Output``: the SDK writes the same ``Output``, whatever the chunking of its input;
- from any prefix, resumed attempt after attempt in the recorded order: every command the SDK
  writes is the recorded one at that point, and it ends with the same ``Output``;
- with the program mutated (a step renamed, two steps swapped, a step inserted): the attempt
  fails with a journal mismatch (570), never with another ``Output``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from undying.protocol.framing import FrameDecoder
from undying.protocol.messages import MESSAGE_CLASSES, MessageType, is_command, pb
from undying.sdk.context import ObjectContext, Request
from undying.sdk.futures import DurableFuture, gather, select
from undying.sdk.invocation import Invocation
from undying.sdk.serde import JsonSerde
from undying.sdk.vm import Key, Machine

from .journal import (
    INVOCATION_ID,
    Entry,
    call_id,
    completion,
    frame,
    frames,
    input_entry,
    run_completion,
    signal,
    sleep_completion,
    start,
)

M = MessageType
KEYS = ("a", "b", "c")
FUTURES = ("run", "sleep", "call", "awakeable")
PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- the op language ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One step: ``kind`` with a unique ``name`` (a state value for ``set``) and a state key."""

    kind: str
    name: str
    key: str = ""
    parts: tuple[Op, ...] = ()

    def signature(self) -> tuple[Any, ...]:
        """What the step's commands say (a state read carries no name)."""
        if self.kind == "get":
            return ("get", self.key)
        return (self.kind, self.name, self.key, tuple(p.signature() for p in self.parts))


@st.composite
def ops(draw: st.DrawFn, label: str) -> Op:
    kind = draw(
        st.sampled_from(("run", "sleep", "get", "set", "call", "awakeable", "select", "gather"))
    )
    if kind in ("select", "gather"):
        a, b = draw(st.sampled_from(FUTURES)), draw(st.sampled_from(FUTURES))
        return Op(kind, label, parts=(Op(a, f"{a}{label}a"), Op(b, f"{b}{label}b")))
    if kind in ("get", "set"):
        return Op(kind, f"v{label}", key=draw(st.sampled_from(KEYS)))
    return Op(kind, f"{kind}{label}")


@st.composite
def programs(draw: st.DrawFn) -> list[Op]:
    n = draw(st.integers(1, 5))
    return [draw(ops(str(i))) for i in range(n)]


initial_states = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(("x", "y")), max_size=3)


def _future(ctx: ObjectContext, op: Op) -> DurableFuture[Any]:
    if op.kind == "run":
        name = op.name

        async def step() -> str:
            return f"{name}!"

        return ctx.run(name, step)
    if op.kind == "sleep":
        return ctx.sleep(0.01, name=op.name)
    if op.kind == "call":
        return ctx.generic_call("Echo", "echo", op.name.encode())
    assert op.kind == "awakeable"
    awakeable_id, future = ctx.awakeable(str)
    ctx.generic_send("Resolver", "resolve", json.dumps([op.name, awakeable_id]).encode())
    return future


def _plain(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


async def interpret(ctx: ObjectContext, program: Sequence[Op]) -> list[Any]:
    """The handler."""
    out: list[Any] = []
    for op in program:
        if op.kind == "get":
            out.append(await ctx.get(op.key))
        elif op.kind == "set":
            ctx.set(op.key, op.name)
            out.append(None)
        elif op.kind == "select":
            futures = (_future(ctx, op.parts[0]), _future(ctx, op.parts[1]))
            index = await select(*futures)
            out.append([index, _plain(await futures[index])])
        elif op.kind == "gather":
            values = await gather(_future(ctx, op.parts[0]), _future(ctx, op.parts[1]))
            out.append([_plain(v) for v in values])
        else:
            out.append(_plain(await _future(ctx, op)))
    return out


def expected(program: Sequence[Op], initial: dict[str, str], result: list[Any]) -> list[Any]:
    """What the handler must return (the winners of selects taken from ``result``)."""

    def value(op: Op) -> Any:
        return {"run": f"{op.name}!", "sleep": None, "call": f"echo:{op.name}"}.get(
            op.kind, f"awk:{op.name}"
        )

    state = dict(initial)
    out: list[Any] = []
    for op, got in zip(program, result, strict=True):
        if op.kind == "get":
            out.append(state.get(op.key))
        elif op.kind == "set":
            state[op.key] = op.name
            out.append(None)
        elif op.kind == "select":
            assert got[0] in (0, 1)
            out.append([got[0], value(op.parts[got[0]])])
        elif op.kind == "gather":
            out.append([value(op.parts[0]), value(op.parts[1])])
        else:
            out.append(value(op))
    return out


# -- one attempt ----------------------------------------------------------------------------------

_JSON: JsonSerde[Any] = JsonSerde()


@dataclass
class Sent:
    """What the SDK sent in one attempt, decoded."""

    messages: list[Entry] = field(default_factory=list)
    #: set whenever a message arrives
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


async def run_attempt(
    program: Sequence[Op],
    chunks: Sequence[bytes],
    *,
    receive: Callable[[Sent], Any] | None = None,
    results: list[Any] | None = None,
) -> Sent:
    """One attempt: ``chunks`` until the journal is complete, then ``receive`` (bidi) or EOF."""
    machine = Machine(6)
    rest = deque(chunks)
    while not machine.ready_to_execute:
        machine.feed(rest.popleft())
    sent = Sent()
    decoder = FrameDecoder()

    async def send(data: bytes) -> None:
        for f in decoder.feed(data):
            message = MESSAGE_CLASSES[f.type]()
            message.ParseFromString(f.payload)
            sent.messages.append((f.type, message))
        sent.arrived.set()

    async def read() -> bytes | None:
        if rest:
            return rest.popleft()
        if receive is None:
            return None
        data: bytes | None = await receive(sent)
        return data

    if receive is None and not rest:
        machine.close_input()
    invocation = Invocation(machine, read, send)
    start_info, entry = machine.start, machine.input
    assert start_info is not None and entry is not None
    request = Request(id="inv_1prop", headers={}, body=b"", attempt=1, key=start_info.key)
    ctx = ObjectContext(invocation, request)

    async def handler() -> list[Any]:
        value = await interpret(ctx, program)
        if results is not None:
            results.append(value)
        return value

    await asyncio.wait_for(invocation.run_handler(handler, _JSON.serialize), 10)
    assert decoder.pending == 0
    return sent


# -- the simulated runtime -----------------------------------------------------------------------


def _key(entry: Entry) -> Key:
    message = entry[1]
    assert isinstance(message, pb.Notification)
    which = message.WhichOneof("id")
    if which == "completion_id":
        return message.completion_id
    if which == "signal_id":
        return -message.signal_id
    return message.signal_name


def _awakeable_index(awakeable_id: str) -> int:
    assert awakeable_id.startswith("sign_1")
    raw = base64.urlsafe_b64decode(awakeable_id[6:] + "=" * (-len(awakeable_id[6:]) % 4))
    assert raw[:24] == INVOCATION_ID
    (index,) = struct.unpack(">I", raw[24:])
    return int(index)


def _split(rnd: random.Random, data: bytes, most: int = 3) -> list[bytes]:
    cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(0, most))))
    return [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]


class Runtime:
    """Journals what the SDK sends and completes it, in an order chosen by ``rnd``."""

    def __init__(self, rnd: random.Random, initial: dict[str, str]) -> None:
        self.rnd = rnd
        self.journal: list[Entry] = [input_entry()]
        self.store = {k: json.dumps(v).encode() for k, v in initial.items()}
        self.pending: list[Entry] = []
        self.outbox: deque[bytes] | None = None  # bidi: what to push to the SDK
        self.waiting: set[Key] = set()
        self.ended = False
        self.attempts = 0

    def notify(self, entry: Entry) -> None:
        self.journal.append(entry)
        if self.outbox is not None:
            self.outbox.extend(_split(self.rnd, frame(entry)))

    def on_sent(self, code: int, message: Message) -> None:
        if is_command(code):
            self.journal.append((code, message))
            self._effects(code, message)
        elif code == M.PROPOSE_RUN_COMPLETION:
            assert isinstance(message, pb.ProposeRunCompletionMessage)
            self.notify(run_completion(message.result_completion_id, message.value))
        elif code == M.SUSPENSION:
            assert isinstance(message, pb.SuspensionMessage)
            self.waiting = {
                *message.waiting_completions,
                *(-s for s in message.waiting_signals),
                *message.waiting_named_signals,
            }
        elif code == M.END:
            self.ended = True
        else:
            raise AssertionError(f"the SDK sent {MessageType(code).name}: {message}")

    def _effects(self, code: int, message: Message) -> None:
        if isinstance(message, pb.SetStateCommandMessage):
            self.store[message.key.decode()] = message.value.content
        elif isinstance(message, pb.GetLazyStateCommandMessage):
            value = self.store.get(message.key.decode())
            self.pending.append(
                completion(M.GET_LAZY_STATE_COMPLETION, message.result_completion_id, value)
            )
        elif isinstance(message, pb.SleepCommandMessage):
            self.pending.append(sleep_completion(message.result_completion_id))
        elif isinstance(message, pb.CallCommandMessage):
            self.notify(call_id(message.invocation_id_notification_idx, "inv_1callee"))
            result = completion(
                M.CALL_COMPLETION, message.result_completion_id, b"echo:" + message.parameter
            )
            self.pending.append(result)
        elif isinstance(message, pb.OneWayCallCommandMessage):
            self.notify(call_id(message.invocation_id_notification_idx, "inv_1sent"))
            name, awakeable_id = json.loads(message.parameter)
            resolution = json.dumps(f"awk:{name}").encode()
            self.pending.append(signal(_awakeable_index(awakeable_id), resolution))
        else:
            assert code in (M.RUN, M.GET_EAGER_STATE, M.OUTPUT), MessageType(code).name

    def complete_some(self, *, until: set[Key] | None = None) -> None:
        """Journal pending notifications in a random order (at least one of ``until``)."""
        self.rnd.shuffle(self.pending)
        count = self.rnd.randint(1, len(self.pending)) if self.pending else 0
        if until is not None:
            wanted = [i for i, e in enumerate(self.pending) if _key(e) in until]
            assert wanted, f"the SDK waits for {until}, which nothing will complete"
            count = max(count, wanted[0] + 1)
        for entry in self.pending[:count]:
            self.notify(entry)
        del self.pending[:count]

    def start_message(self) -> bytes:
        mode = self.rnd.choice(("complete", "partial", "none"))
        if mode == "complete":
            head = start(len(self.journal), state={})
            head.partial_state = False
        else:
            head = start(len(self.journal))
        for k, v in self.store.items():
            if mode == "complete" or (mode == "partial" and self.rnd.random() < 0.5):
                head.state_map.append(pb.StartMessage.StateEntry(key=k.encode(), value=v))
        return frame(head)

    def satisfied(self) -> bool:
        return any(_key(e) in self.waiting for e in self.journal if e[0] >= 0x8000)


async def execute(program: Sequence[Op], rnd: random.Random, initial: dict[str, str]) -> Runtime:
    """Run ``program`` to its end against a fresh :class:`Runtime`."""
    runtime = Runtime(rnd, initial)
    while not runtime.ended:
        runtime.attempts += 1
        assert runtime.attempts < 100, "no progress"
        data = runtime.start_message() + frames(runtime.journal)
        if rnd.random() < 0.5:
            sent = await run_attempt(program, [data])
            for code, message in sent.messages:
                runtime.on_sent(code, message)
        else:
            await _bidi_attempt(program, runtime, data)
        if not runtime.ended and not runtime.satisfied():
            runtime.complete_some(until=runtime.waiting)
    return runtime


async def _bidi_attempt(program: Sequence[Op], runtime: Runtime, data: bytes) -> None:
    rnd = runtime.rnd
    outbox: deque[bytes] = deque(_split(rnd, data))
    runtime.outbox = outbox
    seen = 0

    def take(sent: Sent) -> None:
        nonlocal seen
        for code, message in sent.messages[seen:]:
            runtime.on_sent(code, message)
        seen = len(sent.messages)

    async def receive(sent: Sent) -> bytes | None:
        while True:
            take(sent)
            if outbox:
                return outbox.popleft()
            if rnd.random() < 0.15:
                return None  # the runtime half-closes: the SDK has to suspend
            if runtime.pending:
                runtime.complete_some()
                continue
            sent.arrived.clear()  # nothing to do until the SDK's next message
            await sent.arrived.wait()

    chunks: list[bytes] = []
    while outbox and not _complete(b"".join(chunks)):
        chunks.append(outbox.popleft())
    sent = await run_attempt(program, chunks, receive=receive)
    take(sent)
    runtime.outbox = None


def _complete(data: bytes) -> bool:
    machine = Machine(6)
    machine.feed(data)
    return machine.ready_to_execute


# -- replays --------------------------------------------------------------------------------------


def _bytes(journal: Sequence[Entry], store: dict[str, bytes]) -> bytes:
    head = start(len(journal), state={k: v for k, v in store.items()})
    return frame(head) + frames(journal)


def _store_after(initial: dict[str, str], journal: Sequence[Entry]) -> dict[str, bytes]:
    store = {k: json.dumps(v).encode() for k, v in initial.items()}
    for _, message in journal:
        if isinstance(message, pb.SetStateCommandMessage):
            store[message.key.decode()] = message.value.content
    return store


def _normal(entry: Entry) -> Entry:
    code, message = entry
    if code in (M.SLEEP, M.ONE_WAY_CALL):
        copy = type(message)()
        copy.CopyFrom(message)
        copy.ClearField("wake_up_time" if code == M.SLEEP else "invoke_time")
        return code, copy
    return entry


def _same_command(ours: Entry, recorded: Entry, journal: Sequence[Entry]) -> bool:
    """Whether ``ours`` is what the journal recorded (a state read may be eager or lazy)."""
    if ours[0] == M.GET_EAGER_STATE and recorded[0] == M.GET_LAZY_STATE:
        eager, lazy = ours[1], recorded[1]
        assert isinstance(eager, pb.GetEagerStateCommandMessage)
        assert isinstance(lazy, pb.GetLazyStateCommandMessage)
        (answer,) = [
            n
            for c, n in journal
            if c == M.GET_LAZY_STATE_COMPLETION
            and isinstance(n, pb.Notification)
            and n.completion_id == lazy.result_completion_id
        ]
        value = answer.value.content if answer.HasField("value") else None
        return (
            eager.key == lazy.key
            and (eager.value.content if eager.HasField("value") else None) == value
        )
    return _normal(ours) == _normal(recorded)


def _run_results(journal: Sequence[Entry]) -> dict[int, bytes]:
    return {
        n.completion_id: n.value.content
        for c, n in journal
        if c == M.RUN_COMPLETION and isinstance(n, pb.Notification)
    }


def _check_proposals(sent: Sent, given: Sequence[Entry], recorded: Sequence[Entry]) -> None:
    """Runs execute again only without a result in ``given``, and propose the recorded one.

    (A select's loser may have no result in the recorded journal at all.)
    """
    known, results = _run_results(given), _run_results(recorded)
    for code, message in sent.messages:
        if code == M.PROPOSE_RUN_COMPLETION:
            assert isinstance(message, pb.ProposeRunCompletionMessage)
            rcid = message.result_completion_id
            assert rcid not in known, f"run {rcid} executed again though its result is journaled"
            if rcid in results:
                assert results[rcid] == message.value


async def check_replays(
    program: Sequence[Op],
    runtime: Runtime,
    initial: dict[str, str],
    rnd: random.Random,
    prefixes: Sequence[int],
) -> None:
    journal = runtime.journal
    assert journal[-1][0] == M.OUTPUT
    output = journal[-1]
    store = _store_after(initial, journal)

    # the whole journal: the same result, nothing but End
    results: list[Any] = []
    sent = await run_attempt(program, [_bytes(journal, store)], results=results)
    assert [c for c, _ in sent.messages if c != M.PROPOSE_RUN_COMPLETION] == [M.END]
    assert json.dumps(results[0], separators=(",", ":")).encode() == output[1].value.content  # type: ignore[attr-defined]
    _check_proposals(sent, journal, journal)

    # without its Output: the same Output, whatever the chunking; the notifications after the
    # last command may also come after the journal, as in a bidirectional attempt
    data = _bytes(journal[:-1], store)
    window = max(i for i, (code, _) in enumerate(journal[:-1]) if is_command(code)) + 1
    streamed = _bytes(journal[:window], store) + frames(journal[window:-1])
    for chunks, known in (
        ([data], journal[:-1]),
        (_split(rnd, data, 12), journal[:-1]),
        (_split(rnd, streamed, 12), journal[:window]),
    ):
        attempt_sent = await run_attempt(program, chunks)
        kept = [e for e in attempt_sent.messages if e[0] != M.PROPOSE_RUN_COMPLETION]
        assert kept == [output, (M.END, pb.EndMessage())]
        _check_proposals(attempt_sent, known, journal)

    for k in prefixes:
        await resume_from(program, journal, initial, max(1, min(k, len(journal))))


async def resume_from(
    program: Sequence[Op], journal: Sequence[Entry], initial: dict[str, str], length: int
) -> None:
    """Replay ``journal[:length]``, then resume attempt after attempt in the recorded order."""
    commands = [i for i, (code, _) in enumerate(journal) if is_command(code)]
    for _ in range(len(journal) + 1):
        prefix = journal[:length]
        sent = await run_attempt(program, [_bytes(prefix, _store_after(initial, prefix))])
        ours = [e for e in sent.messages if is_command(e[0])]
        upcoming = [i for i in commands if i >= length]
        assert len(ours) <= len(upcoming), "the SDK wrote commands the journal does not have"
        for entry, at in zip(ours, upcoming, strict=False):
            assert _same_command(entry, journal[at], journal), (entry, journal[at])
        _check_proposals(sent, prefix, journal)
        last = sent.messages[-1][0]
        if last == M.END:
            assert not upcoming[len(ours) :], "the SDK ended before the journal's end"
            return
        assert last == M.SUSPENSION, MessageType(last).name
        grown = upcoming[len(ours) - 1] + 1 if ours else length
        while grown < len(journal) and not is_command(journal[grown][0]):
            grown += 1
        length = max(grown, length + 1)
    raise AssertionError("the resumption did not end")


# -- the properties -------------------------------------------------------------------------------


@PROPERTIES
@given(
    program=programs(),
    initial=initial_states,
    seed=st.integers(0, 2**32 - 1),
    prefixes=st.lists(st.integers(1, 40), min_size=1, max_size=2),
)
def test_recorded_journals_replay_to_the_same_result(
    program: list[Op], initial: dict[str, str], seed: int, prefixes: list[int]
) -> None:
    rnd = random.Random(seed)

    async def scenario() -> None:
        runtime = await execute(program, rnd, initial)
        output = runtime.journal[-1][1]
        assert isinstance(output, pb.OutputCommandMessage)
        result = json.loads(output.value.content)
        assert result == expected(program, initial, result)
        await check_replays(program, runtime, initial, rnd, prefixes)

    asyncio.run(scenario())


@PROPERTIES
@given(program=programs(), initial=initial_states, seed=st.integers(0, 2**32 - 1))
def test_interleavings_without_races_give_one_result(
    program: list[Op], initial: dict[str, str], seed: int
) -> None:
    program = [op for op in program if op.kind != "select"] or [Op("run", "run0")]

    async def scenario() -> list[bytes]:
        outputs = []
        for s in (seed, seed + 1):
            runtime = await execute(program, random.Random(s), initial)
            output = runtime.journal[-1][1]
            assert isinstance(output, pb.OutputCommandMessage)
            outputs.append(output.value.content)
        return outputs

    first, second = asyncio.run(scenario())
    assert first == second


@st.composite
def mutations(draw: st.DrawFn, program: list[Op]) -> list[Op]:
    kind = draw(st.sampled_from(("rename", "swap", "insert")))
    mutated = list(program)
    if kind == "swap":
        pairs = [
            (i, j)
            for i in range(len(program))
            for j in range(i + 1, len(program))
            if program[i].signature() != program[j].signature()
        ]
        if pairs:
            i, j = draw(st.sampled_from(pairs))
            mutated[i], mutated[j] = mutated[j], mutated[i]
            return mutated
        kind = "rename"
    if kind == "insert":
        at = draw(st.integers(0, len(program)))
        mutated.insert(at, draw(ops("new")))
        return mutated
    at = draw(st.integers(0, len(program) - 1))
    op = program[at]
    if op.kind == "get":
        mutated[at] = replace(op, key=draw(st.sampled_from([k for k in KEYS if k != op.key])))
    elif op.parts:
        part = op.parts[0]
        mutated[at] = replace(op, parts=(replace(part, name=part.name + "x"), op.parts[1]))
    else:
        mutated[at] = replace(op, name=op.name + "x")
    return mutated


@PROPERTIES
@given(
    program=programs(),
    initial=initial_states,
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_changed_handlers_are_journal_mismatches(
    program: list[Op], initial: dict[str, str], seed: int, data: st.DataObject
) -> None:
    mutated = data.draw(mutations(program))
    assert [op.signature() for op in mutated] != [op.signature() for op in program]

    async def scenario() -> Sent:
        runtime = await execute(program, random.Random(seed), initial)
        journal = runtime.journal
        return await run_attempt(mutated, [_bytes(journal, _store_after(initial, journal))])

    sent = asyncio.run(scenario())
    kept = [(c, m) for c, m in sent.messages if c != M.PROPOSE_RUN_COMPLETION]
    assert len(kept) == 1, kept
    ((code, error),) = kept
    assert code == M.ERROR and isinstance(error, pb.ErrorMessage)
    assert error.code == 570, error
