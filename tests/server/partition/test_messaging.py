"""Calls, signals, awakeables, promises and attach across partitions (outbox + dedup)."""

from __future__ import annotations

from undying.protocol.ids import InvocationId
from undying.protocol.messages import MessageType, pb
from undying.server.partition import actions as act
from undying.server.partition.machine import StateMachine
from undying.server.partition.records import (
    AttachRequest,
    Body,
    Dedup,
    End,
    Entries,
    Envelope,
    IngressSink,
    Invoke,
    JournalItem,
    ResolvedCall,
    Result,
    Signal,
    Suspend,
    Target,
    TruncateOutbox,
)
from undying.server.partition.store import PartitionStore

CALLER = InvocationId(1 << 62, bytes(16))  # partition 0 of 2
CALLEE = InvocationId(3 << 62, b"\x01" * 16)  # partition 1 of 2
WF = Target("Wf", "run", "w1", "workflow", "workflow")
WF_SIGNAL = Target("Wf", "signal", "w1", "workflow", "shared")


class Cluster:
    """Two partitions; Send actions are delivered by hand, like the leader does."""

    def __init__(self) -> None:
        self.stores = [PartitionStore(0), PartitionStore(1)]
        self.machines = [StateMachine(s) for s in self.stores]
        self.now = 100
        self.responses: list[act.Respond] = []
        self.forwards: list[act.Forward] = []
        self.invokes: list[act.Invoke] = []

    def part(self, inv: InvocationId) -> int:
        return (inv.partition_key * 2) >> 64

    def apply(self, partition: int, body: Body, dedup: Dedup | None = None) -> None:
        m = self.machines[partition]
        m.apply(Envelope(partition, self.now, body, dedup))
        for a in m.take_actions():
            if isinstance(a, act.Send):
                target = (a.partition_key * 2) >> 64
                self.apply(target, a.body, Dedup(partition, a.seq))
                self.apply(partition, TruncateOutbox(a.seq))
            elif isinstance(a, act.Respond):
                self.responses.append(a)
            elif isinstance(a, act.Forward):
                self.forwards.append(a)
            elif isinstance(a, act.Invoke):
                self.invokes.append(a)

    def status(self, inv: InvocationId):  # type: ignore[no-untyped-def]
        return self.stores[self.part(inv)].get_status(inv.to_bytes())

    def journal(self, inv: InvocationId) -> list[int]:
        return [e.type for e in self.stores[self.part(inv)].journal(inv.to_bytes())]

    def start(self, inv: InvocationId, target: Target, sink: str | None = None) -> None:
        self.apply(
            self.part(inv),
            Invoke(
                id=inv.to_bytes(),
                target=target,
                body=b"{}",
                sink=IngressSink(sink) if sink else None,
            ),
        )

    def entries(self, inv: InvocationId, epoch: int, *items: JournalItem) -> None:
        self.apply(self.part(inv), Entries(inv.to_bytes(), epoch, list(items)))

    def finish(self, inv: InvocationId, epoch: int, value: bytes) -> None:
        out = pb.OutputCommandMessage(value=pb.Value(content=value)).SerializeToString()
        self.entries(inv, epoch, JournalItem(MessageType.OUTPUT, out))
        self.apply(self.part(inv), End(inv.to_bytes(), epoch))


def call_item(callee: InvocationId, target: Target) -> JournalItem:
    cmd = pb.CallCommandMessage(
        service_name=target.service,
        handler_name=target.handler,
        parameter=b'"p"',
        invocation_id_notification_idx=1,
        result_completion_id=2,
    )
    return JournalItem(
        MessageType.CALL,
        cmd.SerializeToString(),
        call=ResolvedCall(callee.to_bytes(), target, 86_400_000, 86_400_000),
    )


def test_a_call_runs_the_callee_and_returns_its_result_to_the_caller() -> None:
    c = Cluster()
    c.start(CALLER, Target("A", "a"), sink="r")
    c.entries(CALLER, 1, call_item(CALLEE, Target("B", "b")))
    # The caller learns the callee's id right away, the callee runs on its partition.
    assert c.journal(CALLER)[-1] == MessageType.CALL_INVOCATION_ID_COMPLETION
    assert act.Invoke(CALLEE.to_bytes(), 1) in c.invokes
    callee = c.status(CALLEE)
    assert callee is not None and callee.source.caller == CALLER.to_bytes()
    c.apply(0, Suspend(CALLER.to_bytes(), 1, completions=[2], signals=[1]))
    c.finish(CALLEE, 1, b'"B says hi"')
    # The result reached the caller's journal and woke it up.
    assert c.journal(CALLER)[-1] == MessageType.CALL_COMPLETION
    assert act.Invoke(CALLER.to_bytes(), 2) in c.invokes
    n = pb.Notification.FromString(c.stores[0].journal(CALLER.to_bytes())[-1].payload)
    assert n.completion_id == 2 and n.value.content == b'"B says hi"'
    # The outboxes are empty again.
    assert c.stores[0].outbox() == [] and c.stores[1].outbox() == []


