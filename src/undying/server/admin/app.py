"""The admin API (Restate-compatible, versions 2-4): deployments, services, invocations."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec

from undying._version import __version__
from undying.errors import DiscoveryError, InvalidIdError, ManifestError
from undying.protocol.ids import DeploymentId, InvocationId
from undying.server.admin.discovery import discover
from undying.server.admin.render import deployment_detail, deployment_summary, service_metadata
from undying.server.asgi import (
    BodyTooLarge,
    ClientGone,
    read_body,
    send_empty,
    send_json,
    send_raw,
    send_text,
)
from undying.server.http.types import Receive, Scope, Send
from undying.server.invoker.streams import Connector
from undying.server.metadata import MetadataStore
from undying.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from undying.server.schema import RegistrationConflict, RetryPolicy, register

__all__ = ["AdminApp", "InvocationControl"]

log = logging.getLogger("undying.admin")

_VERSION_PREFIX: Final = re.compile(r"^/v(\d+)(/.*)?$")
_MAX_BODY: Final = 10 * 1024 * 1024
_FEATURES: Final = {
    "protocol_v7": False,
    "vqueues": False,
    "invoker_yield": False,
    "scoped_virtual_objects": False,
    "unique_random_seeds": False,
    "kafka_scope": False,
}

#: ``control(invocation_id, command)`` -> HTTP status to answer (202/200/404/409...) and message.
InvocationControl = Callable[[InvocationId, str], Awaitable[tuple[int, str | None]]]
#: ``patch_state(service, key, new_state, version)``: replace an object's K/V state if it still
#: has ``version`` (None: unconditionally); durable on return.
StatePatcher = Callable[[str, str, dict[bytes, bytes], str | None], Awaitable[None]]


class _StateRequest(msgspec.Struct):
    object_key: str
    new_state: dict[str, list[int] | str]
    version: str | None = None


_STATE: Final = msgspec.json.Decoder(_StateRequest)


class _RegisterRequest(msgspec.Struct):
    uri: str
    additional_headers: dict[str, str] | None = None
    use_http_11: bool = False
    breaking: bool = False
    force: bool | None = None
    dry_run: bool = False
    metadata: dict[str, str] | None = None


_REGISTER: Final = msgspec.json.Decoder(_RegisterRequest)


class _Error(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AdminApp:
    """ASGI app of the admin API."""

    def __init__(
        self,
        metadata: MetadataStore,
        connector: Connector,
        *,
        ingress_url: Callable[[], str],
        now_ms: Callable[[], int],
        control: InvocationControl | None = None,
        patch_state: StatePatcher | None = None,
        default_retry: RetryPolicy | None = None,
        cluster_name: str = "undying",
        extra: Callable[[str, str, Scope, Receive, Send], Awaitable[bool]] | None = None,
        metrics: Callable[[], bytes] | None = None,
        ui: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None,
    ) -> None:
        self._meta = metadata
        self._connector = connector
        self._ingress_url = ingress_url
        self._now_ms = now_ms
        self._control = control
        self._patch_state = patch_state
        self._retry = default_retry
        self._cluster_name = cluster_name
        self._extra = extra
        self._metrics = metrics
        self._ui = ui  # the web UI: an ASGI app serving /ui and below
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if self._ui is not None and (path == "/ui" or path.startswith("/ui/")):
            await self._ui(scope, receive, send)
            return
        m = _VERSION_PREFIX.match(path)
        if m is not None:
            version = int(m.group(1))
            if version < 2:
                await send_text(
                    send,
                    400,
                    f"Unsupported Admin API version V{version}. "
                    "This server supports versions between V2 and V4.",
                )
                return
            if version > 4:
                await send_empty(send, 404)
                return
            path = m.group(2) or "/"
        try:
            await self._route(method, path, scope, receive, send)
        except _Error as e:
            await send_json(send, e.status, {"message": e.message, "restate_code": None})
        except BodyTooLarge:
            await send_json(send, 413, {"message": "request body too large", "restate_code": None})
        except ClientGone:
            return

    async def _route(
        self, method: str, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        parts = [p for p in path.split("/") if p]
        if not parts:
            await send_raw(send, 308, b"", [("location", "/ui/")])
            return
        head = parts[0]
        if head == "version" and len(parts) == 1:
            _only(method, "GET")
            await send_json(send, 200, self._version())
        elif head == "health" and len(parts) == 1:
            await send_empty(send, 200)
        elif head == "cluster-health" and len(parts) == 1:
            await send_json(
                send,
                200,
                {"cluster_name": self._cluster_name, "metadata_cluster_health": {"members": [1]}},
            )
        elif head == "deployments":
            await self._deployments(method, parts[1:], scope, receive, send)
        elif head == "services" and len(parts) == 3 and parts[2] == "state":
            _only(method, "POST")
            await self._state(parts[1], scope, receive, send)
        elif head == "services":
            await self._services(method, parts[1:], send)
        elif head == "invocations" and len(parts) in (2, 3):
            await self._invocations(method, parts[1:], scope, send)
        elif head == "subscriptions" and len(parts) == 1:
            await send_json(send, 200, {"subscriptions": []})
        elif head == "kafka-clusters" and len(parts) == 1:
            await send_json(send, 200, {"clusters": []})
        elif head == "metrics" and len(parts) == 1 and self._metrics is not None:
            _only(method, "GET")
            await send_raw(send, 200, self._metrics(), content_type=METRICS_CONTENT_TYPE)
        elif self._extra is not None and await self._extra(method, path, scope, receive, send):
            return
        else:
            raise _Error(404, f"no route for {method} {path}")

    def _version(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "min_admin_api_version": 2,
            "max_admin_api_version": 4,
            "ingress_endpoint": self._ingress_url(),
            "features": _FEATURES,
        }

    # ---- deployments ----------------------------------------------------------------------

    async def _deployments(
        self, method: str, rest: list[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        schema = self._meta.schema
        if not rest:
            if method == "GET":
                deps = sorted(schema.deployments.values(), key=lambda d: d.created_at_ms)
                await send_json(
                    send,
                    200,
                    {"deployments": [deployment_summary(d, schema.services) for d in deps]},
                )
                return
            _only(method, "POST")
            await self._register(scope, receive, send)
            return
        if len(rest) != 1:
            raise _Error(404, "no such route")
        dep_id = rest[0]
        try:
            DeploymentId.parse(dep_id)
        except InvalidIdError as e:
            reason = str(e).split(": ", 1)[-1]
            await send_text(
                send, 400, f"Invalid URL: Cannot parse `deployment` with value `{dep_id}`: {reason}"
            )
            return
        dep = schema.deployments.get(dep_id)
        if dep is None:
            raise _Error(404, f"The requested deployment '{dep_id}' does not exist")
        if method == "GET":
            await send_json(send, 200, deployment_detail(dep, self._retry))
        elif method == "DELETE":
            await self._delete_deployment(dep_id, scope, send)
        else:
            raise _Error(405, f"method {method} not allowed")

    async def _delete_deployment(self, dep_id: str, scope: Scope, send: Send) -> None:
        query = scope.get("query_string", b"").decode()
        if "force=true" not in query:
            raise _Error(
                501, "Deleting a deployment without force is not supported; use force=true"
            )
        async with self._lock:
            schema = self._meta.schema
            deployments = dict(schema.deployments)
            deployments.pop(dep_id, None)
            services = {n: s for n, s in schema.services.items() if s.deployment_id != dep_id}
            new = msgspec.structs.replace(
                schema, deployments=deployments, services=services, version=schema.version + 1
            )
            await self._meta.update(schema.version, new)
        await send_empty(send, 202)

    async def _register(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(scope, receive, _MAX_BODY)
        try:
            req = _REGISTER.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise _Error(400, f"Invalid register deployment request: {e}") from None
        if not re.match(r"^https?://", req.uri):
            raise _Error(400, f"The uri '{req.uri}' is not a valid http(s) uri")
        headers = dict(req.additional_headers or {})
        try:
            endpoint, sdk = await discover(
                self._connector,
                req.uri,
                use_http_11=req.use_http_11,
                additional_headers=headers,
                cluster_name=self._cluster_name,
            )
        except (DiscoveryError, ManifestError) as e:
            raise _Error(400, f"bad deployment '{req.uri}': {e}") from None
        force = True if req.force is None else req.force
        async with self._lock:
            schema = self._meta.schema
            try:
                outcome = register(
                    schema,
                    uri=req.uri,
                    endpoint=endpoint,
                    use_http_11=req.use_http_11,
                    sdk_version=sdk,
                    additional_headers=headers,
                    metadata=req.metadata,
                    force=force,
                    breaking=req.breaking,
                    now_ms=self._now_ms(),
                )
            except RegistrationConflict as e:
                raise _Error(409, str(e)) from None
            if not req.dry_run and not outcome.already_exists:
                await self._meta.update(schema.version, outcome.schema)
        dep = outcome.deployment
        payload = {
            "id": dep.id,
            "services": [service_metadata(s, self._retry) for s in dep.services.values()],
            "min_protocol_version": dep.min_protocol_version,
            "max_protocol_version": dep.max_protocol_version,
            "sdk_version": dep.sdk_version,
        }
        status = 200 if outcome.already_exists else 201
        await send_json(send, status, payload, [("location", f"deployments/{dep.id}")])

    # ---- services ----------------------------------------------------------------------------

    async def _services(self, method: str, rest: list[str], send: Send) -> None:
        _only(method, "GET")
        schema = self._meta.schema
        if not rest:
            await send_json(
                send,
                200,
                {"services": [service_metadata(s, self._retry) for s in schema.services.values()]},
            )
            return
        svc = schema.services.get(rest[0])
        if svc is None:
            raise _Error(404, f"The requested service '{rest[0]}' does not exist")
        meta = service_metadata(svc, self._retry)
        if len(rest) == 1:
            await send_json(send, 200, meta)
        elif rest[1] == "handlers" and len(rest) == 2:
            await send_json(send, 200, {"handlers": meta["handlers"]})
        elif rest[1] == "handlers" and len(rest) == 3:
            for h in meta["handlers"]:
                if h["name"] == rest[2]:
                    await send_json(send, 200, h)
                    return
            raise _Error(
                404, f"The requested handler '{rest[2]}' on service '{rest[0]}' does not exist"
            )
        else:
            raise _Error(404, "no such route")

    async def _state(self, service: str, scope: Scope, receive: Receive, send: Send) -> None:
        svc = self._meta.schema.services.get(service)
        if svc is None:
            raise _Error(404, f"The requested service '{service}' does not exist")
        if not svc.keyed:
            raise _Error(400, f"The service '{service}' is not a virtual object or a workflow")
        if self._patch_state is None:
            raise _Error(404, "no such route")
        try:
            req = _STATE.decode(await read_body(scope, receive, _MAX_BODY))
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise _Error(400, f"Invalid state request: {e}") from None
        entries: dict[bytes, bytes] = {}
        for k, v in req.new_state.items():
            try:
                entries[k.encode()] = v.encode() if isinstance(v, str) else bytes(v)
            except ValueError:
                raise _Error(400, f"the value of state key '{k}' is not a byte array") from None
        await self._patch_state(service, req.object_key, entries, req.version)
        await send_empty(send, 202)

    # ---- invocations ------------------------------------------------------------------------

    async def _invocations(self, method: str, rest: list[str], scope: Scope, send: Send) -> None:
        if self._control is None:
            raise _Error(404, "no such route")
        raw_id = rest[0]
        try:
            inv = InvocationId.parse(raw_id)
        except InvalidIdError as e:
            reason = str(e).split(": ", 1)[-1]
            await send_text(
                send,
                400,
                f"Invalid URL: Cannot parse `invocation_id` with value `{raw_id}`: {reason}",
            )
            return
        if len(rest) == 2:
            _only(method, "PATCH")
            command = rest[1]
            if command not in ("cancel", "kill", "purge", "pause", "resume"):
                raise _Error(404, "no such route")
        else:
            _only(method, "DELETE")
            query = scope.get("query_string", b"").decode()
            mode = "cancel"
            for part in query.split("&"):
                if part.startswith("mode="):
                    mode = part[5:]
            if mode not in ("cancel", "kill", "purge"):
                raise _Error(400, f"unknown mode '{mode}'")
            command = mode
        status, message = await self._control(inv, command)
        if message is not None:
            raise _Error(status, message)
        await send_empty(send, status)


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise _Error(405, f"method {method} not allowed")
