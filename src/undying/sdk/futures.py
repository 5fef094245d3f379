"""Durable futures and the combinators over them.

A :class:`DurableFuture` stands for a result the journal will hold: a step's, a timer's, a
call's, an awakeable's, a promise's. Awaiting it blocks the handler until the result is
journaled (suspending the invocation if that takes a while). Combinators (:func:`gather`,
:func:`select`, :func:`wait_completed`, :func:`as_completed`) decide the order of completions
from the journal, so they pick the same winner on every replay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any, Generic, TypeVar, overload

from undying.errors import InvocationCancelled, TerminalError
from undying.sdk.invocation import Invocation
from undying.sdk.vm import (
    CANCEL,
    Failure,
    InvocationIdResult,
    Key,
    Result,
    VoidResult,
)

__all__ = [
    "CallFuture",
    "DurableFuture",
    "SendHandle",
    "as_completed",
    "gather",
    "select",
    "wait_completed",
]

T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")

_UNSET: Any = object()


class DurableFuture(Generic[T]):
    """A result the journal will hold. Await it to get the value.

    A failure in the journal is raised as :class:`~undying.errors.TerminalError`; a
    cancellation that arrives while waiting as :class:`~undying.errors.InvocationCancelled`.
    """

    __slots__ = ("_decode", "_invocation", "_key", "_value")

    def __init__(self, invocation: Invocation, key: Key, decode: Callable[[Result], T]) -> None:
        self._invocation = invocation
        self._key = key
        self._decode = decode
        self._value: Any = _UNSET

    def __await__(self) -> Generator[Any, None, T]:
        return self._result().__await__()

    async def _result(self) -> T:
        if self._value is _UNSET:
            await wait_keys(self._invocation, frozenset((self._key,)))
            self._settle()
        return self._get()

    def _settle(self) -> None:
        if self._value is _UNSET:
            result = self._invocation.machine.result(self._key)
            if isinstance(result, Failure):
                self._value = TerminalError(result.message, result.code)
            else:
                try:
                    self._value = ("ok", self._decode(result))
                except Exception as exc:
                    self._value = exc

    def _get(self) -> T:
        value = self._value
        if isinstance(value, BaseException):
            raise value
        result: T = value[1]
        return result

    def done(self) -> bool:
        """Whether the result is already known (no waiting needed)."""
        return self._value is not _UNSET or self._invocation.machine.is_ready(self._key)

    @property
    def key(self) -> Key:
        """The journal key of the result (for the SDK's internals and tests)."""
        return self._key


async def _cancel_callee(invocation: Invocation, id_key: Key) -> None:
    target = await _invocation_id(invocation, id_key)
    invocation.machine.send_signal(target, index=1)
    invocation.flush()


class CallFuture(DurableFuture[T]):
    """The result of a call to another handler; also knows the callee's invocation id."""

    __slots__ = ("_id_key",)

    def __init__(
        self, invocation: Invocation, id_key: Key, key: Key, decode: Callable[[Result], T]
    ) -> None:
        super().__init__(invocation, key, decode)
        self._id_key = id_key

    async def invocation_id(self) -> str:
        """The callee's invocation id."""
        return await _invocation_id(self._invocation, self._id_key)

    async def cancel(self) -> None:
        """Cancel the callee (it ends with 409 "cancelled"; so does awaiting this future)."""
        await _cancel_callee(self._invocation, self._id_key)


class SendHandle:
    """A one-way call that was sent: await :meth:`invocation_id` to learn the callee's id."""

    __slots__ = ("_id_key", "_invocation")

    def __init__(self, invocation: Invocation, id_key: Key) -> None:
        self._invocation = invocation
        self._id_key = id_key

    async def invocation_id(self) -> str:
        """The callee's invocation id."""
        return await _invocation_id(self._invocation, self._id_key)

    async def cancel(self) -> None:
        """Cancel the callee."""
        await _cancel_callee(self._invocation, self._id_key)


async def _invocation_id(invocation: Invocation, key: Key) -> str:
    await wait_keys(invocation, frozenset((key,)), cancellable=False)
    result = invocation.machine.result(key)
    if not isinstance(result, InvocationIdResult):
        raise TerminalError(f"no invocation id in the journal ({result!r})")
    return result.invocation_id


async def wait_keys(
    invocation: Invocation, keys: frozenset[Key], *, cancellable: bool = True
) -> None:
    """Block until one of ``keys`` is ready; handle a cancellation that arrives first.

    Raises:
        InvocationCancelled: the invocation was cancelled; the calls it made were cancelled.
    """
    if await invocation.wait(keys, cancellable=cancellable) == CANCEL:
        await _propagate_cancel(invocation)
        raise InvocationCancelled()


async def _propagate_cancel(invocation: Invocation) -> None:
    for id_key in list(invocation.children):
        target = await _invocation_id(invocation, id_key)
        invocation.machine.send_signal(target, index=1)
    invocation.flush()


def decode_void(result: Result) -> None:
    """Decoder of results without value."""
    del result


def decoder(deserialize: Callable[[bytes], T]) -> Callable[[Result], T]:
    """A decoder of value results with ``deserialize`` (void is decoded as ``b""``)."""

    def decode(result: Result) -> T:
        if isinstance(result, bytes):
            return deserialize(result)
        if result is VoidResult.VOID:
            return deserialize(b"")
        raise TerminalError(f"unexpected result in the journal: {result!r}")

    return decode


# -- combinators -------------------------------------------------------------------------------


def _common(futures: Sequence[DurableFuture[Any]]) -> Invocation:
    if not futures:
        raise ValueError("no futures given")
    for future in futures:
        if not isinstance(future, DurableFuture):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                f"{future!r} is not a durable future (only results of ctx operations can be "
                "combined)"
            )
    invocation = futures[0]._invocation  # pyright: ignore[reportPrivateUsage]
    for future in futures:
        if future._invocation is not invocation:  # pyright: ignore[reportPrivateUsage]
            raise ValueError("futures of different invocations cannot be combined")
    return invocation


