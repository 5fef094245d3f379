"""The discovery manifest: what the server learns about an endpoint's services at registration.

The server asks ``GET /discover`` with an ``Accept`` header listing the manifest versions it
reads (``application/vnd.restate.endpointmanifest.v1+json`` ... ``v4``);
:func:`negotiate_manifest_version` picks the one to answer with, :func:`manifest` builds it
and :func:`manifest_content_type` names it in the reply::

    version = negotiate_manifest_version(request_headers.get("accept"))
    if version is None:
        ...  # 415: none of the versions we write
    body = json.dumps(manifest(services, protocol_mode="BIDI_STREAM", version=version))
    reply(200, body, content_type=manifest_content_type(version))

The server rejects properties a version does not define, so each version carries only its own:
v2 adds documentation and metadata, v3 the timeouts, retentions, lazy state and ingress
privacy, v4 the retry policy. Options a lower version cannot carry are left out of its
manifest; :func:`required_manifest_version` says which version carries all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final, Literal

from undying.errors import DefinitionError
from undying.sdk.definitions import Handler, RetryPolicy, Service, VirtualObject, Workflow

__all__ = [
    "MANIFEST_CONTENT_TYPE",
    "MANIFEST_VERSIONS",
    "MAX_PROTOCOL_VERSION",
    "MIN_PROTOCOL_VERSION",
    "ProtocolMode",
    "manifest",
    "manifest_content_type",
    "negotiate_manifest_version",
    "required_manifest_version",
]

#: The content type of a manifest; format it with ``version``.
MANIFEST_CONTENT_TYPE: Final = "application/vnd.restate.endpointmanifest.v{version}+json"
#: The manifest versions :func:`manifest` writes, oldest first.
MANIFEST_VERSIONS: Final = (2, 3, 4)
#: The service protocol versions the SDK speaks (advertised in every manifest).
MIN_PROTOCOL_VERSION: Final = 5
MAX_PROTOCOL_VERSION: Final = 6

ProtocolMode = Literal["BIDI_STREAM", "REQUEST_RESPONSE"]
Definition = Service | VirtualObject | Workflow

_SERVICE_TY: Final = {"service": "SERVICE", "object": "VIRTUAL_OBJECT", "workflow": "WORKFLOW"}
_HANDLER_TY: Final = {"exclusive": "EXCLUSIVE", "shared": "SHARED", "workflow": "WORKFLOW"}

# The manifest version that introduced each optional property (the others are in every one).
_SINCE: Final[Mapping[str, int]] = {
    "documentation": 2,
    "metadata": 2,
    "inactivityTimeout": 3,
    "abortTimeout": 3,
    "journalRetention": 3,
    "idempotencyRetention": 3,
    "workflowCompletionRetention": 3,
    "enableLazyState": 3,
    "ingressPrivate": 3,
    "retryPolicyInitialInterval": 4,
    "retryPolicyMaxInterval": 4,
    "retryPolicyMaxAttempts": 4,
    "retryPolicyExponentiationFactor": 4,
    "retryPolicyOnMaxAttempts": 4,
}


def manifest_content_type(version: int) -> str:
    """The content type of a manifest of ``version``.

    Args:
        version: the manifest version (1 to 4).

    Returns:
        For example ``application/vnd.restate.endpointmanifest.v4+json``.
    """
    return MANIFEST_CONTENT_TYPE.format(version=version)


def negotiate_manifest_version(accept: str | None) -> int | None:
    """The manifest version to answer a discovery request with.

    Args:
        accept: the request's ``Accept`` header, ``None`` if it has none.

    Returns:
        The highest of v4, v3, v2 that ``accept`` names (parameters are ignored, except that
        ``q=0`` refuses a type); 2 without an ``Accept`` header; ``None`` when ``accept`` names
        none of them (wildcards name none), which calls for a 415 reply.
    """
    if accept is None:
        return 2
    known = {manifest_content_type(v): v for v in MANIFEST_VERSIONS}
    best: int | None = None
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        version = known.get(media.lower())
        if version is None or _refused(params):
            continue
        best = version if best is None else max(best, version)
    return best


def _refused(params: list[str]) -> bool:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip()) == 0
            except ValueError:
                return False
    return False


def manifest(
    services: Sequence[Definition], *, protocol_mode: ProtocolMode, version: int
) -> dict[str, Any]:
    """The endpoint manifest of ``services``, as a JSON-able dict.

    Args:
        services: the services, virtual objects and workflows of the endpoint.
        protocol_mode: ``"BIDI_STREAM"`` (HTTP/2) or ``"REQUEST_RESPONSE"`` (HTTP/1.1).
        version: the manifest version to write, one of :data:`MANIFEST_VERSIONS`. Options a
            version cannot carry are left out (see :func:`required_manifest_version`).

    Returns:
        The manifest: camelCase keys, absent options omitted, durations in milliseconds.

    Raises:
        ValueError: an unknown ``version`` or ``protocol_mode``.
        DefinitionError: two services share a name, a workflow has no run handler, or a
            ``services`` item is not a definition.
    """
    if version not in MANIFEST_VERSIONS:
        raise ValueError(f"manifest version must be one of {MANIFEST_VERSIONS}, got {version!r}")
    if protocol_mode not in ("BIDI_STREAM", "REQUEST_RESPONSE"):
        raise ValueError(
            f"protocol_mode must be 'BIDI_STREAM' or 'REQUEST_RESPONSE', got {protocol_mode!r}"
        )
    _check(services)
    return {
        "protocolMode": protocol_mode,
        "minProtocolVersion": MIN_PROTOCOL_VERSION,
        "maxProtocolVersion": MAX_PROTOCOL_VERSION,
        "services": [_service(s, version) for s in services],
    }


def required_manifest_version(services: Sequence[Definition]) -> int:
    """The lowest manifest version that carries every option ``services`` set.

    An endpoint answering a server that reads only older versions can refuse (rather than
    register the services without, say, their retry policy) when the negotiated version is
    lower than this.

    Args:
        services: the services, virtual objects and workflows of the endpoint.

    Returns:
        2, 3 or 4.

    Raises:
        DefinitionError: as :func:`manifest`.
    """
    _check(services)
    needed = MANIFEST_VERSIONS[0]
    for service in services:
        keys = list(_service_options(service))
        for handler in service.handlers.values():
            keys.extend(_handler_options(service, handler))
        needed = max([needed, *(_SINCE[key] for key in keys)])
    return needed


def _check(services: Sequence[Definition]) -> None:
    seen: set[str] = set()
    for service in services:
        if not isinstance(service, Service | VirtualObject | Workflow):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise DefinitionError(f"expected a Service, VirtualObject or Workflow, got {service!r}")
        if service.name in seen:
            raise DefinitionError(f"two definitions are named {service.name!r}")
        seen.add(service.name)
        if isinstance(service, Workflow) and service.main_handler is None:
            raise DefinitionError(
                f"workflow {service.name!r} has no run handler: define one with @wf.main()"
            )


def _service(service: Definition, version: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": service.name,
        "ty": _SERVICE_TY[service.kind],
        "handlers": [_handler(service, h, version) for h in service.handlers.values()],
    }
    out.update(_upto(_service_options(service), version))
    return out


def _service_options(service: Definition) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "documentation": service.description,
        "metadata": dict(service.metadata) if service.metadata is not None else None,
        "inactivityTimeout": _millis(service.inactivity_timeout),
        "abortTimeout": _millis(service.abort_timeout),
        "journalRetention": _millis(service.journal_retention),
        "idempotencyRetention": _millis(service.idempotency_retention),
        "ingressPrivate": True if service.ingress_private else None,
    }
    if isinstance(service, VirtualObject | Workflow) and service.enable_lazy_state:
        fields["enableLazyState"] = True
    fields.update(_retry(service.retry_policy))
    return {k: v for k, v in fields.items() if v is not None}


def _handler(service: Definition, handler: Handler[Any, Any], version: int) -> dict[str, Any]:
    out: dict[str, Any] = {"name": handler.name}
    if handler.kind is not None:
        out["ty"] = _HANDLER_TY[handler.kind]
    if handler.has_input:
        out["input"] = _payload(
            {"required": False, "contentType": handler.accept},
            handler.input_serde.json_schema(),
        )
    else:
        out["input"] = {}
    output: dict[str, Any] = {}
    if handler.content_type is not None:
        output["contentType"] = handler.content_type
    output["setContentTypeIfEmpty"] = False
    out["output"] = _payload(
        output, handler.output_serde.json_schema() if handler.has_output else None
    )
    out.update(_upto(_handler_options(service, handler), version))
    return out


def _payload(fields: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    if schema is not None:
        fields["jsonSchema"] = schema
    return fields


def _handler_options(service: Definition, handler: Handler[Any, Any]) -> dict[str, Any]:
    workflow_retention = handler.workflow_retention
    if handler.kind == "workflow" and workflow_retention is None and isinstance(service, Workflow):
        workflow_retention = service.workflow_retention
    fields: dict[str, Any] = {
        "documentation": handler.description,
        "metadata": dict(handler.metadata) if handler.metadata is not None else None,
        "inactivityTimeout": _millis(handler.inactivity_timeout),
        "abortTimeout": _millis(handler.abort_timeout),
        "journalRetention": _millis(handler.journal_retention),
        "idempotencyRetention": _millis(handler.idempotency_retention),
        "workflowCompletionRetention": _millis(workflow_retention),
        "enableLazyState": handler.enable_lazy_state,
        "ingressPrivate": handler.ingress_private,
    }
    fields.update(_retry(handler.retry_policy))
    return {k: v for k, v in fields.items() if v is not None}


def _retry(policy: RetryPolicy | None) -> dict[str, Any]:
    if policy is None:
        return {}
    factor = policy.exponentiation_factor
    return {
        "retryPolicyInitialInterval": _millis(policy.initial_interval),
        "retryPolicyMaxInterval": _millis(policy.max_interval),
        "retryPolicyMaxAttempts": policy.max_attempts,
        "retryPolicyExponentiationFactor": float(factor) if factor is not None else None,
        "retryPolicyOnMaxAttempts": (
            policy.on_max_attempts.upper() if policy.on_max_attempts is not None else None
        ),
    }


def _upto(fields: dict[str, Any], version: int) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if _SINCE[k] <= version}


def _millis(value: timedelta | None) -> int | None:
    return None if value is None else value // timedelta(milliseconds=1)
