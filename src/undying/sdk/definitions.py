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

import re
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, final, overload

from undying.errors import DefinitionError
from undying.sdk.context import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    WorkflowContext,
    WorkflowSharedContext,
)
from undying.sdk.handlers import (
    Handler,
    HandlerDecorator,
    HandlerKind,
    I,
    O,
    ServiceKind,
    make_handler,
)
from undying.sdk.options import (
    HandlerOptions,
    RetryPolicy,
    check_duration,
    check_flag,
    check_metadata,
    check_retry_policy,
    check_text,
)
from undying.sdk.serde import Serde

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

# The names the server accepts (the manifest schema's pattern), and the ones it reserves.
_SERVICE_NAME: Final = re.compile(r"([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*")


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
        self.description: Final = check_text(description, "description", where)
        self.metadata: Final = check_metadata(metadata, where)
        self.inactivity_timeout: Final = check_duration(
            inactivity_timeout, "inactivity_timeout", where
        )
        self.abort_timeout: Final = check_duration(abort_timeout, "abort_timeout", where)
        self.idempotency_retention: Final = check_duration(
            idempotency_retention, "idempotency_retention", where
        )
        self.journal_retention: Final = check_duration(
            journal_retention, "journal_retention", where
        )
        self.ingress_private: Final = check_flag(ingress_private, "ingress_private", where)
        self.retry_policy: Final = check_retry_policy(retry_policy, where)
        self._handlers: dict[str, Handler[Any, Any]] = {}

    @property
    def handlers(self) -> Mapping[str, Handler[Any, Any]]:
        """The handlers by name, in the order they were defined (read-only)."""
        return MappingProxyType(self._handlers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, handlers={list(self._handlers)})"

    def _define(
        self,
        name: str | Callable[..., Coroutine[Any, Any, Any]] | None,
        kind: HandlerKind | None,
        context: type[Context],
        options: HandlerOptions,
    ) -> Any:
        """The handler of a bare ``@svc.handler``, else the decorator of ``@svc.handler(...)``."""
        handler_name = None if callable(name) else name

        def decorate(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Handler[Any, Any]:
            handler = make_handler(self, fn, handler_name, kind, context, options)
            self._handlers[handler.name] = handler
            return handler

        return decorate(name) if callable(name) else decorate


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
        options = HandlerOptions(
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
        return self._define(name, None, Context, options)


@final
class VirtualObject(_Definition):
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
        )
        self.enable_lazy_state: Final = check_flag(
            enable_lazy_state, "enable_lazy_state", f"{self._noun} {name!r}"
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
        options = HandlerOptions(
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
        return self._define(name, kind, context, options)


@final
class Workflow(_Definition):
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
        )
        self.enable_lazy_state: Final = check_flag(
            enable_lazy_state, "enable_lazy_state", f"{self._noun} {name!r}"
        )
        self.workflow_retention: Final = check_duration(
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
        options = HandlerOptions(
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
        return self._define(name, "workflow", WorkflowContext, options)

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
        options = HandlerOptions(
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
        return self._define(name, "shared", WorkflowSharedContext, options)
