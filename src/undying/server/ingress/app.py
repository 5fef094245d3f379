"""The ingress (Restate-compatible HTTP API for clients): invoke handlers, send, attach."""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Final

from undying.errors import InvalidIdError
from undying.protocol.ids import AwakeableId, InvocationId, new_ulid
from undying.server.asgi import BodyTooLarge, ClientGone, header, read_body, send_json, send_raw
from undying.server.http.types import Receive, Scope, Send
from undying.server.ingress.waiters import Waiters
from undying.server.metadata import MetadataStore
from undying.server.partition import actions as act
from undying.server.partition.processor import PartitionProcessor
from undying.server.partition.records import (
    AttachRequest,
    IngressSink,
    Invoke,
    Result,
    Signal,
    Source,
    Target,
)
from undying.server.routing import invocation_id_for, workflow_run_id
from undying.server.schema import HandlerInfo, ServiceInfo

__all__ = ["IngressApp", "parse_delay"]

log = logging.getLogger("undying.ingress")

_CORS: Final = [
    ("vary", "origin, access-control-request-method, access-control-request-headers"),
    ("access-control-allow-credentials", "true"),
]
_DROP_HEADERS: Final = frozenset(
    {
        b"host",
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"upgrade",
        b"idempotency-key",
        b"expect",
    }
)
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_SERVICE_TY: Final = {
    "Service": "service",
    "VirtualObject": "virtual_object",
    "Workflow": "workflow",
}
_HANDLER_TY: Final = {"Exclusive": "exclusive", "Shared": "shared", "Workflow": "workflow"}


