"""The conference Greeter, end to end: registered with the official CLI, invoked over ingress.

Five deployments, each on its own server: the official Python SDK over h2c, the TypeScript SDK
over h2c, the official Python SDK over HTTP/1.1 (request/response protocol mode), and the undying
SDK over h2c and over HTTP/1.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from interop_support import App, AppFactory, AppKind, ServerFactory, cli_for, register

from undying.testing import Effect, RestateCli, Server

pytestmark = pytest.mark.interop


@dataclass(frozen=True)
class Flavour:
    name: str
    kind: AppKind
    http1: bool
    protocol_type: str
    http_version: str
    sdk_prefix: str

    def body(self, name: str) -> bytes:
        """The handler output exactly as this SDK serializes it (ingress passes it through)."""
        if self.kind in ("typescript", "undying"):  # compact JSON
            return f'{{"result":"You said hi to {name}!"}}'.encode()
        return f'{{"result": "You said hi to {name}!"}}'.encode()


FLAVOURS = [
    Flavour("python-h2c", "python", False, "BidiStream", "HTTP/2.0", "restate-sdk-python/"),
    Flavour(
        "typescript-h2c", "typescript", False, "BidiStream", "HTTP/2.0", "restate-sdk-typescript/"
    ),
    Flavour("python-http1.1", "python", True, "RequestResponse", "HTTP/1.1", "restate-sdk-python/"),
    Flavour("undying-h2c", "undying", False, "BidiStream", "HTTP/2.0", "undying-sdk-python/"),
    Flavour(
        "undying-http1.1", "undying", True, "RequestResponse", "HTTP/1.1", "undying-sdk-python/"
    ),
]


@dataclass
class GreeterEnv:
    flavour: Flavour
    server: Server
    app: App
    cli: RestateCli
    deployment_id: str


@pytest.fixture(scope="module", params=FLAVOURS, ids=lambda f: f.name)
def env(
    request: pytest.FixtureRequest,
    server_factory: ServerFactory,
    app_factory: AppFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GreeterEnv]:
    flavour: Flavour = request.param
    server = server_factory.start(flavour.name)
    app = app_factory.start(flavour.kind, name=f"greeter-{flavour.name}")
    cli = cli_for(server, tmp_path_factory.mktemp("cli-home"))
    deployment_id = register(cli, app, http1=flavour.http1)
    yield GreeterEnv(flavour, server, app, cli, deployment_id)
    app.service.stop()
    server.stop()


def greeting_effects(entries: list[Effect], name: str) -> list[Effect]:
    return [e for e in entries if e.name == name and e.step in ("Notification", "Reminder")]


def test_registered_deployment(env: GreeterEnv) -> None:
    deployments = {d["id"]: d for d in env.server.admin.deployments()}
    deployment = deployments[env.deployment_id]
    assert deployment["uri"] == env.app.url
    assert deployment["protocol_type"] == env.flavour.protocol_type
    assert deployment["http_version"] == env.flavour.http_version
    assert deployment["sdk_version"].startswith(env.flavour.sdk_prefix)
    assert {"name": "Greeter", "revision": 1} in deployment["services"]


def test_bob_answers_in_about_a_second(env: GreeterEnv) -> None:
    mark = env.app.effects.mark()
    resp = env.server.ingress.call("Greeter", "greet", {"name": "Bob"})

    assert resp.status == 200, str(resp)
    assert resp.json() == {"result": "You said hi to Bob!"}
    assert resp.body == env.flavour.body("Bob")
    assert resp.header("content-type") == "application/json"
    assert (resp.header("x-restate-id") or "").startswith("inv_")
    assert 0.9 <= resp.elapsed < 3.0, resp.elapsed

    effects = greeting_effects(env.app.effects.since(mark), "Bob")
    assert [e.step for e in effects] == ["Notification", "Reminder"]
    assert len({e.id for e in effects}) == 1
    assert all(e.ok for e in effects)
    # the durable sleep of one second separates the two steps
    assert effects[1].ts - effects[0].ts >= 0.9


@pytest.mark.slow
def test_alice_succeeds_after_retries(env: GreeterEnv) -> None:
    mark = env.app.effects.mark()
    resp = env.server.ingress.call("Greeter", "greet", {"name": "Alice"})

    assert resp.status == 200, str(resp)
    assert resp.json() == {"result": "You said hi to Alice!"}
    assert resp.body == env.flavour.body("Alice")
    # 1 s sleep + three retry back-offs (about 0.5 s, 1 s, 2 s plus jitter): ~5 s observed.
    assert 3.0 <= resp.elapsed < 15.0, resp.elapsed

    effects = greeting_effects(env.app.effects.since(mark), "Alice")
    assert len({e.id for e in effects}) == 1, "the greeting id must survive the retries"
    notifications = [e for e in effects if e.step == "Notification"]
    reminders = [e for e in effects if e.step == "Reminder"]
    assert len(notifications) == 1, "Notification ran again on a retry"
    assert [e.attempt for e in reminders] == [1, 2, 3, 4]
    assert [e.ok for e in reminders] == [False, False, False, True]
    assert reminders[0].ts - notifications[0].ts >= 0.9
    gaps = [b.ts - a.ts for a, b in zip(reminders, reminders[1:], strict=False)]
    assert all(gap >= 0.3 for gap in gaps), f"retries without back-off: {gaps}"
