"""The journal machine (sans-IO) and the attempt driver: bytes in, bytes out, no network."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf.message import Message

from undying.errors import InvocationCancelled, ProtocolError, TerminalError, UnsupportedVersion
from undying.protocol.framing import encode_frame
from undying.protocol.messages import MessageType, pb
from undying.sdk.context import Context, ObjectContext, WorkflowContext
from undying.sdk.futures import gather, select
from undying.sdk.invocation import RunOptions
from undying.sdk.vm import (
    CANCEL,
    Failure,
    InvocationIdResult,
    Key,
    Machine,
    Phase,
    StateKeysResult,
    Target,
    VoidResult,
    content_type_version,
)

from .journal import (
    INVOCATION_ID,
    Entry,
    attempt,
    call_completion,
    call_id,
    cmd,
    completion,
    decode,
    frame,
    frames,
    input_entry,
    journal,
    named_signal,
    run_completion,
    signal,
    sleep_completion,
    start,
)

M = MessageType


def machine(*entries: Entry | Message, version: int = 6, **start_kwargs: Any) -> Machine:
    """A machine fed Start + Input + ``entries`` (input still open)."""
    m = Machine(version)
    m.feed(journal(*entries, **start_kwargs))
    return m


def phase(m: Machine) -> Phase:
    """The machine's phase (a function, so that type checkers do not narrow it)."""
    return m.phase


def executable(m: Machine) -> bool:
    """Whether the machine is ready to execute the handler (not narrowed either)."""
    return m.ready_to_execute


def cid(key: Key) -> int:
    """A completion id."""
    assert isinstance(key, int) and key > 0
    return key


def written(m: Machine) -> list[Entry]:
    return decode(m.take_output())


def codes(entries: list[Entry]) -> list[int]:
    return [code for code, _ in entries]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- versions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [5, 6])
def test_content_type_of_supported_versions(version: int) -> None:
    assert content_type_version(f"application/vnd.restate.invocation.v{version}") == version


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/vnd.restate.invocation.v4",
        "application/vnd.restate.invocation.v7",
        "application/vnd.restate.invocation.vX",
    ],
)
def test_content_type_refused(content_type: str | None) -> None:
    with pytest.raises(UnsupportedVersion) as info:
        content_type_version(content_type)
    assert info.value.code == 415


def test_machine_refuses_unsupported_version() -> None:
    with pytest.raises(UnsupportedVersion):
        Machine(7)


# -- start and the journal window ----------------------------------------------------------------


def test_entries_are_buffered_until_known_entries_arrived() -> None:
    m = Machine(6)
    assert phase(m) is Phase.WAITING_START and not executable(m)
    m.feed(frame(start(3)))
    assert phase(m) is Phase.WAITING_REPLAY_ENTRIES
    m.feed(frame(input_entry(b'"x"', [("h", "v")])))
    m.feed(frame(pb.SleepCommandMessage(result_completion_id=1)))
    assert phase(m) is Phase.WAITING_REPLAY_ENTRIES and not executable(m)
    m.feed(frame(sleep_completion(1)))
    assert phase(m) is Phase.REPLAYING and executable(m) and m.replaying
    assert m.input is not None and m.input.value.content == b'"x"'
    assert [(h.key, h.value) for h in m.input.headers] == [("h", "v")]
    assert m.command_index == 0
    assert not m.has_output and m.take_output() == b""


def test_journal_with_input_only_starts_processing() -> None:
    m = machine(
        value=b"1",
        key="k1",
        debug_id="inv_abc",
        random_seed=99,
        retry_count=2,
        duration_ms=1500,
    )
    assert m.phase is Phase.PROCESSING and not m.replaying
    assert m.start is not None
    assert (m.start.id, m.start.debug_id, m.start.key) == (INVOCATION_ID, "inv_abc", "k1")
    assert (m.start.random_seed, m.start.retry_count, m.start.duration_since_last_entry_ms) == (
        99,
        2,
        1500,
    )


def test_any_chunking_of_the_journal_gives_the_same_machine() -> None:
    data = journal(
        pb.RunCommandMessage(result_completion_id=1, name="a"),
        run_completion(1, b"1"),
        value=b"in",
    )
    m = Machine(6)
    for i in range(len(data)):
        assert not m.ready_to_execute
        m.feed(data[i : i + 1])
    assert phase(m) is Phase.REPLAYING
    key = m.run("a")
    assert m.poll([key]) and m.result(key) == b"1"
    assert phase(m) is Phase.PROCESSING


def test_v5_derives_the_seed_from_the_id_and_v6_uses_the_start_seed() -> None:
    expected = int.from_bytes(hashlib.blake2b(INVOCATION_ID, digest_size=8).digest(), "big")
    v5 = machine(version=5, random_seed=1234)
    v6 = machine(version=6, random_seed=1234)
    assert v5.start is not None and v6.start is not None
    assert v5.start.random_seed == expected
    assert v6.start.random_seed == 1234


def _violation(action: Callable[[], object]) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        action()
    assert info.value.code == 571
    return info.value


def test_first_message_must_be_start() -> None:
    _violation(lambda: Machine(6).feed(frame(input_entry())))


def test_second_start_is_a_violation() -> None:
    m = machine()
    _violation(lambda: m.feed(frame(start(1))))


def test_second_start_inside_the_journal_window_is_a_violation() -> None:
    m = Machine(6)
    m.feed(frame(start(2)) + frame(input_entry()))
    _violation(lambda: m.feed(frame(start(1))))


def test_command_after_the_journal_window_is_a_violation() -> None:
    m = machine()
    error = _violation(lambda: m.feed(frame(pb.SleepCommandMessage(result_completion_id=1))))
    assert "after the journal" in str(error)


def test_notifications_and_acks_after_the_journal_window_are_accepted() -> None:
    m = machine()
    m.feed(frame(sleep_completion(1)))
    m.feed(frame(pb.CommandAckMessage(command_index=1)))
    assert m.poll([1]) and m.result(1) is VoidResult.VOID


@pytest.mark.parametrize("sent", [0, 1, 2])
def test_eof_before_the_journal_is_complete_is_a_violation(sent: int) -> None:
    data = [frame(start(2)), frame(input_entry()), frame(sleep_completion(1))]
    m = Machine(6)
    m.feed(b"".join(data[:sent]))
    _violation(m.close_input)


def test_eof_after_the_journal_is_fine() -> None:
    m = machine()
    m.close_input()
    assert m.input_closed


def test_journal_must_start_with_input() -> None:
    m = Machine(6)
    m.feed(frame(start(1)))
    _violation(lambda: m.feed(frame(pb.SleepCommandMessage(result_completion_id=1))))


