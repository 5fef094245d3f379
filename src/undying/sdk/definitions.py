"""Service definitions: services, virtual objects, workflows and their handlers.

::

    greeter = Service("Greeter")

    @greeter.handler()
    async def greet(ctx: Context, name: str) -> str:
        return f"Hello {name}!"

    counter = VirtualObject("Counter")

    @counter.handler()                      # exclusive: gets an ObjectContext
    async def add(ctx: ObjectContext, delta: int) -> int: ...

    @counter.handler(kind="shared")         # shared: gets an ObjectSharedContext
    async def get(ctx: ObjectSharedContext) -> int: ...

    signup = Workflow("Signup")

    @signup.main()                          # the run handler: gets a WorkflowContext
    async def run(ctx: WorkflowContext, email: str) -> bool: ...

    @signup.handler()                       # shared: gets a WorkflowSharedContext
    async def confirm(ctx: WorkflowSharedContext, code: str) -> None: ...

A decorator returns a :class:`Handler`, typed ``Handler[I, O]`` after the handler's input and
output (``I`` is ``None`` when the handler takes no input), which stays callable like the
function it wraps. A function that takes the wrong context is a type error, and every mistake
the server would refuse at registration (bad names, duplicates, negative durations, a missing
or second run handler) raises :class:`~undying.errors.DefinitionError` when the definition is
made, not when the deployment is registered.
"""

from __future__ import annotations

import inspect
import math
import re
import typing
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import (
    Any,
    ClassVar,
    Final,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    cast,
    final,
    overload,
)

from undying.errors import DefinitionError
from undying.sdk.context import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    WorkflowContext,
    WorkflowSharedContext,
)
from undying.sdk.serde import Serde, serde_for

__all__ = [
    "Handler",
    "HandlerDecorator",
    "HandlerKind",
    "RetryPolicy",
    "Service",
    "ServiceKind",
    "VirtualObject",
    "Workflow",
]

I = TypeVar("I")  # noqa: E741 - the conventional name of a handler's input type
O = TypeVar("O")  # noqa: E741 - the conventional name of a handler's output type
C_co = TypeVar("C_co", covariant=True)

ServiceKind = Literal["service", "object", "workflow"]
HandlerKind = Literal["exclusive", "shared", "workflow"]

