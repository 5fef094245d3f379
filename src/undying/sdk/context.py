"""The contexts handed to handlers: every durable operation a handler can do.

::

    Context                         services: steps, timers, calls, awakeables, randomness
    └── ObjectSharedContext         + the object's key, reading its state
        ├── ObjectContext           + writing state (exclusive handlers)
        └── WorkflowSharedContext   + durable promises (workflow shared handlers)
            └── WorkflowContext     + writing state (the workflow's run handler)

Shared handlers get a context without the methods they must not use, so writing state from a
shared handler is a type error (and an ``AttributeError`` at run time).
"""

from __future__ import annotations

import random as _random
import uuid as _uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from undying.errors import TerminalError
from undying.sdk.futures import (
    CallFuture,
    DurableFuture,
    SendHandle,
    decode_void,
    decoder,
)
from undying.sdk.invocation import Invocation, RunOptions
from undying.sdk.serde import JsonSerde, Serde, serde_for
from undying.sdk.vm import Failure, Result, StateKeysResult, Target, VoidResult

if TYPE_CHECKING:
    from undying.sdk.definitions import Handler

__all__ = [
    "Context",
    "DurablePromise",
    "ObjectContext",
    "ObjectSharedContext",
    "Request",
    "WorkflowContext",
    "WorkflowSharedContext",
]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the conventional name of a handler's input type
O = TypeVar("O")  # noqa: E741
P = ParamSpec("P")

_JSON: Serde[Any] = JsonSerde()


@dataclass(frozen=True, slots=True)
class Request:
    """The invocation being handled.

    Attributes:
        id: the invocation id (``inv_…``).
        headers: the headers of the request that started it (lower-case names).
        body: its raw input.
        attempt: the attempt number since the last journaled step (1 for the first).
        key: the object or workflow key (``""`` for services).
    """

    id: str
    headers: Mapping[str, str]
    body: bytes
    attempt: int
    key: str


def _now_ms(clock: Callable[[], float]) -> int:
    # Whole milliseconds, rounded down; the microsecond of slack keeps a clock that reads whole
    # milliseconds (a virtual one) from losing one to the float error of ``ms / 1000 * 1000``.
    return int(clock() * 1000 + 0.001)


def _millis(delay: timedelta | float) -> int:
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        raise ValueError(f"negative duration {delay!r}")
    return round(seconds * 1000)


#: The serde of each ``ctx.run`` function, resolved once: resolving its string annotations
#: (``get_type_hints`` compiles them) on every call cost about 5 µs per step.
_RUN_SERDES: weakref.WeakKeyDictionary[Callable[..., Any], Serde[Any]] = weakref.WeakKeyDictionary()


def _run_serde(fn: Callable[..., Any]) -> Serde[Any]:
    key = getattr(fn, "__func__", fn)  # a bound method is a new object on every access
    try:
        return _RUN_SERDES[key]
    except (KeyError, TypeError):  # TypeError: unhashable or not weakly referenceable
        pass
    serde = _resolve_run_serde(fn)
    try:
        _RUN_SERDES[key] = serde
    except TypeError:
        pass
    return serde


def _resolve_run_serde(fn: Callable[..., Any]) -> Serde[Any]:
    hints = getattr(fn, "__annotations__", None)
    if not hints or "return" not in hints:
        return _JSON
    try:
        import typing

        hint = typing.get_type_hints(fn, include_extras=True).get("return")
    except Exception:
        return _JSON
    if hint is None:
        return serde_for(type(None))
    origin = getattr(hint, "__origin__", None)
    if origin is not None and getattr(origin, "__name__", "") in ("Coroutine", "Awaitable"):
        hint = hint.__args__[-1]
    return serde_for(hint)


