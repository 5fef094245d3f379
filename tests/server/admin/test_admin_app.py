"""The admin API in process, against a fake deployment: registration rules and answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from undying.errors import DeploymentError
from undying.server.admin.app import AdminApp
from undying.server.invoker.streams import AttemptStream
from undying.server.metadata import MetadataStore
from undying.server.schema import DeploymentInfo

Manifest = dict[str, Any]


def greeter(*, handler: str = "greet", ty: str = "SERVICE") -> Manifest:
    return {
        "protocolMode": "BIDI_STREAM",
        "minProtocolVersion": 5,
        "maxProtocolVersion": 7,
        "services": [
            {
                "name": "Greeter",
                "ty": ty,
                "handlers": [
                    {
                        "name": handler,
                        **({"ty": "EXCLUSIVE"} if ty == "VIRTUAL_OBJECT" else {}),
                        "input": {
                            "required": False,
                            "contentType": "application/json",
                            "jsonSchema": {"type": "object"},
                        },
                        "output": {"contentType": "application/json"},
                    }
                ],
            }
        ],
    }


class FakeDeployments:
    """Answers discovery with whatever manifest is set for a URI."""

    def __init__(self) -> None:
        self.manifests: dict[str, tuple[int, str, bytes]] = {}
        self.discoveries: list[tuple[str, bool, list[tuple[str, str]]]] = []

    def set(self, uri: str, manifest: Manifest | bytes, *, status: int = 200) -> None:
        body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        self.manifests[uri] = (status, "application/vnd.restate.endpointmanifest.v2+json", body)

    async def open(
        self,
        deployment: DeploymentInfo,
        path: str,
        headers: list[tuple[str, str]],
        initial: bytes,
        *,
        end_input: bool,
    ) -> AttemptStream:
        raise AssertionError("not used")

    async def discover(
        self, uri: str, headers: list[tuple[str, str]], *, use_http_11: bool, timeout: float
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        self.discoveries.append((uri, use_http_11, headers))
        if uri not in self.manifests:
            raise DeploymentError(f"connection to {uri} refused")
        status, ct, body = self.manifests[uri]
        return status, [("content-type", ct), ("x-restate-server", "fake-sdk/1.0")], body

    async def aclose(self) -> None:
        return None


class Admin:
    def __init__(self) -> None:
        self.deployments = FakeDeployments()
        self.meta = MetadataStore(None)
        self.app = AdminApp(
            self.meta,
            self.deployments,
            ingress_url=lambda: "http://127.0.0.1:1/",
            now_ms=lambda: 1_795_496_315_582,
        )

    def request(
        self, method: str, path: str, body: Any = None
    ) -> tuple[int, dict[str, str], bytes]:
        raw = b"" if body is None else json.dumps(body).encode()
        return asyncio.run(self._request(method, path, raw))

    async def _request(
        self, method: str, path: str, raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        path, _, query = path.partition("?")
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(b"content-type", b"application/json")],
        }
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": raw, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = sent[0]
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return start["status"], headers, body

    def register(self, uri: str, **options: Any) -> tuple[int, dict[str, str], Any]:
        status, headers, body = self.request("POST", "/v4/deployments", {"uri": uri, **options})
        return status, headers, json.loads(body)


def test_version_and_health() -> None:
    admin = Admin()
    status, _, body = admin.request("GET", "/version")
    version = json.loads(body)
    assert status == 200
    assert (version["min_admin_api_version"], version["max_admin_api_version"]) == (2, 4)
    assert version["ingress_endpoint"] == "http://127.0.0.1:1/"
    status, headers, body = admin.request("GET", "/v4/health")
    assert (status, body) == (200, b"") and "content-type" not in headers


@pytest.mark.parametrize(("path", "status"), [("/v1/services", 400), ("/v5/services", 404)])
def test_unsupported_api_versions(path: str, status: int) -> None:
    got, _, body = Admin().request("GET", path)
    assert got == status
    if status == 400:
        assert b"Unsupported Admin API version V1" in body


def test_register_then_list_describe_and_reregister() -> None:
    admin = Admin()
    admin.deployments.set("http://svc:9080/", greeter())
    # A dry run answers like a registration but keeps nothing.
    status, headers, dry = admin.register("http://svc:9080/", dry_run=True)
    assert status == 201 and headers["location"] == f"deployments/{dry['id']}"
    assert admin.meta.schema.deployments == {}
    status, _, reg = admin.register("http://svc:9080/")
    assert status == 201 and reg["sdk_version"] == "fake-sdk/1.0"
    assert [s["name"] for s in reg["services"]] == ["Greeter"]
    svc = reg["services"][0]
    assert svc["revision"] == 1 and svc["handlers"][0]["input_description"] == "JSON object"
    # The same endpoint again: 200 with the existing id, nothing changes.
    status, _, again = admin.register("http://svc:9080/")
    assert status == 200 and again["id"] == reg["id"]
    status, _, body = admin.request("GET", "/deployments")
    listed = json.loads(body)["deployments"]
    assert [d["id"] for d in listed] == [reg["id"]]
    assert listed[0]["created_at"] == "2026-11-24T04:58:35.582000000Z"
    assert listed[0]["services"] == [{"name": "Greeter", "revision": 1}]
    status, _, body = admin.request("GET", f"/deployments/{reg['id']}")
    assert status == 200 and json.loads(body)["services"][0]["name"] == "Greeter"
    status, _, body = admin.request("GET", "/services/Greeter")
    assert status == 200 and json.loads(body)["deployment_id"] == reg["id"]
    # Discovery asked for every manifest version, over HTTP/2 unless told otherwise.
    _, use_http_11, headers_sent = admin.deployments.discoveries[0]
    assert not use_http_11
    assert "application/vnd.restate.endpointmanifest.v4+json" in dict(headers_sent)["accept"]


def test_a_new_deployment_of_a_service_bumps_its_revision() -> None:
    admin = Admin()
    admin.deployments.set("http://a/", greeter())
    admin.deployments.set("http://b/", greeter(handler="greet2"))
    admin.register("http://a/")
    _, _, second = admin.register("http://b/", use_http_11=True)
    assert second["services"][0]["revision"] == 2
    _, _, body = admin.request("GET", "/services/Greeter")
    assert json.loads(body)["deployment_id"] == second["id"]
    _, _, body = admin.request("GET", f"/deployments/{second['id']}")
    assert json.loads(body)["http_version"] == "HTTP/1.1"


def test_changes_at_a_registered_uri_need_force() -> None:
    admin = Admin()
    admin.deployments.set("http://a/", greeter())
    _, _, first = admin.register("http://a/")
    admin.deployments.set("http://a/", greeter(handler="other"))
    status, _, body = admin.register("http://a/", force=False)
    assert status == 409 and "force" in body["message"]
    status, _, forced = admin.register("http://a/", force=True)
    assert status == 201 and forced["id"] == first["id"]


def test_a_type_change_is_breaking() -> None:
    admin = Admin()
    admin.deployments.set("http://a/", greeter())
    admin.deployments.set("http://b/", greeter(ty="VIRTUAL_OBJECT"))
    admin.register("http://a/")
    status, _, body = admin.register("http://b/", force=False)
    assert status == 409 and "breaking" in body["message"]
    status, _, _ = admin.register("http://b/", force=False, breaking=True)
    assert status == 201


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (None, "cannot reach the deployment"),
        ((404, b"{}"), "404"),
        ((500, b"{}"), "HTTP status 500"),
        ((200, b"{nope"), "not valid JSON"),
    ],
)
def test_discovery_failures_are_400(setup: tuple[int, bytes] | None, message: str) -> None:
    admin = Admin()
    if setup is not None:
        admin.deployments.set("http://a/", setup[1], status=setup[0])
    status, _, body = admin.register("http://a/")
    assert status == 400 and message in body["message"]
    assert admin.meta.schema.deployments == {}


def test_bad_requests() -> None:
    admin = Admin()
    status, _, body = admin.request("POST", "/deployments", {"url": "x"})
    assert status == 400
    status, _, body = admin.request("POST", "/deployments", {"uri": "ftp://x"})
    assert status == 400
    status, _, body = admin.request("GET", "/services/Nope")
    assert status == 404
    assert json.loads(body) == {
        "message": "The requested service 'Nope' does not exist",
        "restate_code": None,
    }
    status, headers, body = admin.request("GET", "/deployments/dp_bogus")
    assert status == 400 and headers["content-type"].startswith("text/plain")
    assert body.startswith(b"Invalid URL: Cannot parse `deployment` with value `dp_bogus`")
