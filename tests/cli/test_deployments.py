"""``undying deployments`` against a scripted admin API (shapes of restate-server 1.7.12)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Run
from .fake_admin import FakeAdmin, Reply, Request

DP = "dp_114UqHl3AXh43PW9oxKp7H3"
OLD = "dp_11oldoldoldoldoldoldold1"
URI = "http://localhost:29081/"


def _service(name: str, dep: str, revision: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "ty": "Service",
        "handlers": [
            {
                "name": "greet",
                "public": True,
                "input_description": "JSON object",
                "output_description": "JSON object",
            }
        ],
        "deployment_id": dep,
        "revision": revision,
        "public": True,
        "retry_policy": {
            "initial_interval": "500ms",
            "exponentiation_factor": 2.0,
            "max_attempts": 70,
            "max_interval": "1m",
            "on_max_attempts": "Pause",
        },
    }


DEPLOYMENT = {
    "id": DP,
    "uri": URI,
    "protocol_type": "BidiStream",
    "http_version": "HTTP/2.0",
    "created_at": "2026-11-24T04:58:35.582000000Z",
    "min_protocol_version": 5,
    "max_protocol_version": 7,
    "sdk_version": "restate-sdk-python/1.2.0",
    "services": [{"name": "Greeter", "revision": 2}],
}
OLD_DEPLOYMENT = {
    **DEPLOYMENT,
    "id": OLD,
    "uri": "http://localhost:29083/",
    "protocol_type": "RequestResponse",
    "http_version": "HTTP/1.1",
    "services": [{"name": "Greeter", "revision": 1}],
}


@pytest.fixture
def world(fake: FakeAdmin) -> FakeAdmin:
    fake.on("GET", "/services", Reply(200, {"services": [_service("Greeter", DP, 2)]}))
    fake.on("GET", "/deployments", Reply(200, {"deployments": [OLD_DEPLOYMENT, DEPLOYMENT]}))
    fake.on(
        "GET",
        f"/deployments/{DP}",
        Reply(200, {**DEPLOYMENT, "services": [_service("Greeter", DP, 2)]}),
    )
    fake.on(
        "GET",
        f"/deployments/{OLD}",
        Reply(200, {**OLD_DEPLOYMENT, "services": [_service("Greeter", OLD)]}),
    )
    fake.on_query(
        "GROUP BY pinned_deployment_id", [{"pinned_deployment_id": OLD, "num_invocations": 2}]
    )
    return fake


def test_list(run: Run, world: FakeAdmin) -> None:
    result = run("deployments", "list")
    assert result.exit_code == 0, result.output
    new = next(line for line in result.stdout.splitlines() if DP in line)
    old = next(line for line in result.stdout.splitlines() if OLD in line)
    assert URI in new and "active" in new and "Greeter (rev 2)" in new
    assert "draining" in old and " 2 " in old and "Greeter (rev 1)" in old


def test_list_as_json(run: Run, world: FakeAdmin) -> None:
    listed = json.loads(run("deployments", "list", "-o", "json").stdout)
    assert [(d["id"], d["status"], d["active_invocations"]) for d in listed] == [
        (OLD, "draining", 2),
        (DP, "active", 0),
    ]
    assert listed[1]["uri"] == URI and listed[1]["sdk_version"] == "restate-sdk-python/1.2.0"


def test_describe(run: Run, world: FakeAdmin) -> None:
    result = run("deployments", "describe", DP)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert DP in out and URI in out and "active" in out and "5-7" in out
    assert "bidi HTTP/2.0" in out and "restate-sdk-python/1.2.0" in out
    assert "Greeter  (Service, revision 2)" in out
    assert "greet" in out and "JSON object" in out


def test_register_shows_the_changes_asks_then_registers(run: Run, world: FakeAdmin) -> None:
    bodies: list[dict[str, Any]] = []

    def register(req: Request) -> Reply:
        body = req.json()
        bodies.append(body)
        new_id = (
            "dp_1dryrundryrundryrundryrun" if body["dry_run"] else "dp_1newnewnewnewnewnewnewne"
        )
        services = [_service("Greeter", new_id, 3), _service("Ticker", new_id)]
        return Reply(201, {"id": new_id, "services": services, "sdk_version": "x"})

    world.on("POST", "/deployments", register)
    result = run("deployments", "register", "http://localhost:9080", input="y\n")
    assert result.exit_code == 0, result.output
    assert "revision 2 -> 3" in result.stderr and "Ticker" in result.stderr
    assert "Register this deployment?" in result.stderr
    assert "Registered deployment dp_1newnewnewnewnewnewnewne" in result.stdout
    assert bodies == [
        {
            "uri": "http://localhost:9080",
            "additional_headers": None,
            "use_http_11": False,
            "breaking": False,
            "force": False,
            "dry_run": True,
        },
        {
            "uri": "http://localhost:9080",
            "additional_headers": None,
            "use_http_11": False,
            "breaking": False,
            "force": False,
            "dry_run": False,
        },
    ]


def test_register_options_and_no(run: Run, world: FakeAdmin) -> None:
    bodies: list[dict[str, Any]] = []

    def register(req: Request) -> Reply:
        bodies.append(req.json())
        return Reply(201, {"id": "dp_1x", "services": []})

    world.on("POST", "/deployments", register)
    result = run(
        "deployments",
        "register",
        "http://h:1",
        "--use-http1.1",
        "--force",
        "--breaking",
        "--header",
        "authorization=Bearer t",
        input="n\n",
    )
    assert result.exit_code == 1 and "Aborted" in result.stderr
    assert bodies == [
        {
            "uri": "http://h:1",
            "additional_headers": {"authorization": "Bearer t"},
            "use_http_11": True,
            "breaking": True,
            "force": True,
            "dry_run": True,
        }
    ]


def test_register_an_existing_deployment_changes_nothing(run: Run, world: FakeAdmin) -> None:
    world.on("POST", "/deployments", Reply(200, {"id": DP, "services": []}))
    result = run("deployments", "register", URI, "-y")
    assert result.exit_code == 0
    assert f"already exists with id {DP}" in result.stderr
    assert len(world.sent("POST")) == 1


def test_register_failures_show_the_servers_message(run: Run, world: FakeAdmin) -> None:
    world.on(
        "POST",
        "/deployments",
        Reply(400, {"message": "bad deployment 'http://h:1/': connection refused"}),
    )
    result = run("deployments", "register", "http://h:1/", "-y")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: bad deployment 'http://h:1/': connection refused"


def test_remove_refuses_the_active_deployment_without_force(run: Run, world: FakeAdmin) -> None:
    result = run("deployments", "remove", DP, "-y")
    assert result.exit_code == 1
    assert "serves the latest revision of Greeter" in result.stderr
    assert world.sent("DELETE") == []


def test_describe_a_request_response_deployment(run: Run, world: FakeAdmin) -> None:
    out = run("deployments", "describe", OLD).stdout
    assert "request/response HTTP/1.1" in out and "draining" in out


def test_remove(run: Run, world: FakeAdmin) -> None:
    world.on("DELETE", f"/deployments/{OLD}", Reply(202))
    result = run("deployments", "remove", OLD, input="y\n")
    assert result.exit_code == 0, result.output
    assert "2 invocation(s) still run on it" in result.stderr
    assert [r.path for r in world.sent("DELETE")] == [f"/v4/deployments/{OLD}?force=true"]
    assert f"Removed deployment {OLD}" in result.stdout


def test_remove_an_active_deployment_with_force(run: Run, world: FakeAdmin) -> None:
    world.on("DELETE", f"/deployments/{DP}", Reply(202))
    assert run("deployments", "remove", DP, "--force", "-y").exit_code == 0
    assert len(world.sent("DELETE")) == 1
