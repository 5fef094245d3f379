"""The partition state machine: records in, state changes and actions out. Pure and deterministic.

It has no clock of its own (the time is the record's ``ts``) and does no I/O except through the
:class:`~undying.server.partition.store.PartitionStore` it is given. Followers apply the same
records and discard the actions; the leader carries the actions out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import msgspec

from undying.protocol.ids import InvocationId
from undying.protocol.messages import MessageType, pb
from undying.server.partition import actions as act
from undying.server.partition.commands import COMMANDS
from undying.server.partition.notifications import notification, result_notification
from undying.server.partition.records import (
    AdminCommand,
    AttachRequest,
    AttemptFailed,
    Body,
    End,
    Entries,
    Envelope,
    Expire,
    FailureInfo,
    IngressSink,
    InvocationResponse,
    Invoke,
    OutboxEntry,
    PatchState,
    Pinned,
    Result,
    Signal,
    Sink,
    Suspend,
    TimerFired,
    TimerKey,
    TruncateOutbox,
)
from undying.server.partition.state import InvocationStatus, JournalEntry
from undying.server.partition.state_version import state_version
from undying.server.partition.store import PartitionStore

__all__ = ["StateMachine"]

log = logging.getLogger("undying.partition")

_EVENT_ENC: Final = msgspec.json.Encoder()
_CANCEL: Final = 1
_WORKFLOW_ALREADY_INVOKED: Final = Result(
    code=409, message="the workflow method was already invoked"
)
_RESPONSE_TYPES: Final = {
    "call": MessageType.CALL_COMPLETION,
    "attach": MessageType.ATTACH_INVOCATION_COMPLETION,
    "output": MessageType.GET_INVOCATION_OUTPUT_COMPLETION,
}


class StateMachine:
    """Applies records of one partition to its store, collecting actions for the leader."""

    def __init__(self, store: PartitionStore) -> None:
        self.store = store
        self.actions: list[act.Action] = []
        self.now = 0

    def apply(self, env: Envelope) -> None:
        """Apply one record. Actions accumulate in :attr:`actions` until the caller takes them."""
        self.now = env.ts
        if env.dedup is not None:
            seen = self.store.dedup_seq(env.dedup.source)
            if env.dedup.seq <= seen:
                return  # a message from another partition delivered twice
            self.store.set_dedup_seq(env.dedup.source, env.dedup.seq)
        body = env.body
        handler = _HANDLERS.get(type(body))
        if handler is None:  # pragma: no cover - exhaustive
            raise AssertionError(f"unknown record {body!r}")
        handler(self, body)

    def take_actions(self) -> list[act.Action]:
        out, self.actions = self.actions, []
        return out

    # ---- helpers shared with the command handlers ------------------------------------------

    def _live(self, inv: bytes, epoch: int) -> InvocationStatus | None:
        """The status if this invoker effect belongs to the current run, else None (stale)."""
        s = self.store.get_status(inv)
        if s is None or s.status != "invoked" or s.epoch != epoch:
            return None
        return s

    def touch(self, s: InvocationStatus) -> None:
        s.modified_at = self.now
        self.store.put_status(s)

    def append(self, s: InvocationStatus, entry_type: int, payload: bytes) -> None:
        self.store.append_journal(s.id, JournalEntry(entry_type, payload, self.now))
        s.journal_size += 1

    def notify(self, s: InvocationStatus, entry_type: int, payload: bytes) -> None:
        """Store a notification for ``s`` and deliver it: forward live, or wake a suspended run."""
        self.append(s, entry_type, payload)
        if s.status == "invoked":
            self.actions.append(act.Forward(s.id, s.epoch, entry_type, payload))
        elif s.status == "suspended" and self.store.notifications(s.id).satisfies(s):
            self._run(s)
        self.touch(s)

    def send(self, partition_key: int, body: Body) -> None:
        """Deliver ``body`` to the partition owning ``partition_key``, exactly once (outbox)."""
        seq = self.store.outbox_push(OutboxEntry(partition_key, body))
        self.actions.append(act.Send(partition_key, body, seq))

    def _run(self, s: InvocationStatus) -> None:
        """(Re)start attempts: a new epoch, so effects of older attempts are ignored."""
        s.status = "invoked"
        s.epoch += 1
        s.waiting_completions = ()
        s.waiting_signals = ()
        s.waiting_named_signals = ()
        s.retry_count = 0
        s.next_retry_at = None
        s.last_start_at = self.now
        if s.running_at is None:
            s.running_at = self.now
        self.touch(s)
        self.actions.append(act.Invoke(s.id, s.epoch))

    def _respond(self, sink: Sink, s: InvocationStatus, kind: str, *, stored: bool = False) -> None:
        """Answer whoever waits on ``s`` (an ingress request or another invocation)."""
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
                    s.target,
                )
            )
            return
        if kind not in ("result", "not_ready", "not_found"):
            return
        result = s.result if kind == "result" else None
        if kind == "not_found":
            result = Result(code=404, message="invocation not found")
        self.send(
            InvocationId.from_bytes(sink.caller).partition_key,
            InvocationResponse(sink.caller, sink.completion_id, sink.kind, result, s.id),
        )

    def _respond_missing(self, sink: Sink, inv: bytes) -> None:
        if isinstance(sink, IngressSink):
            self.actions.append(act.Respond(sink.request_id, inv, "not_found"))
            return
        self.send(
            InvocationId.from_bytes(sink.caller).partition_key,
            InvocationResponse(
                sink.caller,
                sink.completion_id,
                sink.kind,
                Result(code=404, message="invocation not found"),
                inv,
            ),
        )

    # ---- invoke ------------------------------------------------------------------------------

    def _on_invoke(self, rec: Invoke) -> None:
        existing = self.store.get_status(rec.id, cached_only=rec.fresh)
        if existing is not None:
            self._on_duplicate(rec, existing)
            return
        s = InvocationStatus(
            id=rec.id,
            target=rec.target,
            status="scheduled",
            created_at=self.now,
            modified_at=self.now,
            source=rec.source,
            idempotency_key=rec.idempotency_key,
            sinks=(rec.sink,) if rec.sink is not None and rec.mode == "call" else (),
            completion_retention_ms=rec.completion_retention_ms,
            journal_retention_ms=rec.journal_retention_ms,
            execute_at=rec.execute_at,
        )
        input_cmd = pb.InputCommandMessage(value=pb.Value(content=rec.body))
        for k, v in rec.headers:
            input_cmd.headers.add(key=k, value=v)
        self.append(s, MessageType.INPUT, input_cmd.SerializeToString())
        s.commands = 1
        if rec.sink is not None and rec.mode == "send":
            self._respond(rec.sink, s, "accepted")
        if rec.execute_at is not None and rec.execute_at > self.now:
            key = TimerKey("invoke", rec.id)
            self.store.add_timer(key, rec.execute_at)
            self.actions.append(act.ArmTimer(key, rec.execute_at))
            self.touch(s)
            return
        self._start(s)

    def _on_duplicate(self, rec: Invoke, s: InvocationStatus) -> None:
        sink = rec.sink
        if sink is None:
            return
        if rec.mode == "send":
            self._respond(sink, s, "previously_accepted")
        elif s.status == "completed":
            if rec.target.handler_ty == "workflow":
                conflict = msgspec.structs.replace(s, result=_WORKFLOW_ALREADY_INVOKED)
                self._respond(sink, conflict, "result", stored=False)
            else:
                self._respond(sink, s, "result", stored=True)
        else:
            s.sinks = (*s.sinks, sink)
            self.touch(s)

    def _start(self, s: InvocationStatus) -> None:
        """Run now, or queue behind the invocation holding the key's exclusive lock."""
        t = s.target
        if t.key is not None and t.handler_ty in ("exclusive", "workflow"):
            owner = self.store.lock_owner(t.service, t.key)
            if owner is not None and owner != s.id:
                s.status = "inboxed"
                s.inboxed_at = self.now
                self.store.inbox_push(t.service, t.key, s.id)
                self.touch(s)
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
        s.last_start_at = self.now
        self.touch(s)

    def _on_entries(self, rec: Entries) -> None:
        s = self._live(rec.id, rec.epoch)
        if s is None:
            return
        for item in rec.items:
            if item.type == MessageType.PROPOSE_RUN_COMPLETION:
                self._on_run_proposal(s, item.payload)
                continue
            self.append(s, item.type, item.payload)
            s.commands += 1
            handler = COMMANDS.get(item.type)
            if handler is not None:
                handler(self, s, item)
        self.touch(s)

    def _on_run_proposal(self, s: InvocationStatus, payload: bytes) -> None:
        p = pb.ProposeRunCompletionMessage.FromString(payload)
        cid = p.result_completion_id
        if cid in self.store.notifications(s.id).completions:
            return  # a duplicate proposal: the first one stands
        if p.WhichOneof("result") == "failure":
            body = notification(completion_id=cid, failure=(p.failure.code, p.failure.message))
        else:
            body = notification(completion_id=cid, value=p.value)
        self.notify(s, MessageType.RUN_COMPLETION, body)

    def _on_suspend(self, rec: Suspend) -> None:
        s = self._live(rec.id, rec.epoch)
        if s is None:
            return
        s.waiting_completions = tuple(rec.completions)
        s.waiting_signals = tuple(rec.signals)
        s.waiting_named_signals = tuple(rec.named_signals)
        if self.store.notifications(s.id).satisfies(s):
            self._run(s)
            return
        s.status = "suspended"
        self.touch(s)

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
        if s.next_retry_at is not None:
            # The failed attempt was a retry: it started when the previous backoff ended.
            s.last_start_at = s.next_retry_at
        s.retry_count = rec.retry_count
        s.last_failure = rec.failure
        s.next_retry_at = rec.next_retry_at
        self._event(s, "TransientError", rec.failure)
        if rec.action == "pause":
            s.status = "paused"
            self.actions.append(act.Abort(s.id))
        elif rec.action == "kill":
            f = rec.failure
            self._complete(s, Result(code=f.code, message=f.message), stacktrace=f.stacktrace)
            return
        self.touch(s)

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
            s.id, s.events, s.journal_size - 1, self.now, event_type, _EVENT_ENC.encode(event)
        )

    # ---- completion --------------------------------------------------------------------------

    def _complete(self, s: InvocationStatus, result: Result, *, stacktrace: str = "") -> None:
        was_running = s.status in ("invoked", "suspended", "paused")
        s.status = "completed"
        s.result = msgspec.structs.replace(result, stacktrace=stacktrace) if stacktrace else result
        s.completed_at = self.now
        s.waiting_completions = ()
        s.waiting_signals = ()
        s.waiting_named_signals = ()
        s.retry_count = 0
        s.last_failure = None
        s.next_retry_at = None
        sinks, s.sinks = s.sinks, ()
        for sink in sinks:
            self._respond(sink, s, "result")
        s.result = result  # what is kept has no stack trace
        if was_running:
            self.actions.append(act.Abort(s.id))
        self._release(s)
        # The result is kept for the completion retention; the journal for the journal
        # retention, but never longer than the result. The cleaner finds them when they expire.
        if s.completion_retention_ms == 0:
            self._purge(s)
            return
        if min(s.journal_retention_ms, s.completion_retention_ms) == 0:
            self.store.delete_journal(s.id)
            s.journal_size = 0
        else:
            self.store.forget_journal(s.id)
        self.touch(s)

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

    def _purge(self, s: InvocationStatus) -> None:
        self.store.delete_status(s.id)
        self.store.delete_journal(s.id)
        t = s.target
        if t.handler_ty == "workflow" and t.key is not None:
            # A workflow's state and promises live as long as its run is retained.
            self.store.clear_all_state(t.service, t.key)
            self.store.clear_promises(t.service, t.key)

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
                body = notification(completion_id=key.completion_id, void=True)
                self.notify(s, MessageType.SLEEP_COMPLETION, body)
        elif key.kind == "invoke":
            if s.status == "scheduled":
                self._start(s)

    # ---- messages from other invocations --------------------------------------------------------

    def _on_response(self, rec: InvocationResponse) -> None:
        s = self.store.get_status(rec.caller)
        if s is None or s.status == "completed":
            return
        if rec.completion_id in self.store.notifications(s.id).completions:
            return
        body = result_notification(rec.result, completion_id=rec.completion_id)
        self.notify(s, _RESPONSE_TYPES[rec.kind], body)

    def _on_signal(self, rec: Signal) -> None:
        s = self.store.get_status(rec.target)
        if s is None or s.status == "completed":
            return
        if rec.index == _CANCEL and s.status in ("scheduled", "inboxed"):
            self._drop_pending(s)
            self._complete(s, Result(code=409, message="cancelled"))
            return
        index = self.store.notifications(s.id)
        if rec.index is not None and rec.index in index.signals:
            return  # an awakeable resolves once
        result = None if rec.kind == "void" else rec.result
        body = result_notification(result, signal_id=rec.index, signal_name=rec.name)
        if s.status in ("paused", "scheduled", "inboxed"):
            self.append(s, MessageType.SIGNAL, body)
            self.touch(s)
        else:
            self.notify(s, MessageType.SIGNAL, body)

    def _on_attach(self, rec: AttachRequest) -> None:
        s = self.store.get_status(rec.target)
        if s is None:
            self._respond_missing(rec.sink, rec.target)
        elif s.status == "completed":
            self._respond(rec.sink, s, "result", stored=True)
        elif rec.kind == "output":
            self._respond(rec.sink, s, "not_ready")
        else:
            s.sinks = (*s.sinks, rec.sink)
            self.touch(s)

    def _on_expire(self, rec: Expire) -> None:
        for inv in rec.ids:
            s = self.store.get_status(inv)
            if s is None or s.status != "completed" or s.completed_at is None:
                continue
            if s.completed_at + s.completion_retention_ms <= self.now:
                self._purge(s)
            elif s.journal_size and s.completed_at + s.journal_retention_ms <= self.now:
                self.store.delete_journal(s.id)
                s.journal_size = 0
                self.touch(s)

    def _on_truncate(self, rec: TruncateOutbox) -> None:
        self.store.outbox_truncate(rec.seq)

    def _on_patch_state(self, rec: PatchState) -> None:
        if rec.version is not None:
            current = self.store.state(rec.service, rec.key)
            if state_version(current) != rec.version:
                log.info(
                    "state patch of %s/%s ignored: the state changed since it was read",
                    rec.service,
                    rec.key,
                )
                return
        self.store.clear_all_state(rec.service, rec.key)
        for k, v in rec.entries.items():
            self.store.set_state(rec.service, rec.key, k, v)

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
            self._on_signal(Signal(rec.id, index=_CANCEL))
        elif rec.command == "purge":
            if s.status == "completed":
                self._purge(s)
        elif rec.command == "pause":
            if s.status == "invoked":
                s.status = "paused"
                self.actions.append(act.Abort(s.id))
                self.touch(s)
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
        """What a new leader must do for the state as it is: run, arm timers, deliver."""
        out: list[act.Action] = []
        for s in self.store.live_statuses():
            if s.status == "invoked":
                out.append(act.Invoke(s.id, s.epoch))
        for key, wake_at in self.store.timers():
            out.append(act.ArmTimer(key, wake_at))
        for seq, entry in self.store.outbox():
            out.append(act.Send(entry.partition_key, entry.body, seq))
        return out


_HANDLERS: Final[dict[type, Callable[[StateMachine, Any], None]]] = {
    Entries: StateMachine._on_entries,
    Invoke: StateMachine._on_invoke,
    Pinned: StateMachine._on_pinned,
    Suspend: StateMachine._on_suspend,
    End: StateMachine._on_end,
    AttemptFailed: StateMachine._on_failed,
    TimerFired: StateMachine._on_timer,
    AdminCommand: StateMachine._on_admin,
    InvocationResponse: StateMachine._on_response,
    Signal: StateMachine._on_signal,
    AttachRequest: StateMachine._on_attach,
    TruncateOutbox: StateMachine._on_truncate,
    PatchState: StateMachine._on_patch_state,
    Expire: StateMachine._on_expire,
}
