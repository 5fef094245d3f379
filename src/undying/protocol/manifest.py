"""Discovery manifests (endpoint manifest v1-v4): strict parsing and the registration rules.

The schema is applied the way Restate's server applies it: camelCase fields, unknown fields
rejected, ``protocolMode`` required, names matching the documented patterns, handler kinds that
fit the service kind, and a protocol version range that meets the server's window.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import msgspec

from undying.errors import ManifestError

__all__ = [
    "MANIFEST_CONTENT_TYPES",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "Endpoint",
    "Handler",
    "InputPayload",
    "OutputPayload",
    "Service",
    "manifest_version_of",
    "parse_manifest",
]

#: Protocol versions this server can run invocations with (discoverable window).
SUPPORTED_PROTOCOL_VERSIONS: Final = range(5, 8)

MANIFEST_CONTENT_TYPES: Final = tuple(
    f"application/vnd.restate.endpointmanifest.v{v}+json" for v in (1, 2, 3, 4)
)

_SERVICE_NAME = re.compile(r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*$")
_HANDLER_NAME = re.compile(r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*$")
_MAX_I32: Final = 2**31 - 1


class _Strict(
    msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, rename="camel", frozen=True
):
    pass


class InputPayload(_Strict, frozen=True):
    """What a handler accepts as request body; an empty object means 'no body'."""

    required: bool | None = None
    content_type: str | None = None
    json_schema: Any = None


class OutputPayload(_Strict, frozen=True):
    """What a handler returns."""

    content_type: str | None = None
    set_content_type_if_empty: bool | None = None
    json_schema: Any = None


RetryOnMax = Literal["PAUSE", "KILL"]


class Handler(_Strict, frozen=True):
    """One handler of a service, as the deployment describes it."""

    name: str
    ty: Literal["EXCLUSIVE", "SHARED", "WORKFLOW"] | None = None
    input: InputPayload | None = None
    output: OutputPayload | None = None
    documentation: str | None = None
    metadata: dict[str, str] | None = None
    inactivity_timeout: int | None = None
    abort_timeout: int | None = None
    journal_retention: int | None = None
    idempotency_retention: int | None = None
    workflow_completion_retention: int | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_policy_initial_interval: int | None = None
    retry_policy_max_interval: int | None = None
    retry_policy_max_attempts: int | None = None
    retry_policy_exponentiation_factor: float | None = None
    retry_policy_on_max_attempts: RetryOnMax | None = None


class Service(_Strict, frozen=True):
    """One service of a deployment."""

    name: str
    ty: Literal["SERVICE", "VIRTUAL_OBJECT", "WORKFLOW"]
    handlers: list[Handler]
    documentation: str | None = None
    metadata: dict[str, str] | None = None
    inactivity_timeout: int | None = None
    abort_timeout: int | None = None
    journal_retention: int | None = None
    idempotency_retention: int | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_policy_initial_interval: int | None = None
    retry_policy_max_interval: int | None = None
    retry_policy_max_attempts: int | None = None
    retry_policy_exponentiation_factor: float | None = None
    retry_policy_on_max_attempts: RetryOnMax | None = None


class Endpoint(_Strict, frozen=True):
    """A deployment's manifest."""

    min_protocol_version: int
    max_protocol_version: int
    services: list[Service]
    protocol_mode: Literal["BIDI_STREAM", "REQUEST_RESPONSE"] | None = None
    lambda_compression: Literal["zstd"] | None = None


_DECODER: Final = msgspec.json.Decoder(Endpoint)


def manifest_version_of(content_type: str | None) -> int | None:
    """The manifest version named by a discovery response content type, if it is one."""
    if content_type is None:
        return None
    base = content_type.split(";", 1)[0].strip().lower()
    for version, known in enumerate(MANIFEST_CONTENT_TYPES, start=1):
        if base == known:
            return version
    return None


def parse_manifest(body: bytes) -> Endpoint:
    """Decode and validate a manifest. Raises ``ManifestError`` saying what is wrong."""
    try:
        endpoint = _DECODER.decode(body)
    except msgspec.ValidationError as e:
        raise ManifestError(f"the manifest does not match the schema: {e}") from None
    except msgspec.DecodeError as e:
        raise ManifestError(f"the manifest is not valid JSON: {e}") from None
    _validate(endpoint)
    return endpoint


def _validate(endpoint: Endpoint) -> None:
    if endpoint.protocol_mode is None:
        raise ManifestError("the manifest is missing the protocol mode (protocolMode)")
    lo, hi = endpoint.min_protocol_version, endpoint.max_protocol_version
    if not (1 <= lo <= _MAX_I32 and 1 <= hi <= _MAX_I32):
        raise ManifestError("protocol versions must be between 1 and 2147483647")
    if lo > hi:
        raise ManifestError(f"minProtocolVersion {lo} is greater than maxProtocolVersion {hi}")
    supported = SUPPORTED_PROTOCOL_VERSIONS
    if hi < supported.start or lo > supported.stop - 1:
        raise ManifestError(
            f"the deployment supports service protocol versions [{lo}, {hi}], "
            f"which do not intersect the versions supported by this server "
            f"[{supported.start}, {supported.stop - 1}]"
        )
    seen: set[str] = set()
    for service in endpoint.services:
        if not _SERVICE_NAME.match(service.name):
            raise ManifestError(f"invalid service name '{service.name}'")
        if service.name in seen:
            raise ManifestError(f"the service '{service.name}' is declared twice")
        seen.add(service.name)
        _validate_handlers(service)


def _validate_handlers(service: Service) -> None:
    names: set[str] = set()
    workflow_handlers = 0
    for handler in service.handlers:
        where = f"{service.name}/{handler.name}"
        if not _HANDLER_NAME.match(handler.name):
            raise ManifestError(f"invalid handler name '{where}'")
        if handler.name in names:
            raise ManifestError(f"the handler '{where}' is declared twice")
        names.add(handler.name)
        if service.ty == "SERVICE" and handler.ty is not None:
            raise ManifestError(f"the handler '{where}' of a plain service cannot have a type")
        if service.ty == "VIRTUAL_OBJECT" and handler.ty == "WORKFLOW":
            raise ManifestError(f"the handler '{where}' of a virtual object cannot be WORKFLOW")
        if service.ty == "WORKFLOW":
            if handler.ty == "EXCLUSIVE":
                raise ManifestError(f"the handler '{where}' of a workflow cannot be EXCLUSIVE")
            if handler.ty in (None, "WORKFLOW"):
                workflow_handlers += 1
        if handler.workflow_completion_retention is not None and not (
            service.ty == "WORKFLOW" and handler.ty in (None, "WORKFLOW")
        ):
            raise ManifestError(
                f"workflowCompletionRetention is only allowed on workflow run handlers ('{where}')"
            )
        for field in ("inactivity_timeout", "abort_timeout", "journal_retention"):
            value = getattr(handler, field)
            if value is not None and value < 0:
                raise ManifestError(f"{field} of '{where}' must not be negative")
    if service.ty == "WORKFLOW" and workflow_handlers != 1:
        raise ManifestError(
            f"the workflow '{service.name}' must have exactly one WORKFLOW handler, "
            f"it has {workflow_handlers}"
        )