class _Reject(Exception):
    def __init__(self, status: int, message: str, *, inv: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.inv = inv


def parse_delay(text: str) -> int:
    """Milliseconds of ``2s``, ``500ms``, ``1m 30s``, ``1h``, ``1d`` or ISO 8601 ``PT2S``."""
    t = text.strip()
    if t.upper().startswith("P"):
        m = re.fullmatch(
            r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", t.upper()
        )
        if m is None:
            raise ValueError(f"cannot parse the duration {text!r}")
        d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
        return int(((d * 24 + h) * 60 + mi) * 60_000 + s * 1000)
    total = 0.0
    pos = 0
    for m in _DURATION.finditer(t):
        if t[pos : m.start()].strip():
            raise ValueError(f"cannot parse the duration {text!r}")
        n, unit = float(m.group(1)), m.group(2)
        total += n * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[unit]
        pos = m.end()
    if pos == 0 or t[pos:].strip():
        raise ValueError(f"cannot parse the duration {text!r}")
    return int(total)


async def _disconnected(receive: Receive) -> None:
    """Return when the client disconnects (request body messages are skipped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _iso_expiry(ms: int) -> str:
    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+00:00"


def _iso_execution(ms: int) -> str:
    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ms % 1000) * 1_000_000:09d}Z"


def _content_type_matches(pattern: str, actual: str) -> bool:
    base = actual.split(";", 1)[0].strip().lower()
    for alt in pattern.split(","):
        p = alt.split(";", 1)[0].strip().lower()
        if p in ("*/*", base):
            return True
        if p.endswith("/*") and base.startswith(p[:-1]):
            return True
    return False


class IngressApp:
    """ASGI app of the ingress."""

    def __init__(
        self,
        metadata: MetadataStore,
        route: Callable[[int], PartitionProcessor],
        waiters: Waiters,
        *,
        now_ms: Callable[[], int],
        max_body_size: int | None = None,
    ) -> None:
        self._meta = metadata
        self._route = route
        self._waiters = waiters
        self._now_ms = now_ms
        self._max_body = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._handle(scope, receive, send)
        except _Reject as e:
            headers = [("x-restate-error-source", "ingress")]
            if e.inv is not None:
                headers.insert(0, ("x-restate-id", e.inv))
            await send_json(
                send,
                e.status,
                {"code": e.status, "message": e.message, "source": "ingress"},
                headers + _CORS,
            )
        except ClientGone:
            return

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        segments = [urllib.parse.unquote(s) for s in raw.decode("latin-1").split("/")[1:]]
        if segments and segments[-1] == "":
            segments.pop()
        if not segments:
            raise _Reject(404, "not found")
        if segments[0] == "restate":
            await self._restate_api(segments[1:], scope, receive, send)
            return
        await self._invoke(segments, scope, receive, send)

    async def _restate_api(
        self, rest: list[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        if rest == ["health"]:
            names = list(self._meta.schema.services)
            await send_json(send, 200, {"services": names}, _CORS)
            return
        if len(rest) == 3 and rest[0] == "awakeables" and rest[2] in ("resolve", "reject"):
            await self._awakeable(rest[1], rest[2] == "resolve", scope, receive, send)
            return
        if rest and rest[-1] in ("attach", "output") and len(rest) >= 3:
            target = self._attach_target(rest[:-1])
            by_key = rest[0] == "invocation" and len(rest) > 3
            await self._attach(target, rest[-1], scope, receive, send, by_key=by_key)
            return
        raise _Reject(404, "not found")

    # ---- attach, output, awakeables ---------------------------------------------------------

    def _attach_target(self, path: list[str]) -> InvocationId:
        kind, args = path[0], path[1:]
        if kind == "invocation" and len(args) == 1:
            try:
                return InvocationId.parse(args[0])
            except InvalidIdError as e:
                raise _Reject(400, str(e)) from None
        if kind == "invocation" and len(args) in (3, 4):
            service, *key, handler, idem = args
            return invocation_id_for(
                service, handler, key[0] if key else None, idempotency_key=idem
            )
        if kind == "workflow" and len(args) == 2:
            return workflow_run_id(args[0], args[1])
        raise _Reject(404, "not found")

    async def _attach(
        self,
        target: InvocationId,
        op: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        by_key: bool = False,
    ) -> None:
        if scope["method"] not in ("GET", "POST"):
            raise _Reject(405, f"method {scope['method']} not allowed")
        request_id = secrets.token_hex(8)
        waiter = self._waiters.register(request_id)
        record = AttachRequest(
            target.to_bytes(), "attach" if op == "attach" else "output", IngressSink(request_id)
        )
        try:
            self._route(target.partition_key).propose(record)
            response = await self._wait(waiter, scope, receive)
        finally:
            self._waiters.discard(request_id)
        if response is None:
            return
        if response.kind == "not_found":
            if by_key and op == "attach":
                # Restate answers this one from the invocation side, with the derived id.
                await send_json(
                    send,
                    404,
                    {"code": 404, "message": "not found", "source": "invocation"},
                    [
                        ("x-restate-id", str(target)),
                        ("x-restate-error-source", "invocation"),
                        *_CORS,
                    ],
                )
                return
            raise _Reject(404, "invocation not found")
        if response.kind == "not_ready":
            raise _Reject(470, "the invocation exists but has not completed yet")
        await self._answer(response, str(target), self._handler_of(response), send, None)

    def _handler_of(self, r: act.Respond) -> HandlerInfo | None:
        if r.target is None:
            return None
        found = self._meta.schema.resolve(r.target.service, r.target.handler)
        return None if found is None else found[1]

    async def _awakeable(
        self, text: str, resolve: bool, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if scope["method"] != "POST":
            raise _Reject(405, f"method {scope['method']} not allowed")
        try:
            awk = AwakeableId.parse(text)
        except InvalidIdError as e:
            raise _Reject(400, str(e)) from None
        try:
            body = await read_body(scope, receive, self._max_body)
        except BodyTooLarge:
            raise _Reject(
                413, f"the request body is larger than the limit of {self._max_body} bytes"
            ) from None
        target = awk.invocation_id
        if resolve:
            signal = Signal(
                target.to_bytes(), index=awk.signal_index, kind="value", result=Result(value=body)
            )
        else:
            message = body.decode("utf-8", "replace")
            signal = Signal(
                target.to_bytes(),
                index=awk.signal_index,
                kind="failure",
                result=Result(code=500, message=message),
            )
        await self._route(target.partition_key).propose(signal)
        await send_raw(send, 202, b"", _CORS)

    # ---- invoke -------------------------------------------------------------------------------

    def _resolve(self, segments: list[str]) -> tuple[ServiceInfo, HandlerInfo, str | None, bool]:
        schema = self._meta.schema
        name = segments[0]
        svc = schema.services.get(name)
        if svc is None:
            raise _Reject(
                404,
                f"service '{name}' not found, make sure to register the service before calling it.",
            )
        rest = segments[1:]
        is_send = bool(rest) and rest[-1] == "send"
        if is_send:
            rest = rest[:-1]
        key: str | None = None
        if svc.keyed:
            if len(rest) != 2:
                raise _Reject(
                    400,
                    f"the service '{name}' is keyed: invoke it as /{name}/{{key}}/{{handler}}",
                )
            key, handler_name = rest
        else:
            if len(rest) != 1:
                raise _Reject(404, "not found")
            handler_name = rest[0]
        handler = svc.handlers.get(handler_name)
        if handler is None:
            raise _Reject(
                404,
                f"the service '{name}' exists, but the handler '{handler_name}' was not found, "
                "check that the handler exists in the latest registered service version.",
            )
        if not (svc.public and handler.public):
            raise _Reject(400, f"the handler '{name}/{handler_name}' is private")
        return svc, handler, key, is_send

    async def _invoke(
        self, segments: list[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        svc, handler, key, is_send = self._resolve(segments)
        method = scope["method"]
        if method not in ("POST", "GET"):
            raise _Reject(405, f"method {method} not allowed")
        try:
            body = await read_body(scope, receive, self._max_body)
        except BodyTooLarge:
            raise _Reject(
                413, f"the request body is larger than the limit of {self._max_body} bytes"
            ) from None
        self._validate_input(scope, handler, body)
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        delay_ms = None
        if "delay" in query:
            if not is_send:
                raise _Reject(400, "delay is only allowed with /send")
            try:
                delay_ms = parse_delay(query["delay"][0])
            except ValueError as e:
                raise _Reject(400, str(e)) from None
        idem = header(scope, b"idempotency-key")
        handler_ty = svc.handler_type(handler)
        fresh = idem is None and handler_ty != "Workflow"
        if fresh:
            # Like Restate, every ingress invocation gets a key (a ULID) it can be found by.
            idem = new_ulid()
        target = Target(
            svc.name,
            handler.name,
            key,
            _SERVICE_TY[svc.ty],  # type: ignore[arg-type]
            _HANDLER_TY[handler_ty] if handler_ty else None,  # type: ignore[arg-type]
        )
        inv = invocation_id_for(
            svc.name,
            handler.name,
            key,
            idempotency_key=idem,
            workflow_run=handler_ty == "Workflow",
        )
        headers = [
            ("x-restate-ingress-path", scope["path"]),
            *(
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in scope["headers"]
                if k not in _DROP_HEADERS
            ),
        ]
        request_id = secrets.token_hex(8)
        now = self._now_ms()
        execute_at = now + delay_ms if delay_ms else None
        record = Invoke(
            id=inv.to_bytes(),
            target=target,
            body=body,
            headers=headers,
            source=Source("ingress"),
            idempotency_key=idem,
            sink=IngressSink(request_id),
            execute_at=execute_at,
            completion_retention_ms=svc.completion_retention_ms(handler),
            journal_retention_ms=svc.effective_journal_retention_ms(handler),
            mode="send" if is_send else "call",
            fresh=fresh,
        )
        inv_text = str(inv)
        waiter = self._waiters.register(request_id)
        try:
            self._route(inv.partition_key).propose(record)
            response = await self._wait(waiter, scope, receive)
        finally:
            self._waiters.discard(request_id)
        if response is None:
            return  # the client went away; the invocation goes on
        await self._answer(response, inv_text, handler, send, execute_at)

    async def _wait(
        self, waiter: asyncio.Future[act.Respond], scope: Scope, receive: Receive
    ) -> act.Respond | None:
        """Wait for the answer, or for the client to disconnect (None)."""
        if waiter.done():
            return waiter.result()
        disconnect: asyncio.Future[object] = asyncio.ensure_future(_disconnected(receive))
        waiting: set[asyncio.Future[object]] = {waiter, disconnect}  # type: ignore[arg-type]
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            disconnect.cancel()
        if waiter in done:
            return waiter.result()
        return None

    def _validate_input(self, scope: Scope, handler: HandlerInfo, body: bytes) -> None:
        expected = handler.input.content_type
        actual = header(scope, b"content-type")
        if expected is None:
            if body or actual is not None:
                shown = "None" if actual is None else f'Some("{actual}")'
                raise _Reject(
                    400,
                    "input validation error: Expected body and content-type to be empty, "
                    f"but wasn't with content-type '{shown}'",
                )
            return
        if not body:
            if handler.input.required:
                raise _Reject(400, "input validation error: Expected body to be non-empty")
            return
        if actual is None:
            raise _Reject(400, "input validation error: Empty content-type")
        if not _content_type_matches(expected, actual):
            raise _Reject(
                400,
                f"input validation error: Content-type '{actual or ''}' does not match "
                f"'{expected}'",
            )

    async def _answer(
        self,
        r: act.Respond,
        inv: str,
        handler: HandlerInfo | None,
        send: Send,
        execute_at: int | None,
    ) -> None:
        if r.kind in ("accepted", "previously_accepted"):
            payload: dict[str, str] = {"invocationId": inv}
            if execute_at is not None and r.kind == "accepted":
                payload["executionTime"] = _iso_execution(execute_at)
            payload["status"] = "Accepted" if r.kind == "accepted" else "PreviouslyAccepted"
            await send_json(send, 202, payload, [("x-restate-id", inv), *_CORS])
            return
        result = r.result
        assert result is not None
        headers = [("x-restate-id", inv)]
        if r.expires_at is not None and r.kind == "result" and self._deduplicated(r):
            headers.append(("idempotency-expires", _iso_expiry(r.expires_at)))
        if result.value is None:
            status = result.code if 400 <= result.code <= 599 else 500
            headers.append(("x-restate-error-source", "invocation"))
            body: dict[str, object] = {"code": result.code, "message": result.message}
            if result.stacktrace:
                body["stacktrace"] = result.stacktrace
            body["source"] = "invocation"
            await send_json(send, status, body, headers + _CORS)
            return
        if handler is None:
            content_type = "application/json"
            set_if_empty = False
        else:
            content_type = handler.output.content_type or "application/json"
            set_if_empty = bool(handler.output.set_content_type_if_empty)
        if not result.value and not set_if_empty:
            await send_raw(send, 200, b"", headers + _CORS)
            return
        await send_raw(send, 200, result.value, headers + _CORS, content_type=content_type)

    @staticmethod
    def _deduplicated(r: act.Respond) -> bool:
        # Restate sends idempotency-expires only when answering from the stored result.
        return r.kind == "result" and r.stored
