"""Discovery manifests: the schema as Restate's server applies it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from undying.errors import ManifestError
from undying.protocol.manifest import manifest_version_of, parse_manifest


def manifest(**over: Any) -> bytes:
    base: dict[str, Any] = {
        "protocolMode": "BIDI_STREAM",
        "minProtocolVersion": 5,
        "maxProtocolVersion": 6,
        "services": [
            {
                "name": "Greeter",
                "ty": "SERVICE",
                "handlers": [{"name": "greet", "input": {}, "output": {}}],
            }
        ],
    }
    base.update(over)
    return json.dumps(base).encode()


def service(name: str, ty: str, *handlers: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ty": ty, "handlers": list(handlers)}


def test_manifests_in_the_shapes_the_official_sdks_send() -> None:
    # Python SDK style: JSON schemas, no-argument handlers with "input": {}, handler kinds.
    python_style = {
        "protocolMode": "BIDI_STREAM",
        "minProtocolVersion": 5,
        "maxProtocolVersion": 7,
        "services": [
            service(
                "Counter",
                "VIRTUAL_OBJECT",
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
                {"name": "get", "ty": "SHARED", "input": {}, "output": {}},
            ),
            service(
                "Wf", "WORKFLOW", {"name": "run", "ty": "WORKFLOW"}, {"name": "s", "ty": "SHARED"}
            ),
        ],
    }
    # TypeScript SDK style: protocolMode last, no schemas.
    ts_style = {
        "minProtocolVersion": 5,
        "maxProtocolVersion": 7,
        "services": [
            service(
                "Greeter",
                "SERVICE",
                {
                    "name": "greet",
                    "input": {"required": False, "contentType": "application/json"},
                    "output": {"setContentTypeIfEmpty": False, "contentType": "application/json"},
                },
            )
        ],
        "protocolMode": "BIDI_STREAM",
    }
    for m in (python_style, ts_style):
        endpoint = parse_manifest(json.dumps(m).encode())
        assert endpoint.min_protocol_version == 5 and endpoint.max_protocol_version == 7


def test_a_minimal_manifest() -> None:
    endpoint = parse_manifest(manifest())
    assert endpoint.services[0].handlers[0].name == "greet"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (manifest(unknownField=1), "does not match the schema"),
        (manifest(protocolMode=None), "protocol mode"),
        (manifest(minProtocolVersion=7, maxProtocolVersion=6), "greater than"),
        (manifest(minProtocolVersion=1, maxProtocolVersion=4), "do not intersect"),
        (manifest(services=[service("1bad", "SERVICE")]), "invalid service name"),
        (
            manifest(services=[service("S", "SERVICE", {"name": "a-b"})]),
            "invalid handler name",
        ),
        (
            manifest(services=[service("S", "SERVICE", {"name": "h", "ty": "SHARED"})]),
            "cannot have a type",
        ),
        (
            manifest(services=[service("W", "WORKFLOW", {"name": "h", "ty": "SHARED"})]),
            "exactly one WORKFLOW handler",
        ),
        (
            manifest(services=[service("O", "VIRTUAL_OBJECT", {"name": "h", "ty": "WORKFLOW"})]),
            "cannot be WORKFLOW",
        ),
        (
            manifest(services=[service("S", "SERVICE", {"name": "h"}, {"name": "h"})]),
            "declared twice",
        ),
        (
            manifest(services=[service("S", "SERVICE"), service("S", "SERVICE")]),
            "declared twice",
        ),
    ],
)
def test_bad_manifests_are_rejected_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(body)


def test_manifest_content_types() -> None:
    assert manifest_version_of("application/vnd.restate.endpointmanifest.v4+json") == 4
    assert manifest_version_of("application/vnd.restate.endpointmanifest.v2+json; x=y") == 2
    assert manifest_version_of("application/json") is None
    assert manifest_version_of(None) is None
