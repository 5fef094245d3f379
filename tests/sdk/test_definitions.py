"""Service definitions: what the decorators make, and every mistake they refuse."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest

from undying.errors import DefinitionError, UndyingError
from undying.sdk.context import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    WorkflowContext,
    WorkflowSharedContext,
)
from undying.sdk.definitions import Handler, RetryPolicy, Service, VirtualObject, Workflow
from undying.sdk.serde import BytesSerde, JsonSerde, NoneSerde


@dataclasses.dataclass
class Point:
    x: int
    y: int


CTX: Any = object()  # handlers are plain functions: any object does as a context in unit tests


# -- what the decorators make -------------------------------------------------------------------


def test_service_handler_with_input() -> None:
    svc = Service("Greeter")

    @svc.handler()
    async def greet(ctx: Context, name: str) -> str:
        """Say hello."""
        return f"Hello {name}!"

    assert isinstance(greet, Handler)
    assert (greet.service_name, greet.service_kind, greet.name, greet.kind) == (
        "Greeter",
        "service",
        "greet",
        None,
    )
    assert greet.has_input and greet.has_output and greet.is_async
    assert greet.input_type is str and greet.output_type is str
    assert isinstance(greet.input_serde, JsonSerde) and isinstance(greet.output_serde, JsonSerde)
    assert greet.input_serde.json_schema() == {"type": "string"}
    assert greet.accept == "application/json" and greet.content_type == "application/json"
    assert greet.description == "Say hello."
    assert greet.fn.__name__ == "greet"
    assert asyncio.run(greet(CTX, "Bob")) == "Hello Bob!"
    assert svc.handlers == {"greet": greet}
    assert (svc.name, svc.kind) == ("Greeter", "service")
    assert repr(greet) == "<Handler Greeter/greet>"


def test_service_handler_without_input_and_output() -> None:
    svc = Service("S")
    seen: list[object] = []

    @svc.handler
    async def ping(ctx: Context) -> None:
        seen.append(ctx)

    assert not ping.has_input and not ping.has_output
    assert ping.input_type is None and ping.output_type is type(None)
    assert isinstance(ping.input_serde, NoneSerde)
    assert ping.input_serde.serialize(None) == b""  # what a caller sends to it
    assert ping.accept is None and ping.content_type is None
    assert ping.description is None
    assert asyncio.run(ping(CTX)) is None
    assert seen == [CTX]


def test_handler_name_options_and_explicit_serdes() -> None:
    svc = Service("S")

    @svc.handler(
        "upload",
        input_serde=BytesSerde(),
        output_serde=BytesSerde(),
        accept="*/*",
        content_type="application/pdf",
        description="Stores a file.",
        metadata={"team": "docs"},
    )
    async def store(ctx: Context, data: bytes) -> bytes:
        """Ignored: description wins."""
        return data

    assert store.name == "upload" and list(svc.handlers) == ["upload"]
    assert isinstance(store.input_serde, BytesSerde)
    assert (store.accept, store.content_type) == ("*/*", "application/pdf")
    assert store.description == "Stores a file."
    assert store.metadata == {"team": "docs"}


def test_serdes_come_from_the_annotations() -> None:
    svc = Service("S")

    @svc.handler()
    async def move(ctx: Context, p: Point) -> list[Point]:
        return [p]

    @svc.handler()
    async def anything(ctx, value):  # type: ignore[no-untyped-def]
        return value

    @svc.handler()
    async def raw(ctx: Context, data: bytes) -> bytes:
        return data

    assert move.input_type is Point and move.output_type == list[Point]
    assert move.input_serde.deserialize(b'{"x":1,"y":2}') == Point(1, 2)
    schema = move.input_serde.json_schema()
    assert schema is not None and schema["type"] == "object"
    assert anything.input_serde.json_schema() is None  # no annotation: any JSON
    assert anything.output_serde.json_schema() is None
    assert raw.accept == "application/octet-stream" and raw.content_type == raw.accept


def test_annotated_hints_are_resolved() -> None:
    svc = Service("S")

    @svc.handler()
    async def f(ctx: Annotated[Context, "ctx"], n: Annotated[int, "count"]) -> int:
        return n

    assert f.input_serde.json_schema() == {"type": "integer"}


def test_string_annotations_resolve_in_the_function_module() -> None:
    # this module uses `from __future__ import annotations`: every annotation is a string
    svc = Service("S")

    @svc.handler()
    async def f(ctx: Context, p: Point) -> Point:
        return p

    assert f.input_type is Point and f.output_type is Point


def test_virtual_object_kinds_and_contexts() -> None:
    obj = VirtualObject("Counter", enable_lazy_state=True)

    @obj.handler()
    async def add(ctx: ObjectContext, delta: int) -> int:
        return delta

    @obj.handler
    async def reset(ctx: ObjectContext) -> None:
        pass

    @obj.handler(kind="shared", enable_lazy_state=False)
    async def get(ctx: ObjectSharedContext) -> int:
        return 0

    @obj.handler(kind="exclusive")
    async def plain(ctx: Context) -> int:  # needing less than it gets is fine
        return 1

    assert [(h.name, h.kind, h.service_kind) for h in obj.handlers.values()] == [
        ("add", "exclusive", "object"),
        ("reset", "exclusive", "object"),
        ("get", "shared", "object"),
        ("plain", "exclusive", "object"),
    ]
    assert obj.kind == "object" and obj.enable_lazy_state is True
    assert get.enable_lazy_state is False and add.enable_lazy_state is None


def test_workflow_run_and_shared_handlers() -> None:
    wf = Workflow("Signup", workflow_retention=timedelta(days=1))
    before = wf.main_handler

    @wf.main(workflow_retention=timedelta(hours=2))
    async def run(ctx: WorkflowContext, email: str) -> bool:
        return True

    @wf.handler()
    async def confirm(ctx: WorkflowSharedContext, code: str) -> None:
        pass

    @wf.handler
    async def status(ctx: WorkflowSharedContext) -> str:
        return "ok"

    assert before is None and wf.main_handler is run
    assert (run.kind, confirm.kind, status.kind) == ("workflow", "shared", "shared")
    assert run.service_kind == "workflow" and wf.kind == "workflow"
    assert run.workflow_retention == timedelta(hours=2)
    assert wf.workflow_retention == timedelta(days=1)
    assert list(wf.handlers) == ["run", "confirm", "status"]


def test_bare_main() -> None:
    wf = Workflow("W")

    @wf.main
    async def run(ctx: WorkflowContext) -> None:
        pass

    assert run.kind == "workflow" and wf.main_handler is run


def test_handlers_mapping_is_read_only_and_ordered() -> None:
    svc = Service("S")
    for name in ("c", "a", "b"):

        async def fn(ctx: Context) -> None:
            pass

        svc.handler(name)(fn)
    assert list(svc.handlers) == ["c", "a", "b"]
    with pytest.raises(TypeError):
        svc.handlers["d"] = svc.handlers["a"]  # type: ignore[index]


def test_a_handler_can_be_registered_on_another_definition() -> None:
    one, two = Service("One"), Service("Two")

    @one.handler()
    async def greet(ctx: Context, name: str) -> str:
        return name

    again = two.handler()(greet)
    assert again.service_name == "Two" and again.fn is greet.fn


def test_options_are_kept() -> None:
    policy = RetryPolicy(
        initial_interval=timedelta(milliseconds=100),
        max_interval=timedelta(seconds=10),
        max_attempts=5,
        exponentiation_factor=2,
        on_max_attempts="kill",
    )
    svc = Service(
        "S",
        description="A service.",
        metadata={"k": "v"},
        inactivity_timeout=timedelta(minutes=1),
        abort_timeout=timedelta(minutes=2),
        idempotency_retention=timedelta(hours=1),
        journal_retention=timedelta(days=1),
        ingress_private=True,
        retry_policy=policy,
    )

    @svc.handler(
        inactivity_timeout=timedelta(seconds=5),
        abort_timeout=timedelta(seconds=6),
        idempotency_retention=timedelta(seconds=7),
        journal_retention=timedelta(seconds=8),
        ingress_private=True,
        retry_policy=RetryPolicy(max_attempts=1),
    )
    async def f(ctx: Context) -> None:
        pass

    assert (svc.description, svc.metadata, svc.ingress_private) == ("A service.", {"k": "v"}, True)
    assert svc.retry_policy is policy
    assert (f.inactivity_timeout, f.abort_timeout) == (timedelta(seconds=5), timedelta(seconds=6))
    assert f.idempotency_retention == timedelta(seconds=7)
    assert f.journal_retention == timedelta(seconds=8)
    assert f.ingress_private is True and f.retry_policy == RetryPolicy(max_attempts=1)
    assert repr(svc) == "Service('S', handlers=['f'])"


def test_metadata_is_copied() -> None:
    meta = {"a": "1"}
    svc = Service("S", metadata=meta)
    meta["b"] = "2"
    assert svc.metadata == {"a": "1"}


# -- every mistake, refused when made -----------------------------------------------------------


def _service_handler(fn: Callable[..., Any], **options: Any) -> Handler[Any, Any]:
    decorator: Any = Service("S").handler(**options)
    handler: Handler[Any, Any] = decorator(fn)
    return handler


def test_definition_error_is_a_type_error() -> None:
    assert issubclass(DefinitionError, UndyingError) and issubclass(DefinitionError, TypeError)


def test_not_async() -> None:
    def sync(ctx: Context) -> int:
        return 1

    with pytest.raises(DefinitionError, match=r"S/sync: .*must be an 'async def' function"):
        _service_handler(sync)


async def _two(ctx: Context, a: int, b: int) -> int:
    return a + b


async def _none() -> int:
    return 1


async def _star(ctx: Context, *args: int) -> int:
    return 1


async def _kwargs(ctx: Context, **kwargs: int) -> int:
    return 1


async def _keyword_only(ctx: Context, *, a: int) -> int:
    return a


@pytest.mark.parametrize("fn", [_two, _none, _star, _kwargs, _keyword_only])
def test_wrong_parameters(fn: Callable[..., Any]) -> None:
    with pytest.raises(DefinitionError, match="must take the context and at most one input"):
        _service_handler(fn)


def test_duplicate_handler_names() -> None:
    svc = Service("S")

    @svc.handler()
    async def f(ctx: Context) -> None:
        pass

    async def g(ctx: Context) -> None:
        pass

    with pytest.raises(DefinitionError, match="a handler named 'f' is already defined"):
        svc.handler("f")(g)
    assert list(svc.handlers) == ["f"]


def test_second_main() -> None:
    wf = Workflow("W")

    @wf.main()
    async def run(ctx: WorkflowContext) -> None:
        pass

    async def again(ctx: WorkflowContext) -> None:
        pass

    with pytest.raises(DefinitionError, match=r"run handler is already defined \('run'\)"):
        wf.main()(again)


@pytest.mark.parametrize("name", ["", "1st", "a b", "_", "__x", "a/b", "ä", "a:b"])
def test_invalid_service_names(name: str) -> None:
    for cls in (Service, VirtualObject, Workflow):
        with pytest.raises(DefinitionError, match="invalid .*name"):
            cls(name)


@pytest.mark.parametrize("name", ["a", "_a", "_1", "A.b-c_d", "x9"])
def test_valid_service_names(name: str) -> None:
    assert Service(name).name == name


@pytest.mark.parametrize("name", ["restate", "Restate", "RESTATEX", "restate.Admin", "openapi"])
def test_reserved_service_names(name: str) -> None:
    with pytest.raises(DefinitionError, match="reserves"):
        Service(name)


def test_service_name_must_be_a_str() -> None:
    with pytest.raises(DefinitionError, match="invalid service name"):
        Service(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a.b", "a-b", "__x", "_", "1a", "a b"])
def test_invalid_handler_names(name: str) -> None:
    async def f(ctx: Context) -> None:
        pass

    with pytest.raises(DefinitionError, match="invalid handler name"):
        _service_handler(f, name=name)


def test_handler_name_must_be_a_str() -> None:
    async def f(ctx: Context) -> None:
        pass

    with pytest.raises(DefinitionError, match="handler name must be a str"):
        _service_handler(f, name=b"f")


def test_handler_without_a_name() -> None:
    async def f(ctx: Context, x: int) -> None:
        pass

    with pytest.raises(DefinitionError, match="has no __name__"):
        _service_handler(functools.partial(f))


@pytest.mark.parametrize(
    "option",
    ["inactivity_timeout", "abort_timeout", "idempotency_retention", "journal_retention"],
)
def test_negative_durations(option: str) -> None:
    options: Any = {option: timedelta(seconds=-1)}
    with pytest.raises(DefinitionError, match=f"service 'S': {option} must not be negative"):
        Service("S", **options)

    async def f(ctx: Context) -> None:
        pass

    with pytest.raises(DefinitionError, match=f"S/f: {option} must not be negative"):
        _service_handler(f, **options)


def test_negative_workflow_retention() -> None:
    with pytest.raises(DefinitionError, match="workflow_retention must not be negative"):
        Workflow("W", workflow_retention=timedelta(seconds=-1))

    async def run(ctx: WorkflowContext) -> None:
        pass

    with pytest.raises(DefinitionError, match="W/run: workflow_retention must not be negative"):
        Workflow("W").main(workflow_retention=timedelta(microseconds=-1))(run)


def test_durations_must_be_timedeltas() -> None:
    with pytest.raises(DefinitionError, match="must be a datetime.timedelta, got int 5"):
        Service("S", inactivity_timeout=5)  # type: ignore[arg-type]


def test_zero_durations_are_fine() -> None:
    assert Service("S", journal_retention=timedelta(0)).journal_retention == timedelta(0)


def test_wrong_context_annotations() -> None:
    async def needs_object(ctx: ObjectContext) -> None:
        pass

    with pytest.raises(
        DefinitionError,
        match="annotated ObjectContext, but a handler of a service receives Context",
    ):
        _service_handler(needs_object)

    obj: Any = VirtualObject("O")
    with pytest.raises(
        DefinitionError, match="a shared handler of a virtual object receives ObjectSharedContext"
    ):
        obj.handler(kind="shared")(needs_object)

    async def needs_run(ctx: WorkflowContext, x: int) -> None:
        pass

    wf: Any = Workflow("W")
    with pytest.raises(DefinitionError, match="receives WorkflowSharedContext"):
        wf.handler()(needs_run)
    with pytest.raises(
        DefinitionError, match="an exclusive handler of a virtual object receives ObjectContext"
    ):
        obj.handler()(needs_run)


def test_unknown_object_handler_kind() -> None:
    with pytest.raises(DefinitionError, match="kind must be 'exclusive' or 'shared'"):
        VirtualObject("O").handler(kind="workflow")  # type: ignore[call-overload]


def test_private_service_cannot_have_a_public_handler() -> None:
    svc = Service("S", ingress_private=True)

    async def f(ctx: Context) -> None:
        pass

    with pytest.raises(DefinitionError, match="ingress_private=False on a private service"):
        svc.handler(ingress_private=False)(f)
    assert svc.handler(ingress_private=True)(f).ingress_private is True


def test_input_options_on_a_handler_without_input() -> None:
    async def f(ctx: Context) -> None:
        pass

    with pytest.raises(DefinitionError, match="input_serde is given but .* takes no input"):
        _service_handler(f, input_serde=BytesSerde())
    with pytest.raises(DefinitionError, match="accept is given but .* takes no input"):
        _service_handler(f, accept="application/json")


@pytest.mark.parametrize("accept", ["json", "*/json", "/", "application/", "a/b/c", "ü/x"])
def test_bad_accept(accept: str) -> None:
    async def f(ctx: Context, x: int) -> None:
        pass

    with pytest.raises(DefinitionError, match="accept"):
        _service_handler(f, accept=accept)


@pytest.mark.parametrize("accept", ["*/*", "application/*", "text/plain; charset=utf-8"])
def test_good_accept(accept: str) -> None:
    async def f(ctx: Context, x: int) -> None:
        pass

    assert _service_handler(f, accept=accept).accept == accept


@pytest.mark.parametrize("content_type", ["json", "text/*", "a/b\n", ""])
def test_bad_content_type(content_type: str) -> None:
    async def f(ctx: Context) -> int:
        return 1

    with pytest.raises(DefinitionError, match="content_type"):
        _service_handler(f, content_type=content_type)


@pytest.mark.parametrize("metadata", [{"a": 1}, {1: "a"}, ["a"]])
def test_bad_metadata(metadata: Any) -> None:
    with pytest.raises(DefinitionError, match="metadata must map str to str"):
        Service("S", metadata=metadata)


def test_bad_flags_and_texts() -> None:
    with pytest.raises(DefinitionError, match="ingress_private must be a bool"):
        Service("S", ingress_private=1)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="enable_lazy_state must be a bool"):
        VirtualObject("O", enable_lazy_state="yes")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="description must be a str"):
        Service("S", description=3)  # type: ignore[arg-type]


def test_unresolvable_annotation() -> None:
    class Local:
        pass

    async def f(ctx: Context, x: Local) -> None:  # a string annotation naming a local class
        pass

    with pytest.raises(DefinitionError, match="cannot resolve the annotations .*'Local'"):
        _service_handler(f)


def test_annotation_without_a_serde() -> None:
    async def f(ctx: Context, when: datetime) -> None:
        pass

    with pytest.raises(DefinitionError, match="no serde for its input annotation.*input_serde="):
        _service_handler(f)

    async def g(ctx: Context) -> datetime:
        return datetime.now()

    with pytest.raises(DefinitionError, match="no serde for its output annotation"):
        _service_handler(g)
    assert _service_handler(g, output_serde=JsonSerde()).output_type is datetime


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial_interval": timedelta(seconds=-1)}, "initial_interval must not be negative"),
        ({"max_interval": 3}, "max_interval must be a datetime.timedelta"),
        (
            {"initial_interval": timedelta(seconds=2), "max_interval": timedelta(seconds=1)},
            "max_interval .* is shorter than initial_interval",
        ),
        ({"max_attempts": 0}, "max_attempts must be an int >= 1"),
        ({"max_attempts": True}, "max_attempts must be an int >= 1"),
        ({"max_attempts": 2.0}, "max_attempts must be an int >= 1"),
        ({"exponentiation_factor": 0.5}, "exponentiation_factor must be a finite number >= 1"),
        ({"exponentiation_factor": float("nan")}, "exponentiation_factor must be a finite"),
        ({"exponentiation_factor": float("inf")}, "exponentiation_factor must be a finite"),
        ({"on_max_attempts": "stop"}, "on_max_attempts must be 'pause' or 'kill'"),
    ],
)
def test_bad_retry_policies(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        RetryPolicy(**options)


def test_retry_policy_must_be_a_retry_policy() -> None:
    with pytest.raises(DefinitionError, match="retry_policy must be an"):
        Service("S", retry_policy={"max_attempts": 3})  # type: ignore[arg-type]


def test_retry_policy_is_frozen() -> None:
    policy = RetryPolicy(max_attempts=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 4  # type: ignore[misc]


# -- typing: the type checker sees the handler's types and refuses the wrong context -------------

_TYPED = """
from undying.sdk.context import (
    Context, ObjectContext, ObjectSharedContext, WorkflowContext, WorkflowSharedContext,
)
from undying.sdk.definitions import Service, VirtualObject, Workflow

