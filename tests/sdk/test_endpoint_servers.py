"""The SDK endpoint under real ASGI servers, invoked by the undying server and restate-server.

hypercorn and granian serve it over HTTP/2 (bidi streaming), uvicorn over HTTP/1.1
(request/response, registered with ``--use-http1.1``). A signed-requests-only app refuses
unsigned requests and serves restate-server when it signs with the matching key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from undying.sdk.identity import ed25519_public_key, encode_public_key
from undying.testing import RestateCli, ServiceProcess, create_server, python_service
from undying.testing.httpclient import request

pytestmark = [pytest.mark.interop]

APP = Path(__file__).parent / "services" / "served_app.py"


def _app(tmp_path: Path, server: str, **env: str) -> ServiceProcess:
    return python_service(
        APP,
        log_dir=tmp_path / "logs",
        name=f"sdk-{server}",
        env={"ASGI_SERVER": server, **env},
    )


@pytest.fixture
def stopper() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for proc in started:
        proc.stop()
        if proc.running:
            proc.kill()


@pytest.mark.parametrize(
    ("asgi", "http1"), [("hypercorn", False), ("granian", False), ("uvicorn", True)]
)
def test_served_by(
    asgi: str, http1: bool, target: str, tmp_path: Path, stopper: list[ServiceProcess]
) -> None:
    app = _app(tmp_path, asgi)
    server = create_server(target, tmp_path / "data", log_dir=tmp_path / "logs")
    stopper.append(app)
    with server:
        app.start()
        cli = RestateCli(server.admin_url, home=tmp_path / "cli")
        registered = cli.register(app.url, http1=http1)
        assert registered.returncode == 0, str(registered)
        [deployment] = server.admin.deployments()
        assert deployment.get("protocol_type", "").lower().replace("_", "") == (
            "requestresponse" if http1 else "bidistream"
        ), deployment
        out = server.ingress.call("Steps", "steps", 3)
        assert out.status == 200, out
        assert out.json() == [0, 1, 4]
        totals = [server.ingress.call("Tally", "add", 2, key="k").json() for _ in range(3)]
        assert totals == [2, 4, 6]


def test_unsigned_requests_are_refused(tmp_path: Path, stopper: list[ServiceProcess]) -> None:
    key = encode_public_key(ed25519_public_key(os.urandom(32)))
    app = _app(tmp_path, "hypercorn", IDENTITY_KEY=key)
    stopper.append(app)
    app.start()
    resp = request(
        "GET",
        app.url + "discover",
        headers={"accept": "application/vnd.restate.endpointmanifest.v3+json"},
    )
    assert resp.status == 401, resp
    assert b"signature" in resp.body.lower(), resp.body


def _pkcs8_pem(seed: bytes) -> str:
    import base64

    der = bytes.fromhex("302e020100300506032b657004220420") + seed
    body = base64.encodebytes(der).decode().strip()
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"


def test_signed_requests_from_restate_server_are_served(
    tmp_path: Path, stopper: list[ServiceProcess]
) -> None:
    seed = os.urandom(32)
    pem = tmp_path / "identity.pem"
    pem.write_text(_pkcs8_pem(seed))
    key = encode_public_key(ed25519_public_key(seed))
    app = _app(tmp_path, "hypercorn", IDENTITY_KEY=key)
    stopper.append(app)
    config = f'[worker.invoker]\nrequest-identity-private-key-pem-file = "{pem}"\n'
    server = create_server(
        "restate", tmp_path / "data", log_dir=tmp_path / "logs", restate_config=config
    )
    with server:
        app.start()
        cli = RestateCli(server.admin_url, home=tmp_path / "cli")
        registered = cli.register(app.url)
        assert registered.returncode == 0, str(registered)
        out = server.ingress.call("Steps", "steps", 2)
        assert out.status == 200, out
        assert out.json() == [0, 1]