def test_known_entries_zero_is_a_violation() -> None:
    _violation(lambda: Machine(6).feed(frame(start(0))))


@pytest.mark.parametrize(
    "garbage",
    [
        encode_frame(0x0100, b""),  # unknown control message
        encode_frame(0xFC00, b""),  # custom entry: not supported
        encode_frame(M.START, b"\xff\xff\xff"),  # not protobuf
        encode_frame(M.START, b"\x0a\x05ab"),  # truncated field
    ],
)
def test_garbage_frames_are_violations(garbage: bytes) -> None:
    _violation(lambda: Machine(6).feed(garbage))


def test_garbage_inside_the_journal_is_a_violation() -> None:
    m = Machine(6)
    m.feed(frame(start(2)) + frame(input_entry()))
    _violation(lambda: m.feed(encode_frame(M.SLEEP, b"\x08")))


def test_control_message_inside_the_journal_is_a_violation() -> None:
    m = Machine(6)
    m.feed(frame(start(2)) + frame(input_entry()))
    _violation(lambda: m.feed(frame(pb.EndMessage())))


def test_non_utf8_state_key_is_a_violation() -> None:
    head = start(1, state={})
    head.state_map.append(pb.StartMessage.StateEntry(key=b"\xff", value=b"1"))
    _violation(lambda: Machine(6).feed(frame(head)))


def test_commands_before_the_journal_is_complete_are_refused() -> None:
    m = Machine(6)
    m.feed(frame(start(2)) + frame(input_entry()))
    _violation(lambda: m.run("x"))


# -- eager and lazy state ------------------------------------------------------------------------


def test_complete_state_map_answers_reads_eagerly() -> None:
    m = machine(state={"a": b"1", "empty": b""})
    ka, kb, ke = m.get_state("a"), m.get_state("b"), m.get_state("empty")
    assert (ka, kb, ke) == (1, 2, 3)  # eager reads consume completion ids
    assert m.is_ready(ka) and m.result(ka) == b"1"
    assert m.result(kb) is VoidResult.VOID
    assert m.result(ke) == b""  # present but empty is not absent
    out = written(m)
    assert codes(out) == [M.GET_EAGER_STATE] * 3
    assert out[0][1] == pb.GetEagerStateCommandMessage(key=b"a", value=pb.Value(content=b"1"))
    assert out[1][1] == pb.GetEagerStateCommandMessage(key=b"b", void=pb.Void())
    assert out[2][1] == pb.GetEagerStateCommandMessage(key=b"empty", value=pb.Value())


def test_set_clear_and_clear_all_update_the_eager_view() -> None:
    m = machine(state={"a": b"1", "b": b"2"})
    m.set_state("c", b"3")
    m.clear_state("a")
    assert m.result(m.get_state("c")) == b"3"
    assert m.result(m.get_state("a")) is VoidResult.VOID
    keys = m.get_state_keys()
    assert m.result(keys) == StateKeysResult(("b", "c"))
    m.clear_all_state()
    assert m.result(m.get_state("b")) is VoidResult.VOID
    assert m.result(m.get_state_keys()) == StateKeysResult(())
    out = written(m)
    assert codes(out) == [
        M.SET_STATE,
        M.CLEAR_STATE,
        M.GET_EAGER_STATE,
        M.GET_EAGER_STATE,
        M.GET_EAGER_STATE_KEYS,
        M.CLEAR_ALL_STATE,
        M.GET_EAGER_STATE,
        M.GET_EAGER_STATE_KEYS,
    ]
    assert out[0][1] == pb.SetStateCommandMessage(key=b"c", value=pb.Value(content=b"3"))
    assert out[1][1] == pb.ClearStateCommandMessage(key=b"a")
    assert out[4][1] == pb.GetEagerStateKeysCommandMessage(value=pb.StateKeys(keys=[b"b", b"c"]))
    assert out[7][1] == pb.GetEagerStateKeysCommandMessage(value=pb.StateKeys())


def test_partial_state_map_reads_missing_keys_lazily() -> None:
    m = machine(state={"a": b"1"}, partial_state=True)
    ka = m.get_state("a")
    kb = m.get_state("b")
    assert m.result(ka) == b"1"
    assert kb == 2 and not m.is_ready(kb) and not m.poll([kb])
    out = written(m)
    assert out == [
        cmd(pb.GetEagerStateCommandMessage(key=b"a", value=pb.Value(content=b"1"))),
        cmd(pb.GetLazyStateCommandMessage(key=b"b", result_completion_id=2)),
    ]
    m.feed(frame(completion(M.GET_LAZY_STATE_COMPLETION, 2, b"7")))
    assert m.poll([kb]) and m.result(kb) == b"7"


def test_lazy_read_of_an_absent_key_is_void() -> None:
    m = machine()  # no map at all: partial
    key = m.get_state("x")
    m.feed(frame(completion(M.GET_LAZY_STATE_COMPLETION, cid(key))))
    assert m.poll([key]) and m.result(key) is VoidResult.VOID


def test_writes_make_partial_state_readable_eagerly() -> None:
    m = machine()
    m.set_state("a", b"1")
    m.clear_state("b")
    assert m.result(m.get_state("a")) == b"1"
    assert m.result(m.get_state("b")) is VoidResult.VOID
    lazy = m.get_state("c")
    assert not m.is_ready(lazy)
    keys = m.get_state_keys()  # still partial: lazy
    assert codes(written(m)) == [
        M.SET_STATE,
        M.CLEAR_STATE,
        M.GET_EAGER_STATE,
        M.GET_EAGER_STATE,
        M.GET_LAZY_STATE,
        M.GET_LAZY_STATE_KEYS,
    ]
    m.clear_all_state()
    assert m.result(m.get_state("c")) is VoidResult.VOID  # clear-all makes the view complete
    assert not m.is_ready(keys)


def test_lazy_state_keys_are_sorted() -> None:
    m = machine()
    key = cid(m.get_state_keys())
    assert written(m) == [cmd(pb.GetLazyStateKeysCommandMessage(result_completion_id=key))]
    notification = pb.Notification(completion_id=key, state_keys=pb.StateKeys(keys=[b"z", b"a"]))
    m.feed(frame((M.GET_LAZY_STATE_KEYS_COMPLETION, notification)))
    assert m.poll([key]) and m.result(key) == StateKeysResult(("a", "z"))


# -- completion ids and commands -----------------------------------------------------------------


