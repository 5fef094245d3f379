"""The invoker: runs the attempts of invoked invocations against their deployments, with retries.

The state machine says *what* runs (``Invoke`` actions with an epoch); the invoker decides *how*:
it pins the deployment and protocol version on the first attempt, retries failed attempts with
the handler's backoff policy, and reports every outcome back as a record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from undying.protocol.ids import InvocationId
from undying.server.clock import Clock
from undying.server.invoker.attempt import Attempt, AttemptOutcome, AttemptSettings
from undying.server.invoker.retry import backoff_ms, exhausted
from undying.server.invoker.streams import Connector
from undying.server.logs import invocation_extra
from undying.server.metrics import InvokerStats
from undying.server.partition.processor import PartitionProcessor
from undying.server.partition.records import AttemptFailed, FailureInfo, Pinned
from undying.server.partition.state import InvocationStatus
from undying.server.schema import DEFAULT_RETRY_POLICY, DeploymentInfo, RetryPolicy, Schema

__all__ = ["Invoker", "InvokerOptions", "choose_protocol_version"]

log = logging.getLogger("undying.invoker")

#: Highest protocol version used for new invocations unless V7 is enabled.
_DEFAULT_MAX_VERSION: Final = 6
#: Refused streams retried at once, in a row, before backing off like any failure.
_MAX_REFUSALS: Final = 3


@dataclass(frozen=True, slots=True)
class InvokerOptions:
    cluster_name: str = "undying"
    enable_v7: bool = False
    max_message_size: int = 32 * 1024 * 1024
    eager_state_limit: int = 32 * 1024 * 1024
    default_retry: RetryPolicy = DEFAULT_RETRY_POLICY


def choose_protocol_version(dep: DeploymentInfo, *, enable_v7: bool) -> int | None:
    """The highest version both sides speak (capped at 6 unless V7 is enabled)."""
    top = 7 if enable_v7 else _DEFAULT_MAX_VERSION
    version = min(dep.max_protocol_version, top)
    return version if version >= max(5, dep.min_protocol_version) else None


class _Run:
    """The attempts of one invocation for one epoch."""

    __slots__ = ("attempt", "epoch", "inv", "retry_at", "task")

    def __init__(self, inv: bytes, epoch: int) -> None:
        self.inv = inv
        self.epoch = epoch
        self.attempt: Attempt | None = None
        self.task: asyncio.Task[None] | None = None
        #: when the next attempt starts, while backing off after a failed one
        self.retry_at: int | None = None


class Invoker:
    """Runs invocations. ``schema()`` returns the current schema registry.

    ``on_settle``, if given, is called whenever an invocation stops running attempts: it backs
    off after a failure, or it is done (ended, suspended, paused, aborted).
    """

    def __init__(
        self,
        connector: Connector,
        schema: Callable[[], Schema],
        clock: Clock,
        options: InvokerOptions | None = None,
        *,
        on_settle: Callable[[], None] | None = None,
    ) -> None:
        self._connector = connector
        self._schema = schema
        self._clock = clock
        self._options = options or InvokerOptions()
        self._runs: dict[bytes, _Run] = {}
        self._eager_limit = self._options.eager_state_limit
        self._on_settle = on_settle
        #: attempts started, failed, retried; their durations (for the metrics)
        self.stats = InvokerStats()

    # ---- actions from the state machine --------------------------------------------------

    def invoke(self, processor: PartitionProcessor, inv: bytes, epoch: int) -> None:
        old = self._runs.get(inv)
        if old is not None:
            if old.epoch >= epoch:
                return
            self._cancel(old)
        run = _Run(inv, epoch)
        self._runs[inv] = run
        run.task = asyncio.get_running_loop().create_task(self._drive(processor, run))

    def forward(self, inv: bytes, epoch: int, entry_type: int, payload: bytes) -> None:
        run = self._runs.get(inv)
        if run is not None and run.epoch == epoch and run.attempt is not None:
            run.attempt.forward(entry_type, payload)

    def abort(self, inv: bytes) -> None:
        run = self._runs.pop(inv, None)
        if run is not None:
            self._cancel(run)

    def _cancel(self, run: _Run) -> None:
        if run.attempt is not None:
            run.attempt.abort()
        if run.task is not None and not run.task.done():
            run.task.cancel()

    async def stop(self) -> None:
        runs = list(self._runs.values())
        self._runs.clear()
        for run in runs:
            self._cancel(run)
        tasks = [r.task for r in runs if r.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def running(self) -> int:
        return len(self._runs)

    @property
    def attempting(self) -> int:
        """Invocations with an attempt in flight or about to start (not backing off)."""
        return sum(1 for r in self._runs.values() if r.retry_at is None)

    @property
    def next_retry_ms(self) -> int | None:
        """When the earliest invocation backing off starts its next attempt, if any."""
        return min(
            (r.retry_at for r in self._runs.values() if r.retry_at is not None), default=None
        )

    # ---- the retry loop ------------------------------------------------------------------

    async def _drive(self, processor: PartitionProcessor, run: _Run) -> None:
        try:
            await self._attempts(processor, run)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "invocation %s: the invoker failed", _show(run.inv), extra=invocation_extra(run.inv)
            )
        finally:
            if self._runs.get(run.inv) is run:
                del self._runs[run.inv]
            self._settled()

    def _settled(self) -> None:
        if self._on_settle is not None:
            self._on_settle()

    async def _attempts(self, processor: PartitionProcessor, run: _Run) -> None:
        attempts = 0
        since_stored = 0
        refusals = 0
        store = processor.store
        stats = self.stats
        while True:
            status = store.get_status(run.inv)
            if status is None or status.status != "invoked" or status.epoch != run.epoch:
                return
            schema = self._schema()
            attempts += 1
            service = status.target.service
            stats.attempt_started(service)
            started = time.perf_counter()
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "invocation %s: attempt %d of %s/%s starts",
                    _show(run.inv),
                    attempts,
                    service,
                    status.target.handler,
                    extra=invocation_extra(run.inv),
                )
            resolved = schema.resolve(service, status.target.handler)
            policy = self._options.default_retry
            if resolved is None:
                outcome = AttemptOutcome(
                    "failed",
                    FailureInfo(
                        404,
                        f"the handler {status.target.service}/{status.target.handler} "
                        "is not registered",
                    ),
                    reason="not_registered",
                )
            else:
                svc, handler = resolved
                policy = svc.retry_policy(handler, self._options.default_retry)
                picked = self._deployment_for(schema, status, svc.deployment_id)
                if isinstance(picked, FailureInfo):
                    outcome = AttemptOutcome("failed", picked, reason="deployment")
                else:
                    dep, version = picked
                    pin = None
                    if status.deployment_id is None:
                        # Pinned with the attempt's first record: a deployment that never
                        # answered leaves nothing journaled, so nothing to pin yet.
                        pin = Pinned(run.inv, run.epoch, dep.id, version, dep.sdk_version)
                    state_map: dict[bytes, bytes] | None = None
                    key = status.target.key
                    if key is not None and not svc.lazy_state(handler):
                        state = store.state(svc.name, key)
                        if sum(len(k) + len(v) for k, v in state.items()) <= self._eager_limit:
                            state_map = dict(state)
                    attempt = Attempt(
                        processor=processor,
                        connector=self._connector,
                        clock=self._clock,
                        status=status,
                        journal=list(store.journal(run.inv)),
                        state_map=state_map,
                        service=svc,
                        handler=handler,
                        deployment=dep,
                        version=version,
                        settings=AttemptSettings(
                            inactivity_timeout_s=svc.effective_inactivity_timeout_ms(handler)
                            / 1000,
                            abort_timeout_s=svc.effective_abort_timeout_ms(handler) / 1000,
                            cluster_name=self._options.cluster_name,
                            max_message_size=self._options.max_message_size,
                        ),
                        retry_count_since_stored=since_stored,
                        schema=schema,
                        pin=pin,
                    )
                    run.attempt = attempt
                    try:
                        outcome = await attempt.run()
                    except asyncio.CancelledError:
                        # the invocation completed (or was aborted) while the attempt's last
                        # records were being stored: the attempt knows how it ended
                        kind = attempt.outcome.kind if attempt.outcome is not None else "aborted"
                        stats.attempt_ended(kind, time.perf_counter() - started)
                        raise
                    finally:
                        run.attempt = None
            stats.attempt_ended(outcome.kind, time.perf_counter() - started)
            if outcome.kind != "failed":
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "invocation %s: attempt %d %s",
                        _show(run.inv),
                        attempts,
                        outcome.kind,
                        extra=invocation_extra(run.inv),
                    )
                return
            reason = outcome.reason or "unknown"
            stats.attempt_failed(service, reason)
            if outcome.retry_now and refusals < _MAX_REFUSALS:
                # Not an attempt the deployment saw: go again at once, without counting it.
                refusals += 1
                attempts -= 1
                stats.retried_after(service, reason)
                continue
            refusals = 0
            # Like Restate: storing something resets the count, and this failure counts after.
            since_stored = 1 if outcome.stored_entries else since_stored + 1
            failure = outcome.failure or FailureInfo(500, "unknown failure")
            if exhausted(policy, attempts):
                action: Literal["pause", "kill"] = (
                    "pause" if policy.on_max_attempts == "Pause" else "kill"
                )
                stats.exhausted_with(service, action)
                log.warning(
                    "invocation %s: attempt %d failed, retries exhausted (%s): [%d] %s",
                    _show(run.inv),
                    attempts,
                    action,
                    failure.code,
                    failure.message,
                    extra=invocation_extra(run.inv),
                )
                await processor.propose(
                    AttemptFailed(run.inv, run.epoch, failure, attempts, None, action)
                )
                return
            delay = (
                outcome.next_retry_delay_ms
                if outcome.next_retry_delay_ms is not None
                else backoff_ms(policy, attempts)
            )
            stats.retried_after(service, reason)
            log.warning(
                "invocation %s: attempt %d failed, retrying in %d ms: [%d] %s",
                _show(run.inv),
                attempts,
                delay,
                failure.code,
                failure.message,
                extra=invocation_extra(run.inv),
            )
            retry_at = self._clock.now_ms() + delay
            await processor.propose(
                AttemptFailed(run.inv, run.epoch, failure, attempts, retry_at, "retry")
            )
            run.retry_at = self._clock.now_ms() + delay  # the sleep starts now
            self._settled()
            try:
                await self._clock.sleep(delay / 1000)
            finally:
                run.retry_at = None

    def _deployment_for(
        self, schema: Schema, status: InvocationStatus, latest: str
    ) -> FailureInfo | tuple[DeploymentInfo, int]:
        dep_id = status.deployment_id or latest
        dep = schema.deployments.get(dep_id)
        if dep is None:
            return FailureInfo(500, f"the deployment {dep_id} is not registered any more")
        if status.protocol_version is not None:
            return dep, status.protocol_version
        version = choose_protocol_version(dep, enable_v7=self._options.enable_v7)
        if version is None:
            return FailureInfo(
                415,
                f"the deployment {dep.id} supports protocol versions "
                f"[{dep.min_protocol_version}, {dep.max_protocol_version}], none usable here",
            )
        return dep, version


def _show(inv: bytes) -> str:
    return str(InvocationId.from_bytes(inv))
