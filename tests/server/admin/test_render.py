"""The admin API's handler descriptions (what ``restate services describe`` prints)."""

from __future__ import annotations

from typing import Any

import pytest

from undying.protocol import manifest as mf
from undying.server.admin.render import handler_metadata
from undying.server.schema import HandlerInfo, ServiceInfo


def describe(content_type: str | None, schema: Any) -> tuple[str, str]:
    handler = HandlerInfo(
        "h",
        None,
        mf.InputPayload(content_type=content_type, json_schema=schema),
        mf.OutputPayload(content_type=content_type, json_schema=schema),
    )
    service = ServiceInfo("S", "Service", {"h": handler}, "dp_x", 1)
    meta = handler_metadata(service, handler)
    return meta["input_description"], meta["output_description"]


@pytest.mark.parametrize(
    ("content_type", "schema", "expected"),
    [
        (None, None, "none"),
        ("application/json", {"type": "object"}, "JSON object"),
        ("application/json", None, "application/json"),
        ("application/octet-stream", None, "application/octet-stream"),
        # restate-server 1.7.12 shows an `Optional[str]` (anyOf) output as its content type
        ("application/json", {"anyOf": [{"type": "string"}, {"type": "null"}]}, "application/json"),
    ],
)
def test_payload_descriptions(content_type: str | None, schema: Any, expected: str) -> None:
    assert describe(content_type, schema) == (expected, expected)