def test_completion_ids_are_allocated_in_program_order_from_one() -> None:
    m = machine(state={})
    assert m.get_state("s") == 1
    assert m.run("r") == 2
    assert m.call("S", "h", b"p") == (3, 4)  # the id notification first, then the result
    assert m.sleep(1000) == 5
    assert m.send("S", "h", b"p") == 6
    awakeable_id, awakeable_key = m.awakeable()
    assert awakeable_key == -17  # awakeables use signal indexes, not completion ids
    assert m.get_state_keys() == 7
    assert m.get_promise("p") == 8
    assert m.peek_promise("p") == 9
    assert m.complete_promise("p", b"v") == 10
    assert m.attach_invocation(Target(invocation_id="inv_1")) == 11
    assert m.get_invocation_output(Target(invocation_id="inv_1")) == 12
    m.set_state("s", b"1")  # no completion
    assert m.run("r2") == 13


def test_commands_carry_their_fields() -> None:
    m = machine()
    m.run("step")
    m.sleep(1_795_496_346_405, "nap")
    m.call(
        "Svc",
        "h",
        b"arg",
        key="k",
        headers=[("a", "b")],
        idempotency_key="idem",
        name="",
    )
    m.send("Svc", "h", b"arg", key="k", invoke_time_ms=1234, idempotency_key="i2")
    m.send("Svc", "h", b"")
    m.get_promise("p")
    m.peek_promise("p")
    m.complete_promise("p", b"v")
    m.complete_promise("p", Failure(409, "no"))
    m.attach_invocation(Target(invocation_id="inv_1"))
    m.attach_invocation(Target(workflow="Wf", key="wk"))
    m.get_invocation_output(Target(service="S", handler="h", idempotency_key="ik", key="ok"))
    m.get_invocation_output(Target(service="S", handler="h", idempotency_key="ik"))
    m.complete_awakeable("sign_1x", b"v")
    m.complete_awakeable("sign_1x", Failure(500, "bad"))
    m.send_signal("inv_2", index=1)
    m.send_signal("inv_2", name="go", result=b"now")
    m.send_signal("inv_2", name="go", result=Failure(400, "no"))
    m.write_output(b"out")
    m.end()
    assert m.closed
    assert written(m) == [
        cmd(pb.RunCommandMessage(result_completion_id=1, name="step")),
        cmd(
            pb.SleepCommandMessage(
                wake_up_time=1_795_496_346_405, result_completion_id=2, name="nap"
            )
        ),
        cmd(
            pb.CallCommandMessage(
                service_name="Svc",
                handler_name="h",
                parameter=b"arg",
                headers=[pb.Header(key="a", value="b")],
                key="k",
                idempotency_key="idem",
                invocation_id_notification_idx=3,
                result_completion_id=4,
            )
        ),
        cmd(
            pb.OneWayCallCommandMessage(
                service_name="Svc",
                handler_name="h",
                parameter=b"arg",
                invoke_time=1234,
                key="k",
                idempotency_key="i2",
                invocation_id_notification_idx=5,
            )
        ),
        cmd(
            pb.OneWayCallCommandMessage(
                service_name="Svc", handler_name="h", invocation_id_notification_idx=6
            )
        ),
        cmd(pb.GetPromiseCommandMessage(key="p", result_completion_id=7)),
        cmd(pb.PeekPromiseCommandMessage(key="p", result_completion_id=8)),
        cmd(
            pb.CompletePromiseCommandMessage(
                key="p", completion_value=pb.Value(content=b"v"), result_completion_id=9
            )
        ),
        cmd(
            pb.CompletePromiseCommandMessage(
                key="p",
                completion_failure=pb.Failure(code=409, message="no"),
                result_completion_id=10,
            )
        ),
        cmd(pb.AttachInvocationCommandMessage(invocation_id="inv_1", result_completion_id=11)),
        cmd(
            pb.AttachInvocationCommandMessage(
                workflow_target=pb.WorkflowTarget(workflow_name="Wf", workflow_key="wk"),
                result_completion_id=12,
            )
        ),
        cmd(
            pb.GetInvocationOutputCommandMessage(
                idempotent_request_target=pb.IdempotentRequestTarget(
                    service_name="S", service_key="ok", handler_name="h", idempotency_key="ik"
                ),
                result_completion_id=13,
            )
        ),
        cmd(
            pb.GetInvocationOutputCommandMessage(
                idempotent_request_target=pb.IdempotentRequestTarget(
                    service_name="S", handler_name="h", idempotency_key="ik"
                ),
                result_completion_id=14,
            )
        ),
        cmd(
            pb.CompleteAwakeableCommandMessage(awakeable_id="sign_1x", value=pb.Value(content=b"v"))
        ),
        cmd(
            pb.CompleteAwakeableCommandMessage(
                awakeable_id="sign_1x", failure=pb.Failure(code=500, message="bad")
            )
        ),
        cmd(pb.SendSignalCommandMessage(target_invocation_id="inv_2", idx=1, void=pb.Void())),
        cmd(
            pb.SendSignalCommandMessage(
                target_invocation_id="inv_2", name="go", value=pb.Value(content=b"now")
            )
        ),
        cmd(
            pb.SendSignalCommandMessage(
                target_invocation_id="inv_2", name="go", failure=pb.Failure(code=400, message="no")
            )
        ),
        cmd(pb.OutputCommandMessage(value=pb.Value(content=b"out"))),
        cmd(pb.EndMessage()),
    ]


def test_idempotent_target_without_key_has_no_service_key() -> None:
    m = machine()
    m.attach_invocation(Target(service="S", handler="h", idempotency_key="ik"))
    ((_, message),) = written(m)
    assert isinstance(message, pb.AttachInvocationCommandMessage)
    assert not message.idempotent_request_target.HasField("service_key")


def test_incomplete_attach_target_is_refused() -> None:
    with pytest.raises(ValueError):
        machine().attach_invocation(Target(service="S"))


def test_run_proposals_and_must_execute() -> None:
    m = machine(
        pb.RunCommandMessage(result_completion_id=1, name="done"),
        run_completion(1, b"1"),
        pb.RunCommandMessage(result_completion_id=2, name="pending"),
    )
    done, pending = m.run("done"), m.run("pending")
    assert not m.must_execute(done)  # its result is in the journal: skip the closure
    assert m.must_execute(pending)
    fresh = m.run("fresh")
    assert m.must_execute(fresh)
    m.propose_run_completion(pending, b"2")
    m.propose_run_completion(fresh, Failure(400, "terminal"))
    assert written(m) == [
        cmd(pb.RunCommandMessage(result_completion_id=3, name="fresh")),
        cmd(pb.ProposeRunCompletionMessage(result_completion_id=2, value=b"2")),
        cmd(
            pb.ProposeRunCompletionMessage(
                result_completion_id=3, failure=pb.Failure(code=400, message="terminal")
            )
        ),
    ]
    m.feed(frame(run_completion(3, failure=(400, "terminal"))))
    assert m.poll([fresh]) and m.result(fresh) == Failure(400, "terminal")


