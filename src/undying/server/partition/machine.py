"""The partition state machine: records in, state changes and actions out. Pure and deterministic.

It has no clock of its own (the time is the record's ``ts``) and does no I/O except through the
:class:`~undying.server.partition.store.PartitionStore` it is given. Followers apply the same
records and discard the actions; the leader carries the actions out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import msgspec

from undying.protocol.ids import InvocationId
from undying.protocol.messages import MessageType, pb
from undying.server.partition import actions as act
from undying.server.partition.records import (
    AdminCommand,
    AttemptFailed,
    End,
    Entries,
    Envelope,
    FailureInfo,
    IngressSink,
    Invoke,
    Pinned,
    Result,
    Sink,
    Suspend,
    TimerFired,
    TimerKey,
)
from undying.server.partition.state import InvocationStatus, JournalEntry
from undying.server.partition.store import PartitionStore

__all__ = ["StateMachine"]

log = logging.getLogger("undying.partition")

_VOID: Final = pb.Void()
_EVENT_ENC: Final = msgspec.json.Encoder()


def _notification(
    *,
    completion_id: int | None = None,
    signal_id: int | None = None,
    value: bytes | None = None,
    failure: tuple[int, str] | None = None,
    void: bool = False,
    state_keys: list[bytes] | None = None,
) -> bytes:
    n = pb.Notification()
    if completion_id is not None:
        n.completion_id = completion_id
    if signal_id is not None:
        n.signal_id = signal_id
    if value is not None:
        n.value.content = value
    elif failure is not None:
        n.failure.code, n.failure.message = failure
    elif state_keys is not None:
        n.state_keys.keys.extend(state_keys)
    elif void:
        n.void.CopyFrom(_VOID)
    return n.SerializeToString()


class StateMachine:
    """Applies records of one partition to its store, collecting actions for the leader."""

    def __init__(self, store: PartitionStore) -> None:
        self.store = store
        self.actions: list[act.Action] = []
        self._now = 0

    def apply(self, env: Envelope) -> None:
        """Apply one record. Actions accumulate in :attr:`actions` until the caller takes them."""
        self._now = env.ts
        body = env.body
        if isinstance(body, Entries):
            self._on_entries(body)
        elif isinstance(body, Invoke):
            self._on_invoke(body)
        elif isinstance(body, Pinned):
            self._on_pinned(body)
        elif isinstance(body, Suspend):
            self._on_suspend(body)
        elif isinstance(body, End):
            self._on_end(body)
        elif isinstance(body, AttemptFailed):
            self._on_failed(body)
        elif isinstance(body, TimerFired):
            self._on_timer(body)
        elif isinstance(body, AdminCommand):
            self._on_admin(body)
        else:  # pragma: no cover - exhaustive
            raise AssertionError(f"unknown record {body!r}")

    def take_actions(self) -> list[act.Action]:
        out, self.actions = self.actions, []
        return out

    # ---- helpers ------------------------------------------------------------------------------

    def _live(self, inv: bytes, epoch: int) -> InvocationStatus | None:
        """The status if this invoker effect belongs to the current run, else None (stale)."""
        s = self.store.get_status(inv)
        if s is None or s.status != "invoked" or s.epoch != epoch:
            return None
        return s

    def _touch(self, s: InvocationStatus) -> None:
        s.modified_at = self._now
        self.store.put_status(s)

    def _append(self, s: InvocationStatus, entry_type: int, payload: bytes) -> None:
        self.store.append_journal(s.id, JournalEntry(entry_type, payload, self._now))
        s.journal_size += 1

    def _notify(self, s: InvocationStatus, entry_type: int, payload: bytes) -> None:
        """Store a notification for ``s`` and deliver it: forward live, or wake a suspended run."""
        self._append(s, entry_type, payload)
        if s.status == "invoked":
            self.actions.append(act.Forward(s.id, s.epoch, entry_type, payload))
        elif s.status == "suspended" and self.store.notifications(s.id).satisfies(s):
            self._run(s)
        self._touch(s)

    def _run(self, s: InvocationStatus) -> None:
        """(Re)start attempts: a new epoch, so effects of older attempts are ignored."""
        s.status = "invoked"
        s.epoch += 1
        s.waiting_completions = []
        s.waiting_signals = []
        s.waiting_named_signals = []
        if s.running_at is None:
            s.running_at = self._now
        self._touch(s)
        self.actions.append(act.Invoke(s.id, s.epoch))

    def _respond(
        self, sink: Sink, s: InvocationStatus, kind: str, *, stored: bool = False
    ) -> None:
        if isinstance(sink, IngressSink):
            expires = None
            if kind == "result" and s.completed_at is not None and s.completion_retention_ms:
                expires = s.completed_at + s.completion_retention_ms
            self.actions.append(
                act.Respond(
                    sink.request_id,
                    s.id,
                    kind,  # type: ignore[arg-type]
                    s.result,
                    expires,
                    stored,
                )
            )

    # ---- invoke ----------------------------------------------------------------------------

    def _on_invoke(self, rec: Invoke) -> None:
        existing = self.store.get_status(rec.id)
        if existing is not None:
            self._on_duplicate(rec, existing)
            return
        s = InvocationStatus(
            id=rec.id,
            target=rec.target,
            status="scheduled",
            created_at=self._now,
            modified_at=self._now,
            source=rec.source,
            idempotency_key=rec.idempotency_key,
            sinks=[rec.sink] if rec.sink is not None and rec.mode == "call" else [],
            completion_retention_ms=rec.completion_retention_ms,
            journal_retention_ms=rec.journal_retention_ms,
            execute_at=rec.execute_at,
        )
        input_cmd = pb.InputCommandMessage(value=pb.Value(content=rec.body))
        for k, v in rec.headers:
            input_cmd.headers.add(key=k, value=v)
        self._append(s, MessageType.INPUT, input_cmd.SerializeToString())
        s.commands = 1
        if rec.sink is not None and rec.mode == "send":
            self._respond(rec.sink, s, "accepted")
        if rec.execute_at is not None and rec.execute_at > self._now:
            key = TimerKey("invoke", rec.id)
            self.store.add_timer(key, rec.execute_at)
            self.actions.append(act.ArmTimer(key, rec.execute_at))
            self._touch(s)
            return
        self._start(s)

    def _on_duplicate(self, rec: Invoke, s: InvocationStatus) -> None:
        if rec.sink is None:
            return
        if rec.mode == "send":
            self._respond(rec.sink, s, "previously_accepted")
        elif s.status == "completed":
            self._respond(rec.sink, s, "result", stored=True)
        else:
            s.sinks.append(rec.sink)
            self._touch(s)

    def _start(self, s: InvocationStatus) -> None:
        """Run now, or queue behind the invocation holding the key's exclusive lock."""
        t = s.target
        if t.key is not None and t.handler_ty in ("exclusive", "workflow"):
            owner = self.store.lock_owner(t.service, t.key)
            if owner is not None and owner != s.id:
                s.status = "inboxed"
                s.inboxed_at = self._now
                self.store.inbox_push(t.service, t.key, s.id)
                self._touch(s)
                return
            self.store.lock(t.service, t.key, s.id)
        self._run(s)

    # ---- invoker effects ---------------------------------------------------------------------

    def _on_pinned(self, rec: Pinned) -> None:
        s = self._live(rec.id, rec.epoch)
        if s is None:
            return
        s.deployment_id = rec.deployment_id
        s.protocol_version = rec.protocol_version
        s.server = rec.server
        s.last_start_at = self._now
        self._touch(s)

    def _on_entries(self, rec: Entries) -> None:
        s = self._live(rec.id, rec.epoch)
        if s is None:
            return
        for item in rec.items:
            if item.type == MessageType.PROPOSE_RUN_COMPLETION:
                self._on_run_proposal(s, item.payload)
                continue
            self._append(s, item.type, item.payload)
            s.commands += 1
            handler = _COMMANDS.get(item.type)
            if handler is not None:
                handler(self, s, item.payload)
        if s.retry_count or s.last_failure is not None:
            # A new stored entry resets the retry counters of the invoker, not the history.
            s.next_retry_at = None
        self._touch(s)

    def _on_run_proposal(self, s: InvocationStatus, payload: bytes) -> None:
        p = pb.ProposeRunCompletionMessage.FromString(payload)
        cid = p.result_completion_id
        if cid in self.store.notifications(s.id).completions:
            return  # a duplicate proposal: the first one stands
        if p.WhichOneof("result") == "failure":
            body = _notification(completion_id=cid, failure=(p.failure.code, p.failure.message))
        else:
            body = _notification(completion_id=cid, value=p.value)
        self._notify(s, MessageType.RUN_COMPLETION, body)

    def _cmd_sleep(self, s: InvocationStatus, payload: bytes) -> None:
        cmd = pb.SleepCommandMessage.FromString(payload)
        key = TimerKey("sleep", s.id, cmd.result_completion_id)
        self.store.add_timer(key, cmd.wake_up_time)
        self.actions.append(act.ArmTimer(key, cmd.wake_up_time))

    def _cmd_get_lazy_state(self, s: InvocationStatus, payload: bytes) -> None:
        cmd = pb.GetLazyStateCommandMessage.FromString(payload)
        value = self._state_of(s).get(cmd.key)
        body = (
            _notification(completion_id=cmd.result_completion_id, void=True)
            if value is None
            else _notification(completion_id=cmd.result_completion_id, value=value)
        )
        self._notify(s, MessageType.GET_LAZY_STATE_COMPLETION, body)

    def _cmd_get_lazy_state_keys(self, s: InvocationStatus, payload: bytes) -> None:
        cmd = pb.GetLazyStateKeysCommandMessage.FromString(payload)
        keys = sorted(self._state_of(s))
        body = _notification(completion_id=cmd.result_completion_id, state_keys=keys)
        self._notify(s, MessageType.GET_LAZY_STATE_KEYS_COMPLETION, body)

    def _cmd_set_state(self, s: InvocationStatus, payload: bytes) -> None:
        cmd = pb.SetStateCommandMessage.FromString(payload)
        if s.target.key is not None:
            self.store.set_state(s.target.service, s.target.key, cmd.key, cmd.value.content)

    def _cmd_clear_state(self, s: InvocationStatus, payload: bytes) -> None:
        cmd = pb.ClearStateCommandMessage.FromString(payload)
        if s.target.key is not None:
            self.store.clear_state(s.target.service, s.target.key, cmd.key)

    def _cmd_clear_all_state(self, s: InvocationStatus, payload: bytes) -> None:
        if s.target.key is not None:
            self.store.clear_all_state(s.target.service, s.target.key)

    def _state_of(self, s: InvocationStatus) -> dict[bytes, bytes]:
        if s.target.key is None:
            return {}
        return self.store.state(s.target.service, s.target.key)

    def _on_suspend(self, rec: Suspend) -> None:
        s = self._live(rec.id, rec.epoch)
        if s is None:
            return
        s.waiting_completions = list(rec.completions)
        s.waiting_signals = list(rec.signals)
        s.waiting_named_signals = list(rec.named_signals)
        if self.store.notifications(s.id).satisfies(s):
            self._run(s)
            return
        s.status = "suspended"
        self._touch(s)

    def _on_end(self, rec: End) -> None:
        s = self._live(rec.id, rec.epoch)
        if s is None:
            return
        result = Result(value=b"")
        for entry in reversed(self.store.journal(s.id)):
            if entry.type == MessageType.OUTPUT:
                out = pb.OutputCommandMessage.FromString(entry.payload)
                if out.WhichOneof("result") == "failure":
                    result = Result(code=out.failure.code, message=out.failure.message)
                else:
                    result = Result(value=out.value.content)
                break
        self._complete(s, result)

    def _on_failed(self, rec: AttemptFailed) -> None:
        s = self._live(rec.id, rec.epoch)
        if s is None:
            return
        s.retry_count = rec.retry_count
        s.last_failure = rec.failure
        s.next_retry_at = rec.next_retry_at
        self._event(s, "TransientError", rec.failure)
        if rec.action == "pause":
            s.status = "paused"
            self.actions.append(act.Abort(s.id))
        elif rec.action == "kill":
            self._complete(s, Result(code=rec.failure.code, message=rec.failure.message))
            return
        self._touch(s)

    def _event(self, s: InvocationStatus, event_type: str, failure: FailureInfo) -> None:
        event = {
            "ty": event_type,
            "error_code": failure.code,
            "error_message": failure.message,
            "error_stacktrace": failure.stacktrace,
            "restate_doc_error_code": failure.doc_code,
            "related_command_index": failure.related_command_index,
            "related_command_name": failure.related_command_name,
            "related_command_type": failure.related_command_type,
        }
        s.events += 1
        self.store.add_event(
            s.id, s.events, s.journal_size - 1, self._now, event_type, _EVENT_ENC.encode(event)
        )

    # ---- completion --------------------------------------------------------------------------

    def _complete(self, s: InvocationStatus, result: Result) -> None:
        was_running = s.status in ("invoked", "suspended", "paused")
        s.status = "completed"
        s.result = result
        s.completed_at = self._now
        s.waiting_completions = []
        s.waiting_signals = []
        s.waiting_named_signals = []
        s.retry_count = 0
        s.last_failure = None
        s.next_retry_at = None
        sinks, s.sinks = s.sinks, []
        for sink in sinks:
            self._respond(sink, s, "result")
        if was_running:
            self.actions.append(act.Abort(s.id))
        self._release(s)
        retention = max(s.completion_retention_ms, s.journal_retention_ms)
        if s.journal_retention_ms == 0:
            self.store.delete_journal(s.id)
            s.journal_size = 0
        else:
            self.store.forget_journal(s.id)
        if retention == 0:
            self.store.delete_status(s.id)
            return
        key = TimerKey("cleanup", s.id)
        self.store.add_timer(key, self._now + retention)
        self.actions.append(act.ArmTimer(key, self._now + retention))
        self._touch(s)

    def _release(self, s: InvocationStatus) -> None:
        """Free the key's exclusive lock held by ``s`` and start the next queued invocation."""
        t = s.target
        if t.key is None or self.store.lock_owner(t.service, t.key) != s.id:
            return
        self.store.unlock(t.service, t.key)
        while True:
            nxt = self.store.inbox_pop(t.service, t.key)
            if nxt is None:
                return
            ns = self.store.get_status(nxt)
            if ns is not None and ns.status == "inboxed":
                self.store.lock(t.service, t.key, nxt)
                self._run(ns)
                return

    # ---- timers --------------------------------------------------------------------------------

    def _on_timer(self, rec: TimerFired) -> None:
        key = rec.key
        if not self.store.remove_timer(key):
            return  # already fired or cancelled
        s = self.store.get_status(key.id)
        if s is None:
            return
        if key.kind == "sleep":
            if s.status != "completed":
                body = _notification(completion_id=key.completion_id, void=True)
                self._notify(s, MessageType.SLEEP_COMPLETION, body)
        elif key.kind == "invoke":
            if s.status == "scheduled":
                self._start(s)
        elif key.kind == "cleanup":
            self._purge(s)

    def _purge(self, s: InvocationStatus) -> None:
        self.store.delete_status(s.id)
        self.store.delete_journal(s.id)

    # ---- admin ---------------------------------------------------------------------------------

    def _on_admin(self, rec: AdminCommand) -> None:
        s = self.store.get_status(rec.id)
        if s is None:
            return
        if rec.command == "kill":
            if s.status != "completed":
                self._drop_pending(s)
                self._complete(s, Result(code=409, message="killed"))
        elif rec.command == "cancel":
            if s.status in ("scheduled", "inboxed"):
                self._drop_pending(s)
                self._complete(s, Result(code=409, message="cancelled"))
            elif s.status != "completed":
                body = _notification(signal_id=1, void=True)
                if s.status == "paused":
                    self._append(s, MessageType.SIGNAL, body)
                    self._touch(s)
                else:
                    self._notify(s, MessageType.SIGNAL, body)
        elif rec.command == "purge":
            if s.status == "completed":
                self.store.remove_timer(TimerKey("cleanup", s.id))
                self._purge(s)
        elif rec.command == "pause":
            if s.status in ("invoked", "suspended"):
                s.status = "paused"
                self.actions.append(act.Abort(s.id))
                self._touch(s)
        elif rec.command == "resume":
            if s.status in ("paused", "suspended"):
                self._run(s)

    def _drop_pending(self, s: InvocationStatus) -> None:
        t = s.target
        if s.status == "inboxed" and t.key is not None:
            self.store.inbox_remove(t.service, t.key, s.id)
        if s.status == "scheduled":
            self.store.remove_timer(TimerKey("invoke", s.id))

    # ---- leader takeover ------------------------------------------------------------------------

    def recover_actions(self) -> list[act.Action]:
        """What a new leader must do for the state as it is: run, arm timers."""
        out: list[act.Action] = []
        for s in self.store.live_statuses():
            if s.status == "invoked":
                out.append(act.Invoke(s.id, s.epoch))
        for key, wake_at in self.store.timers():
            out.append(act.ArmTimer(key, wake_at))
        return out

    def describe(self, inv: bytes) -> str:
        return str(InvocationId.from_bytes(inv))


_COMMANDS: Final[dict[int, Callable[[StateMachine, InvocationStatus, bytes], None]]] = {
    MessageType.SLEEP: StateMachine._cmd_sleep,
    MessageType.GET_LAZY_STATE: StateMachine._cmd_get_lazy_state,
    MessageType.GET_LAZY_STATE_KEYS: StateMachine._cmd_get_lazy_state_keys,
    MessageType.SET_STATE: StateMachine._cmd_set_state,
    MessageType.CLEAR_STATE: StateMachine._cmd_clear_state,
    MessageType.CLEAR_ALL_STATE: StateMachine._cmd_clear_all_state,
}
