"""The partition state machine, driven record by record with an in-memory store."""

from __future__ import annotations

from undying.protocol.messages import MessageType, pb
from undying.server.partition import actions as act
from undying.server.partition.machine import StateMachine
from undying.server.partition.records import (
    AdminCommand,
    AttemptFailed,
    Body,
    End,
    Entries,
    Envelope,
    Expire,
    FailureInfo,
    IngressSink,
    Invoke,
    JournalItem,
    PatchState,
    Pinned,
    Result,
    Suspend,
    Target,
    TimerFired,
    TimerKey,
    decode_envelope,
    encode_envelope,
)
from undying.server.partition.state_version import state_version
from undying.server.partition.store import PartitionStore

INV = bytes(range(24))
INV2 = bytes(range(1, 25))
GREETER = Target("Greeter", "greet")
COUNTER_ADD = Target("Counter", "add", "alice", "virtual_object", "exclusive")


class Harness:
    def __init__(self) -> None:
        self.store = PartitionStore(0)
        self.machine = StateMachine(self.store)
        self.now = 1_000

    def apply(self, body: Body, *, at: int | None = None) -> list[act.Action]:
        if at is not None:
            self.now = at
        env = Envelope(0, self.now, body)
        # Every record survives the log's encoding unchanged.
        assert decode_envelope(encode_envelope(env)) == env
        self.machine.apply(env)
        return self.machine.take_actions()

    def journal_types(self, inv: bytes = INV) -> list[int]:
        return [e.type for e in self.store.journal(inv)]


def invoke(inv: bytes = INV, target: Target = GREETER, **kw: object) -> Invoke:
    return Invoke(id=inv, target=target, body=b'{"name":"Bob"}', **kw)  # type: ignore[arg-type]


def run_cmd(cid: int, name: str = "") -> JournalItem:
    return JournalItem(
        MessageType.RUN,
        pb.RunCommandMessage(result_completion_id=cid, name=name).SerializeToString(),
    )


def proposal(cid: int, value: bytes) -> JournalItem:
    return JournalItem(
        MessageType.PROPOSE_RUN_COMPLETION,
        pb.ProposeRunCompletionMessage(result_completion_id=cid, value=value).SerializeToString(),
    )


def sleep_cmd(cid: int, wake: int) -> JournalItem:
    return JournalItem(
        MessageType.SLEEP,
        pb.SleepCommandMessage(wake_up_time=wake, result_completion_id=cid).SerializeToString(),
    )


def output(value: bytes) -> JournalItem:
    return JournalItem(
        MessageType.OUTPUT,
        pb.OutputCommandMessage(value=pb.Value(content=value)).SerializeToString(),
    )


def test_invoke_runs_with_the_input_journaled() -> None:
    h = Harness()
    actions = h.apply(invoke(sink=IngressSink("r1")))
    assert actions == [act.Invoke(INV, 1)]
    s = h.store.get_status(INV)
    assert s is not None and s.status == "invoked" and s.epoch == 1
    assert h.journal_types() == [MessageType.INPUT]
    inp = pb.InputCommandMessage.FromString(h.store.journal(INV)[0].payload)
    assert inp.value.content == b'{"name":"Bob"}'


def test_run_proposal_becomes_a_notification_forwarded_to_the_live_attempt() -> None:
    h = Harness()
    h.apply(invoke())
    actions = h.apply(Entries(INV, 1, [run_cmd(1, "Notification"), proposal(1, b"42")]))
    assert h.journal_types() == [MessageType.INPUT, MessageType.RUN, MessageType.RUN_COMPLETION]
    [fwd] = actions
    assert isinstance(fwd, act.Forward) and fwd.type == MessageType.RUN_COMPLETION
    n = pb.Notification.FromString(fwd.payload)
    assert n.completion_id == 1 and n.value.content == b"42"
    # A second proposal for the same completion (a retried attempt) changes nothing.
    assert h.apply(Entries(INV, 1, [proposal(1, b"43")])) == []
    assert len(h.store.journal(INV)) == 3


def test_sleep_suspend_timer_resume_and_end() -> None:
    h = Harness()
    h.apply(invoke(sink=IngressSink("r1")))
    actions = h.apply(Entries(INV, 1, [sleep_cmd(1, 5_000)]))
    assert actions == [act.ArmTimer(TimerKey("sleep", INV, 1), 5_000)]
    assert h.apply(Suspend(INV, 1, completions=[1], signals=[1])) == []
    assert h.store.get_status(INV).status == "suspended"  # type: ignore[union-attr]
    # The timer fires: the completion is journaled and the invocation resumes in a new epoch.
    actions = h.apply(TimerFired(TimerKey("sleep", INV, 1), 5_000), at=5_001)
    assert actions == [act.Invoke(INV, 2)]
    assert h.journal_types()[-1] == MessageType.SLEEP_COMPLETION
    # Effects of the old epoch are ignored.
    assert h.apply(End(INV, 1)) == []
    h.apply(Entries(INV, 2, [output(b'"done"')]))
    actions = h.apply(End(INV, 2))
    respond = next(a for a in actions if isinstance(a, act.Respond))
    assert respond.request_id == "r1" and respond.result == Result(value=b'"done"')
    assert not respond.stored
    s = h.store.get_status(INV)
    assert s is not None and s.status == "completed" and s.completed_at == 5_001
    # A duplicate timer firing is ignored.
    assert h.apply(TimerFired(TimerKey("sleep", INV, 1), 5_000)) == []