# The names the server accepts (the manifest schema's patterns), and the ones it reserves.
_SERVICE_NAME: Final = re.compile(r"([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*")
_HANDLER_NAME: Final = re.compile(r"([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How the server retries a failing invocation (manifest v4, restate-server >= 1.5).

    Unset fields fall back to the enclosing definition's policy, then to the server's default.

    Args:
        initial_interval: the delay before the first retry.
        max_interval: the longest delay between two attempts.
        max_attempts: attempts before giving up, the first one included (at least 1).
        exponentiation_factor: what each delay is multiplied by for the next one (at least 1).
        on_max_attempts: what happens to the invocation once the attempts are used up:
            ``"pause"`` it (it can be resumed) or ``"kill"`` it.

    Raises:
        DefinitionError: a field has the wrong type or is out of range.
    """

    initial_interval: timedelta | None = None
    max_interval: timedelta | None = None
    max_attempts: int | None = None
    exponentiation_factor: float | None = None
    on_max_attempts: Literal["pause", "kill"] | None = None

    def __post_init__(self) -> None:
        where = "RetryPolicy"
        _duration(self.initial_interval, "initial_interval", where)
        _duration(self.max_interval, "max_interval", where)
        if (
            self.initial_interval is not None
            and self.max_interval is not None
            and self.max_interval < self.initial_interval
        ):
            raise DefinitionError(
                f"{where}: max_interval ({self.max_interval}) is shorter than "
                f"initial_interval ({self.initial_interval})"
            )
        attempts = self.max_attempts
        if attempts is not None and (
            not isinstance(attempts, int)  # pyright: ignore[reportUnnecessaryIsInstance]
            or isinstance(attempts, bool)
            or attempts < 1
        ):
            raise DefinitionError(f"{where}: max_attempts must be an int >= 1, got {attempts!r}")
        factor = self.exponentiation_factor
        if factor is not None and (
            not isinstance(factor, int | float)  # pyright: ignore[reportUnnecessaryIsInstance]
            or isinstance(factor, bool)
            or not math.isfinite(factor)
            or factor < 1
        ):
            raise DefinitionError(
                f"{where}: exponentiation_factor must be a finite number >= 1, got {factor!r}"
            )
        if self.on_max_attempts not in (None, "pause", "kill"):
            raise DefinitionError(
                f"{where}: on_max_attempts must be 'pause' or 'kill', got {self.on_max_attempts!r}"
            )


@final
@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Handler(Generic[I, O]):
    """A handler of a service, virtual object or workflow, made by a definition's decorator.

    Call it like the function it wraps (``await greet(ctx, "Bob")``, handy in unit tests with
    a fake context). Pass it to ``ctx.service_call`` and friends to call it durably.

    Options left ``None`` inherit the definition's, then the server's defaults.

    Attributes:
        service_name: the name of the service, object or workflow it belongs to.
        service_kind: ``"service"``, ``"object"`` or ``"workflow"``.
        name: the handler's name (the last segment of its invocation path).
        kind: ``None`` for a service's handler, else ``"exclusive"``, ``"shared"`` or
            ``"workflow"`` (a workflow's run handler).
        fn: the decorated ``async def`` function.
        has_input: whether ``fn`` takes an input argument after the context.
        has_output: whether ``fn`` returns something (its return annotation is not ``None``).
        input_type: the input argument's resolved annotation (``None`` without input).
        output_type: the resolved return annotation (``typing.Any`` if there is none).
        input_serde: decodes the request body (for a handler without input, encodes ``None``
            as an empty body for callers).
        output_serde: encodes the result.
        accept: the content types accepted as input (``None`` without input).
        content_type: the content type of the output (``None`` for a handler returning
            ``None``, unless given).
        description: documentation (the function's docstring unless given).
        metadata: custom metadata shown by the admin API.
        inactivity_timeout: see :class:`Service`.
        abort_timeout: see :class:`Service`.
        idempotency_retention: see :class:`Service` (never set on a workflow's run handler).
        journal_retention: see :class:`Service`.
        workflow_retention: how long a workflow's result is kept (run handler only).
        enable_lazy_state: fetch state on demand instead of with the invocation.
        ingress_private: only other handlers can call it, not the HTTP or Kafka ingress.
        retry_policy: see :class:`RetryPolicy`.
    """

    service_name: str
    service_kind: ServiceKind
    name: str
    kind: HandlerKind | None
    fn: Callable[..., Coroutine[Any, Any, O]]
    has_input: bool
    has_output: bool
    input_type: Any
    output_type: Any
    input_serde: Serde[I]
    output_serde: Serde[O]
    accept: str | None
    content_type: str | None
    description: str | None = None
    metadata: Mapping[str, str] | None = None
    inactivity_timeout: timedelta | None = None
    abort_timeout: timedelta | None = None
    idempotency_retention: timedelta | None = None
    journal_retention: timedelta | None = None
    workflow_retention: timedelta | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_policy: RetryPolicy | None = None

    @property
    def is_async(self) -> bool:
        """Always ``True``: handlers are ``async def`` functions (checked when decorated)."""
        return True

    @overload
    def __call__(self: Handler[None, O], ctx: Any, /) -> Coroutine[Any, Any, O]: ...
    @overload
    def __call__(self, ctx: Any, arg: I, /) -> Coroutine[Any, Any, O]: ...
    def __call__(self, ctx: Any, /, *args: Any) -> Coroutine[Any, Any, O]:
        """Call the wrapped function: ``handler(ctx)`` or ``handler(ctx, arg)``."""
        return self.fn(ctx, *args)

    def __repr__(self) -> str:
        kind = f", kind={self.kind!r}" if self.kind else ""
        return f"<Handler {self.service_name}/{self.name}{kind}>"


class HandlerDecorator(Protocol[C_co]):
    """What ``definition.handler(...)`` returns: turns a function into a :class:`Handler`.

    ``C_co`` is the context the function gets; a function that needs more (say an
    ``ObjectContext`` on a plain service) is a type error.
    """

    @overload
    def __call__(self, fn: Callable[[C_co], Coroutine[Any, Any, O]], /) -> Handler[None, O]: ...
    @overload
    def __call__(self, fn: Callable[[C_co, I], Coroutine[Any, Any, O]], /) -> Handler[I, O]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    """The options of one handler, as given to its decorator."""

    input_serde: Serde[Any] | None = None
    output_serde: Serde[Any] | None = None
    accept: str | None = None
    content_type: str | None = None
    description: str | None = None
    metadata: Mapping[str, str] | None = None
    inactivity_timeout: timedelta | None = None
    abort_timeout: timedelta | None = None
    idempotency_retention: timedelta | None = None
    journal_retention: timedelta | None = None
    workflow_retention: timedelta | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_policy: RetryPolicy | None = None


class _Definition:
    """What services, virtual objects and workflows have in common."""

    kind: ClassVar[ServiceKind]
    _noun: ClassVar[str]

    def __init__(
        self,
        name: str,
        *,
        description: str | None,
        metadata: Mapping[str, str] | None,
        inactivity_timeout: timedelta | None,
        abort_timeout: timedelta | None,
        idempotency_retention: timedelta | None,
        journal_retention: timedelta | None,
        ingress_private: bool,
        retry_policy: RetryPolicy | None,
    ) -> None:
        where = f"{self._noun} {name!r}"
        if not isinstance(name, str) or not _SERVICE_NAME.fullmatch(name):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise DefinitionError(
                f"invalid {self._noun} name {name!r}: it must start with a letter or an "
                "underscore and a letter or digit, followed by letters, digits, '.', '_' or '-'"
            )
        if name.lower().startswith("restate") or name.lower() == "openapi":
            raise DefinitionError(
                f"{where}: the server reserves names starting with 'restate' and the name "
                "'openapi'; choose another name"
            )
        self.name: Final = name
        self.description: Final = _text(description, "description", where)
        self.metadata: Final = _metadata(metadata, where)
        self.inactivity_timeout: Final = _duration(inactivity_timeout, "inactivity_timeout", where)
        self.abort_timeout: Final = _duration(abort_timeout, "abort_timeout", where)
        self.idempotency_retention: Final = _duration(
            idempotency_retention, "idempotency_retention", where
        )
        self.journal_retention: Final = _duration(journal_retention, "journal_retention", where)
        self.ingress_private: Final = _flag(ingress_private, "ingress_private", where)
        self.retry_policy: Final = _retry_policy(retry_policy, where)
        self._handlers: dict[str, Handler[Any, Any]] = {}

    @property
    def handlers(self) -> Mapping[str, Handler[Any, Any]]:
        """The handlers by name, in the order they were defined (read-only)."""
        return MappingProxyType(self._handlers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, handlers={list(self._handlers)})"

    def _decorator(
        self,
        name: str | None,
        kind: HandlerKind | None,
        context: type[Context],
        options: _Options,
    ) -> Callable[[Callable[..., Coroutine[Any, Any, Any]]], Handler[Any, Any]]:
        def decorate(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Handler[Any, Any]:
            handler = _make_handler(self, fn, name, kind, context, options)
            self._handlers[handler.name] = handler
            return handler

        return decorate


@final
class Service(_Definition):
    """A service: a group of stateless handlers, each invoked at ``/Name/handler``.

    Args:
        name: the service's name (letters, digits, ``.``, ``_``, ``-``; not ``restate…``).
        description: documentation shown by the admin API.
        metadata: custom string metadata shown by the admin API.
        inactivity_timeout: how long an invocation may make no progress before the server
            asks it to suspend (restate-server >= 1.4, as every duration below).
        abort_timeout: how long after that request the server waits before aborting it.
        idempotency_retention: how long the result of a call with an idempotency key is kept.
        journal_retention: how long the journal of a completed invocation is kept.
        ingress_private: when ``True``, only other handlers can call it, not the ingress.
        retry_policy: how failed invocations are retried (restate-server >= 1.5).

    Raises:
        DefinitionError: an invalid name, or an option of the wrong type or out of range.
    """

    kind: ClassVar[ServiceKind] = "service"
    _noun: ClassVar[str] = "service"

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool = False,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            name,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            idempotency_retention=idempotency_retention,
            journal_retention=journal_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
        )

    @overload
    def handler(self, fn: Callable[[Context], Coroutine[Any, Any, O]], /) -> Handler[None, O]: ...
    @overload
    def handler(self, fn: Callable[[Context, I], Coroutine[Any, Any, O]], /) -> Handler[I, O]: ...
    @overload
    def handler(
        self,
        name: str | None = None,
        *,
        input_serde: Serde[Any] | None = None,
        output_serde: Serde[Any] | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> HandlerDecorator[Context]: ...
    def handler(
        self,
        name: str | Callable[..., Coroutine[Any, Any, Any]] | None = None,
        *,
        input_serde: Serde[Any] | None = None,
        output_serde: Serde[Any] | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> Any:
        """Define a handler: ``async def f(ctx: Context) -> O`` or ``(ctx, arg: I) -> O``.

        Use it as ``@svc.handler`` or ``@svc.handler(...)``.

        Args:
            name: the handler's name (default: the function's name).
            input_serde: decodes the input (default: chosen from the input's annotation).
            output_serde: encodes the output (default: chosen from the return annotation).
            accept: the content types accepted as input, wildcards allowed
                (``application/*``; default: the input serde's content type).
            content_type: the output's content type (default: the output serde's).
            description: documentation (default: the function's docstring).
            metadata: custom string metadata shown by the admin API.
            inactivity_timeout: overrides the service's (see :class:`Service`).
            abort_timeout: overrides the service's.
            idempotency_retention: overrides the service's.
            journal_retention: overrides the service's.
            ingress_private: overrides the service's; cannot be ``False`` on a private service.
            retry_policy: overrides the service's.

        Returns:
            The :class:`Handler`, or a decorator making it when called with options.

        Raises:
            DefinitionError: the function is not an ``async def`` taking a context and at most
                one input, its name is invalid or already used, or an option is invalid.
        """
        options = _Options(
            input_serde=input_serde,
            output_serde=output_serde,
            accept=accept,
            content_type=content_type,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            idempotency_retention=idempotency_retention,
            journal_retention=journal_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
        )
        if callable(name):
            return self._decorator(None, None, Context, options)(name)
        return self._decorator(name, None, Context, options)


class _Keyed(_Definition):
    """Virtual objects and workflows: keyed, with state."""

    def __init__(
        self,
        name: str,
        *,
        description: str | None,
        metadata: Mapping[str, str] | None,
        inactivity_timeout: timedelta | None,
        abort_timeout: timedelta | None,
        idempotency_retention: timedelta | None,
        journal_retention: timedelta | None,
        ingress_private: bool,
        retry_policy: RetryPolicy | None,
        enable_lazy_state: bool,
    ) -> None:
        super().__init__(
            name,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            idempotency_retention=idempotency_retention,
            journal_retention=journal_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
        )
        self.enable_lazy_state: Final = _flag(
            enable_lazy_state, "enable_lazy_state", f"{self._noun} {name!r}"
        )


@final
class VirtualObject(_Keyed):
    """A virtual object: handlers bound to a key, with durable state per key.

    Exclusive handlers of one key run one at a time and may write state; shared handlers run
    concurrently and may only read it. Invoked at ``/Name/{key}/handler``.

    Args:
        name: the object's name (letters, digits, ``.``, ``_``, ``-``; not ``restate…``).
        description: see :class:`Service`.
        metadata: see :class:`Service`.
        inactivity_timeout: see :class:`Service`.
        abort_timeout: see :class:`Service`.
        idempotency_retention: see :class:`Service`.
        journal_retention: see :class:`Service`.
        ingress_private: see :class:`Service`.
        retry_policy: see :class:`Service`.
        enable_lazy_state: fetch state on demand instead of sending it all with each
            invocation (restate-server >= 1.4).

    Raises:
        DefinitionError: an invalid name, or an option of the wrong type or out of range.
    """

    kind: ClassVar[ServiceKind] = "object"
    _noun: ClassVar[str] = "virtual object"

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool = False,
        retry_policy: RetryPolicy | None = None,
        enable_lazy_state: bool = False,
    ) -> None:
        super().__init__(
            name,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            idempotency_retention=idempotency_retention,
            journal_retention=journal_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
            enable_lazy_state=enable_lazy_state,
        )

    @overload
    def handler(
        self, fn: Callable[[ObjectContext], Coroutine[Any, Any, O]], /
    ) -> Handler[None, O]: ...
    @overload
    def handler(
        self, fn: Callable[[ObjectContext, I], Coroutine[Any, Any, O]], /
    ) -> Handler[I, O]: ...
    @overload
    def handler(
        self,
        name: str | None = None,
        *,
        kind: Literal["exclusive"] = "exclusive",
        input_serde: Serde[Any] | None = None,
        output_serde: Serde[Any] | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        enable_lazy_state: bool | None = None,
    ) -> HandlerDecorator[ObjectContext]: ...
    @overload
    def handler(
        self,
        name: str | None = None,
        *,
        kind: Literal["shared"],
        input_serde: Serde[Any] | None = None,
        output_serde: Serde[Any] | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        enable_lazy_state: bool | None = None,
    ) -> HandlerDecorator[ObjectSharedContext]: ...
    def handler(
        self,
        name: str | Callable[..., Coroutine[Any, Any, Any]] | None = None,
        *,
        kind: Literal["exclusive", "shared"] = "exclusive",
        input_serde: Serde[Any] | None = None,
        output_serde: Serde[Any] | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        enable_lazy_state: bool | None = None,
    ) -> Any:
        """Define a handler taking an ``ObjectContext`` (exclusive) or ``ObjectSharedContext``.

        Use it as ``@obj.handler`` (exclusive) or ``@obj.handler(kind="shared", ...)``.

        Args:
            name: the handler's name (default: the function's name).
            kind: ``"exclusive"`` (one at a time per key, may write state; the default) or
                ``"shared"`` (concurrent, read-only state).
            input_serde: see :meth:`Service.handler`.
            output_serde: see :meth:`Service.handler`.
            accept: see :meth:`Service.handler`.
            content_type: see :meth:`Service.handler`.
            description: see :meth:`Service.handler`.
            metadata: see :meth:`Service.handler`.
            inactivity_timeout: overrides the object's.
            abort_timeout: overrides the object's.
            idempotency_retention: overrides the object's.
            journal_retention: overrides the object's.
            ingress_private: overrides the object's; cannot be ``False`` on a private object.
            retry_policy: overrides the object's.
            enable_lazy_state: overrides the object's.

        Returns:
            The :class:`Handler`, or a decorator making it when called with options.

        Raises:
            DefinitionError: see :meth:`Service.handler`; also an unknown ``kind``.
        """
        if kind not in ("exclusive", "shared"):
            raise DefinitionError(
                f"virtual object {self.name!r}: kind must be 'exclusive' or 'shared', got {kind!r}"
            )
        options = _Options(
            input_serde=input_serde,
            output_serde=output_serde,
            accept=accept,
            content_type=content_type,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            idempotency_retention=idempotency_retention,
            journal_retention=journal_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
            enable_lazy_state=enable_lazy_state,
        )
        context = ObjectContext if kind == "exclusive" else ObjectSharedContext
        if callable(name):
            return self._decorator(None, kind, context, options)(name)
        return self._decorator(name, kind, context, options)


@final
class Workflow(_Keyed):
    """A workflow: a run handler executed once per key, plus shared handlers to interact.

    The run handler (:meth:`main`) gets a ``WorkflowContext`` and may write state; shared
    handlers (:meth:`handler`) get a ``WorkflowSharedContext``, read state and resolve durable
    promises. Invoked at ``/Name/{key}/handler``.

    Args:
        name: the workflow's name (letters, digits, ``.``, ``_``, ``-``; not ``restate…``).
        description: see :class:`Service`.
        metadata: see :class:`Service`.
        inactivity_timeout: see :class:`Service`.
        abort_timeout: see :class:`Service`.
        idempotency_retention: see :class:`Service` (applies to the shared handlers).
        journal_retention: see :class:`Service`.
        ingress_private: see :class:`Service`.
        retry_policy: see :class:`Service`.
        workflow_retention: how long a finished workflow's result (and state) is kept; the run
            handler's own ``workflow_retention`` wins.
        enable_lazy_state: see :class:`VirtualObject`.

    Raises:
        DefinitionError: an invalid name, or an option of the wrong type or out of range.
    """

    kind: ClassVar[ServiceKind] = "workflow"
    _noun: ClassVar[str] = "workflow"

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool = False,
        retry_policy: RetryPolicy | None = None,
        workflow_retention: timedelta | None = None,
        enable_lazy_state: bool = False,
    ) -> None:
        super().__init__(
            name,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            idempotency_retention=idempotency_retention,
            journal_retention=journal_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
            enable_lazy_state=enable_lazy_state,
        )
        self.workflow_retention: Final = _duration(
            workflow_retention, "workflow_retention", f"workflow {name!r}"
        )

    @property
    def main_handler(self) -> Handler[Any, Any] | None:
        """The run handler, once :meth:`main` has defined it."""
        for handler in self._handlers.values():
            if handler.kind == "workflow":
                return handler
        return None

    @overload
    def main(
        self, fn: Callable[[WorkflowContext], Coroutine[Any, Any, O]], /
    ) -> Handler[None, O]: ...
    @overload
    def main(
        self, fn: Callable[[WorkflowContext, I], Coroutine[Any, Any, O]], /
    ) -> Handler[I, O]: ...
    @overload
    def main(
        self,
        name: str | None = None,
        *,
        input_serde: Serde[Any] | None = None,
        output_serde: Serde[Any] | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        workflow_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        enable_lazy_state: bool | None = None,
    ) -> HandlerDecorator[WorkflowContext]: ...
    def main(
        self,
        name: str | Callable[..., Coroutine[Any, Any, Any]] | None = None,
        *,
        input_serde: Serde[Any] | None = None,
        output_serde: Serde[Any] | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        workflow_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        enable_lazy_state: bool | None = None,
    ) -> Any:
        """Define the run handler (exactly one): ``async def run(ctx: WorkflowContext, ...)``.

        Use it as ``@wf.main`` or ``@wf.main(...)``. Its kind is ``"workflow"``.

        Args:
            name: the handler's name (default: the function's name).
            input_serde: see :meth:`Service.handler`.
            output_serde: see :meth:`Service.handler`.
            accept: see :meth:`Service.handler`.
            content_type: see :meth:`Service.handler`.
            description: see :meth:`Service.handler`.
            metadata: see :meth:`Service.handler`.
            inactivity_timeout: overrides the workflow's.
            abort_timeout: overrides the workflow's.
            journal_retention: overrides the workflow's.
            workflow_retention: overrides the workflow's.
            ingress_private: overrides the workflow's.
            retry_policy: overrides the workflow's.
            enable_lazy_state: overrides the workflow's.

        Returns:
            The :class:`Handler`, or a decorator making it when called with options.

        Raises:
            DefinitionError: see :meth:`Service.handler`; also a second run handler.
        """
        options = _Options(
            input_serde=input_serde,
            output_serde=output_serde,
            accept=accept,
            content_type=content_type,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            workflow_retention=workflow_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
            enable_lazy_state=enable_lazy_state,
        )
        if callable(name):
            return self._decorator(None, "workflow", WorkflowContext, options)(name)
        return self._decorator(name, "workflow", WorkflowContext, options)

    @overload
    def handler(
        self, fn: Callable[[WorkflowSharedContext], Coroutine[Any, Any, O]], /
    ) -> Handler[None, O]: ...
    @overload
    def handler(
        self, fn: Callable[[WorkflowSharedContext, I], Coroutine[Any, Any, O]], /
    ) -> Handler[I, O]: ...
    @overload
    def handler(
        self,
        name: str | None = None,
        *,
        input_serde: Serde[Any] | None = None,
        output_serde: Serde[Any] | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        enable_lazy_state: bool | None = None,
    ) -> HandlerDecorator[WorkflowSharedContext]: ...
    def handler(
        self,
        name: str | Callable[..., Coroutine[Any, Any, Any]] | None = None,
        *,
        input_serde: Serde[Any] | None = None,
        output_serde: Serde[Any] | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        journal_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        enable_lazy_state: bool | None = None,
    ) -> Any:
        """Define a shared handler: ``async def f(ctx: WorkflowSharedContext, ...)``.

        Use it as ``@wf.handler`` or ``@wf.handler(...)``. Its kind is ``"shared"``.

        Args:
            name: the handler's name (default: the function's name).
            input_serde: see :meth:`Service.handler`.
            output_serde: see :meth:`Service.handler`.
            accept: see :meth:`Service.handler`.
            content_type: see :meth:`Service.handler`.
            description: see :meth:`Service.handler`.
            metadata: see :meth:`Service.handler`.
            inactivity_timeout: overrides the workflow's.
            abort_timeout: overrides the workflow's.
            idempotency_retention: overrides the workflow's.
            journal_retention: overrides the workflow's.
            ingress_private: overrides the workflow's.
            retry_policy: overrides the workflow's.
            enable_lazy_state: overrides the workflow's.

        Returns:
            The :class:`Handler`, or a decorator making it when called with options.

        Raises:
            DefinitionError: see :meth:`Service.handler`.
        """
        options = _Options(
            input_serde=input_serde,
            output_serde=output_serde,
            accept=accept,
            content_type=content_type,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            idempotency_retention=idempotency_retention,
            journal_retention=journal_retention,
            ingress_private=ingress_private,
            retry_policy=retry_policy,
            enable_lazy_state=enable_lazy_state,
        )
        if callable(name):
            return self._decorator(None, "shared", WorkflowSharedContext, options)(name)
        return self._decorator(name, "shared", WorkflowSharedContext, options)


# -- making a handler ---------------------------------------------------------------------------

_KIND_WORDS: Final[Mapping[HandlerKind | None, str]] = {
    None: "a handler",
    "exclusive": "an exclusive handler",
    "shared": "a shared handler",
    "workflow": "a workflow run handler",
}


def _make_handler(
    definition: _Definition,
    fn: Callable[..., Coroutine[Any, Any, Any]],
    name: str | None,
    kind: HandlerKind | None,
    context: type[Context],
    options: _Options,
) -> Handler[Any, Any]:
    """Check ``fn`` and the options, and make the handler."""
    if isinstance(fn, Handler):  # the same function registered on another definition
        fn = fn.fn
    label = getattr(fn, "__qualname__", None) or repr(fn)
    owner = f"{definition._noun} {definition.name!r}"  # pyright: ignore[reportPrivateUsage]
    if name is not None and not isinstance(name, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise DefinitionError(f"{owner}: a handler name must be a str, got {name!r}")
    handler_name = name if name is not None else getattr(fn, "__name__", None)
    if handler_name is None:
        raise DefinitionError(f"{owner}: {label} has no __name__: give the handler a name=")
    where = f"handler {definition.name}/{handler_name}"
    if not inspect.iscoroutinefunction(fn):
        raise DefinitionError(
            f"{where}: {label} must be an 'async def' function (a coroutine function) taking "
            "the context and at most one input"
        )
    if not _HANDLER_NAME.fullmatch(handler_name):
        raise DefinitionError(
            f"{owner}: invalid handler name {handler_name!r}: it must start with a letter or "
            "an underscore and a letter or digit, followed by letters, digits or '_'"
        )
    if handler_name in definition.handlers:
        raise DefinitionError(f"{owner}: a handler named {handler_name!r} is already defined")
    if kind == "workflow" and isinstance(definition, Workflow):
        existing = definition.main_handler
        if existing is not None:
            raise DefinitionError(
                f"workflow {definition.name!r}: the run handler is already defined "
                f"({existing.name!r}); a workflow has exactly one main, use handler() for the "
                "shared handlers"
            )
    params = _parameters(fn, where, label)
    hints = _hints(fn, where, label)
    _check_context(params[0], hints, context, kind, definition, where)

    has_input = len(params) == 2
    input_type: Any = hints.get(params[1].name, Any) if has_input else None
    output_type: Any = hints.get("return", Any)
    has_output = output_type is not None and output_type is not type(None)
    if has_input:
        input_serde = options.input_serde
        if input_serde is None:
            input_serde = _serde(input_type, "input", where)
        accept = options.accept if options.accept is not None else input_serde.content_type
        _check_accept(accept, where)
    else:
        if options.input_serde is not None:
            raise DefinitionError(f"{where}: input_serde is given but {label} takes no input")
        if options.accept is not None:
            raise DefinitionError(f"{where}: accept is given but {label} takes no input")
        input_serde = serde_for(type(None))
        accept = None
    output_serde = options.output_serde
    if output_serde is None:
        output_serde = _serde(output_type, "output", where)
    content_type = options.content_type
    if content_type is None and has_output:
        content_type = output_serde.content_type
    if content_type is not None:
        _check_content_type(content_type, where)

    ingress_private = _flag(options.ingress_private, "ingress_private", where)
    if definition.ingress_private and ingress_private is False:
        raise DefinitionError(
            f"{where}: ingress_private=False on a private {definition._noun} is not supported "  # pyright: ignore[reportPrivateUsage]
            f"by the server; make {definition.name!r} public and set ingress_private=True on the "
            "handlers to hide instead"
        )
    description = options.description
    if description is None:
        description = inspect.getdoc(fn)
    return Handler(
        service_name=definition.name,
        service_kind=definition.kind,
        name=handler_name,
        kind=kind,
        fn=fn,
        has_input=has_input,
        has_output=has_output,
        input_type=input_type,
        output_type=output_type,
        input_serde=input_serde,
        output_serde=output_serde,
        accept=accept,
        content_type=content_type,
        description=_text(description, "description", where),
        metadata=_metadata(options.metadata, where),
        inactivity_timeout=_duration(options.inactivity_timeout, "inactivity_timeout", where),
        abort_timeout=_duration(options.abort_timeout, "abort_timeout", where),
        idempotency_retention=_duration(
            options.idempotency_retention, "idempotency_retention", where
        ),
        journal_retention=_duration(options.journal_retention, "journal_retention", where),
        workflow_retention=_duration(options.workflow_retention, "workflow_retention", where),
        enable_lazy_state=_flag(options.enable_lazy_state, "enable_lazy_state", where),
        ingress_private=ingress_private,
        retry_policy=_retry_policy(options.retry_policy, where),
    )


def _parameters(fn: Callable[..., Any], where: str, label: str) -> list[inspect.Parameter]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(f"{where}: cannot read the signature of {label}: {exc}") from None
    params = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not 1 <= len(params) <= 2 or any(p.kind not in positional for p in params):
        shown = ", ".join(str(p) for p in params)
        raise DefinitionError(
            f"{where}: {label}({shown}) must take the context and at most one input argument, "
            "both positional: (ctx) or (ctx, arg)"
        )
    return params


def _hints(fn: Callable[..., Any], where: str, label: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # any failure to evaluate an annotation
        raise DefinitionError(
            f"{where}: cannot resolve the annotations of {label}: {exc} (annotations are "
            "evaluated in the function's module: define the types they name at module level)"
        ) from None


def _check_context(
    param: inspect.Parameter,
    hints: Mapping[str, Any],
    context: type[Context],
    kind: HandlerKind | None,
    definition: _Definition,
    where: str,
) -> None:
    """Refuse a context annotation the handler will not get (``ObjectContext`` on a service)."""
    annotation = hints.get(param.name)
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if not isinstance(annotation, type) or not issubclass(annotation, Context):
        return
    if not issubclass(context, annotation):
        raise DefinitionError(
            f"{where}: its context is annotated {annotation.__name__}, but "
            f"{_KIND_WORDS[kind]} of a {definition._noun} receives {context.__name__}"  # pyright: ignore[reportPrivateUsage]
        )


def _serde(hint: object, position: str, where: str) -> Serde[Any]:
    try:
        return serde_for(hint)
    except TypeError as exc:
        raise DefinitionError(
            f"{where}: no serde for its {position} annotation: {exc}; pass {position}_serde="
        ) from None


def _check_accept(accept: object, where: str) -> None:
    if not isinstance(accept, str):
        raise DefinitionError(f"{where}: accept must be a str, got {accept!r}")
    kind, slash, subtype = accept.strip().partition("/")
    if not slash or not kind or not subtype or "/" in subtype or not accept.isascii():
        raise DefinitionError(
            f"{where}: accept {accept!r} is not a content type like 'application/json' or "
            "a range like 'application/*' or '*/*'"
        )
    if kind == "*" and subtype.split(";", 1)[0].strip() != "*":
        raise DefinitionError(f"{where}: accept {accept!r}: '*/subtype' ranges are not supported")


def _check_content_type(content_type: object, where: str) -> None:
    if not isinstance(content_type, str):
        raise DefinitionError(f"{where}: content_type must be a str, got {content_type!r}")
    printable = all(" " <= c <= "~" for c in content_type)
    if not printable or "/" not in content_type or "*" in content_type:
        raise DefinitionError(
            f"{where}: content_type {content_type!r} is not a content type like 'application/json'"
        )


# -- option checks ------------------------------------------------------------------------------


def _duration(value: object, option: str, where: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise DefinitionError(
            f"{where}: {option} must be a datetime.timedelta, got {type(value).__name__} {value!r}"
        )
    if value < timedelta(0):
        raise DefinitionError(f"{where}: {option} must not be negative, got {value}")
    return value


def _flag(value: object, option: str, where: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise DefinitionError(f"{where}: {option} must be a bool, got {value!r}")
    return value


def _text(value: object, option: str, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise DefinitionError(f"{where}: {option} must be a str, got {value!r}")
    return value


def _metadata(value: object, where: str) -> Mapping[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str)
        for k, v in cast("Mapping[object, object]", value).items()
    ):
        raise DefinitionError(f"{where}: metadata must map str to str, got {value!r}")
    return MappingProxyType(dict(cast("Mapping[str, str]", value)))


def _retry_policy(value: object, where: str) -> RetryPolicy | None:
    if value is not None and not isinstance(value, RetryPolicy):
        raise DefinitionError(
            f"{where}: retry_policy must be an undying.sdk.definitions.RetryPolicy, got {value!r}"
        )
    return value
