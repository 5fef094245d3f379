"""One attempt of one invocation: the journal machine, the handler's task, its runs and I/O.

The handler's coroutines block only on durable futures (:meth:`Invocation.wait`). When nothing
they wait for is ready, one shared *advance* step makes progress, in this order: wait for a
running ``ctx.run`` closure, read more input from the runtime, and, when the input is closed and
nothing else can happen, let the handler's other tasks run, then suspend the invocation.
Output is flushed in the order it was written, at most once per event-loop turn.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import os
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from undying.errors import ProtocolError, SdkControlFlow, TerminalError
from undying.protocol.messages import MessageType
from undying.sdk.vm import CANCEL, JOURNAL_MISMATCH, Failure, Key, Machine

__all__ = ["AttemptEnded", "Invocation", "RunOptions", "Suspended"]

#: Event-loop turns given to the handler's other tasks before deciding nothing can progress.
_YIELDS: Final = 3
#: How long a new run's command may wait (while the handler waits) to be sent in one frame with
#: the run's result: a frame less per step for the runtime, the HTTP/2 stack and the SDK.
_RUN_COMMAND_HOLD_S: Final = 0.005


class Suspended(SdkControlFlow):
    """The attempt suspended: the handler waits for something that is not in the journal."""


class AttemptEnded(SdkControlFlow):
    """The attempt ended for another reason (a run asked for a retry, a protocol error)."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Options of one ``ctx.run`` step.

    Attributes:
        name: the step's name, shown in the journal and used to match it on replay.
        max_attempts: give up after this many attempts (the last failure becomes terminal);
            ``None`` retries forever, with the server's backoff unless ``initial_interval``.
        initial_interval: delay before the first retry; doubled (``factor``) each time.
        max_interval: cap of the retry delay.
        factor: growth of the retry delay.
        max_duration: give up once the step has been failing for this long.
    """

    name: str = ""
    max_attempts: int | None = None
    initial_interval: timedelta | None = None
    max_interval: timedelta | None = None
    factor: float = 2.0
    max_duration: timedelta | None = None


class Invocation:
    """Drives one attempt.

    Args:
        machine: the attempt's journal machine, already fed the whole known journal.
        receive: the next chunk of input (``None`` once the runtime closed its side).
        send: writes bytes to the runtime.
        executor: where synchronous ``ctx.run`` closures run (``None``: the loop's default).
        clock: the current time in seconds since the epoch (``time.time`` unless a test
            harness gives its virtual clock); ``ctx.sleep``, delayed sends and ``ctx.time``
            read it.
    """

    def __init__(
        self,
        machine: Machine,
        receive: Callable[[], Awaitable[bytes | None]],
        send: Callable[[bytes], Awaitable[None]],
        executor: Executor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.machine = machine
        self._receive = receive
        self._send = send
        self._executor = executor
        self.clock = clock
        self._waiting: Counter[Key] = Counter()
        self._advancing: asyncio.Future[None] | None = None
        self._runs: set[asyncio.Task[None]] = set()
        self._flush_task: asyncio.Task[None] | None = None
        self._ended: BaseException | None = None
        self.cancel_seen = False
        #: id keys of the calls this invocation made (for cancellation propagation)
        self.children: list[Key] = []
        self.handler_task: asyncio.Task[Any] | None = None
        #: a run's command was written and not flushed (see :meth:`start_run`)
        self._holding = False

    # -- output -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Send what the machine wrote, in order (asynchronously)."""
        if self._flush_task is None and self.machine.has_output:
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        try:
            while self.machine.has_output:
                await self._send(self.machine.take_output())
        finally:
            self._flush_task = None

    async def drain(self) -> None:
        """Wait until everything written was sent."""
        while self._flush_task is not None or self.machine.has_output:
            if self._flush_task is None:
                self.flush()
            task = self._flush_task
            if task is not None:
                await asyncio.shield(task)

    # -- waiting ------------------------------------------------------------------------------

    async def wait(self, keys: frozenset[Key], *, cancellable: bool = True) -> Key | None:
        """Block until one of ``keys`` is ready.

        Returns:
            ``CANCEL`` if cancellation arrived first (when ``cancellable``), else ``None``.

        Raises:
            Suspended: nothing can make progress in this attempt.
        """
        machine = self.machine
        watch = keys | {CANCEL} if cancellable and not self.cancel_seen else keys
        while True:
            if self._ended is not None:
                raise AttemptEnded("the attempt ended")
            if machine.poll(watch):
                if not self.cancel_seen and machine.is_ready(CANCEL) and CANCEL in watch:
                    if not any(machine.is_ready(k) for k in keys):
                        self.cancel_seen = True
                        return CANCEL
                return None
            self._waiting.update(watch)
            try:
                await self._advance()
            finally:
                self._waiting.subtract(watch)

    async def _advance(self) -> None:
        if self._advancing is None:
            future = asyncio.get_running_loop().create_future()
            self._advancing = future
            try:
                try:
                    await self._advance_once()
                except ProtocolError as error:
                    self.machine.break_attempt(error)
                    self.end(AttemptEnded(str(error)))
                    raise AttemptEnded(str(error)) from error
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # mark retrieved: every waiter re-raises it itself
                raise
            else:
                future.set_result(None)
            finally:
                self._advancing = None
        else:
            await asyncio.shield(self._advancing)

    async def _advance_once(self) -> None:
        machine = self.machine
        if self._holding:
            self._holding = False
            if self._runs:
                done, _ = await asyncio.wait(
                    set(self._runs),
                    timeout=_RUN_COMMAND_HOLD_S,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done:  # it flushed its command with its result
                    return
        self.flush()
        waiting = [k for k, n in self._waiting.items() if n > 0]
        if machine.poll(waiting):
            return
        if not self._runs and machine.input_closed:
            # About to suspend: first let the handler's other tasks run (they may start runs
            # or wait for more keys). Waiting for a run or for input lets them run anyway.
            for _ in range(_YIELDS):
                await asyncio.sleep(0)
            self.flush()
            waiting = [k for k, n in self._waiting.items() if n > 0]
            if machine.poll(waiting):
                return
        if self._runs:
            await asyncio.wait(set(self._runs), return_when=asyncio.FIRST_COMPLETED)
            return
        if not machine.input_closed:
            data = await self._receive()
            if data is None:
                machine.close_input()
            else:
                machine.feed(data)
            return
        if machine.replaying:
            raise machine.break_attempt(
                ProtocolError(
                    "journal mismatch: the handler awaits a result the journal does not have, "
                    "but the journal has more commands after it (the code changed)",
                    code=JOURNAL_MISMATCH,
                )
            )
        machine.suspend(k for k in waiting if not (k == CANCEL and self.cancel_seen))
        self.end(Suspended("the invocation suspended"))
        raise Suspended("the invocation suspended")

    def end(self, reason: BaseException) -> None:
        """The attempt is over: stop the handler and its runs."""
        if self._ended is None:
            self._ended = reason
        self.flush()
        for task in self._runs:
            task.cancel()
        if self.handler_task is not None and not self.handler_task.done():
            if asyncio.current_task() is not self.handler_task:
                self.handler_task.cancel()

    @property
    def ended(self) -> BaseException | None:
        """Why the attempt ended early, if it did."""
        return self._ended

    # -- runs ---------------------------------------------------------------------------------

    def start_run(
        self,
        key: Key,
        options: RunOptions,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        serialize: Callable[[Any], bytes],
    ) -> None:
        """Execute a run's closure (its result is then proposed to the runtime).

        The run's command is not flushed here: it goes out with the proposed result, or when
        the handler waits for something and no run finished within ``_RUN_COMMAND_HOLD_S``, or
        with any other output, whichever comes first.
        """
        task = asyncio.get_running_loop().create_task(
            self._execute(key, options, fn, args, kwargs, serialize)
        )
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        self._holding = True

    async def _execute(
        self,
        key: Key,
        options: RunOptions,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        serialize: Callable[[Any], bytes],
    ) -> None:
        machine = self.machine
        index = machine.command_index
        try:
            if inspect.iscoroutinefunction(fn):
                value = await fn(*args, **kwargs)
            else:
                call = functools.partial(fn, *args, **kwargs)
                value = await asyncio.get_running_loop().run_in_executor(self._executor, call)
                if inspect.isawaitable(value):
                    value = await value
            result: bytes | Failure = serialize(value)
        except TerminalError as exc:
            result = Failure(exc.status_code, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result_or_none = self._run_failed(key, index, options, exc)
            if result_or_none is None:
                return
            result = result_or_none
        machine.propose_run_completion(key, result)
        self.flush()

    def _run_failed(
        self, key: Key, index: int, options: RunOptions, exc: Exception
    ) -> Failure | None:
        machine = self.machine
        start = machine.start
        assert start is not None
        attempt = start.retry_count + 1
        elapsed = timedelta(milliseconds=start.duration_since_last_entry_ms)
        message = f"{type(exc).__name__}: {exc}"
        if (options.max_attempts is not None and attempt >= options.max_attempts) or (
            options.max_duration is not None and elapsed >= options.max_duration
        ):
            return Failure(
                500, f"run {options.name!r} failed after {attempt} attempt(s): {message}"
            )
        delay_ms: int | None = None
        if options.initial_interval is not None:
            delay = options.initial_interval.total_seconds() * options.factor ** (attempt - 1)
            if options.max_interval is not None:
                delay = min(delay, options.max_interval.total_seconds())
            delay_ms = round(delay * 1000)
        machine.fail(
            500,
            message,
            stacktrace=user_traceback(exc),
            next_retry_delay_ms=delay_ms,
            related_command=(index, options.name, MessageType.RUN),
        )
        self.end(AttemptEnded(f"run {options.name!r} failed"))
        del key
        return None

    # -- the handler --------------------------------------------------------------------------

    async def run_handler(
        self,
        handler: Callable[[], Awaitable[Any]],
        serialize: Callable[[Any], bytes],
    ) -> None:
        """Run the handler to its end and write the outcome: Output + End, or an error."""
        machine = self.machine
        task = asyncio.get_running_loop().create_task(_call(handler))
        self.handler_task = task
        try:
            value = await task
            if machine.fatal is None:
                machine.write_output(serialize(value))
                machine.end()
        except TerminalError as exc:
            if machine.fatal is None:
                self._finish_failed(exc)
        except ProtocolError as exc:
            machine.break_attempt(exc)
        except SdkControlFlow:
            pass
        except asyncio.CancelledError:
            if self._ended is None:
                raise
        except Exception as exc:
            if machine.fatal is None:
                machine.fail(500, f"{type(exc).__name__}: {exc}", stacktrace=user_traceback(exc))
        finally:
            if machine.fatal is not None:
                machine.fail(machine.fatal.code, str(machine.fatal))
            for run in list(self._runs):
                run.cancel()
            self.flush()
            with contextlib.suppress(Exception):
                await self.drain()

    def _finish_failed(self, exc: TerminalError) -> None:
        machine = self.machine
        try:
            machine.write_output(Failure(exc.status_code, exc.message))
            machine.end()
        except ProtocolError as error:
            machine.break_attempt(error)

    def keys_ready(self, keys: Iterable[Key]) -> list[Key]:
        """Which of ``keys`` are ready now (no notification is moved)."""
        return [k for k in keys if self.machine.is_ready(k)]


async def _call(handler: Callable[[], Awaitable[Any]]) -> Any:
    return await handler()


_SDK_DIR: Final = os.path.dirname(os.path.abspath(__file__))
_INTERNAL: Final = (
    _SDK_DIR,
    os.path.dirname(asyncio.__file__),
    os.path.dirname(concurrent.futures.__file__),
)


def user_traceback(exc: BaseException) -> str:
    """``exc``'s stack trace without the SDK's (and asyncio's, the thread pool's) leading frames.

    The failure of a step or handler shows where the user's code failed, not how the SDK
    called it; a trace with no frame of the user's is given whole.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_INTERNAL):
        tb = tb.tb_next
    if tb is None:
        tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb))
