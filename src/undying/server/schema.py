"""The schema registry: registered deployments, the services they expose, and their handlers.

Pure data and rules: registering a discovered manifest yields a new ``Schema`` (or an error); the
admin API persists it and renders it in Restate's JSON shapes. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeVar

import msgspec

from undying.protocol import manifest as mf
from undying.protocol.ids import DeploymentId

__all__ = [
    "DEFAULTS",
    "DEFAULT_RETRY_POLICY",
    "DeploymentInfo",
    "HandlerInfo",
    "RegistrationConflict",
    "RegistrationOutcome",
    "RetryPolicy",
    "Schema",
    "ServiceInfo",
    "format_duration",
]

ServiceType = Literal["Service", "VirtualObject", "Workflow"]
HandlerType = Literal["Exclusive", "Shared", "Workflow"]

_SERVICE_TYPES: Final[dict[str, ServiceType]] = {
    "SERVICE": "Service",
    "VIRTUAL_OBJECT": "VirtualObject",
    "WORKFLOW": "Workflow",
}
_HANDLER_TYPES: Final[dict[str, HandlerType]] = {
    "EXCLUSIVE": "Exclusive",
    "SHARED": "Shared",
    "WORKFLOW": "Workflow",
}


class _Defaults(msgspec.Struct, frozen=True):
    idempotency_retention_ms: int = 86_400_000
    journal_retention_ms: int = 86_400_000
    workflow_completion_retention_ms: int = 86_400_000
    inactivity_timeout_ms: int = 60_000
    abort_timeout_ms: int = 600_000
    retry_initial_interval_ms: int = 500
    retry_factor: float = 2.0
    retry_max_interval_ms: int = 60_000
    retry_max_attempts: int = 70
    retry_on_max_attempts: Literal["Pause", "Kill"] = "Pause"


#: Server-wide defaults; deployments override them per service and handler.
DEFAULTS: Final = _Defaults()


class RetryPolicy(msgspec.Struct, frozen=True):
    """The effective retry policy of a handler."""

    initial_interval_ms: int
    factor: float
    max_interval_ms: int
    max_attempts: int | None
    on_max_attempts: Literal["Pause", "Kill"]


#: The retry policy of handlers that set none, unless the server is configured otherwise.
DEFAULT_RETRY_POLICY: Final = RetryPolicy(
    DEFAULTS.retry_initial_interval_ms,
    DEFAULTS.retry_factor,
    DEFAULTS.retry_max_interval_ms,
    DEFAULTS.retry_max_attempts,
    DEFAULTS.retry_on_max_attempts,
)


class HandlerInfo(msgspec.Struct, frozen=True):
    """A registered handler with its manifest settings (None = inherit)."""

    name: str
    ty: HandlerType | None
    input: mf.InputPayload
    output: mf.OutputPayload
    documentation: str | None = None
    metadata: dict[str, str] | None = None
    inactivity_timeout_ms: int | None = None
    abort_timeout_ms: int | None = None
    journal_retention_ms: int | None = None
    idempotency_retention_ms: int | None = None
    workflow_completion_retention_ms: int | None = None
    enable_lazy_state: bool | None = None
    public: bool = True
    retry_initial_interval_ms: int | None = None
    retry_max_interval_ms: int | None = None
    retry_max_attempts: int | None = None
    retry_factor: float | None = None
    retry_on_max_attempts: Literal["Pause", "Kill"] | None = None


class ServiceInfo(msgspec.Struct, frozen=True):
    """A registered service: its latest revision and the deployment serving it."""

    name: str
    ty: ServiceType
    handlers: dict[str, HandlerInfo]
    deployment_id: str
    revision: int
    public: bool = True
    documentation: str | None = None
    metadata: dict[str, str] | None = None
    inactivity_timeout_ms: int | None = None
    abort_timeout_ms: int | None = None
    journal_retention_ms: int | None = None
    idempotency_retention_ms: int | None = None
    enable_lazy_state: bool | None = None
    retry_initial_interval_ms: int | None = None
    retry_max_interval_ms: int | None = None
    retry_max_attempts: int | None = None
    retry_factor: float | None = None
    retry_on_max_attempts: Literal["Pause", "Kill"] | None = None

    @property
    def keyed(self) -> bool:
        return self.ty != "Service"

    def handler_type(self, handler: HandlerInfo) -> HandlerType | None:
        """The effective handler type (defaults: Exclusive for objects, Workflow for workflows)."""
        if handler.ty is not None or self.ty == "Service":
            return handler.ty
        return "Exclusive" if self.ty == "VirtualObject" else "Workflow"

    def retry_policy(
        self, handler: HandlerInfo, defaults: RetryPolicy | None = None
    ) -> RetryPolicy:
        """The handler's policy: handler settings, else service settings, else ``defaults``."""
        d = defaults or DEFAULT_RETRY_POLICY
        return RetryPolicy(
            initial_interval_ms=_first(
                handler.retry_initial_interval_ms,
                self.retry_initial_interval_ms,
                default=d.initial_interval_ms,
            ),
            factor=_first(handler.retry_factor, self.retry_factor, default=d.factor),
            max_interval_ms=_first(
                handler.retry_max_interval_ms, self.retry_max_interval_ms, default=d.max_interval_ms
            ),
            max_attempts=_first(
                handler.retry_max_attempts, self.retry_max_attempts, default=d.max_attempts
            ),
            on_max_attempts=_first(
                handler.retry_on_max_attempts, self.retry_on_max_attempts, default=d.on_max_attempts
            ),
        )

    def effective_inactivity_timeout_ms(self, handler: HandlerInfo) -> int:
        return _first(
            handler.inactivity_timeout_ms,
            self.inactivity_timeout_ms,
            default=DEFAULTS.inactivity_timeout_ms,
        )

    def effective_abort_timeout_ms(self, handler: HandlerInfo) -> int:
        return _first(
            handler.abort_timeout_ms, self.abort_timeout_ms, default=DEFAULTS.abort_timeout_ms
        )

    def effective_journal_retention_ms(self, handler: HandlerInfo) -> int:
        return _first(
            handler.journal_retention_ms,
            self.journal_retention_ms,
            default=DEFAULTS.journal_retention_ms,
        )

    def completion_retention_ms(self, handler: HandlerInfo) -> int:
        """How long a completed invocation's result is kept (idempotency/workflow retention)."""
        if self.handler_type(handler) == "Workflow":
            return _first(
                handler.workflow_completion_retention_ms,
                default=DEFAULTS.workflow_completion_retention_ms,
            )
        return _first(
            handler.idempotency_retention_ms,
            self.idempotency_retention_ms,
            default=DEFAULTS.idempotency_retention_ms,
        )

    def lazy_state(self, handler: HandlerInfo) -> bool:
        if handler.enable_lazy_state is not None:
            return handler.enable_lazy_state
        return bool(self.enable_lazy_state)


