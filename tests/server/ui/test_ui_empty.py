"""The UI of a server with nothing registered, and without invocation commands (read-only)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from undying.server.http.types import Message, Scope
from undying.server.log.local import SCHEMA as LOG_SCHEMA
from undying.server.metadata import SCHEMA as METADATA_SCHEMA
from undying.server.metadata import MetadataStore
from undying.server.partition.store import SCHEMA as STORE_SCHEMA
from undying.server.query import QueryEngine
from undying.server.storage.database import Database
from undying.server.ui import UiApp

NOW = 1_795_496_323_982


async def _request(app: UiApp, method: str, path: str, query: bytes = b"") -> tuple[int, str]:
    """One request to the ASGI app; its status and body."""
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(b"hx-request", b"true"), (b"host", b"localhost")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode()


def test_empty_server_pages(tmp_path: Path) -> None:
    async def scenario() -> dict[str, tuple[int, str]]:
        db = Database(tmp_path / "undying.db")
        db.open(LOG_SCHEMA + STORE_SCHEMA + METADATA_SCHEMA)
        try:
            meta = MetadataStore(db)
            app = UiApp(meta, QueryEngine(db, meta, now_ms=lambda: NOW), now_ms=lambda: NOW)
            pages = ["/ui/", "/ui/services", "/ui/invocations", "/ui/state", "/ui/promises"]
            out = {p: await _request(app, "GET", p) for p in pages}
            out["state?service"] = await _request(app, "GET", "/ui/state", b"service=Nope")
            inv = "inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            out["action"] = await _request(app, "POST", f"/ui/invocations/{inv}/cancel")
            return out
        finally:
            await db.close()

    pages = asyncio.run(scenario())
    assert {p: s for p, (s, _) in pages.items()} == {
        "/ui/": 200,
        "/ui/services": 200,
        "/ui/invocations": 200,
        "/ui/state": 200,
        "/ui/promises": 200,
        "state?service": 200,
        "action": 404,
    }
    assert "No services yet: register a deployment" in pages["/ui/"][1]
    assert "0 services from 0 deployments" in pages["/ui/services"][1]
    assert "0 invocations." in pages["/ui/invocations"][1]
    assert "No invocations." in pages["/ui/invocations"][1]
    assert "No virtual objects or workflows are registered." in pages["/ui/state"][1]
    assert "No workflows are registered." in pages["/ui/promises"][1]
    assert "This server does not accept invocation commands." in pages["action"][1]
