"""``POST /query`` of the admin API (Restate's SQL introspection endpoint).

Request: ``{"query": "<SQL>"}``. The ``accept`` header picks the result format: exactly what the
official CLI relies on, ``application/json`` gives ``{"rows": [...]}`` and anything else
(``*/*``, none, Arrow, even ``text/csv``) an Arrow IPC stream. Errors are JSON
``{"message": "Datafusion error: ..."}``: 400 for SQL syntax errors, 500 for the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

from undying.server.asgi import BodyTooLarge, ClientGone, header, read_body, send_json, send_raw
from undying.server.http.types import Receive, Scope, Send
from undying.server.query.encoding import ARROW_STREAM, arrow_stream, json_rows
from undying.server.query.engine import QueryEngine, QueryError

__all__ = ["admin_route", "handle_query", "wants_json"]

log = logging.getLogger("undying.query")

_MAX_BODY: Final = 1024 * 1024
_JSON_TYPE: Final = "application/json"


class _QueryRequest(msgspec.Struct):
    query: str


_REQUEST: Final = msgspec.json.Decoder(_QueryRequest)


def wants_json(accept: str | None) -> bool:
    """Whether the ``accept`` header asks for JSON rows rather than an Arrow stream."""
    if not accept:
        return False
    types = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    return _JSON_TYPE in types and ARROW_STREAM not in types


async def handle_query(engine: QueryEngine, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one ``/query`` request (any method; only POST is allowed)."""
    if scope["method"] != "POST":
        await send_raw(send, 405, b"", [("allow", "POST")])
        return
    try:
        body = await read_body(scope, receive, _MAX_BODY)
    except BodyTooLarge:
        await send_json(send, 413, {"message": "The request body is too large"})
        return
    except ClientGone:
        return
    try:
        request = _REQUEST.decode(body)
    except msgspec.DecodeError as e:  # ValidationError is a DecodeError
        await send_json(send, 400, {"message": f"Invalid query request: {e}"})
        return
    try:
        table = await engine.execute(request.query)
    except QueryError as e:
        await send_json(send, e.status, {"message": e.message})
        return
    except Exception as e:
        log.exception("query failed: %s", request.query)
        await send_json(send, 500, {"message": f"Internal error: {e}"})
        return
    if wants_json(header(scope, b"accept")):
        data = await asyncio.to_thread(json_rows, table)
        await send_raw(send, 200, data, content_type=_JSON_TYPE)
    else:
        data = await asyncio.to_thread(arrow_stream, table)
        await send_raw(send, 200, data, content_type=ARROW_STREAM)


def admin_route(
    engine: QueryEngine,
) -> Callable[[str, str, Scope, Receive, Send], Awaitable[bool]]:
    """An ``extra`` route for :class:`~undying.server.admin.app.AdminApp` serving ``/query``."""

    async def route(method: str, path: str, scope: Scope, receive: Receive, send: Send) -> bool:
        if path.rstrip("/") != "/query":
            return False
        await handle_query(engine, scope, receive, send)
        return True

    return route