def test_run_result_known_anywhere_in_the_journal_is_not_executed_again() -> None:
    # the proposal of run 1 was journaled after the next command
    m = machine(
        pb.RunCommandMessage(result_completion_id=1, name="a"),
        pb.SleepCommandMessage(result_completion_id=2),
        run_completion(1, b"1"),
    )
    key = m.run("a")
    assert not m.must_execute(key)


def test_notification_results() -> None:
    m = machine()
    m.feed(
        frames(
            [
                call_id(1, "inv_x"),
                call_completion(2, failure=(404, "nope")),
                signal(17, b'"v"'),
                named_signal("go", b"1"),
                signal(1),
            ]
        )
    )
    assert m.poll([1]) and m.result(1) == InvocationIdResult("inv_x")
    assert m.poll([2]) and m.result(2) == Failure(404, "nope")
    assert m.poll([-17]) and m.result(-17) == b'"v"'
    assert m.poll(["go"]) and m.result("go") == b"1"
    assert m.poll([CANCEL]) and m.result(CANCEL) is VoidResult.VOID


def test_notifications_become_ready_lazily_in_journal_order() -> None:
    m = machine(sleep_completion(2), sleep_completion(1), sleep_completion(3))
    assert not m.is_ready(1)
    assert m.poll([1, 3])  # moves 2, then 1: stops there
    assert m.is_ready(2) and m.is_ready(1) and not m.is_ready(3)
    assert m.poll([3]) and m.is_ready(3)
    assert not m.poll([4])


# -- awakeables -----------------------------------------------------------------------------------


def _awakeable_id(invocation_id: bytes, index: int) -> str:
    raw = invocation_id + struct.pack(">I", index)
    return "sign_1" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_awakeable_ids_encode_the_invocation_id_and_the_signal_index() -> None:
    m = machine()
    first, k1 = m.awakeable()
    second, k2 = m.awakeable()
    assert (k1, k2) == (-17, -18)
    assert first == _awakeable_id(INVOCATION_ID, 17)
    assert second == _awakeable_id(INVOCATION_ID, 18)
    assert len(first) == 44 and "=" not in first
    assert not m.has_output  # creating an awakeable journals nothing


def test_awakeable_id_matches_the_protocol_example() -> None:
    # protocol.md §6.5: this id decodes to the invocation's 24 id bytes + 00000011 (17)
    example = "sign_1PWhu4wmWx1HeZTS4zOQ4uXtDqdLDqo7OAAAAEQ"
    raw = base64.urlsafe_b64decode(example[len("sign_1") :] + "==")
    assert len(raw) == 28 and raw[24:] == b"\x00\x00\x00\x11"
    m = machine(invocation_id=raw[:24])
    assert m.awakeable() == (example, -17)


def test_awakeable_is_resolved_by_its_signal() -> None:
    m = machine()
    _, key = m.awakeable()
    m.feed(frame(signal(17, b'"done"')))
    assert m.poll([key]) and m.result(key) == b'"done"'


# -- suspension, errors, end ---------------------------------------------------------------------


def test_suspension_lists_completions_signals_and_names_plus_cancellation() -> None:
    m = machine()
    m.suspend([4, 2, -17, "go", CANCEL])
    assert m.closed
    assert written(m) == [
        cmd(
            pb.SuspensionMessage(
                waiting_completions=[2, 4], waiting_signals=[1, 17], waiting_named_signals=["go"]
            )
        )
    ]


def test_suspension_always_includes_cancellation() -> None:
    m = machine()
    m.suspend([3])
    assert written(m) == [cmd(pb.SuspensionMessage(waiting_completions=[3], waiting_signals=[1]))]


def test_suspension_after_cancellation_was_consumed_does_not_wait_for_it_again() -> None:
    # the runtime resumes at once when a listed notification is in the journal: listing the
    # consumed cancellation would resume the invocation over and over
    m = machine(pb.SleepCommandMessage(result_completion_id=1), signal(1))
    m.sleep(0)
    assert m.poll([1, CANCEL]) and m.is_ready(CANCEL) and not m.is_ready(1)
    m.suspend([1])
    assert written(m) == [cmd(pb.SuspensionMessage(waiting_completions=[1]))]


def test_the_attempt_is_over_after_suspension() -> None:
    m = machine()
    m.suspend([1])
    written(m)
    _violation(lambda: m.run("late"))
    m.fail(500, "ignored")  # nothing more is written once closed
    m.propose_run_completion(1, b"x")
    assert not m.has_output


def test_error_message_fields() -> None:
    m = machine()
    m.fail(
        500,
        "boom",
        stacktrace="Traceback…",
        next_retry_delay_ms=200,
        related_command=(1, "step", M.RUN),
    )
    assert m.closed
    assert written(m) == [
        cmd(
            pb.ErrorMessage(
                code=500,
                message="boom",
                stacktrace="Traceback…",
                related_command_index=1,
                related_command_name="step",
                related_command_type=1041,
                next_retry_delay=200,
            )
        )
    ]


def test_plain_error_has_no_optional_fields() -> None:
    m = machine()
    m.fail(500, "boom")
    ((_, error),) = written(m)
    assert isinstance(error, pb.ErrorMessage)
    for field in (
        "related_command_index",
        "related_command_name",
        "related_command_type",
        "next_retry_delay",
    ):
        assert not error.HasField(field)


def test_output_value_and_failure() -> None:
    m = machine()
    m.write_output(Failure(409, "nope"))
    m.end()
    assert written(m) == [
        cmd(pb.OutputCommandMessage(failure=pb.Failure(code=409, message="nope"))),
        cmd(pb.EndMessage()),
    ]
    m = machine()
    m.write_output(b"")
    m.end()
    assert frame(written(m)[0]) == bytes.fromhex("0401000000000002 7200")  # protocol.md §4


def test_end_after_a_replayed_output_writes_only_end() -> None:
    m = machine(pb.OutputCommandMessage(value=pb.Value(content=b'"hi"')))
    m.write_output(b'"hi"')
    assert m.output_replayed
    m.end()
    assert m.take_output() == bytes.fromhex("0003000000000000")


# -- replay comparison (protocol.md §6.4) ----------------------------------------------------------


Op = Callable[[Machine], object]

