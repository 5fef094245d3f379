"""``POST /query`` of the admin API (Restate's SQL introspection endpoint).

Request: ``{"query": "<SQL>"}``. The ``accept`` header picks the result format: exactly what the
official CLI relies on, ``application/json`` gives ``{"rows": [...]}`` and anything else
(``*/*``, none, Arrow, even ``text/csv``) an Arrow IPC stream. Errors are JSON
``{"message": "Datafusion error: ..."}``: 400 for SQL syntax and planning errors, 500 for the
others.

The answer is streamed (chunked transfer encoding, like Restate's): the status line goes out
once the first batch of rows is computed (so that errors found until then still get their
status), then the rows as they come, in pieces of about :data:`_PIECE` bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec

from undying.server.asgi import BodyTooLarge, ClientGone, header, read_body, send_json, send_raw
from undying.server.http.types import Receive, Scope, Send
from undying.server.query.encoding import ARROW_STREAM, ArrowStreamWriter, JsonRowsWriter
from undying.server.query.engine import QueryEngine, QueryError, QueryStream

__all__ = ["admin_route", "handle_query", "wants_json"]

log = logging.getLogger("undying.query")

_MAX_BODY: Final = 1024 * 1024
_JSON_TYPE: Final = "application/json"
#: Bytes gathered before a piece of the answer is sent.
_PIECE: Final = 256 * 1024


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
        stream = await engine.stream(request.query)
    except QueryError as e:
        await send_json(send, e.status, {"message": e.message})
        return
    except Exception as e:
        log.exception("query failed: %s", request.query)
        await send_json(send, 500, {"message": f"Internal error: {e}"})
        return
    try:
        await _send_stream(stream, wants_json(header(scope, b"accept")), send, request.query)
    finally:
        await stream.aclose()


async def _send_stream(stream: QueryStream, as_json: bool, send: Send, sql: str) -> None:
    writer: JsonRowsWriter | ArrowStreamWriter
    try:
        first = [batch async for batch in _take(stream, 1)]
        writer = JsonRowsWriter() if as_json else ArrowStreamWriter(stream.schema)
        pending = [writer.begin(), *[await asyncio.to_thread(writer.write, b) for b in first]]
    except QueryError as e:
        await send_json(send, e.status, {"message": e.message})
        return
    except Exception as e:
        log.exception("query failed: %s", sql)
        await send_json(send, 500, {"message": f"Internal error: {e}"})
        return
    content_type = _JSON_TYPE if as_json else ARROW_STREAM
    start = [(b"content-type", content_type.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": start})
    size = sum(map(len, pending))
    try:
        async for batch in stream:
            piece = await asyncio.to_thread(writer.write, batch)
            pending.append(piece)
            size += len(piece)
            if size >= _PIECE:
                await _body(send, b"".join(pending), more=True)
                pending, size = [], 0
    except Exception as e:
        # Too late for an error status: the answer ends here, cut short.
        message = e.message if isinstance(e, QueryError) else repr(e)
        log.warning("query failed while streaming its answer: %s: %s", message, sql)
        await _body(send, b"".join(pending), more=False)
        return
    pending.append(writer.end())
    await _body(send, b"".join(pending), more=False)


async def _body(send: Send, data: bytes, *, more: bool) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _take(stream: QueryStream, n: int) -> Any:
    """The next ``n`` batches of ``stream`` (fewer at its end)."""
    for _ in range(n):
        try:
            yield await stream.__anext__()
        except StopAsyncIteration:
            return


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