async def wait_completed(
    *futures: DurableFuture[Any],
) -> tuple[list[DurableFuture[Any]], list[DurableFuture[Any]]]:
    """Wait until at least one of ``futures`` completes.

    Returns:
        The completed futures and the pending ones, each in argument order.
    """
    invocation = _common(futures)
    if not any(f.done() for f in futures):
        await wait_keys(invocation, frozenset(f.key for f in futures))
    done = [f for f in futures if f.done()]
    return done, [f for f in futures if not f.done()]


@overload
async def select(*futures: DurableFuture[Any]) -> int: ...
@overload
async def select(**named: DurableFuture[Any]) -> tuple[str, Any]: ...
async def select(*futures: DurableFuture[Any], **named: DurableFuture[Any]) -> Any:
    """Wait for the first of the futures to complete (in journal order).

    Positional futures: returns the winner's index (await it for its value). Named futures (as
    in ``restate.select``): returns ``(name, value)`` of the winner, raising its failure::

        match await select(paid=payment, timeout=ctx.sleep(60)):
            case ("paid", receipt): ...
            case ("timeout", _): ...
    """
    if futures and named:
        raise TypeError("select() takes positional or named futures, not both")
    if named:
        names = list(named)
        index = await select(*named.values())
        return names[index], await named[names[index]]
    done, _ = await wait_completed(*futures)
    return next(i for i, f in enumerate(futures) if f is done[0])


async def as_completed(*futures: DurableFuture[Any]) -> AsyncIterator[DurableFuture[Any]]:
    """Yield ``futures`` as they complete, in journal order."""
    pending = list(futures)
    while pending:
        done, pending = await wait_completed(*pending)
        for future in done:
            yield future


@overload
async def gather(f1: DurableFuture[T1], /) -> tuple[T1]: ...
@overload
async def gather(f1: DurableFuture[T1], f2: DurableFuture[T2], /) -> tuple[T1, T2]: ...
@overload
async def gather(
    f1: DurableFuture[T1], f2: DurableFuture[T2], f3: DurableFuture[T3], /
) -> tuple[T1, T2, T3]: ...
@overload
async def gather(
    f1: DurableFuture[T1], f2: DurableFuture[T2], f3: DurableFuture[T3], f4: DurableFuture[T4], /
) -> tuple[T1, T2, T3, T4]: ...
@overload
async def gather(*futures: DurableFuture[T]) -> tuple[T, ...]: ...
async def gather(*futures: DurableFuture[Any]) -> tuple[Any, ...]:
    """Wait for every future; their values in argument order.

    The first failure (in argument order) is raised once every future completed.
    """
    _common(futures)
    values: list[Any] = []
    error: BaseException | None = None
    for future in futures:
        try:
            values.append(await future)
        except TerminalError as exc:
            if isinstance(exc, InvocationCancelled):
                raise
            error = error or exc
            values.append(None)
    if error is not None:
        raise error
    return tuple(values)
