"""``POST /query`` through the ASGI handler, with a fake receive/send."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
from query_world import World

from undying.server.http.types import Message
from undying.server.query import admin_route, handle_query
from undying.server.query.http import wants_json


class Response:
    def __init__(self, messages: list[Message]) -> None:
        start = messages[0]
        assert start["type"] == "http.response.start"
        self.status: int = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}
        self.body = b"".join(m.get("body", b"") for m in messages[1:])

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    world: World,
    body: bytes,
    *,
    accept: str | None = None,
    method: str = "POST",
    chunks: int = 1,
) -> Response:
    headers = [(b"content-type", b"application/json"), (b"host", b"127.0.0.1:9070")]
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    scope = {"type": "http", "method": method, "path": "/query", "headers": headers}
    size = max(1, -(-len(body) // chunks))
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    incoming: list[Message] = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
        for i, p in enumerate(parts)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(handle_query(world.engine(), scope, receive, send))
    return Response(sent)


def query(sql: str) -> bytes:
    return json.dumps({"query": sql}).encode()


def test_json_rows_for_accept_application_json(world: World) -> None:
    r = request(
        world,
        query(
            "select key, value from state where service_name = 'Counter' "
            "and service_key = 'alice' ;"
        ),
        accept="application/json",
        chunks=3,
    )
    assert r.status == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"rows": [{"key": "count", "value": "38"}]}


def test_arrow_stream_for_any_other_accept(world: World) -> None:
    sql = query("SELECT id, status FROM sys_invocation ORDER BY created_at LIMIT 2")
    for accept in (None, "*/*", "application/vnd.apache.arrow.stream", "text/csv"):
        r = request(world, sql, accept=accept)
        assert r.status == 200, accept
        assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
        table = pa.ipc.open_stream(r.body).read_all()
        assert table.column("id").to_pylist() == [world.ids["completed"], world.ids["backing-off"]]


def test_errors(world: World) -> None:
    r = request(world, query("SELEC 1"), accept="application/json")
    assert r.status == 400
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "message": 'Datafusion error: SQL error: ParserError("Expected: an SQL statement, '
        'found: SELEC at Line: 1, Column: 1")'
    }
    r = request(world, query("SELECT nope FROM sys_invocation"))
    assert r.status == 500
    assert r.json()["message"].startswith("Datafusion error: Schema error: No field named nope.")
    assert request(world, b"{not json").status == 400
    assert request(world, b'{"sql": "SELECT 1"}').status == 400
    assert request(world, b"").status == 400


def test_only_post_is_allowed(world: World) -> None:
    r = request(world, b"", method="GET")
    assert r.status == 405
    assert r.headers["allow"] == "POST"
    assert r.body == b""


def test_accept_negotiation() -> None:
    assert wants_json("application/json")
    assert wants_json("application/json; charset=utf-8")
    assert wants_json("text/html, application/json")
    assert not wants_json(None)
    assert not wants_json("*/*")
    assert not wants_json("application/vnd.apache.arrow.stream, application/json")


def test_admin_route_serves_only_query(world: World) -> None:
    route = admin_route(world.engine())
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": query("SELECT 1 AS one"), "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/query", "headers": []}

    async def main() -> tuple[bool, bool]:
        other = await route("GET", "/nope", scope, receive, send)
        served = await route("POST", "/query", scope, receive, send)
        return other, served

    assert asyncio.run(main()) == (False, True)
    response = Response(sent)
    assert response.status == 200
    assert pa.ipc.open_stream(response.body).read_all().to_pylist() == [{"one": 1}]
