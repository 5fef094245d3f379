"""Handlers: what a definition's decorator makes of an ``async def`` function.

:func:`make_handler` checks the function (its name, that it is a coroutine function taking the
context and at most one input, that its context annotation is the one it will get) and the
decorator's options, picks the serdes from the annotations, and returns a :class:`Handler`.
The definitions (:mod:`undying.sdk.definitions`) own the handlers it makes.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import (
    Any,
    ClassVar,
    Final,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    final,
    overload,
)

from undying.errors import DefinitionError
from undying.sdk.context import Context
from undying.sdk.options import (
    HandlerOptions,
    RetryPolicy,
    check_accept,
    check_content_type,
    check_duration,
    check_flag,
    check_metadata,
    check_retry_policy,
    check_text,
)
from undying.sdk.serde import Serde, serde_for

__all__ = [
    "Handler",
    "HandlerDecorator",
    "HandlerKind",
    "Owner",
    "ServiceKind",
    "make_handler",
]

I = TypeVar("I")  # noqa: E741 - the conventional name of a handler's input type
O = TypeVar("O")  # noqa: E741 - the conventional name of a handler's output type
C_co = TypeVar("C_co", covariant=True)

ServiceKind = Literal["service", "object", "workflow"]
HandlerKind = Literal["exclusive", "shared", "workflow"]

# The handler names the server accepts (the manifest schema's pattern).
_HANDLER_NAME: Final = re.compile(r"([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*")


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


class Owner(Protocol):
    """The definition a handler is made for: a service, virtual object or workflow."""

    kind: ClassVar[ServiceKind]
    _noun: ClassVar[str]  # "service", "virtual object" or "workflow", for messages

    @property
    def name(self) -> str: ...
    @property
    def ingress_private(self) -> bool | None: ...
    @property
    def handlers(self) -> Mapping[str, Handler[Any, Any]]: ...


_KIND_WORDS: Final[Mapping[HandlerKind | None, str]] = {
    None: "a handler",
    "exclusive": "an exclusive handler",
    "shared": "a shared handler",
    "workflow": "a workflow run handler",
}


def make_handler(
    definition: Owner,
    fn: Callable[..., Coroutine[Any, Any, Any]],
    name: str | None,
    kind: HandlerKind | None,
    context: type[Context],
    options: HandlerOptions,
) -> Handler[Any, Any]:
    """Check ``fn`` and the options, and make the handler (``definition`` does not keep it).

    Raises:
        DefinitionError: ``fn`` is not an ``async def`` taking the context (of a type it
            gets) and at most one input, its name is invalid or already used on
            ``definition``, it is a workflow's second run handler, or an option is invalid.
    """
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
    if kind == "workflow":
        for existing in definition.handlers.values():
            if existing.kind == "workflow":
                raise DefinitionError(
                    f"workflow {definition.name!r}: the run handler is already defined "
                    f"({existing.name!r}); a workflow has exactly one main, use handler() for "
                    "the shared handlers"
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
        check_accept(accept, where)
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
        check_content_type(content_type, where)

    ingress_private = check_flag(options.ingress_private, "ingress_private", where)
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
        description=check_text(description, "description", where),
        metadata=check_metadata(options.metadata, where),
        inactivity_timeout=check_duration(options.inactivity_timeout, "inactivity_timeout", where),
        abort_timeout=check_duration(options.abort_timeout, "abort_timeout", where),
        idempotency_retention=check_duration(
            options.idempotency_retention, "idempotency_retention", where
        ),
        journal_retention=check_duration(options.journal_retention, "journal_retention", where),
        workflow_retention=check_duration(options.workflow_retention, "workflow_retention", where),
        enable_lazy_state=check_flag(options.enable_lazy_state, "enable_lazy_state", where),
        ingress_private=ingress_private,
        retry_policy=check_retry_policy(options.retry_policy, where),
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
    definition: Owner,
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
