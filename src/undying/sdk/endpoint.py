"""The SDK endpoint: an ASGI app serving discovery and invocations of a set of services.

Routes (under any mount prefix): ``GET …/discover``, ``POST …/invoke/{service}/{handler}``,
``GET …/health``. Over HTTP/2 an invocation is a bidirectional stream (the handler runs while
journal entries keep arriving); over HTTP/1.1 it is request/response: the whole journal comes
in, the handler runs until it needs something new, and the answer goes out in one body.

Run it with any ASGI server that speaks HTTP/2 cleartext (hypercorn, granian) for bidi
streaming, or HTTP/1.1 (uvicorn too) with ``--use-http1.1`` registration.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from concurrent.futures import Executor
from typing import Any, Final

from undying._version import __version__
from undying.errors import ProtocolError, TerminalError, UnsupportedVersion
from undying.sdk.context import Request, context_class, parse_headers
from undying.sdk.definitions import Handler, Service, VirtualObject, Workflow
from undying.sdk.discovery import manifest, negotiate_manifest_version
from undying.sdk.identity import IdentityVerifier
from undying.sdk.invocation import Invocation
from undying.sdk.vm import Machine, content_type_version

__all__ = ["Endpoint", "app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SERVER_HEADER: Final = f"undying-sdk-python/{__version__}".encode()
_log = logging.getLogger("undying.sdk")


class Endpoint:
    """The ASGI app of a set of services (build it with :func:`app`)."""

    def __init__(
        self,
        services: Sequence[Service | VirtualObject | Workflow],
        *,
        identity_keys: Sequence[str] = (),
        executor: Executor | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._services = list(services)
        self._handlers: dict[tuple[str, str], Handler[Any, Any]] = {}
        for service in self._services:
            for handler in service.handlers.values():
                self._handlers[(service.name, handler.name)] = handler
        # build both manifests now: a bad definition fails here, not at discovery
        self._manifests: dict[tuple[str, int], bytes] = {}
        for mode in ("BIDI_STREAM", "REQUEST_RESPONSE"):
            for version in (2, 3, 4):
                doc = manifest(self._services, protocol_mode=mode, version=version)
                self._manifests[(mode, version)] = json.dumps(doc).encode()
        self._verifier = IdentityVerifier(identity_keys) if identity_keys else None
        self._executor = executor
        self._clock = clock or time.time

    @property
    def services(self) -> list[Service | VirtualObject | Workflow]:
        """The services this endpoint serves."""
        return list(self._services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if self._verifier is not None:
            suffix = _route_suffix(path)
            try:
                self._verifier.verify(_headers(scope), suffix or path)
            except Exception as exc:
                await _respond(send, 401, str(exc).encode())
                return
        parts = path.rstrip("/").split("/")
        if parts[-1] == "discover":
            await self._discover(scope, send)
        elif len(parts) >= 3 and parts[-3] == "invoke":
            await self._invoke(scope, receive, send, parts[-2], parts[-1])
        elif parts[-1] == "health":
            await _respond(send, 200, b"OK")
        else:
            await _respond(send, 404, b"not found")

    async def _discover(self, scope: Scope, send: Send) -> None:
        accept = _headers(scope).get("accept")
        version = negotiate_manifest_version(accept)
        if version is None:
            await _respond(send, 415, f"unsupported manifest versions in accept: {accept}".encode())
            return
        mode = "BIDI_STREAM" if scope.get("http_version") == "2" else "REQUEST_RESPONSE"
        body = self._manifests[(mode, version)]
        content_type = f"application/vnd.restate.endpointmanifest.v{version}+json"
        await _respond(send, 200, body, content_type)

    async def _invoke(
        self, scope: Scope, receive: Receive, send: Send, service: str, name: str
    ) -> None:
        headers = _headers(scope)
        content_type = headers.get("content-type")
        try:
            version = content_type_version(content_type)
        except UnsupportedVersion as exc:
            await _respond(send, 415, str(exc).encode())
            return
        handler = self._handlers.get((service, name))
        if handler is None:
            await _respond(send, 404, f"no handler {service}/{name} here".encode())
            return
        bidi = scope.get("http_version") == "2"
        machine = Machine(version)
        body_done = False

        async def read() -> bytes | None:
            nonlocal body_done
            while not body_done:
                message = await receive()
                if message["type"] == "http.disconnect":
                    body_done = True
                    return None
                more = bool(message.get("more_body", False))
                body_done = not more
                chunk: bytes = message.get("body", b"")
                if chunk:
                    return chunk
            return None

        try:
            while not machine.ready_to_execute:
                chunk = await read()
                if chunk is None:
                    machine.close_input()
                    break
                machine.feed(chunk)
        except ProtocolError as exc:
            await _respond(send, 400 if exc.code == 571 else 500, str(exc).encode())
            return
        response_headers = [
            (b"content-type", (content_type or "").encode()),
            (b"x-restate-server", SERVER_HEADER),
        ]
        out: list[bytes] = []
        if bidi:
            await send({"type": "http.response.start", "status": 200, "headers": response_headers})

            async def write(data: bytes) -> None:
                await send({"type": "http.response.body", "body": data, "more_body": True})

        else:

            async def write(data: bytes) -> None:
                out.append(data)

        async def receive_more() -> bytes | None:
            if not bidi or body_done:
                return None
            return await read()

        if not bidi and not body_done:
            # request/response: the request body is complete before the handler runs
            rest = await read()
            while rest is not None:
                machine.feed(rest)
                rest = await read()
        if not bidi or body_done:
            if not machine.input_closed:
                machine.close_input()
        invocation = Invocation(machine, receive_more, write, self._executor, self._clock)
        await invocation.run_handler(_bind(handler, invocation), handler.output_serde.serialize)
        if bidi:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            body = b"".join(out)
            response_headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": response_headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})


def _bind(handler: Handler[Any, Any], invocation: Invocation) -> Callable[[], Awaitable[Any]]:
    machine = invocation.machine
    start = machine.start
    entry = machine.input
    assert start is not None and entry is not None
    request = Request(
        id=start.debug_id,
        headers=parse_headers([(h.key, h.value) for h in entry.headers]),
        body=entry.value.content,
        attempt=start.retry_count + 1,
        key=start.key,
    )
    ctx = context_class(handler.service_kind, handler.kind)(invocation, request)

    async def call() -> Any:
        if not handler.has_input:
            return await handler.fn(ctx)
        try:
            arg = handler.input_serde.deserialize(request.body)
        except Exception as exc:
            raise TerminalError(f"cannot decode the input of {handler.name}: {exc}", 400) from exc
        return await handler.fn(ctx, arg)

    return call


def _headers(scope: Scope) -> dict[str, str]:
    raw: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}


def _route_suffix(path: str) -> str | None:
    for marker in ("/invoke/", "/discover"):
        at = path.rfind(marker)
        if at >= 0:
            return path[at:]
    return None


async def _respond(
    send: Send, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"x-restate-server", SERVER_HEADER),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def app(
    services: Sequence[Service | VirtualObject | Workflow],
    *,
    identity_keys: Sequence[str] = (),
    executor: Executor | None = None,
    clock: Callable[[], float] | None = None,
) -> Endpoint:
    """The ASGI app serving ``services``.

    Args:
        services: the services, virtual objects and workflows to serve.
        identity_keys: public keys (``publickeyv1_…``) whose signed requests are accepted; when
            given, unsigned requests are refused with 401.
        executor: where synchronous ``ctx.run`` closures run (default: the loop's thread pool).
        clock: the current time in seconds since the epoch, for ``ctx.sleep``, delayed sends
            and ``ctx.time`` (default ``time.time``; :mod:`undying.testing` passes a virtual one).
    """
    return Endpoint(services, identity_keys=identity_keys, executor=executor, clock=clock)