def test_suspension_already_satisfied_resumes_at_once() -> None:
    h = Harness()
    h.apply(invoke())
    h.apply(Entries(INV, 1, [run_cmd(1), proposal(1, b"x")]))
    actions = h.apply(Suspend(INV, 1, completions=[1], signals=[1]))
    assert actions == [act.Invoke(INV, 2)]


def test_duplicate_invoke_attaches_and_answers_from_the_stored_result() -> None:
    h = Harness()
    h.apply(invoke(sink=IngressSink("r1")))
    assert h.apply(invoke(sink=IngressSink("r2"))) == []  # attached, waits
    h.apply(Entries(INV, 1, [output(b"1")]))
    actions = h.apply(End(INV, 1))
    answered = {a.request_id for a in actions if isinstance(a, act.Respond)}
    assert answered == {"r1", "r2"}
    [again] = [a for a in h.apply(invoke(sink=IngressSink("r3"))) if isinstance(a, act.Respond)]
    assert again.stored and again.result == Result(value=b"1")
    [sent] = h.apply(invoke(sink=IngressSink("r4"), mode="send"))
    assert isinstance(sent, act.Respond) and sent.kind == "previously_accepted"


def test_exclusive_handlers_queue_per_key() -> None:
    h = Harness()
    assert h.apply(invoke(INV, COUNTER_ADD)) == [act.Invoke(INV, 1)]
    assert h.apply(invoke(INV2, COUNTER_ADD)) == []
    assert h.store.get_status(INV2).status == "inboxed"  # type: ignore[union-attr]
    h.apply(Entries(INV, 1, [output(b"1")]))
    actions = h.apply(End(INV, 1))
    assert act.Invoke(INV2, 1) in actions
    assert h.store.lock_owner("Counter", "alice") == INV2


def test_state_commands_update_the_object_state() -> None:
    h = Harness()
    h.apply(invoke(INV, COUNTER_ADD))
    set_cmd = pb.SetStateCommandMessage(key=b"count", value=pb.Value(content=b"5"))
    get_cmd = pb.GetLazyStateCommandMessage(key=b"count", result_completion_id=1)
    actions = h.apply(
        Entries(
            INV,
            1,
            [
                JournalItem(MessageType.SET_STATE, set_cmd.SerializeToString()),
                JournalItem(MessageType.GET_LAZY_STATE, get_cmd.SerializeToString()),
            ],
        )
    )
    assert h.store.state("Counter", "alice") == {b"count": b"5"}
    [fwd] = actions
    assert isinstance(fwd, act.Forward)
    assert pb.Notification.FromString(fwd.payload).value.content == b"5"


def test_failures_are_recorded_and_pause_when_exhausted() -> None:
    h = Harness()
    h.apply(invoke())
    h.apply(Pinned(INV, 1, "dp_x", 6, "sdk/1"))
    failure = FailureInfo(500, "boom", related_command_name="Reminder")
    h.apply(AttemptFailed(INV, 1, failure, 1, 2_000))
    s = h.store.get_status(INV)
    assert s is not None and s.retry_count == 1 and s.last_failure == failure
    assert s.next_retry_at == 2_000 and s.status == "invoked"
    actions = h.apply(AttemptFailed(INV, 1, failure, 70, None, "pause"))
    assert actions == [act.Abort(INV)]
    assert h.store.get_status(INV).status == "paused"  # type: ignore[union-attr]
    assert h.apply(AdminCommand(INV, "resume")) == [act.Invoke(INV, 2)]


def test_last_start_at_is_the_start_of_the_latest_attempt() -> None:
    h = Harness()
    h.apply(invoke(), at=1_000)
    h.apply(Pinned(INV, 1, "dp_x", 6, "sdk/1"), at=1_010)
    assert h.store.get_status(INV).last_start_at == 1_010  # type: ignore[union-attr]
    failure = FailureInfo(500, "boom")
    h.apply(AttemptFailed(INV, 1, failure, 1, 2_000), at=1_500)
    assert h.store.get_status(INV).last_start_at == 1_010  # type: ignore[union-attr]
    # the retry began when the backoff ended, and failed too
    h.apply(AttemptFailed(INV, 1, failure, 2, 4_000), at=2_300)
    assert h.store.get_status(INV).last_start_at == 2_000  # type: ignore[union-attr]
    h.apply(AttemptFailed(INV, 1, failure, 3, None, "pause"), at=4_200)
    assert h.store.get_status(INV).last_start_at == 4_000  # type: ignore[union-attr]
    h.apply(AdminCommand(INV, "resume"), at=9_000)
    assert h.store.get_status(INV).last_start_at == 9_000  # type: ignore[union-attr]


