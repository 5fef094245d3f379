"""A live server (either target) with invocations in every state, for the dual-target SQL tests.

One server with the services of ``services/sql_app.py``: invocations left completed, failed,
scheduled, backing-off, paused, suspended, pending behind a lock and running; state of a
virtual object and a workflow's promise. :class:`Live` holds their ids by role and queries the
server the way the official CLI does (JSON rows or an Arrow stream).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped]

from undying.testing import Server, ServiceProcess, create_server, poll_until, python_service
from undying.testing.httpclient import HttpResponse, request

HERE: Final = Path(__file__).parent
COLUMNS: Final = json.loads((HERE / "restate_columns.json").read_text())
WAIT: Final = 30.0
TIMESTAMP: Final = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
ARROW: Final = "application/vnd.apache.arrow.stream"

Rows = list[dict[str, Any]]


@dataclass
class Live:
    """The server, and the invocations the scenario left on it (ids by role)."""

    target: str
    server: Server
    deployment: str = ""
    ids: dict[str, str] = field(default_factory=dict)
    #: Every invocation id, in the order they were created.
    order: list[str] = field(default_factory=list)
    #: Creation times (as the server has them), by invocation id.
    created: dict[str, datetime.datetime] = field(default_factory=dict)

    @property
    def undying(self) -> bool:
        return self.target == "undying"

    def add(self, role: str, invocation_id: str) -> str:
        self.ids[role] = invocation_id
        self.order.append(invocation_id)
        return invocation_id

    def post(self, sql: str, accept: str = "application/json") -> HttpResponse:
        return request(
            "POST",
            self.server.admin_url + "/query",
            body=json.dumps({"query": sql}).encode(),
            headers={"content-type": "application/json", "accept": accept},
            timeout=30.0,
        )

    def rows(self, sql: str) -> Rows:
        resp = self.post(sql)
        assert resp.status == 200, f"{sql}: {resp.status} {resp.body[:500]!r}"
        assert resp.header("content-type") == "application/json"
        body: dict[str, Rows] = json.loads(resp.body)
        assert list(body) == ["rows"]
        return body["rows"]

    def arrow(self, sql: str) -> Any:
        resp = self.post(sql, "*/*")
        assert resp.status == 200, f"{sql}: {resp.status} {resp.body[:500]!r}"
        assert resp.header("content-type") == ARROW
        assert resp.body.endswith(b"\xff\xff\xff\xff\x00\x00\x00\x00")  # end of stream
        return pa.ipc.open_stream(resp.body).read_all()

    def status(self, invocation_id: str) -> str | None:
        rows = self.rows(f"SELECT status FROM sys_invocation WHERE id = '{invocation_id}'")
        return str(rows[0]["status"]) if rows else None

    def wait_status(self, invocation_id: str, status: str) -> None:
        seen: list[Any] = []

        def check() -> bool | None:
            seen[:] = [self.status(invocation_id)]
            return True if seen[0] == status else None

        poll_until(
            check,
            timeout=WAIT,
            what=f"{invocation_id} is {status}",
            interval=0.1,
            describe=lambda: f"status: {seen}",
        )


def _call(live: Live, path: str, payload: Any, *, status: int = 200) -> str:
    body, headers = b"", {}
    if payload is not None:
        body, headers = json.dumps(payload).encode(), {"content-type": "application/json"}
    resp = request("POST", live.server.ingress_url + path, body=body, headers=headers, timeout=30)
    assert resp.status == status, f"{path}: {resp.status} {resp.body!r}"
    invocation_id = resp.header("x-restate-id")
    if invocation_id is None:  # /send answers with the id in the body
        invocation_id = str(resp.json()["invocationId"])
    return invocation_id


def _scenario(live: Live) -> None:
    """Leave invocations in every state (see the module docstring); ids in ``live.ids``."""
    for role, name in (("completed", "Alice"), ("completed_other", "Bob")):
        live.add(role, _call(live, "/Greeter/greet", name))
    live.add("greet_3", _call(live, "/Greeter/greet", "Carol"))
    live.add("failed", _call(live, "/Greeter/fail", "Mallory", status=400))
    live.add("caller", _call(live, "/Caller/greet", "Erin"))
    child = live.rows(f"SELECT id FROM sys_invocation WHERE invoked_by_id = '{live.ids['caller']}'")
    live.add("child", child[0]["id"])
    live.add("add_alice", _call(live, "/Counter/alice/add", 8))
    live.add("add_bob", _call(live, "/Counter/bob/add", 41))
    live.add("add_carol", _call(live, "/Counter/carol/add", 1))
    live.add("workflow", _call(live, "/Approval/order-1/run/send", None, status=202))
    live.wait_status(live.ids["workflow"], "suspended")
    live.add("decide", _call(live, "/Approval/order-1/decide", "yes"))
    live.wait_status(live.ids["workflow"], "completed")
    live.add("scheduled", _call(live, "/Greeter/greet/send?delay=1h", "Later", status=202))
    live.add("backing_off", _call(live, "/Retry/always/send", "t1", status=202))
    live.add("paused", _call(live, "/Retry/pause/send", "t2", status=202))
    live.add("suspended", _call(live, "/Sleeper/sleep/send", 3600, status=202))
    live.add("locked", _call(live, "/Counter/locked/hold/send", 3600, status=202))
    live.wait_status(live.ids["locked"], "suspended")
    live.add("pending", _call(live, "/Counter/locked/add/send", 1, status=202))
    live.add("running", _call(live, "/Blocker/block/send", 300, status=202))
    for role, status in (
        ("backing_off", "backing-off"),
        ("paused", "paused"),
        ("suspended", "suspended"),
        ("pending", "pending"),
        ("running", "running"),
    ):
        live.wait_status(live.ids[role], status)
    for row in live.rows("SELECT id, created_at FROM sys_invocation"):
        live.created[row["id"]] = parse_time(row["created_at"])


def parse_time(text: str) -> datetime.datetime:
    """A timestamp as the JSON rows have it."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextmanager
def live_server(target: str, root: Path) -> Iterator[Live]:
    """A server of ``target`` under ``root``, the scenario run on it; stopped at the end."""
    server = create_server(target, root / "data", log_dir=root / "logs")
    app: ServiceProcess = python_service(
        HERE / "services" / "sql_app.py", log_dir=root / "logs", name="sql-app"
    )
    try:
        server.start()
        app.start()
        resp = server.admin.request("POST", "/deployments", {"uri": app.url})
        assert resp.status == 201, resp
        state = Live(target, server, deployment=str(resp.json()["id"]))
        _scenario(state)
        yield state
    finally:
        try:
            app.stop()
        finally:
            if app.running:
                app.kill()
            try:
                server.stop()
            finally:
                if server.running:
                    server.kill()


def one(rows: Rows) -> dict[str, Any]:
    """The only row."""
    assert len(rows) == 1, rows
    return rows[0]


def created_desc(live: Live, ids: list[str]) -> list[str]:
    """``ids`` as ``ORDER BY created_at DESC, id`` sorts them."""
    by_id = sorted(ids)
    return sorted(by_id, key=lambda i: live.created[i], reverse=True)