class DeploymentInfo(msgspec.Struct, frozen=True):
    """A registered deployment."""

    id: str
    uri: str
    protocol_type: Literal["BidiStream", "RequestResponse"]
    http_version: Literal["HTTP/2.0", "HTTP/1.1"]
    created_at_ms: int
    min_protocol_version: int
    max_protocol_version: int
    sdk_version: str | None
    additional_headers: dict[str, str]
    services: dict[str, ServiceInfo]
    metadata: dict[str, str] | None = None

    @property
    def use_http_11(self) -> bool:
        return self.http_version == "HTTP/1.1"


class Schema(msgspec.Struct, frozen=True):
    """Everything registered: deployments by id, and the latest revision of each service."""

    deployments: dict[str, DeploymentInfo] = {}
    services: dict[str, ServiceInfo] = {}
    version: int = 0

    def deployment_for_uri(self, uri: str) -> DeploymentInfo | None:
        normalized = _normalize_uri(uri)
        for dep in self.deployments.values():
            if _normalize_uri(dep.uri) == normalized:
                return dep
        return None

    def resolve(self, service: str, handler: str) -> tuple[ServiceInfo, HandlerInfo] | None:
        svc = self.services.get(service)
        if svc is None:
            return None
        h = svc.handlers.get(handler)
        return None if h is None else (svc, h)


class RegistrationConflict(Exception):
    """A registration that breaks the rules (same URI without force, type change...)."""


@dataclass(frozen=True, slots=True)
class RegistrationOutcome:
    """The result of registering a manifest."""

    schema: Schema
    deployment: DeploymentInfo
    already_exists: bool


_T = TypeVar("_T")


def _first(*values: _T | None, default: _T) -> _T:
    """The first value that is not None, else ``default``."""
    for v in values:
        if v is not None:
            return v
    return default


