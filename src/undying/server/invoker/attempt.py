"""One invocation attempt: send Start + journal, turn the deployment's messages into records.

The outcome of an attempt is one of: ended (End), suspended (Suspension), or failed (an
ErrorMessage, a protocol violation, a transport error, a timeout). Records for the commands the
deployment sent are proposed in order as they arrive, so whatever was journaled before a failure
is kept and replayed by the next attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import urllib.parse
from dataclasses import dataclass, field
from typing import Final, Literal

from google.protobuf.message import DecodeError

from undying.errors import DeploymentError, ProtocolError, ProtocolViolation
from undying.protocol.framing import FrameDecoder, encode_frame
from undying.protocol.ids import InvocationId
from undying.protocol.messages import MESSAGE_CLASSES, MessageType, is_command, pb
from undying.server.clock import Clock
from undying.server.invoker.resolve import CommandRejected, resolve
from undying.server.invoker.streams import AttemptStream, Connector
from undying.server.logs import invocation_extra
from undying.server.partition.processor import PartitionProcessor
from undying.server.partition.records import (
    Body,
    End,
    Entries,
    FailureInfo,
    JournalItem,
    Pinned,
    Suspend,
)
from undying.server.partition.state import InvocationStatus, JournalEntry
from undying.server.schema import DeploymentInfo, HandlerInfo, Schema, ServiceInfo

__all__ = ["Attempt", "AttemptOutcome", "AttemptSettings"]

log = logging.getLogger("undying.invoker")

_CONTENT_TYPE: Final = "application/vnd.restate.invocation.v{}"
#: How long a trailing run command waits for its proposal before being journaled alone.
_HOLD_RUN_S: Final = 0.005


@dataclass(frozen=True, slots=True)
class AttemptSettings:
    inactivity_timeout_s: float
    abort_timeout_s: float
    cluster_name: str = "undying"
    max_message_size: int = 32 * 1024 * 1024
    eager_state_limit: int = 32 * 1024 * 1024


@dataclass(slots=True)
class AttemptOutcome:
    kind: Literal["ended", "suspended", "failed", "aborted"]
    failure: FailureInfo | None = None
    next_retry_delay_ms: int | None = None
    stored_entries: int = 0
    #: The deployment never saw the attempt (a refused stream): retrying at once is safe.
    retry_now: bool = False
    #: Why it failed, for the metrics: ``handler_error``, ``transport``, ``protocol``,
    #: ``rejected_command``, ``http_status``, ``content_type``, ``no_terminal_message``,
    #: ``not_registered``, ``deployment``.
    reason: str = ""


@dataclass(slots=True)
class _Batch:
    items: list[JournalItem] = field(default_factory=list)


def random_seed(inv: bytes) -> int:
    """A stable 64-bit seed for the invocation's deterministic RNG."""
    return int.from_bytes(hashlib.blake2b(inv, digest_size=8).digest(), "big")


