"""The discovery manifest: versions, fields, and agreement with the server's strict parser."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from undying.errors import DefinitionError
from undying.protocol.manifest import Endpoint, parse_manifest
from undying.sdk.context import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    WorkflowContext,
    WorkflowSharedContext,
)
from undying.sdk.definitions import RetryPolicy, Service, VirtualObject, Workflow
from undying.sdk.discovery import (
    MANIFEST_CONTENT_TYPE,
    MANIFEST_VERSIONS,
    manifest,
    manifest_content_type,
    negotiate_manifest_version,
    required_manifest_version,
)

V3_FIELDS = {
    "inactivityTimeout",
    "abortTimeout",
    "journalRetention",
    "idempotencyRetention",
    "workflowCompletionRetention",
    "enableLazyState",
    "ingressPrivate",
}
V4_FIELDS = {
    "retryPolicyInitialInterval",
    "retryPolicyMaxInterval",
    "retryPolicyMaxAttempts",
    "retryPolicyExponentiationFactor",
    "retryPolicyOnMaxAttempts",
    "lambdaCompression",
}


@dataclasses.dataclass
class Order:
    item: str
    quantity: int


def _greeter() -> Service:
    svc = Service("Greeter")

    @svc.handler()
    async def greet(ctx: Context, name: str) -> str:
        return f"Hello {name}!"

    return svc


def _everything() -> list[Service | VirtualObject | Workflow]:
    """A service, an object and a workflow with every option set somewhere."""
    policy = RetryPolicy(
        initial_interval=timedelta(milliseconds=250),
        max_interval=timedelta(seconds=30),
        max_attempts=10,
        exponentiation_factor=2,
        on_max_attempts="kill",
    )
    svc = Service(
        "Shop",
        description="Sells things.",
        metadata={"team": "shop"},
        inactivity_timeout=timedelta(minutes=1),
        abort_timeout=timedelta(minutes=10),
        idempotency_retention=timedelta(days=1),
        journal_retention=timedelta(hours=12),
        ingress_private=True,
        retry_policy=policy,
    )

    @svc.handler(
        metadata={"k": "v"},
        inactivity_timeout=timedelta(seconds=1.5),
        abort_timeout=timedelta(seconds=2),
        idempotency_retention=timedelta(seconds=3),
        journal_retention=timedelta(seconds=4),
        ingress_private=True,
        retry_policy=RetryPolicy(max_attempts=3, on_max_attempts="pause"),
    )
    async def order(ctx: Context, order: Order) -> list[Order]:
        """Places an order."""
        return [order]

    obj = VirtualObject("Cart", enable_lazy_state=True, retry_policy=policy)

    @obj.handler()
    async def add(ctx: ObjectContext, item: str) -> int:
        return 1

    @obj.handler(kind="shared", enable_lazy_state=False)
    async def count(ctx: ObjectSharedContext) -> int:
        return 0

    wf = Workflow(
        "Checkout",
        workflow_retention=timedelta(days=7),
        idempotency_retention=timedelta(hours=1),
        enable_lazy_state=True,
    )

    @wf.main(retry_policy=policy, journal_retention=timedelta(days=2))
    async def run(ctx: WorkflowContext, cart: str) -> bool:
        return True

    @wf.handler(idempotency_retention=timedelta(minutes=5))
    async def cancel(ctx: WorkflowSharedContext) -> None:
        pass

    return [svc, obj, wf]


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "jsonSchema":
                yield key
                yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _parse(doc: dict[str, Any]) -> Endpoint:
    """Through JSON (NaN refused, as the server would) and the server's strict parser."""
    return parse_manifest(json.dumps(doc, allow_nan=False).encode())


def _handler(doc: dict[str, Any], service: str, handler: str) -> dict[str, Any]:
    for s in doc["services"]:
        if s["name"] == service:
            for h in s["handlers"]:
                if h["name"] == handler:
                    result: dict[str, Any] = h
                    return result
    raise KeyError(f"{service}/{handler}")


def _service(doc: dict[str, Any], service: str) -> dict[str, Any]:
    result: dict[str, Any] = next(s for s in doc["services"] if s["name"] == service)
    return result


# -- content types and negotiation --------------------------------------------------------------