def _normalize_uri(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def _handler_from_manifest(h: mf.Handler) -> HandlerInfo:
    return HandlerInfo(
        name=h.name,
        ty=_HANDLER_TYPES[h.ty] if h.ty is not None else None,
        input=h.input
        if h.input is not None
        else mf.InputPayload(required=False, content_type="*/*"),
        output=h.output
        if h.output is not None
        else mf.OutputPayload(content_type="application/json", set_content_type_if_empty=False),
        documentation=h.documentation,
        metadata=h.metadata,
        inactivity_timeout_ms=h.inactivity_timeout,
        abort_timeout_ms=h.abort_timeout,
        journal_retention_ms=h.journal_retention,
        idempotency_retention_ms=h.idempotency_retention,
        workflow_completion_retention_ms=h.workflow_completion_retention,
        enable_lazy_state=h.enable_lazy_state,
        public=not h.ingress_private,
        retry_initial_interval_ms=h.retry_policy_initial_interval,
        retry_max_interval_ms=h.retry_policy_max_interval,
        retry_max_attempts=h.retry_policy_max_attempts,
        retry_factor=h.retry_policy_exponentiation_factor,
        retry_on_max_attempts=_on_max(h.retry_policy_on_max_attempts),
    )


def _on_max(value: str | None) -> Literal["Pause", "Kill"] | None:
    if value is None:
        return None
    return "Pause" if value == "PAUSE" else "Kill"


def _service_from_manifest(s: mf.Service, deployment_id: str, revision: int) -> ServiceInfo:
    return ServiceInfo(
        name=s.name,
        ty=_SERVICE_TYPES[s.ty],
        handlers={h.name: _handler_from_manifest(h) for h in s.handlers},
        deployment_id=deployment_id,
        revision=revision,
        public=not s.ingress_private,
        documentation=s.documentation,
        metadata=s.metadata,
        inactivity_timeout_ms=s.inactivity_timeout,
        abort_timeout_ms=s.abort_timeout,
        journal_retention_ms=s.journal_retention,
        idempotency_retention_ms=s.idempotency_retention,
        enable_lazy_state=s.enable_lazy_state,
        retry_initial_interval_ms=s.retry_policy_initial_interval,
        retry_max_interval_ms=s.retry_policy_max_interval,
        retry_max_attempts=s.retry_policy_max_attempts,
        retry_factor=s.retry_policy_exponentiation_factor,
        retry_on_max_attempts=_on_max(s.retry_policy_on_max_attempts),
    )


def _same_services(a: dict[str, ServiceInfo], b: dict[str, ServiceInfo]) -> bool:
    def strip(s: ServiceInfo) -> ServiceInfo:
        return msgspec.structs.replace(s, deployment_id="", revision=0)

    return a.keys() == b.keys() and all(strip(a[k]) == strip(b[k]) for k in a)


def register(
    schema: Schema,
    *,
    uri: str,
    endpoint: mf.Endpoint,
    use_http_11: bool,
    sdk_version: str | None,
    additional_headers: dict[str, str],
    metadata: dict[str, str] | None,
    force: bool,
    breaking: bool,
    now_ms: int,
) -> RegistrationOutcome:
    """Register a discovered manifest; the caller persists ``outcome.schema`` unless dry-running.

    Rules: an identical re-registration of a URI is a no-op ('already exists'); a different
    manifest at a registered URI needs ``force``; changing a service's type needs ``breaking``
    (implied by ``force``). Services of a new deployment get the next revision.
    """
    existing = schema.deployment_for_uri(uri)
    dep_id = existing.id if existing is not None and force else str(DeploymentId.new())
    draft = {s.name: _service_from_manifest(s, dep_id, 0) for s in endpoint.services}
    if existing is not None:
        unchanged = (
            _same_services(existing.services, draft)
            and existing.use_http_11 == use_http_11
            and existing.additional_headers == additional_headers
        )
        if unchanged:
            return RegistrationOutcome(schema, existing, already_exists=True)
        if not force:
            raise RegistrationConflict(
                f"a deployment with the same uri '{uri}' already exists ({existing.id}); "
                "register with force to replace it"
            )
    services = dict(schema.services)
    new_services: dict[str, ServiceInfo] = {}
    for name, svc in draft.items():
        old = services.get(name)
        if old is not None and old.ty != svc.ty and not (breaking or force):
            raise RegistrationConflict(
                f"the service '{name}' changes type from {old.ty} to {svc.ty}; "
                "this is a breaking change, register with breaking to allow it"
            )
        same_as_old = (
            old is not None
            and old.deployment_id == dep_id
            and _same_services({name: old}, {name: svc})
        )
        revision = (
            old.revision
            if same_as_old and old is not None
            else (old.revision + 1 if old is not None else 1)
        )
        new_services[name] = msgspec.structs.replace(svc, revision=revision)
        services[name] = new_services[name]
    deployment = DeploymentInfo(
        id=dep_id,
        uri=uri,
        protocol_type="BidiStream"
        if endpoint.protocol_mode == "BIDI_STREAM"
        else "RequestResponse",
        http_version="HTTP/1.1" if use_http_11 else "HTTP/2.0",
        created_at_ms=existing.created_at_ms if existing is not None and force else now_ms,
        min_protocol_version=endpoint.min_protocol_version,
        max_protocol_version=endpoint.max_protocol_version,
        sdk_version=sdk_version,
        additional_headers=additional_headers,
        services=new_services,
        metadata=metadata,
    )
    deployments = dict(schema.deployments)
    deployments[dep_id] = deployment
    return RegistrationOutcome(
        Schema(deployments=deployments, services=services, version=schema.version + 1),
        deployment,
        already_exists=False,
    )


def format_duration(ms: int) -> str:
    """Durations the way Restate's admin API prints them: ``1d``, ``1m``, ``10m``, ``500ms``."""
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        n, ms = divmod(ms, size)
        if n:
            parts.append(f"{n}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return " ".join(parts)
