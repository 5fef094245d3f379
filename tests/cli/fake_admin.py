"""A scripted admin API on a free loopback port, for the CLI's unit tests.

It answers ``GET /version`` like restate-server 1.7.12 (admin API versions 2-4), routes other
requests (with or without the ``/v4`` prefix) to canned replies, answers ``POST /query`` from a
list of ``(fragment, rows)`` (the first fragment found in the SQL wins), and records every
request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION: dict[str, Any] = {
    "version": "1.7.12",
    "min_admin_api_version": 2,
    "max_admin_api_version": 4,
    "ingress_endpoint": "http://127.0.0.1:8080/",
    "features": {},
}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes or str
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent (with the version prefix)
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def route(self) -> str:
        """The path without the ``/v4`` prefix."""
        return self.path[3:] if self.path.startswith("/v4/") else self.path


Handler = Callable[[Request], Reply]


@dataclass
class FakeAdmin:
    version: dict[str, Any] | None = field(default_factory=lambda: dict(VERSION))
    routes: dict[tuple[str, str], Reply | Handler] = field(default_factory=dict)
    queries: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    #: answers to queries that do not accept JSON (Arrow IPC streams)
    arrow: list[tuple[str, bytes]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                fake.requests.append(req)
                reply = fake.answer(req)
                data = reply.encoded()
                self.send_response(reply.status)
                if data:
                    self.send_header("content-type", reply.content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeAdmin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- scripting -----------------------------------------------------------------------------

    def on(self, method: str, path: str, reply: Reply | Handler) -> None:
        self.routes[(method, path)] = reply

    def on_query(self, fragment: str, rows: list[dict[str, Any]]) -> None:
        self.queries.append((fragment, rows))

    def answer(self, req: Request) -> Reply:
        if req.path == "/version":
            return Reply(200, self.version) if self.version is not None else Reply(404, "")
        if req.method == "POST" and req.route == "/query" and ("POST", "/query") not in self.routes:
            sql = req.json()["query"]
            if req.headers.get("accept") != "application/json":
                for fragment, stream in self.arrow:
                    if fragment in sql:
                        return Reply(200, stream, "application/vnd.apache.arrow.stream")
            for fragment, rows in self.queries:
                if fragment in sql:
                    return Reply(200, {"rows": rows})
            return Reply(500, {"message": f"no scripted answer for {sql}"})
        found = self.routes.get((req.method, req.route.split("?")[0]))
        if found is None:
            return Reply(404, {"message": f"no route {req.method} {req.route}"})
        return found(req) if callable(found) else found

    # -- inspection ----------------------------------------------------------------------------

    def sql(self) -> list[str]:
        """The queries received, in order."""
        return [r.json()["query"] for r in self.requests if r.route == "/query"]

    def sent(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]