def test_content_types() -> None:
    assert manifest_content_type(4) == "application/vnd.restate.endpointmanifest.v4+json"
    assert MANIFEST_CONTENT_TYPE.format(version=2) == manifest_content_type(2)
    assert MANIFEST_VERSIONS == (2, 3, 4)


SERVER_ACCEPT = ", ".join(manifest_content_type(v) for v in (1, 2, 3, 4))  # restate-server 1.7


@pytest.mark.parametrize(
    ("accept", "version"),
    [
        (None, 2),
        (SERVER_ACCEPT, 4),
        (manifest_content_type(2), 2),
        (f"{manifest_content_type(2)}, {manifest_content_type(3)}", 3),
        (f"{manifest_content_type(3)},{manifest_content_type(2)}", 3),
        (manifest_content_type(4).upper(), 4),
        (f"{manifest_content_type(4)}; q=0.5, text/plain", 4),
        (f"{manifest_content_type(4)};q=0, {manifest_content_type(3)}", 3),
        (f"{manifest_content_type(4)};q=0", None),
        (f"{manifest_content_type(3)};q=oops", 3),
        (manifest_content_type(1), None),
        (manifest_content_type(5), None),
        ("*/*", None),
        ("application/*", None),
        ("application/json", None),
        ("", None),
    ],
)
def test_negotiate_manifest_version(accept: str | None, version: int | None) -> None:
    assert negotiate_manifest_version(accept) == version


# -- manifests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", MANIFEST_VERSIONS)
@pytest.mark.parametrize("mode", ["BIDI_STREAM", "REQUEST_RESPONSE"])
def test_the_server_parses_every_version(version: int, mode: Any) -> None:
    doc = manifest(_everything(), protocol_mode=mode, version=version)
    endpoint = _parse(doc)
    assert endpoint.protocol_mode == mode
    assert (endpoint.min_protocol_version, endpoint.max_protocol_version) == (5, 6)
    assert [(s.name, s.ty) for s in endpoint.services] == [
        ("Shop", "SERVICE"),
        ("Cart", "VIRTUAL_OBJECT"),
        ("Checkout", "WORKFLOW"),
    ]
    assert [(h.name, h.ty) for s in endpoint.services for h in s.handlers] == [
        ("order", None),
        ("add", "EXCLUSIVE"),
        ("count", "SHARED"),
        ("run", "WORKFLOW"),
        ("cancel", "SHARED"),
    ]


@pytest.mark.parametrize("version", MANIFEST_VERSIONS)
def test_each_version_carries_only_its_fields(version: int) -> None:
    keys = set(_keys(manifest(_everything(), protocol_mode="BIDI_STREAM", version=version)))
    assert {"documentation", "metadata"} <= keys
    if version < 3:
        assert not keys & V3_FIELDS
    else:
        assert keys >= V3_FIELDS
    if version < 4:
        assert not keys & V4_FIELDS
    else:
        assert keys >= V4_FIELDS - {"lambdaCompression"}
    assert "lambdaCompression" not in keys


def test_the_minimal_example_of_the_reference() -> None:
    counter = VirtualObject("Counter")

    @counter.handler()
    async def add(ctx: ObjectContext, n: int) -> int:
        return n

    @counter.handler(kind="shared")
    async def get(ctx: ObjectSharedContext) -> int:
        return 0

    doc = manifest([_greeter(), counter], protocol_mode="BIDI_STREAM", version=2)
    _parse(doc)
    assert doc == {
        "protocolMode": "BIDI_STREAM",
        "minProtocolVersion": 5,
        "maxProtocolVersion": 6,
        "services": [
            {
                "name": "Greeter",
                "ty": "SERVICE",
                "handlers": [
                    {
                        "name": "greet",
                        "input": {
                            "required": False,
                            "contentType": "application/json",
                            "jsonSchema": {"type": "string"},
                        },
                        "output": {
                            "contentType": "application/json",
                            "setContentTypeIfEmpty": False,
                            "jsonSchema": {"type": "string"},
                        },
                    }
                ],
            },
            {
                "name": "Counter",
                "ty": "VIRTUAL_OBJECT",
                "handlers": [
                    {
                        "name": "add",
                        "ty": "EXCLUSIVE",
                        "input": {
                            "required": False,
                            "contentType": "application/json",
                            "jsonSchema": {"type": "integer"},
                        },
                        "output": {
                            "contentType": "application/json",
                            "setContentTypeIfEmpty": False,
                            "jsonSchema": {"type": "integer"},
                        },
                    },
                    {
                        "name": "get",
                        "ty": "SHARED",
                        "input": {},
                        "output": {
                            "contentType": "application/json",
                            "setContentTypeIfEmpty": False,
                            "jsonSchema": {"type": "integer"},
                        },
                    },
                ],
            },
        ],
    }