#: (what, recorded command, the same operation, operations that differ in a compared field)
COMPARED: list[tuple[str, Message, Op, list[Op]]] = [
    (
        "set state",
        pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1")),
        lambda m: m.set_state("a", b"1"),
        [lambda m: m.set_state("b", b"1"), lambda m: m.set_state("a", b"2")],
    ),
    (
        "clear state",
        pb.ClearStateCommandMessage(key=b"a"),
        lambda m: m.clear_state("a"),
        [lambda m: m.clear_state("b"), lambda m: m.clear_all_state()],
    ),
    (
        "clear all",
        pb.ClearAllStateCommandMessage(),
        lambda m: m.clear_all_state(),
        [lambda m: m.clear_state("a")],
    ),
    (
        "get promise",
        pb.GetPromiseCommandMessage(key="p", result_completion_id=1),
        lambda m: m.get_promise("p"),
        [lambda m: m.get_promise("q"), lambda m: m.peek_promise("p")],
    ),
    (
        "peek promise",
        pb.PeekPromiseCommandMessage(key="p", result_completion_id=1),
        lambda m: m.peek_promise("p"),
        [lambda m: m.peek_promise("q"), lambda m: m.get_promise("p")],
    ),
    (
        "complete promise",
        pb.CompletePromiseCommandMessage(
            key="p", completion_value=pb.Value(content=b"v"), result_completion_id=1
        ),
        lambda m: m.complete_promise("p", b"v"),
        [
            lambda m: m.complete_promise("q", b"v"),
            lambda m: m.complete_promise("p", b"w"),
            lambda m: m.complete_promise("p", Failure(500, "v")),
        ],
    ),
    (
        "run",
        pb.RunCommandMessage(name="step", result_completion_id=1),
        lambda m: m.run("step"),
        [lambda m: m.run("other"), lambda m: m.run("")],
    ),
    (
        "attach",
        pb.AttachInvocationCommandMessage(invocation_id="inv_1", result_completion_id=1),
        lambda m: m.attach_invocation(Target(invocation_id="inv_1")),
        [
            lambda m: m.attach_invocation(Target(invocation_id="inv_2")),
            lambda m: m.attach_invocation(Target(workflow="inv_1", key="")),
            lambda m: m.get_invocation_output(Target(invocation_id="inv_1")),
        ],
    ),
    (
        "get invocation output",
        pb.GetInvocationOutputCommandMessage(
            workflow_target=pb.WorkflowTarget(workflow_name="W", workflow_key="k"),
            result_completion_id=1,
        ),
        lambda m: m.get_invocation_output(Target(workflow="W", key="k")),
        [
            lambda m: m.get_invocation_output(Target(workflow="W", key="j")),
            lambda m: m.get_invocation_output(Target(workflow="V", key="k")),
        ],
    ),
    (
        "send signal",
        pb.SendSignalCommandMessage(
            target_invocation_id="inv_1", name="go", value=pb.Value(content=b"1")
        ),
        lambda m: m.send_signal("inv_1", name="go", result=b"1"),
        [
            lambda m: m.send_signal("inv_2", name="go", result=b"1"),
            lambda m: m.send_signal("inv_1", name="stop", result=b"1"),
            lambda m: m.send_signal("inv_1", name="go", result=b"2"),
            lambda m: m.send_signal("inv_1", name="go", result=Failure(500, "1")),
            lambda m: m.send_signal("inv_1", index=1),
        ],
    ),
    (
        "sleep",
        pb.SleepCommandMessage(name="nap", wake_up_time=10, result_completion_id=1),
        lambda m: m.sleep(99_999, "nap"),
        [lambda m: m.sleep(10, "other"), lambda m: m.sleep(10, "")],
    ),
    (
        "call",
        pb.CallCommandMessage(
            service_name="S",
            handler_name="h",
            parameter=b"p",
            headers=[pb.Header(key="a", value="b")],
            key="k",
            idempotency_key="i",
            invocation_id_notification_idx=1,
            result_completion_id=2,
        ),
        lambda m: m.call("S", "h", b"p", key="k", headers=[("a", "b")], idempotency_key="i"),
        [
            lambda m: m.call("T", "h", b"p", key="k", headers=[("a", "b")], idempotency_key="i"),
            lambda m: m.call("S", "g", b"p", key="k", headers=[("a", "b")], idempotency_key="i"),
            lambda m: m.call("S", "h", b"q", key="k", headers=[("a", "b")], idempotency_key="i"),
            lambda m: m.call("S", "h", b"p", key="j", headers=[("a", "b")], idempotency_key="i"),
            lambda m: m.call("S", "h", b"p", key="k", headers=[("a", "c")], idempotency_key="i"),
            lambda m: m.call("S", "h", b"p", key="k", headers=[], idempotency_key="i"),
            lambda m: m.call("S", "h", b"p", key="k", headers=[("a", "b")], idempotency_key="j"),
            lambda m: m.call("S", "h", b"p", key="k", headers=[("a", "b")]),
            lambda m: m.call(
                "S", "h", b"p", key="k", headers=[("a", "b")], idempotency_key="i", name="n"
            ),
            lambda m: m.send("S", "h", b"p", key="k", headers=[("a", "b")], idempotency_key="i"),
        ],
    ),
    (
        "one-way call",
        pb.OneWayCallCommandMessage(
            service_name="S",
            handler_name="h",
            parameter=b"p",
            invoke_time=1000,
            key="k",
            invocation_id_notification_idx=1,
        ),
        lambda m: m.send("S", "h", b"p", key="k", invoke_time_ms=123_456),
        [
            lambda m: m.send("S", "g", b"p", key="k", invoke_time_ms=1000),
            lambda m: m.send("S", "h", b"", key="k", invoke_time_ms=1000),
            lambda m: m.send("S", "h", b"p", key="", invoke_time_ms=1000),
            lambda m: m.send("S", "h", b"p", key="k", idempotency_key="i", invoke_time_ms=1000),
            lambda m: (m.get_state("x"), m.send("S", "h", b"p", key="k", invoke_time_ms=1000)),
        ],
    ),
    (
        "complete awakeable",
        pb.CompleteAwakeableCommandMessage(awakeable_id="sign_1a", value=pb.Value(content=b"v")),
        lambda m: m.complete_awakeable("sign_1a", b"v"),
        [
            lambda m: m.complete_awakeable("sign_1b", b"v"),
            lambda m: m.complete_awakeable("sign_1a", b"w"),
            lambda m: m.complete_awakeable("sign_1a", Failure(1, "v")),
        ],
    ),
    (
        "output",
        pb.OutputCommandMessage(value=pb.Value(content=b'"x"')),
        lambda m: m.write_output(b'"x"'),
        [
            lambda m: m.write_output(b'"y"'),
            lambda m: m.write_output(Failure(500, "x")),
            lambda m: m.set_state("x", b"1"),
        ],
    ),
    (
        "eager state read",
        pb.GetEagerStateCommandMessage(key=b"a", value=pb.Value(content=b"1")),
        lambda m: m.get_state("a"),
        [lambda m: m.get_state("b"), lambda m: m.get_state_keys()],
    ),
    (
        "lazy state read",
        pb.GetLazyStateCommandMessage(key=b"a", result_completion_id=1),
        lambda m: m.get_state("a"),
        [
            lambda m: m.get_state("b"),
            lambda m: (m.run("x"), m.get_state("a")),
            lambda m: m.set_state("a", b""),
        ],
    ),
    (
        "lazy state keys",
        pb.GetLazyStateKeysCommandMessage(result_completion_id=1),
        lambda m: m.get_state_keys(),
        [lambda m: (m.get_state("x"), m.get_state_keys()), lambda m: m.get_state("a")],
    ),
]


