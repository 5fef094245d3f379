"""Discovery: fetch and validate a deployment's manifest."""

from __future__ import annotations

from typing import Final

import msgspec

from undying.errors import DeploymentError, DiscoveryError, ManifestError
from undying.protocol.manifest import (
    MANIFEST_CONTENT_TYPES,
    Endpoint,
    manifest_version_of,
    parse_manifest,
)
from undying.server.invoker.streams import Connector

__all__ = ["ACCEPT", "discover"]

ACCEPT: Final = ", ".join(MANIFEST_CONTENT_TYPES)
_OLD_TS_SDKS: Final = tuple(f"restate-sdk-typescript/1.{m}." for m in (0, 1, 2))


async def discover(
    connector: Connector,
    uri: str,
    *,
    use_http_11: bool,
    additional_headers: dict[str, str],
    cluster_name: str,
    timeout: float = 10.0,
) -> tuple[Endpoint, str | None]:
    """The validated manifest of the deployment at ``uri`` and its SDK version header."""
    headers = [("accept", ACCEPT), ("x-restate-cluster-name", cluster_name)]
    headers.extend(additional_headers.items())
    try:
        status, resp_headers, body = await connector.discover(
            uri, headers, use_http_11=use_http_11, timeout=timeout
        )
    except DeploymentError as e:
        raise DiscoveryError(f"cannot reach the deployment: {e}") from None
    if status == 404:
        raise DiscoveryError(
            "the deployment answered 404 Not Found to GET /discover; is the uri right?"
        )
    if not 200 <= status < 300:
        raise DiscoveryError(f"the deployment answered GET /discover with HTTP status {status}")
    content_type = _get(resp_headers, "content-type")
    if manifest_version_of(content_type) is None:
        raise DiscoveryError(
            f"the deployment answered GET /discover with content type {content_type!r}, "
            "which is not an endpoint manifest"
        )
    endpoint = parse_manifest(body)
    sdk = _get(resp_headers, "x-restate-server")
    if sdk is not None and sdk.startswith(_OLD_TS_SDKS):
        # Those SDK versions have a protocol bug; Restate caps them at protocol version 1.
        endpoint = msgspec.structs.replace(endpoint, max_protocol_version=1)
        if endpoint.min_protocol_version > 1:
            raise ManifestError(f"the SDK {sdk} is too old for this server; upgrade it")
        parse_manifest(msgspec.json.encode(endpoint))
    return endpoint, sdk


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None