def test_json_schemas_of_typed_inputs_and_outputs() -> None:
    doc = manifest(_everything(), protocol_mode="BIDI_STREAM", version=4)
    order = _handler(doc, "Shop", "order")
    schema = order["input"]["jsonSchema"]
    assert schema["type"] == "object" and set(schema["properties"]) == {"item", "quantity"}
    assert order["output"]["jsonSchema"]["type"] == "array"
    assert order["documentation"] == "Places an order."
    parsed = _parse(doc).services[0].handlers[0]
    assert parsed.input is not None and parsed.input.json_schema == schema


def test_untyped_void_and_raw_payloads() -> None:
    svc = Service("S")

    @svc.handler()
    async def untyped(ctx, value):  # type: ignore[no-untyped-def]
        return value

    @svc.handler()
    async def void(ctx: Context) -> None:
        pass

    @svc.handler(accept="*/*", content_type="text/plain")
    async def raw(ctx: Context, data: bytes) -> bytes:
        return data

    doc = manifest([svc], protocol_mode="REQUEST_RESPONSE", version=2)
    _parse(doc)
    assert _handler(doc, "S", "untyped")["input"] == {
        "required": False,
        "contentType": "application/json",
    }
    assert _handler(doc, "S", "untyped")["output"] == {
        "contentType": "application/json",
        "setContentTypeIfEmpty": False,
    }
    assert _handler(doc, "S", "void")["input"] == {}
    assert _handler(doc, "S", "void")["output"] == {"setContentTypeIfEmpty": False}
    assert _handler(doc, "S", "raw")["input"] == {"required": False, "contentType": "*/*"}
    assert _handler(doc, "S", "raw")["output"] == {
        "contentType": "text/plain",
        "setContentTypeIfEmpty": False,
    }


def test_options_map_to_the_manifest_fields() -> None:
    doc = manifest(_everything(), protocol_mode="BIDI_STREAM", version=4)
    shop = _service(doc, "Shop")
    assert {k: v for k, v in shop.items() if k not in ("name", "ty", "handlers")} == {
        "documentation": "Sells things.",
        "metadata": {"team": "shop"},
        "inactivityTimeout": 60_000,
        "abortTimeout": 600_000,
        "idempotencyRetention": 86_400_000,
        "journalRetention": 43_200_000,
        "ingressPrivate": True,
        "retryPolicyInitialInterval": 250,
        "retryPolicyMaxInterval": 30_000,
        "retryPolicyMaxAttempts": 10,
        "retryPolicyExponentiationFactor": 2.0,
        "retryPolicyOnMaxAttempts": "KILL",
    }
    order = _handler(doc, "Shop", "order")
    assert {k: v for k, v in order.items() if k not in ("input", "output")} == {
        "name": "order",
        "documentation": "Places an order.",
        "metadata": {"k": "v"},
        "inactivityTimeout": 1500,
        "abortTimeout": 2000,
        "idempotencyRetention": 3000,
        "journalRetention": 4000,
        "ingressPrivate": True,
        "retryPolicyMaxAttempts": 3,
        "retryPolicyOnMaxAttempts": "PAUSE",
    }
    assert isinstance(shop["retryPolicyExponentiationFactor"], float)
    assert _service(doc, "Cart")["enableLazyState"] is True
    assert "enableLazyState" not in _handler(doc, "Cart", "add")
    assert _handler(doc, "Cart", "count")["enableLazyState"] is False