def _replaying(recorded: Message) -> Machine:
    # a complete, empty state map: reads would be written eagerly if not replayed
    m = machine(recorded, pb.OutputCommandMessage(), state={})
    assert m.replaying
    return m


@pytest.mark.parametrize(
    ("what", "recorded", "same", "others"), COMPARED, ids=[c[0] for c in COMPARED]
)
def test_replaying_the_same_command_is_accepted(
    what: str, recorded: Message, same: Op, others: list[Op]
) -> None:
    m = _replaying(recorded)
    same(m)
    assert m.fatal is None and not m.has_output  # nothing new is written while replaying
    assert m.command_index == 1


@pytest.mark.parametrize(
    ("what", "recorded", "other"),
    [(c[0], c[1], op) for c in COMPARED for op in c[3]],
    ids=[f"{c[0]}-{i}" for c in COMPARED for i in range(len(c[3]))],
)
def test_replaying_a_changed_command_is_a_journal_mismatch(
    what: str, recorded: Message, other: Op
) -> None:
    m = _replaying(recorded)
    with pytest.raises(ProtocolError) as info:
        other(m)
    assert info.value.code == 570
    assert "command 1" in str(info.value)
    assert m.fatal is info.value
    with pytest.raises(ProtocolError):  # the machine stays broken
        m.run("next")
    m.fail(info.value.code, str(info.value))
    ((code, error),) = written(m)
    assert code == M.ERROR and isinstance(error, pb.ErrorMessage)
    assert error.code == 570 and error.related_command_index == 1


@pytest.mark.parametrize(
    ("recorded", "op"),
    [
        (pb.RunCommandMessage(name="step", result_completion_id=1), lambda m: m.run("step")),
        (
            pb.GetLazyStateCommandMessage(key=b"a", result_completion_id=1),
            lambda m: m.get_state("a"),
        ),
        (pb.GetLazyStateKeysCommandMessage(result_completion_id=1), lambda m: m.get_state_keys()),
        (
            pb.GetPromiseCommandMessage(key="p", result_completion_id=1),
            lambda m: m.get_promise("p"),
        ),
    ],
)
def test_completion_ids_are_compared(recorded: Message, op: Op) -> None:
    # the eager read first consumes completion id 1: the recorded command has another one
    m = machine(pb.GetEagerStateCommandMessage(key=b"x", void=pb.Void()), recorded)
    assert m.get_state("x") == 1
    with pytest.raises(ProtocolError) as info:
        op(m)
    assert info.value.code == 570 and "command 2" in str(info.value)


def test_sleep_wake_up_time_and_completion_id_are_not_compared() -> None:
    # observed with the reference SDK: a recorded Sleep(rcid=7) is accepted, the handler then
    # waits for its own id
    m = _replaying(pb.SleepCommandMessage(wake_up_time=1, result_completion_id=7))
    key = m.sleep(2_000_000_000_000)
    assert key == 1 and m.fatal is None


def test_one_way_call_invoke_time_is_not_compared() -> None:
    m = _replaying(
        pb.OneWayCallCommandMessage(
            service_name="S", handler_name="h", invoke_time=1, invocation_id_notification_idx=1
        )
    )
    m.send("S", "h", b"", invoke_time_ms=0)
    assert m.fatal is None


def test_recorded_eager_read_is_accepted_when_the_map_is_partial() -> None:
    m = machine(
        pb.GetEagerStateCommandMessage(key=b"a", value=pb.Value(content=b"1")),
        pb.GetEagerStateCommandMessage(key=b"b", void=pb.Void()),
        pb.GetEagerStateKeysCommandMessage(value=pb.StateKeys(keys=[b"b", b"a"])),
    )  # no state map: the handler would read lazily
    ka, kb, keys = m.get_state("a"), m.get_state("b"), m.get_state_keys()
    assert m.result(ka) == b"1"  # the result is the recorded one
    assert m.result(kb) is VoidResult.VOID
    assert m.result(keys) == StateKeysResult(("a", "b"))
    assert m.fatal is None and not m.has_output


def test_recorded_lazy_read_is_accepted_when_the_map_is_complete() -> None:
    m = machine(
        pb.GetLazyStateCommandMessage(key=b"a", result_completion_id=1),
        completion(M.GET_LAZY_STATE_COMPLETION, 1, b"old"),
        pb.GetLazyStateKeysCommandMessage(result_completion_id=2),
        state={"a": b"new"},
    )
    ka, keys = m.get_state("a"), m.get_state_keys()
    assert not m.is_ready(ka)  # the result comes from the notification, not the map
    assert m.poll([ka]) and m.result(ka) == b"old"
    assert not m.poll([keys])
    assert m.fatal is None and not m.has_output


def test_mismatch_of_a_replayed_command_after_others_names_its_index() -> None:
    m = machine(
        pb.RunCommandMessage(name="a", result_completion_id=1),
        run_completion(1, b"1"),
        pb.SleepCommandMessage(result_completion_id=2),
        pb.RunCommandMessage(name="c", result_completion_id=3),
    )
    m.run("a")
    m.sleep(5)
    with pytest.raises(ProtocolError) as info:
        m.run("not c")
    assert info.value.code == 570 and "command 3" in str(info.value)
    m.fail(570, "x")
    ((_, error),) = written(m)
    assert isinstance(error, pb.ErrorMessage) and error.related_command_index == 3


def test_returning_early_during_replay_is_a_mismatch() -> None:
    m = machine(
        pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1")),
        pb.OutputCommandMessage(value=pb.Value(content=b"1")),
    )
    with pytest.raises(ProtocolError) as info:
        m.write_output(b"1")
    assert info.value.code == 570 and "command 1" in str(info.value)


# -- the attempt driver ---------------------------------------------------------------------------


async def sleepy(ctx: Context) -> str:
    await ctx.sleep(1.5)
    return "slept"


def test_request_response_attempt_suspends_on_what_it_awaits() -> None:
    out = run(attempt(sleepy, journal()))
    assert codes(out) == [M.SLEEP, M.SUSPENSION]
    assert out[1][1] == pb.SuspensionMessage(waiting_completions=[1], waiting_signals=[1])