class Attempt:
    """Runs one attempt of invocation ``status`` on ``deployment`` with protocol ``version``."""

    def __init__(
        self,
        *,
        processor: PartitionProcessor,
        connector: Connector,
        clock: Clock,
        status: InvocationStatus,
        journal: list[JournalEntry],
        state_map: dict[bytes, bytes] | None,
        service: ServiceInfo,
        handler: HandlerInfo,
        deployment: DeploymentInfo,
        version: int,
        settings: AttemptSettings,
        retry_count_since_stored: int,
        schema: Schema,
        pin: Pinned | None = None,
    ) -> None:
        self._schema = schema
        self._pin = pin
        self._processor = processor
        self._connector = connector
        self._clock = clock
        self._status = status
        self._inv = status.id
        self._epoch = status.epoch
        self._journal = journal
        self._state_map = state_map
        self._service = service
        self._handler = handler
        self._deployment = deployment
        self._version = version
        self._settings = settings
        self._retry_count = retry_count_since_stored
        self.bidi = deployment.protocol_type == "BidiStream" and not deployment.use_http_11
        self._stream: AttemptStream | None = None
        self._outbox: list[bytes] = []
        self._outbox_ready = asyncio.Event()
        self._last_activity = 0.0
        self._input_closed = False
        self._last_proposal: asyncio.Future[None] | None = None
        self._stored = 0
        self._done = False
        self._batch = _Batch()
        #: how the attempt ended, once it has (its last records may still be being stored)
        self.outcome: AttemptOutcome | None = None

    # ---- live notifications ----------------------------------------------------------------

    def forward(self, entry_type: int, payload: bytes) -> None:
        """Queue a notification for the deployment (bidi attempts only)."""
        if not self.bidi or self._done or self._input_closed:
            return
        self._outbox.append(encode_frame(entry_type, payload))
        self._outbox_ready.set()

    def abort(self) -> None:
        self._done = True
        if self._stream is not None:
            self._stream.abort()

    # ---- the attempt -------------------------------------------------------------------------

    def _start_frames(self) -> bytes:
        s = self._status
        start = pb.StartMessage(
            id=s.id,
            debug_id=str(InvocationId.from_bytes(s.id)),
            known_entries=len(self._journal),
            key=s.target.key or "",
        )
        if self._state_map is None:
            start.partial_state = True
        else:
            start.partial_state = False
            for k, v in self._state_map.items():
                start.state_map.add(key=k, value=v)
        if self._retry_count:
            start.retry_count_since_last_stored_entry = self._retry_count
        if self._journal:
            start.duration_since_last_stored_entry = max(
                0, self._clock.now_ms() - self._journal[-1].appended_at
            )
        if self._version >= 6:
            start.random_seed = random_seed(s.id)
        parts = [encode_frame(MessageType.START, start.SerializeToString())]
        parts.extend(encode_frame(e.type, e.payload) for e in self._journal)
        return b"".join(parts)

    def _headers(self) -> list[tuple[str, str]]:
        ct = _CONTENT_TYPE.format(self._version)
        headers = [
            ("content-type", ct),
            ("accept", ct),
            ("x-restate-invocation-id", str(InvocationId.from_bytes(self._inv))),
        ]
        if self._status.target.key is not None:
            headers.append(
                ("x-restate-service-key", urllib.parse.quote(self._status.target.key, safe=""))
            )
        headers.append(("x-restate-cluster-name", self._settings.cluster_name))
        headers.extend(self._deployment.additional_headers.items())
        return headers

    async def run(self) -> AttemptOutcome:
        try:
            outcome = await self._run()
        except DeploymentError as e:
            refused = bool(getattr(self._stream, "refused", False))
            outcome = AttemptOutcome(
                "failed",
                FailureInfo(code=500, message=str(e)),
                retry_now=refused,
                reason="transport",
            )
        except CommandRejected as e:
            outcome = AttemptOutcome(
                "failed", FailureInfo(code=e.code, message=str(e)), reason="rejected_command"
            )
        except ProtocolError as e:
            outcome = AttemptOutcome(
                "failed",
                FailureInfo(code=e.code, message=f"protocol violation: {e}"),
                reason="protocol",
            )
        finally:
            self._done = True
            if self._stream is not None:
                self._stream.abort()
        self.outcome = outcome
        if self._last_proposal is not None:
            try:
                await self._last_proposal
            except Exception:
                log.exception(
                    "invocation %s: storing the records of an attempt failed",
                    _show(self._inv),
                    extra=invocation_extra(self._inv),
                )
                raise
        outcome.stored_entries = self._stored
        return outcome

    async def _run(self) -> AttemptOutcome:
        path = f"/invoke/{self._service.name}/{self._handler.name}"
        self._stream = stream = await self._connector.open(
            self._deployment, path, self._headers(), self._start_frames(), end_input=not self.bidi
        )
        self._input_closed = not self.bidi
        self._touch()
        watchdog = asyncio.ensure_future(self._watchdog())
        writer = asyncio.ensure_future(self._writer()) if self.bidi else None
        try:
            status, headers = await stream.response()
            if status != 200:
                return AttemptOutcome(
                    "failed",
                    FailureInfo(
                        code=500 if status >= 500 or status < 400 else status,
                        message=f"the deployment answered with HTTP status {status}",
                        doc_code="RT0012",
                    ),
                    reason="http_status",
                )
            expected = _CONTENT_TYPE.format(self._version)
            got = next((v for k, v in headers if k.lower() == "content-type"), None)
            if got is None or got.strip().lower() != expected:
                return AttemptOutcome(
                    "failed",
                    FailureInfo(
                        code=500,
                        message=f"the deployment answered with content type {got!r}, "
                        f"expected {expected!r}",
                    ),
                    reason="content_type",
                )
            return await self._read(stream)
        finally:
            watchdog.cancel()
            if writer is not None:
                writer.cancel()

    async def _read(self, stream: AttemptStream) -> AttemptOutcome:
        decoder = FrameDecoder(self._settings.max_message_size)
        batch = self._batch
        loop = asyncio.get_running_loop()
        held: asyncio.TimerHandle | None = None
        try:
            while True:
                chunk = await stream.receive()
                if held is not None:
                    held.cancel()
                    held = None
                if not chunk:
                    if self._done:
                        return AttemptOutcome("aborted")
                    return AttemptOutcome(
                        "failed",
                        FailureInfo(
                            code=500,
                            message="the deployment closed the response stream without a "
                            "terminal message (End, Suspension or Error)",
                        ),
                        reason="no_terminal_message",
                    )
                self._touch()
                for frame in decoder.feed(chunk):
                    outcome = self._handle(frame.type, frame.flags, frame.payload, batch)
                    if outcome is not None:
                        return outcome
                if batch.items and batch.items[-1].type == MessageType.RUN:
                    # A run command is usually followed at once by its result proposal, in
                    # another chunk: journal both in one write rather than one fsync each.
                    # (Nothing waits on the run command itself.)
                    held = loop.call_later(_HOLD_RUN_S, self._flush, batch)
                    continue
                self._flush(batch)
        finally:
            if held is not None:
                held.cancel()
            # Whatever was valid before a bad message is journaled all the same.
            self._flush(batch)

    def _flush(self, batch: _Batch, last: Body | None = None) -> None:
        """Propose the batch (and a terminal record) as one append, pin first if needed."""
        bodies: list[Body] = []
        if batch.items or last is not None:
            if self._pin is not None:
                bodies.append(self._pin)
                self._pin = None
            if batch.items:
                self._stored += len(batch.items)
                bodies.append(Entries(self._inv, self._epoch, batch.items))
                batch.items = []
            if last is not None:
                bodies.append(last)
        if bodies:
            self._last_proposal = self._processor.propose_many(bodies)[-1]

    def _handle(
        self, msg_type: int, flags: int, payload: bytes, batch: _Batch
    ) -> AttemptOutcome | None:
        if is_command(msg_type):
            cls = MESSAGE_CLASSES.get(msg_type)
            if cls is None:
                raise ProtocolViolation(f"unknown command type {msg_type:#06x}")
            if msg_type == MessageType.INPUT:
                raise ProtocolViolation("the deployment sent an InputCommand")
            try:
                cls.FromString(payload)
            except DecodeError:
                raise ProtocolViolation(f"cannot decode command {msg_type:#06x}") from None
            batch.items.append(resolve(self._schema, self._status.target, msg_type, payload))
            return None
        if msg_type == MessageType.PROPOSE_RUN_COMPLETION:
            try:
                pb.ProposeRunCompletionMessage.FromString(payload)
            except DecodeError:
                raise ProtocolViolation("cannot decode ProposeRunCompletion") from None
            batch.items.append(JournalItem(msg_type, payload))
            return None
        if msg_type == MessageType.SUSPENSION:
            susp = _decode(pb.SuspensionMessage, payload)
            completions = list(susp.waiting_completions)
            signals = list(susp.waiting_signals)
            named = list(susp.waiting_named_signals)
            if susp.HasField("awaiting_on"):
                _flatten(susp.awaiting_on, completions, signals, named)
            if not (completions or signals or named):
                raise ProtocolViolation("suspension without anything to wait for")
            self._flush(batch, Suspend(self._inv, self._epoch, completions, signals, named))
            return AttemptOutcome("suspended")
        if msg_type == MessageType.END:
            self._flush(batch, End(self._inv, self._epoch))
            return AttemptOutcome("ended")
        if msg_type == MessageType.ERROR:
            err = _decode(pb.ErrorMessage, payload)
            failure = FailureInfo(
                code=err.code or 500,
                message=err.message,
                stacktrace=err.stacktrace,
                related_command_index=err.related_command_index
                if err.HasField("related_command_index")
                else None,
                related_command_name=err.related_command_name
                if err.HasField("related_command_name")
                else None,
                related_command_type=err.related_command_type
                if err.HasField("related_command_type")
                else None,
                doc_code="RT0007",
            )
            delay = err.next_retry_delay if err.HasField("next_retry_delay") else None
            return AttemptOutcome(
                "failed", failure, next_retry_delay_ms=delay, reason="handler_error"
            )
        if msg_type == MessageType.AWAITING_ON:
            return None
        raise ProtocolViolation(f"unexpected message type {msg_type:#06x} from the deployment")

    # ---- bidi writer and timeouts --------------------------------------------------------

    def _touch(self) -> None:
        self._last_activity = self._clock.now_ms() / 1000

    async def _writer(self) -> None:
        stream = self._stream
        assert stream is not None
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            if not self._outbox:
                continue
            data = b"".join(self._outbox)
            self._outbox.clear()
            self._touch()
            try:
                await stream.send(data)
            except DeploymentError:
                return

    async def _watchdog(self) -> None:
        """Bidi: half-close after the inactivity timeout; then abort after the abort timeout."""
        settings = self._settings
        stream = self._stream
        assert stream is not None
        if self.bidi:
            while True:
                idle = self._clock.now_ms() / 1000 - self._last_activity
                remaining = settings.inactivity_timeout_s - idle
                if remaining <= 0:
                    break
                await self._clock.sleep(remaining)
            self._input_closed = True
            log.debug(
                "invocation %s: inactivity timeout, closing the request stream",
                _show(self._inv),
                extra=invocation_extra(self._inv),
            )
            try:
                await stream.end()
            except DeploymentError:
                pass
            self._touch()
        while True:
            idle = self._clock.now_ms() / 1000 - self._last_activity
            remaining = settings.abort_timeout_s - idle
            if remaining <= 0:
                break
            await self._clock.sleep(remaining)
        log.warning(
            "invocation %s: abort timeout, aborting the attempt",
            _show(self._inv),
            extra=invocation_extra(self._inv),
        )
        stream.abort()


def _decode(cls: type[pb.SuspensionMessage] | type[pb.ErrorMessage], payload: bytes):  # type: ignore[no-untyped-def]
    try:
        return cls.FromString(payload)
    except DecodeError:
        raise ProtocolViolation(f"cannot decode {cls.__name__}") from None


def _flatten(fut: pb.Future, completions: list[int], signals: list[int], named: list[str]) -> None:
    completions.extend(fut.waiting_completions)
    signals.extend(fut.waiting_signals)
    named.extend(fut.waiting_named_signals)
    for nested in fut.nested_futures:
        _flatten(nested, completions, signals, named)


def _show(inv: bytes) -> str:
    return str(InvocationId.from_bytes(inv))