def test_duplicate_deliveries_are_dropped() -> None:
    c = Cluster()
    c.start(CALLER, Target("A", "a"))
    body = Signal(CALLER.to_bytes(), index=17, kind="value", result=Result(value=b"1"))
    c.apply(0, body, Dedup(1, 5))
    c.apply(0, body, Dedup(1, 5))
    c.apply(0, body, Dedup(1, 4))
    assert c.journal(CALLER).count(MessageType.SIGNAL) == 1


def test_an_awakeable_resolves_once() -> None:
    c = Cluster()
    c.start(CALLER, Target("A", "a"))
    c.apply(0, Suspend(CALLER.to_bytes(), 1, signals=[17, 1]))
    assert c.status(CALLER).status == "suspended"
    c.apply(0, Signal(CALLER.to_bytes(), index=17, kind="value", result=Result(value=b"ok")))
    assert act.Invoke(CALLER.to_bytes(), 2) in c.invokes
    c.apply(0, Signal(CALLER.to_bytes(), index=17, kind="value", result=Result(value=b"again")))
    assert c.journal(CALLER).count(MessageType.SIGNAL) == 1


def test_cancel_of_an_inboxed_invocation_completes_it_with_409() -> None:
    c = Cluster()
    first = InvocationId(5, b"\x02" * 16)
    second = InvocationId(5, b"\x03" * 16)
    obj = Target("Counter", "add", "k", "virtual_object", "exclusive")
    c.start(first, obj)
    c.start(second, obj, sink="r2")
    assert c.status(second).status == "inboxed"
    c.apply(0, Signal(second.to_bytes(), index=1))
    assert c.responses[-1].result == Result(code=409, message="cancelled")
    c.finish(first, 1, b"1")
    assert c.stores[0].lock_owner("Counter", "k") is None


def test_workflow_promise_resolved_after_the_waiter() -> None:
    c = Cluster()
    run = InvocationId(7, b"\x04" * 16)
    signal = InvocationId(7, b"\x05" * 16)
    c.start(run, WF, sink="run")
    get = pb.GetPromiseCommandMessage(key="approval", result_completion_id=1)
    c.entries(run, 1, JournalItem(MessageType.GET_PROMISE, get.SerializeToString()))
    c.apply(0, Suspend(run.to_bytes(), 1, completions=[1], signals=[1]))
    c.start(signal, WF_SIGNAL)
    complete = pb.CompletePromiseCommandMessage(
        key="approval", completion_value=pb.Value(content=b'"yes"'), result_completion_id=1
    )
    c.entries(signal, 1, JournalItem(MessageType.COMPLETE_PROMISE, complete.SerializeToString()))
    assert c.journal(run)[-1] == MessageType.GET_PROMISE_COMPLETION
    assert act.Invoke(run.to_bytes(), 2) in c.invokes
    # Completing again fails with 409 for the completer.
    c.entries(signal, 1, JournalItem(MessageType.COMPLETE_PROMISE, complete.SerializeToString()))
    last = pb.Notification.FromString(c.stores[0].journal(signal.to_bytes())[-1].payload)
    assert last.failure.code == 409
    # Peek sees the value.
    peek = pb.PeekPromiseCommandMessage(key="approval", result_completion_id=3)
    c.entries(signal, 1, JournalItem(MessageType.PEEK_PROMISE, peek.SerializeToString()))
    peeked = pb.Notification.FromString(c.stores[0].journal(signal.to_bytes())[-1].payload)
    assert peeked.value.content == b'"yes"'


def test_workflow_run_twice_after_completion_is_a_conflict() -> None:
    c = Cluster()
    run = InvocationId(7, b"\x04" * 16)
    c.start(run, WF, sink="first")
    c.finish(run, 1, b'"done"')
    c.start(run, WF, sink="second")
    second = next(r for r in c.responses if r.request_id == "second")
    assert second.result == Result(code=409, message="the workflow method was already invoked")


def test_attach_and_output() -> None:
    c = Cluster()
    c.start(CALLEE, Target("B", "b"))
    c.apply(1, AttachRequest(CALLEE.to_bytes(), "output", IngressSink("o1")))
    assert c.responses[-1].kind == "not_ready"
    c.apply(1, AttachRequest(CALLEE.to_bytes(), "attach", IngressSink("a1")))
    c.finish(CALLEE, 1, b"42")
    attached = next(r for r in c.responses if r.request_id == "a1")
    assert attached.result == Result(value=b"42") and not attached.stored
    c.apply(1, AttachRequest(CALLEE.to_bytes(), "output", IngressSink("o2")))
    assert c.responses[-1].stored and c.responses[-1].result == Result(value=b"42")
    missing = InvocationId(3 << 62, b"\x09" * 16)
    c.apply(1, AttachRequest(missing.to_bytes(), "attach", IngressSink("m")))
    assert c.responses[-1].kind == "not_found"