def test_resumed_attempt_writes_output_and_end() -> None:
    out = run(
        attempt(
            sleepy, journal(pb.SleepCommandMessage(result_completion_id=1), sleep_completion(1))
        )
    )
    assert out == [
        cmd(pb.OutputCommandMessage(value=pb.Value(content=b'"slept"'))),
        cmd(pb.EndMessage()),
    ]


def test_bidi_attempt_reads_notifications_as_they_come() -> None:
    out = run(attempt(sleepy, journal(), more=[frame(sleep_completion(1))]))
    assert codes(out) == [M.SLEEP, M.OUTPUT, M.END]


def test_bidi_attempt_suspends_when_the_runtime_closes_its_side() -> None:
    out = run(attempt(sleepy, journal(), more=[frame(sleep_completion(9)), None]))
    assert codes(out) == [M.SLEEP, M.SUSPENSION]


def test_bidi_notification_may_arrive_in_pieces() -> None:
    data = frame(sleep_completion(1))
    out = run(attempt(sleepy, journal(), more=[data[:3], data[3:9], data[9:]]))
    assert codes(out) == [M.SLEEP, M.OUTPUT, M.END]


@pytest.mark.parametrize(
    "late",
    [
        frame(pb.SleepCommandMessage(result_completion_id=1)),  # a command after the window
        frame(start(1)),  # a second Start
        encode_frame(0x0100, b""),  # garbage
    ],
)
def test_protocol_violation_during_the_attempt_is_an_error_571(late: bytes) -> None:
    out = run(attempt(sleepy, journal(), more=[late]))
    assert codes(out) == [M.SLEEP, M.ERROR]
    error = out[1][1]
    assert isinstance(error, pb.ErrorMessage) and error.code == 571


def test_journal_with_the_output_replays_to_end_only() -> None:
    out = run(
        attempt(
            sleepy,
            journal(
                pb.SleepCommandMessage(result_completion_id=1),
                sleep_completion(1),
                pb.OutputCommandMessage(value=pb.Value(content=b'"slept"')),
            ),
        )
    )
    assert out == [cmd(pb.EndMessage())]


def test_run_executes_once_and_proposes_its_result() -> None:
    calls: list[int] = []

    async def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    async def runner(ctx: Context) -> int:
        value: int = await ctx.run("double", double, 21)
        return value

    out = run(attempt(runner, journal()))
    assert out == [
        cmd(pb.RunCommandMessage(name="double", result_completion_id=1)),
        cmd(pb.ProposeRunCompletionMessage(result_completion_id=1, value=b"42")),
        cmd(pb.SuspensionMessage(waiting_completions=[1], waiting_signals=[1])),
    ]
    replay = journal(
        pb.RunCommandMessage(name="double", result_completion_id=1), run_completion(1, b"42")
    )
    out = run(attempt(runner, replay))
    assert codes(out) == [M.OUTPUT, M.END] and calls == [21]


def test_sync_run_closures_run_in_a_thread() -> None:
    async def runner(ctx: Context) -> int:
        value: int = await ctx.run("sync", lambda: 5)
        return value

    out = run(attempt(runner, journal(), more=[frame(run_completion(1, b"5"))]))
    assert codes(out) == [M.RUN, M.PROPOSE_RUN_COMPLETION, M.OUTPUT, M.END]


def test_terminal_error_in_a_run_is_proposed_as_a_failure() -> None:
    async def fails() -> int:
        raise TerminalError("bad input", 400)

    async def runner(ctx: Context) -> int:
        value: int = await ctx.run("f", fails)
        return value

    out = run(
        attempt(runner, journal(), more=[frame(run_completion(1, failure=(400, "bad input")))])
    )
    assert out[1] == cmd(
        pb.ProposeRunCompletionMessage(
            result_completion_id=1, failure=pb.Failure(code=400, message="bad input")
        )
    )
    assert out[2:] == [
        cmd(pb.OutputCommandMessage(failure=pb.Failure(code=400, message="bad input"))),
        cmd(pb.EndMessage()),
    ]


def test_retryable_error_in_a_run_fails_the_attempt_with_a_retry_delay() -> None:
    async def flaky() -> int:
        raise ValueError("boom")

    async def runner(ctx: Context) -> int:
        value: int = await ctx.run(
            RunOptions(name="flaky", initial_interval=timedelta(seconds=0.2)),
            flaky,
        )
        return value

    out = run(attempt(runner, journal(retry_count=1)))
    assert codes(out) == [M.RUN, M.ERROR]
    error = out[1][1]
    assert isinstance(error, pb.ErrorMessage)
    assert (error.code, error.related_command_index, error.related_command_name) == (
        500,
        1,
        "flaky",
    )
    assert error.related_command_type == M.RUN and error.next_retry_delay == 400
    assert "boom" in error.message and "ValueError" in error.stacktrace


def test_exhausted_run_attempts_become_a_terminal_failure() -> None:
    async def flaky() -> int:
        raise ValueError("boom")

    async def runner(ctx: Context) -> int:
        value: int = await ctx.run(RunOptions(name="flaky", max_attempts=3), flaky)
        return value

    out = run(
        attempt(
            runner,
            journal(pb.RunCommandMessage(name="flaky", result_completion_id=1), retry_count=2),
        )
    )
    assert codes(out) == [M.PROPOSE_RUN_COMPLETION, M.SUSPENSION]
    proposal = out[0][1]
    assert isinstance(proposal, pb.ProposeRunCompletionMessage)
    assert proposal.failure.code == 500 and "3 attempt" in proposal.failure.message


def test_handler_exception_is_a_retryable_error() -> None:
    async def broken(ctx: Context) -> None:
        raise RuntimeError("bug")

    ((code, error),) = run(attempt(broken, journal()))
    assert code == M.ERROR and isinstance(error, pb.ErrorMessage)
    assert error.code == 500 and "bug" in error.message and "RuntimeError" in error.stacktrace


def test_terminal_error_is_the_output() -> None:
    async def fails(ctx: Context) -> None:
        raise TerminalError("nope", 409)

    out = run(attempt(fails, journal()))
    assert out == [
        cmd(pb.OutputCommandMessage(failure=pb.Failure(code=409, message="nope"))),
        cmd(pb.EndMessage()),
    ]


def test_awaiting_what_the_journal_lacks_while_commands_remain_is_a_mismatch() -> None:
    # the code now awaits the sleep, but the journal went on without its completion
    out = run(
        attempt(
            sleepy,
            journal(
                pb.SleepCommandMessage(result_completion_id=1),
                pb.OutputCommandMessage(value=pb.Value(content=b'"slept"')),
            ),
        )
    )
    ((code, error),) = out
    assert code == M.ERROR and isinstance(error, pb.ErrorMessage) and error.code == 570
    assert "journal" in error.message