def test_workflow_retention_goes_to_the_run_handler() -> None:
    doc = manifest(_everything(), protocol_mode="BIDI_STREAM", version=3)
    checkout = _service(doc, "Checkout")
    assert "workflowCompletionRetention" not in checkout
    assert checkout["idempotencyRetention"] == 3_600_000  # for the shared handlers
    run = _handler(doc, "Checkout", "run")
    assert run["ty"] == "WORKFLOW"
    assert run["workflowCompletionRetention"] == 7 * 86_400_000
    assert run["journalRetention"] == 2 * 86_400_000
    assert "idempotencyRetention" not in run  # the server refuses it on a run handler
    cancel = _handler(doc, "Checkout", "cancel")
    assert "workflowCompletionRetention" not in cancel
    assert cancel["idempotencyRetention"] == 300_000
    parsed = _parse(doc).services[2]
    assert parsed.handlers[0].workflow_completion_retention == 7 * 86_400_000

    wf = Workflow("W", workflow_retention=timedelta(days=7))

    @wf.main(workflow_retention=timedelta(seconds=1))
    async def main(ctx: WorkflowContext) -> None:
        pass

    doc = manifest([wf], protocol_mode="BIDI_STREAM", version=3)
    assert _handler(doc, "W", "main")["workflowCompletionRetention"] == 1000


def test_durations_are_whole_milliseconds() -> None:
    svc = Service("S", inactivity_timeout=timedelta(microseconds=1999), abort_timeout=timedelta(0))

    @svc.handler()
    async def f(ctx: Context) -> None:
        pass

    shop = _service(manifest([svc], protocol_mode="BIDI_STREAM", version=3), "S")
    assert (shop["inactivityTimeout"], shop["abortTimeout"]) == (1, 0)


def test_defaults_emit_no_options() -> None:
    obj = VirtualObject("O")

    @obj.handler()
    async def f(ctx: ObjectContext) -> None:
        pass

    for version in MANIFEST_VERSIONS:
        doc = manifest([obj], protocol_mode="BIDI_STREAM", version=version)
        assert _service(doc, "O") == {
            "name": "O",
            "ty": "VIRTUAL_OBJECT",
            "handlers": [
                {
                    "name": "f",
                    "ty": "EXCLUSIVE",
                    "input": {},
                    "output": {"setContentTypeIfEmpty": False},
                }
            ],
        }


def test_required_manifest_version() -> None:
    assert required_manifest_version([_greeter()]) == 2
    assert required_manifest_version(_everything()) == 4
    assert required_manifest_version([Service("S", description="only v2")]) == 2
    assert required_manifest_version([VirtualObject("O", enable_lazy_state=True)]) == 3
    assert required_manifest_version([Service("S", ingress_private=True)]) == 3

    svc = Service("S")

    @svc.handler(retry_policy=RetryPolicy(max_attempts=2))
    async def f(ctx: Context) -> None:
        pass

    assert required_manifest_version([svc]) == 4
    # an empty policy sets nothing
    assert required_manifest_version([Service("T", retry_policy=RetryPolicy())]) == 2


# -- refused ------------------------------------------------------------------------------------


def test_workflow_without_run_handler() -> None:
    wf = Workflow("W")

    @wf.handler()
    async def peek(ctx: WorkflowSharedContext) -> None:
        pass

    with pytest.raises(DefinitionError, match="workflow 'W' has no run handler"):
        manifest([wf], protocol_mode="BIDI_STREAM", version=4)
    with pytest.raises(DefinitionError, match="no run handler"):
        required_manifest_version([wf])


def test_two_definitions_with_one_name() -> None:
    with pytest.raises(DefinitionError, match="two definitions are named 'Greeter'"):
        manifest([_greeter(), _greeter()], protocol_mode="BIDI_STREAM", version=4)


def test_not_a_definition() -> None:
    with pytest.raises(DefinitionError, match="expected a Service, VirtualObject or Workflow"):
        manifest(["Greeter"], protocol_mode="BIDI_STREAM", version=4)  # type: ignore[list-item]


@pytest.mark.parametrize("version", [0, 1, 5, "4"])
def test_unknown_version(version: Any) -> None:
    with pytest.raises(ValueError, match="manifest version must be one of"):
        manifest([_greeter()], protocol_mode="BIDI_STREAM", version=version)


def test_unknown_protocol_mode() -> None:
    with pytest.raises(ValueError, match="protocol_mode must be"):
        manifest([_greeter()], protocol_mode="bidi", version=4)  # type: ignore[arg-type]


def test_no_services() -> None:
    doc = manifest([], protocol_mode="REQUEST_RESPONSE", version=2)
    assert _parse(doc).services == []