def test_state_patch_applies_only_to_the_state_version_it_was_read_at() -> None:
    h = Harness()
    h.store.set_state("Counter", "alice", b"count", b"1")
    read_at = state_version({b"count": b"1"})
    h.apply(PatchState("Counter", "alice", {b"count": b"41"}, read_at))
    assert h.store.state("Counter", "alice") == {b"count": b"41"}
    # the same patch again: the state is no longer at that version, so it is ignored
    h.apply(PatchState("Counter", "alice", {b"count": b"7"}, read_at))
    assert h.store.state("Counter", "alice") == {b"count": b"41"}
    # without a version (--force): applied whatever the state is
    h.apply(PatchState("Counter", "alice", {}, None))
    assert h.store.state("Counter", "alice") == {}


def test_pause_stops_a_running_invocation_only() -> None:
    h = Harness()
    h.apply(invoke())
    h.apply(Entries(INV, 1, [sleep_cmd(1, 5_000)]))
    h.apply(Suspend(INV, 1, completions=[1], signals=[1]))
    # as restate-server: a suspended invocation is "already paused" and stays suspended
    assert h.apply(AdminCommand(INV, "pause")) == []
    assert h.store.get_status(INV).status == "suspended"  # type: ignore[union-attr]
    actions = h.apply(TimerFired(TimerKey("sleep", INV, 1), 5_000), at=5_001)
    assert actions == [act.Invoke(INV, 2)]
    assert h.apply(AdminCommand(INV, "pause")) == [act.Abort(INV)]
    assert h.store.get_status(INV).status == "paused"  # type: ignore[union-attr]


def test_kill_answers_waiters_with_409() -> None:
    h = Harness()
    h.apply(invoke(sink=IngressSink("r1")))
    actions = h.apply(AdminCommand(INV, "kill"))
    respond = next(a for a in actions if isinstance(a, act.Respond))
    assert respond.result == Result(code=409, message="killed")
    assert act.Abort(INV) in actions


def test_delayed_invoke_waits_for_its_timer() -> None:
    h = Harness()
    actions = h.apply(invoke(execute_at=9_000, sink=IngressSink("r"), mode="send"))
    kinds = [type(a) for a in actions]
    assert kinds == [act.Respond, act.ArmTimer]
    assert h.store.get_status(INV).status == "scheduled"  # type: ignore[union-attr]
    assert h.apply(TimerFired(TimerKey("invoke", INV), 9_000), at=9_000) == [act.Invoke(INV, 1)]


def test_same_records_build_the_same_state() -> None:
    records: list[tuple[int, Body]] = [
        (1, invoke(sink=IngressSink("r1"))),
        (2, Entries(INV, 1, [run_cmd(1, "a"), proposal(1, b"1"), sleep_cmd(2, 50)])),
        (3, Suspend(INV, 1, completions=[2], signals=[1])),
        (60, TimerFired(TimerKey("sleep", INV, 2), 50)),
        (61, Entries(INV, 2, [output(b"ok")])),
        (62, End(INV, 2)),
    ]
    results = []
    for _ in range(2):
        h = Harness()
        for at, body in records:
            h.apply(body, at=at)
        results.append((h.store.get_status(INV), h.store.journal(INV)))
    assert results[0] == results[1]


def test_retention_keeps_the_result_then_forgets_the_invocation() -> None:
    h = Harness()
    h.apply(invoke(completion_retention_ms=10_000, journal_retention_ms=2_000))
    h.apply(Entries(INV, 1, [output(b"1")]))
    h.apply(End(INV, 1), at=1_000)
    assert h.store.expired(2_999) == []
    # The cleaner finds it when the journal expires, then again when the result does.
    assert h.store.expired(3_000) == [INV]
    h.apply(Expire([INV]), at=3_000)
    s = h.store.get_status(INV)
    assert s is not None and s.result == Result(value=b"1") and h.store.journal(INV) == []
    assert h.store.expired(10_999) == []
    h.apply(Expire([INV]), at=5_000)  # too early: nothing happens
    assert h.store.get_status(INV) is not None
    assert h.store.expired(11_000) == [INV]
    h.apply(Expire([INV]), at=11_000)
    assert h.store.get_status(INV) is None


def test_zero_retention_forgets_at_once() -> None:
    h = Harness()
    h.apply(invoke(sink=IngressSink("r"), completion_retention_ms=0, journal_retention_ms=0))
    h.apply(Entries(INV, 1, [output(b"1")]))
    actions = h.apply(End(INV, 1))
    assert any(isinstance(a, act.Respond) for a in actions)
    assert h.store.get_status(INV) is None