svc, obj, wf = Service("S"), VirtualObject("O"), Workflow("W")

@svc.handler()
async def greet(ctx: Context, name: str) -> str: ...
@svc.handler
async def count(ctx: Context) -> int: ...
@obj.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int: ...
@obj.handler()
async def add(ctx: ObjectContext, n: int) -> int: ...
@wf.main()
async def run(ctx: WorkflowContext, email: str) -> bool: ...
@wf.handler()
async def confirm(ctx: WorkflowSharedContext) -> None: ...

reveal_type(greet)
reveal_type(count)
reveal_type(get)
reveal_type(add)
reveal_type(run)
reveal_type(confirm)

@svc.handler()
async def bad_service(ctx: ObjectContext) -> int: ...  # E
@obj.handler(kind="shared")
async def bad_shared(ctx: ObjectContext) -> int: ...  # E
@wf.handler()
async def bad_workflow(ctx: WorkflowContext) -> int: ...  # E
@svc.handler()
def bad_sync(ctx: Context) -> int: ...  # E

async def use(ctx: Context) -> None:
    await greet(ctx)  # E
    await count(ctx, 1)  # E
"""


def test_handler_types_for_the_type_checker(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    source = tmp_path / "typed.py"
    source.write_text(textwrap.dedent(_TYPED))
    root = Path(__file__).resolve().parents[2]
    out, err, _ = api.run(
        [
            "--strict",
            "--no-error-summary",
            "--hide-error-context",
            "--disable-error-code=empty-body",
            "--cache-dir",
            str(root / ".mypy_cache"),
            "--config-file",
            str(root / "pyproject.toml"),
            str(source),
        ]
    )
    assert not err
    lines = [line.split(":", 1)[1] for line in out.splitlines()]
    reveals = [
        line.split('"')[1].replace("builtins.", "") for line in lines if "Revealed type" in line
    ]
    handler = "undying.sdk.handlers.Handler"
    assert reveals == [
        f"{handler}[str, str]",
        f"{handler}[None, int]",
        f"{handler}[None, int]",
        f"{handler}[int, int]",
        f"{handler}[str, bool]",
        f"{handler}[None, None]",
    ]
    errors = {int(line.split(":", 1)[0]) for line in lines if ": error:" in line}
    marked = {n for n, line in enumerate(source.read_text().splitlines(), 1) if "# E" in line}
    # a decorator's error is reported on the decorator's line or on the def's, by mypy version
    assert len(marked) == 6, out
    assert {n if n in marked else n + 1 for n in errors} == marked, out