class Context:
    """What every handler can do. Durable operations are journaled and replayed."""

    __slots__ = ("_invocation", "_rand", "_request")

    def __init__(self, invocation: Invocation, request: Request) -> None:
        self._invocation = invocation
        self._request = request
        start = invocation.machine.start
        assert start is not None
        self._rand = _random.Random(start.random_seed)

    # -- the request --------------------------------------------------------------------------

    def request(self) -> Request:
        """The invocation being handled: id, headers, raw body, attempt."""
        return self._request

    # -- steps --------------------------------------------------------------------------------

    @overload
    def run(
        self,
        name: str | RunOptions,
        fn: Callable[P, Coroutine[Any, Any, T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> DurableFuture[T]: ...
    @overload
    def run(
        self, name: str | RunOptions, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> DurableFuture[T]: ...
    def run(
        self, name: str | RunOptions, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> DurableFuture[Any]:
        """Run ``fn(*args, **kwargs)`` once and journal its result.

        On replay the journaled result is returned and ``fn`` is not called again. Async
        functions are awaited; plain functions run in a thread pool, so they never block the
        event loop. A :class:`~undying.errors.TerminalError` from ``fn`` is journaled as the
        step's failure; any other exception retries the step (by default forever, with the
        server's backoff; see :class:`RunOptions`).

        Args:
            name: the step's name, or :class:`RunOptions` with a name and a retry policy.
            fn: the side effect.
            *args: positional arguments for ``fn``.
            **kwargs: keyword arguments for ``fn``.

        Returns:
            A durable future of ``fn``'s result (serialized by its return annotation).
        """
        options = name if isinstance(name, RunOptions) else RunOptions(name=name)
        invocation = self._invocation
        serde = _run_serde(fn)
        key = invocation.machine.run(options.name)
        if invocation.machine.must_execute(key):
            invocation.start_run(key, options, fn, args, dict(kwargs), serde.serialize)
        else:
            invocation.flush()
        return DurableFuture(invocation, key, decoder(serde.deserialize))

    def sleep(self, duration: timedelta | float, *, name: str = "") -> DurableFuture[None]:
        """A durable timer: the future completes after ``duration`` (a timedelta or seconds).

        The invocation can suspend meanwhile; the timer survives restarts of everything.
        """
        wake = _now_ms(self._invocation.clock) + _millis(duration)
        key = self._invocation.machine.sleep(wake, name)
        self._invocation.flush()
        return DurableFuture(self._invocation, key, decode_void)

    # -- deterministic values -----------------------------------------------------------------

    def random(self) -> float:
        """A deterministic random float in [0, 1): the same on every replay."""
        return self._rand.random()

    @property
    def rand(self) -> _random.Random:
        """The deterministic random generator of this invocation (seeded by the server)."""
        return self._rand

    def uuid(self) -> _uuid.UUID:
        """A deterministic UUID (version 4 layout): the same on every replay."""
        return _uuid.UUID(int=self._rand.getrandbits(128), version=4)

    def time(self) -> DurableFuture[float]:
        """The current time (seconds since the epoch), journaled so replays see the same."""
        return self.run("time", self._invocation.clock)

    # -- calls --------------------------------------------------------------------------------

    def _call(
        self,
        service: str,
        handler: str,
        parameter: bytes,
        key: str,
        idempotency_key: str | None,
        headers: Mapping[str, str] | None,
        decode: Callable[[Result], O],
    ) -> CallFuture[O]:
        invocation = self._invocation
        id_key, result_key = invocation.machine.call(
            service,
            handler,
            parameter,
            key=key,
            headers=tuple((headers or {}).items()),
            idempotency_key=idempotency_key,
        )
        invocation.children.append(id_key)
        invocation.flush()
        return CallFuture(invocation, id_key, result_key, decode)

    def _typed_call(
        self,
        handler: Handler[Any, O],
        arg: Any,
        key: str,
        idempotency_key: str | None,
        headers: Mapping[str, str] | None,
    ) -> CallFuture[O]:
        return self._call(
            handler.service_name,
            handler.name,
            handler.input_serde.serialize(arg),
            key,
            idempotency_key,
            headers,
            decoder(handler.output_serde.deserialize),
        )

    def _send(
        self,
        service: str,
        handler: str,
        parameter: bytes,
        key: str,
        delay: timedelta | float | None,
        idempotency_key: str | None,
        headers: Mapping[str, str] | None,
    ) -> SendHandle:
        invocation = self._invocation
        invoke_time = _now_ms(invocation.clock) + _millis(delay) if delay else 0
        id_key = invocation.machine.send(
            service,
            handler,
            parameter,
            key=key,
            headers=tuple((headers or {}).items()),
            invoke_time_ms=invoke_time,
            idempotency_key=idempotency_key,
        )
        invocation.flush()
        return SendHandle(invocation, id_key)

    def _typed_send(
        self,
        handler: Handler[Any, Any],
        arg: Any,
        key: str,
        delay: timedelta | float | None,
        idempotency_key: str | None,
        headers: Mapping[str, str] | None,
    ) -> SendHandle:
        parameter = handler.input_serde.serialize(arg)
        return self._send(
            handler.service_name, handler.name, parameter, key, delay, idempotency_key, headers
        )

    def service_call(
        self,
        handler: Handler[I, O],
        arg: I,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[O]:
        """Call a service handler and get its result (``arg`` is ``None`` for no input)."""
        return self._typed_call(handler, arg, "", idempotency_key, headers)

    def object_call(
        self,
        handler: Handler[I, O],
        key: str,
        arg: I,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[O]:
        """Call a virtual object's handler for ``key``."""
        return self._typed_call(handler, arg, key, idempotency_key, headers)

    def workflow_call(
        self,
        handler: Handler[I, O],
        key: str,
        arg: I,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[O]:
        """Call a workflow's handler (its run handler or a shared one) for workflow ``key``."""
        return self._typed_call(handler, arg, key, idempotency_key, headers)

    def service_send(
        self,
        handler: Handler[I, Any],
        arg: I,
        *,
        delay: timedelta | float | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle:
        """Send a one-way call to a service handler, optionally after ``delay``."""
        return self._typed_send(handler, arg, "", delay, idempotency_key, headers)

    def object_send(
        self,
        handler: Handler[I, Any],
        key: str,
        arg: I,
        *,
        delay: timedelta | float | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle:
        """Send a one-way call to a virtual object's handler for ``key``."""
        return self._typed_send(handler, arg, key, delay, idempotency_key, headers)

    def workflow_send(
        self,
        handler: Handler[I, Any],
        key: str,
        arg: I,
        *,
        delay: timedelta | float | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle:
        """Send a one-way call to a workflow's handler for workflow ``key``."""
        return self._typed_send(handler, arg, key, delay, idempotency_key, headers)

    def generic_call(
        self,
        service: str,
        handler: str,
        arg: bytes,
        *,
        key: str = "",
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CallFuture[bytes]:
        """Call any handler by name with raw bytes in and out."""
        return self._call(service, handler, arg, key, idempotency_key, headers, decoder(bytes))

    def generic_send(
        self,
        service: str,
        handler: str,
        arg: bytes,
        *,
        key: str = "",
        delay: timedelta | float | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SendHandle:
        """Send a one-way call to any handler by name with raw bytes."""
        return self._send(service, handler, arg, key, delay, idempotency_key, headers)

    # -- other invocations --------------------------------------------------------------------

    def cancel_invocation(self, invocation_id: str) -> None:
        """Cancel another invocation (it ends with 409 "cancelled")."""
        self._invocation.machine.send_signal(invocation_id, index=1)
        self._invocation.flush()

    @overload
    def attach_invocation(self, invocation_id: str) -> DurableFuture[Any]: ...
    @overload
    def attach_invocation(self, invocation_id: str, type_hint: type[T]) -> DurableFuture[T]: ...
    def attach_invocation(
        self, invocation_id: str, type_hint: type[Any] | None = None
    ) -> DurableFuture[Any]:
        """Wait for another invocation's result."""
        key = self._invocation.machine.attach_invocation(Target(invocation_id=invocation_id))
        self._invocation.flush()
        serde = serde_for(type_hint) if type_hint is not None else _JSON
        return DurableFuture(self._invocation, key, decoder(serde.deserialize))

    @overload
    def invocation_output(self, invocation_id: str) -> DurableFuture[Any | None]: ...
    @overload
    def invocation_output(
        self, invocation_id: str, type_hint: type[T]
    ) -> DurableFuture[T | None]: ...
    def invocation_output(
        self, invocation_id: str, type_hint: type[Any] | None = None
    ) -> DurableFuture[Any | None]:
        """Another invocation's result if it finished, else ``None`` (does not wait)."""
        key = self._invocation.machine.get_invocation_output(Target(invocation_id=invocation_id))
        self._invocation.flush()
        serde = serde_for(type_hint) if type_hint is not None else _JSON

        def decode(result: Result) -> Any:
            if result is VoidResult.VOID:
                return None
            return decoder(serde.deserialize)(result)

        return DurableFuture(self._invocation, key, decode)

    # -- awakeables and signals ---------------------------------------------------------------

    @overload
    def awakeable(self) -> tuple[str, DurableFuture[Any]]: ...
    @overload
    def awakeable(self, type_hint: type[T]) -> tuple[str, DurableFuture[T]]: ...
    def awakeable(self, type_hint: type[Any] | None = None) -> tuple[str, DurableFuture[Any]]:
        """A new awakeable: an id to hand to another system, and the future it completes.

        Complete it with :meth:`resolve_awakeable` / :meth:`reject_awakeable` from another
        handler, or over HTTP: ``POST /restate/awakeables/{id}/resolve``.
        """
        awakeable_id, key = self._invocation.machine.awakeable()
        serde = serde_for(type_hint) if type_hint is not None else _JSON
        return awakeable_id, DurableFuture(self._invocation, key, decoder(serde.deserialize))

    def resolve_awakeable(
        self, awakeable_id: str, value: object, *, serde: Serde[Any] | None = None
    ) -> None:
        """Complete another invocation's awakeable with ``value``."""
        data = (serde or serde_for(type(value))).serialize(value)
        self._invocation.machine.complete_awakeable(awakeable_id, data)
        self._invocation.flush()

    def reject_awakeable(self, awakeable_id: str, message: str, *, code: int = 500) -> None:
        """Fail another invocation's awakeable (its waiter gets a TerminalError)."""
        self._invocation.machine.complete_awakeable(awakeable_id, Failure(code, message))
        self._invocation.flush()

    @overload
    def signal(self, name: str) -> DurableFuture[Any]: ...
    @overload
    def signal(self, name: str, type_hint: type[T]) -> DurableFuture[T]: ...
    def signal(self, name: str, type_hint: type[Any] | None = None) -> DurableFuture[Any]:
        """The named signal ``name`` sent to this invocation (see :meth:`send_signal`)."""
        serde = serde_for(type_hint) if type_hint is not None else _JSON
        return DurableFuture(self._invocation, name, decoder(serde.deserialize))

    def send_signal(self, invocation_id: str, name: str, value: object) -> None:
        """Send the named signal ``name`` with ``value`` to another invocation."""
        data = serde_for(type(value)).serialize(value)
        self._invocation.machine.send_signal(invocation_id, name=name, result=data)
        self._invocation.flush()

    def reject_signal(
        self, invocation_id: str, name: str, message: str, *, code: int = 500
    ) -> None:
        """Send the named signal ``name`` as a failure to another invocation."""
        self._invocation.machine.send_signal(
            invocation_id, name=name, result=Failure(code, message)
        )
        self._invocation.flush()


class ObjectSharedContext(Context):
    """A virtual object's shared handler: reads the object's state, runs concurrently."""

    __slots__ = ()

    def key(self) -> str:
        """The object (or workflow) key."""
        return self._request.key

    @overload
    def get(self, key: str) -> DurableFuture[Any | None]: ...
    @overload
    def get(self, key: str, type_hint: type[T]) -> DurableFuture[T | None]: ...
    @overload
    def get(self, key: str, type_hint: type[T], *, default: T) -> DurableFuture[T]: ...
    def get(
        self, key: str, type_hint: type[Any] | None = None, *, default: Any = None
    ) -> DurableFuture[Any]:
        """The value of state ``key`` (``default`` if absent), decoded as ``type_hint``."""
        serde = serde_for(type_hint) if type_hint is not None else _JSON
        state_key = self._invocation.machine.get_state(key)
        self._invocation.flush()

        def decode(result: Result) -> Any:
            if result is VoidResult.VOID:
                return default
            return decoder(serde.deserialize)(result)

        return DurableFuture(self._invocation, state_key, decode)

    def state_keys(self) -> DurableFuture[list[str]]:
        """The names of every state key, sorted."""
        key = self._invocation.machine.get_state_keys()
        self._invocation.flush()

        def decode(result: Result) -> list[str]:
            if isinstance(result, StateKeysResult):
                return list(result.keys)
            raise TerminalError(f"unexpected result for state keys: {result!r}")

        return DurableFuture(self._invocation, key, decode)


class _StateWriter(ObjectSharedContext):
    __slots__ = ()

    def set(self, key: str, value: object, *, serde: Serde[Any] | None = None) -> None:
        """Set state ``key`` to ``value`` (applied when this step is journaled)."""
        data = (serde or serde_for(type(value))).serialize(value)
        self._invocation.machine.set_state(key, data)
        self._invocation.flush()

    def clear(self, key: str) -> None:
        """Delete state ``key``."""
        self._invocation.machine.clear_state(key)
        self._invocation.flush()

    def clear_all(self) -> None:
        """Delete every state key of this object or workflow."""
        self._invocation.machine.clear_all_state()
        self._invocation.flush()


class ObjectContext(_StateWriter):
    """A virtual object's exclusive handler: reads and writes the object's state."""

    __slots__ = ()


class DurablePromise(Awaitable[T]):
    """A workflow's durable promise: resolved once, by any handler of the workflow.

    Await it (or :meth:`value`) to wait for its value; :meth:`peek` reads it without waiting.
    """

    __slots__ = ("_ctx", "_name", "_serde")

    def __init__(self, ctx: Context, name: str, serde: Serde[Any]) -> None:
        self._ctx = ctx
        self._name = name
        self._serde = serde

    @property
    def name(self) -> str:
        """The promise's name."""
        return self._name

    def value(self) -> DurableFuture[T]:
        """The promise's value, once it is resolved (a rejection raises TerminalError)."""
        invocation = self._ctx._invocation  # pyright: ignore[reportPrivateUsage]
        key = invocation.machine.get_promise(self._name)
        invocation.flush()
        return DurableFuture(invocation, key, decoder(self._serde.deserialize))

    def __await__(self) -> Generator[Any, None, T]:
        return self.value().__await__()

    def peek(self) -> DurableFuture[T | None]:
        """The value if the promise is resolved, else ``None``."""
        invocation = self._ctx._invocation  # pyright: ignore[reportPrivateUsage]
        key = invocation.machine.peek_promise(self._name)
        invocation.flush()
        serde = self._serde

        def decode(result: Result) -> T | None:
            if result is VoidResult.VOID:
                return None
            value: T = decoder(serde.deserialize)(result)
            return value

        return DurableFuture(invocation, key, decode)

    async def resolve(self, value: T) -> None:
        """Resolve the promise (a TerminalError with 409 if it was already completed)."""
        await self._complete(self._serde.serialize(value))

    async def reject(self, message: str, *, code: int = 500) -> None:
        """Reject the promise: its waiters get a TerminalError with ``message``."""
        await self._complete(Failure(code, message))

    async def _complete(self, result: bytes | Failure) -> None:
        invocation = self._ctx._invocation  # pyright: ignore[reportPrivateUsage]
        key = invocation.machine.complete_promise(self._name, result)
        invocation.flush()
        await DurableFuture(invocation, key, decode_void)


class WorkflowSharedContext(ObjectSharedContext):
    """A workflow's shared handler: reads state, resolves and reads durable promises."""

    __slots__ = ()

    @overload
    def promise(self, name: str) -> DurablePromise[Any]: ...
    @overload
    def promise(self, name: str, type_hint: type[T]) -> DurablePromise[T]: ...
    def promise(self, name: str, type_hint: type[Any] | None = None) -> DurablePromise[Any]:
        """The workflow's durable promise ``name``."""
        serde = serde_for(type_hint) if type_hint is not None else _JSON
        return DurablePromise(self, name, serde)


class WorkflowContext(WorkflowSharedContext, _StateWriter):
    """A workflow's run handler: everything, including writing the workflow's state."""

    __slots__ = ()


def context_class(service_kind: str, handler_kind: str | None) -> type[Context]:
    """The context class a handler of this kind gets."""
    if service_kind == "object":
        return ObjectSharedContext if handler_kind == "shared" else ObjectContext
    if service_kind == "workflow":
        return WorkflowContext if handler_kind == "workflow" else WorkflowSharedContext
    return Context


def parse_headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Input headers as a dict with lower-case names."""
    return {k.lower(): v for k, v in headers}