def test_returning_early_during_replay_is_reported_as_a_mismatch() -> None:
    async def quick(ctx: Context) -> str:
        return "hi"

    out = run(
        attempt(quick, journal(pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1"))))
    )
    ((code, error),) = out
    assert code == M.ERROR and isinstance(error, pb.ErrorMessage)
    assert error.code == 570 and error.related_command_index == 1


def test_mismatch_swallowed_by_the_handler_still_fails_the_attempt() -> None:
    async def sneaky(ctx: Context) -> str:
        try:
            ctx.run("other", lambda: 1)
        except ProtocolError:
            pass
        return "fine"

    out = run(attempt(sneaky, journal(pb.RunCommandMessage(name="step", result_completion_id=1))))
    ((code, error),) = out
    assert code == M.ERROR and isinstance(error, pb.ErrorMessage) and error.code == 570


def test_cancellation_fails_the_handler_with_409_and_cancels_its_calls() -> None:
    async def parent(ctx: Context) -> bytes:
        return await ctx.generic_call("Greeter", "sleepy", b"600000")

    out = run(
        attempt(
            parent,
            journal(
                pb.CallCommandMessage(
                    service_name="Greeter",
                    handler_name="sleepy",
                    parameter=b"600000",
                    invocation_id_notification_idx=1,
                    result_completion_id=2,
                ),
                call_id(1, "inv_child"),
                signal(1),
            ),
        )
    )
    assert out == [
        cmd(pb.SendSignalCommandMessage(target_invocation_id="inv_child", idx=1, void=pb.Void())),
        cmd(pb.OutputCommandMessage(failure=pb.Failure(code=409, message="cancelled"))),
        cmd(pb.EndMessage()),
    ]


def test_cleanup_after_a_consumed_cancellation_suspends_without_signal_1() -> None:
    async def cleanup(ctx: Context) -> str:
        try:
            await ctx.sleep(100)
        except InvocationCancelled:
            await ctx.sleep(1, name="cleanup")
        return "cleaned"

    out = run(attempt(cleanup, journal(pb.SleepCommandMessage(result_completion_id=1), signal(1))))
    assert codes(out) == [M.SLEEP, M.SUSPENSION]
    assert out[1][1] == pb.SuspensionMessage(waiting_completions=[2])


def test_select_and_gather_follow_the_journal_order() -> None:
    async def racer(ctx: Context) -> list[Any]:
        a = ctx.sleep(1, name="a")
        b = ctx.sleep(1, name="b")
        winner = await select(a, b)
        both = await gather(ctx.run("x", _const(1)), ctx.run("y", _const(2)))
        return [winner, list(both)]

    def replay(first: int, second: int) -> list[Entry]:
        return [
            cmd(pb.SleepCommandMessage(result_completion_id=1, name="a")),
            cmd(pb.SleepCommandMessage(result_completion_id=2, name="b")),
            sleep_completion(first),
            sleep_completion(second),
            cmd(pb.RunCommandMessage(result_completion_id=3, name="x")),
            cmd(pb.RunCommandMessage(result_completion_id=4, name="y")),
            run_completion(4, b"2"),
            run_completion(3, b"1"),
        ]

    for first, second, winner in ((1, 2, 0), (2, 1, 1)):
        out = run(attempt(racer, journal(*replay(first, second))))
        assert out[0] == cmd(
            pb.OutputCommandMessage(value=pb.Value(content=f"[{winner},[1,2]]".encode()))
        )


def test_state_through_the_object_context() -> None:
    async def counter(ctx: Context) -> int:
        assert isinstance(ctx, ObjectContext)
        count: int = await ctx.get("count", int, default=0)
        ctx.set("count", count + 4)
        keys = await ctx.state_keys()
        assert keys == ["count"]
        return count + 4

    out = run(attempt(counter, journal(state={}, key="c7")))
    assert out == [
        cmd(pb.GetEagerStateCommandMessage(key=b"count", void=pb.Void())),
        cmd(pb.SetStateCommandMessage(key=b"count", value=pb.Value(content=b"4"))),
        cmd(pb.GetEagerStateKeysCommandMessage(value=pb.StateKeys(keys=[b"count"]))),
        cmd(pb.OutputCommandMessage(value=pb.Value(content=b"4"))),
        cmd(pb.EndMessage()),
    ]


def test_lazy_state_through_the_object_context_suspends_then_resumes() -> None:
    async def reader(ctx: Context) -> Any:
        assert isinstance(ctx, ObjectContext)
        return await ctx.get("a")

    out = run(attempt(reader, journal(key="k")))
    assert out == [
        cmd(pb.GetLazyStateCommandMessage(key=b"a", result_completion_id=1)),
        cmd(pb.SuspensionMessage(waiting_completions=[1], waiting_signals=[1])),
    ]
    out = run(
        attempt(
            reader,
            journal(
                pb.GetLazyStateCommandMessage(key=b"a", result_completion_id=1),
                completion(M.GET_LAZY_STATE_COMPLETION, 1, b'"v"'),
                key="k",
            ),
        )
    )
    assert codes(out) == [M.OUTPUT, M.END] and out[0][1] == pb.OutputCommandMessage(
        value=pb.Value(content=b'"v"')
    )


def test_promise_through_the_workflow_context() -> None:
    async def main(ctx: Context) -> Any:
        assert isinstance(ctx, WorkflowContext)
        promise = ctx.promise("p")
        peeked = await promise.peek()
        assert peeked is None
        return await promise

    out = run(
        attempt(
            main,
            journal(
                pb.PeekPromiseCommandMessage(key="p", result_completion_id=1),
                completion(M.PEEK_PROMISE_COMPLETION, 1),
                key="w",
            ),
            context=WorkflowContext,
        )
    )
    assert out == [
        cmd(pb.GetPromiseCommandMessage(key="p", result_completion_id=2)),
        cmd(pb.SuspensionMessage(waiting_completions=[2], waiting_signals=[1])),
    ]


def test_named_signal_and_awakeable_suspend_on_signals() -> None:
    async def waiter(ctx: Context) -> Any:
        _, awakeable = ctx.awakeable(str)
        index = await select(awakeable, ctx.signal("go"))
        return index

    out = run(attempt(waiter, journal()))
    assert out == [
        cmd(pb.SuspensionMessage(waiting_signals=[1, 17], waiting_named_signals=["go"])),
    ]
    out = run(attempt(waiter, journal(named_signal("go", b'"now"'))))
    assert out[0] == cmd(pb.OutputCommandMessage(value=pb.Value(content=b"1")))


def _const(value: int) -> Callable[[], Any]:
    async def fn() -> int:
        return value

    return fn
