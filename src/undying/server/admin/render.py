"""The admin API's JSON shapes (Restate's ServiceMetadata, HandlerMetadata, deployments)."""

from __future__ import annotations

import datetime
from typing import Any

from undying.protocol import manifest as mf
from undying.server.schema import (
    DEFAULTS,
    DeploymentInfo,
    HandlerInfo,
    RetryPolicy,
    ServiceInfo,
    format_duration,
)

__all__ = [
    "deployment_detail",
    "deployment_summary",
    "handler_metadata",
    "iso_timestamp",
    "service_metadata",
]


def iso_timestamp(ms: int) -> str:
    """``2026-11-24T04:58:35.582000000Z``: the timestamp format of the deployments API."""
    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ms % 1000) * 1_000_000:09d}Z"


def _describe_payload(content_type: str | None, json_schema: Any) -> str:
    if content_type is None:
        return "none"
    if isinstance(json_schema, dict):
        title = json_schema.get("title")
        if isinstance(title, str):
            return f"JSON {title}"
        ty = json_schema.get("type")
        if isinstance(ty, str):
            return f"JSON {ty}"
    # As restate-server: a schema without a title or a single type (``anyOf``...) shows the
    # content type.
    return content_type


def _input_description(payload: mf.InputPayload) -> str:
    return _describe_payload(payload.content_type, payload.json_schema)


def _output_description(payload: mf.OutputPayload) -> str:
    return _describe_payload(payload.content_type, payload.json_schema)


def handler_metadata(service: ServiceInfo, h: HandlerInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"name": h.name}
    ty = service.handler_type(h) if service.ty != "Service" else None
    if ty is not None:
        out["ty"] = ty
    if h.documentation is not None:
        out["documentation"] = h.documentation
    if h.metadata:
        out["metadata"] = h.metadata
    out["public"] = h.public
    out["input_description"] = _input_description(h.input)
    out["output_description"] = _output_description(h.output)
    if h.input.json_schema is not None:
        out["input_json_schema"] = h.input.json_schema
    if h.output.json_schema is not None:
        out["output_json_schema"] = h.output.json_schema
    for name, value in (
        ("idempotency_retention", h.idempotency_retention_ms),
        ("journal_retention", h.journal_retention_ms),
        ("workflow_completion_retention", h.workflow_completion_retention_ms),
        ("inactivity_timeout", h.inactivity_timeout_ms),
        ("abort_timeout", h.abort_timeout_ms),
    ):
        if value is not None:
            out[name] = format_duration(value)
    if h.enable_lazy_state is not None:
        out["enable_lazy_state"] = h.enable_lazy_state
    retry: dict[str, Any] = {}
    if h.retry_initial_interval_ms is not None:
        retry["initial_interval"] = format_duration(h.retry_initial_interval_ms)
    if h.retry_factor is not None:
        retry["exponentiation_factor"] = h.retry_factor
    retry["max_attempts"] = h.retry_max_attempts
    if h.retry_max_interval_ms is not None:
        retry["max_interval"] = format_duration(h.retry_max_interval_ms)
    if h.retry_on_max_attempts is not None:
        retry["on_max_attempts"] = h.retry_on_max_attempts
    out["retry_policy"] = retry
    return out


def service_metadata(s: ServiceInfo, retry: RetryPolicy | None = None) -> dict[str, Any]:
    d = DEFAULTS
    policy = s.retry_policy(HandlerInfo("", None, mf.InputPayload(), mf.OutputPayload()), retry)
    out: dict[str, Any] = {
        "name": s.name,
        "ty": s.ty,
        "handlers": [handler_metadata(s, h) for h in s.handlers.values()],
    }
    if s.documentation is not None:
        out["documentation"] = s.documentation
    if s.metadata:
        out["metadata"] = s.metadata
    out["deployment_id"] = s.deployment_id
    out["revision"] = s.revision
    out["public"] = s.public
    out["idempotency_retention"] = format_duration(
        s.idempotency_retention_ms
        if s.idempotency_retention_ms is not None
        else d.idempotency_retention_ms
    )
    if s.ty == "Workflow":
        wf = next((h for h in s.handlers.values() if s.handler_type(h) == "Workflow"), None)
        ms = wf.workflow_completion_retention_ms if wf is not None else None
        out["workflow_completion_retention"] = format_duration(
            ms if ms is not None else d.workflow_completion_retention_ms
        )
    out["journal_retention"] = format_duration(
        s.journal_retention_ms if s.journal_retention_ms is not None else d.journal_retention_ms
    )
    out["inactivity_timeout"] = format_duration(
        s.inactivity_timeout_ms if s.inactivity_timeout_ms is not None else d.inactivity_timeout_ms
    )
    out["abort_timeout"] = format_duration(
        s.abort_timeout_ms if s.abort_timeout_ms is not None else d.abort_timeout_ms
    )
    out["enable_lazy_state"] = bool(s.enable_lazy_state)
    out["retry_policy"] = {
        "initial_interval": format_duration(policy.initial_interval_ms),
        "exponentiation_factor": policy.factor,
        "max_attempts": policy.max_attempts,
        "max_interval": format_duration(policy.max_interval_ms),
        "on_max_attempts": policy.on_max_attempts,
    }
    return out


def _deployment_common(dep: DeploymentInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": dep.id,
        "uri": dep.uri,
        "protocol_type": dep.protocol_type,
        "http_version": dep.http_version,
        "created_at": iso_timestamp(dep.created_at_ms),
        "min_protocol_version": dep.min_protocol_version,
        "max_protocol_version": dep.max_protocol_version,
        "sdk_version": dep.sdk_version,
    }
    if dep.additional_headers:
        out["additional_headers"] = dep.additional_headers
    if dep.metadata:
        out["metadata"] = dep.metadata
    return out


def deployment_summary(dep: DeploymentInfo, current: dict[str, ServiceInfo]) -> dict[str, Any]:
    """A deployment in ``GET /deployments``: services as name + revision pairs."""
    out = _deployment_common(dep)
    out["services"] = [{"name": s.name, "revision": s.revision} for s in dep.services.values()]
    return out


def deployment_detail(dep: DeploymentInfo, retry: RetryPolicy | None = None) -> dict[str, Any]:
    """``GET /deployments/{id}``: services as full ServiceMetadata."""
    out = _deployment_common(dep)
    out["services"] = [service_metadata(s, retry) for s in dep.services.values()]
    return out
