"""Registering deployments with the official CLI, and the admin API's JSON shapes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from interop_support import App, AppFactory

from undying.testing import CliResult, RestateCli, Server

pytestmark = pytest.mark.interop

ID_RE = re.compile(r"^dp_[0-9A-Za-z]+$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture(scope="module")
def app(app_factory: AppFactory) -> App:
    return app_factory.start("python", name="registration-py")


@pytest.fixture(scope="module")
def first_registration(cli: RestateCli, app: App) -> CliResult:
    return cli.register(app.url)


@pytest.fixture(scope="module")
def deployment_id(first_registration: CliResult) -> str:
    assert first_registration.returncode == 0, str(first_registration)
    assert first_registration.deployment_id is not None, str(first_registration)
    return first_registration.deployment_id


def test_version_and_health(server: Server) -> None:
    version = server.admin.version()
    assert version["min_admin_api_version"] <= 4 <= version["max_admin_api_version"]
    assert isinstance(version["version"], str)
    health = server.admin.get("/health")
    assert health.status == 200
    assert health.body == b""


def test_register_lists_new_services(first_registration: CliResult) -> None:
    result = first_registration
    assert result.returncode == 0, str(result)
    assert ID_RE.match(result.deployment_id or ""), str(result)
    assert "SERVICES THAT WILL BE ADDED" in result.output
    for name in ("Greeter", "Long", "Failing"):
        assert f"- {name}" in result.output
    assert re.search(r"Deployment ID:\s+" + re.escape(result.deployment_id or "?"), result.output)


def test_reregistering_same_endpoint_is_a_noop(
    cli: RestateCli, app: App, deployment_id: str, server: Server
) -> None:
    again = cli.register(app.url)
    assert again.returncode == 0, str(again)
    assert "already exists" in again.output, str(again)
    assert again.deployment_id == deployment_id
    assert [d["id"] for d in server.admin.deployments()] == [deployment_id]


def test_deployments_shape(server: Server, app: App, deployment_id: str) -> None:
    deployments = server.admin.deployments()
    assert len(deployments) == 1
    dep = deployments[0]
    assert dep["id"] == deployment_id
    assert dep["uri"] == app.url
    assert dep["protocol_type"] == "BidiStream"
    assert dep["http_version"] == "HTTP/2.0"
    assert TIMESTAMP_RE.match(dep["created_at"]), dep["created_at"]
    assert dep["min_protocol_version"] == 5
    assert dep["max_protocol_version"] == 7
    assert dep["sdk_version"] == "restate-sdk-python/1.2.0"
    assert sorted(dep["services"], key=lambda s: s["name"]) == [
        {"name": "Failing", "revision": 1},
        {"name": "Greeter", "revision": 1},
        {"name": "Long", "revision": 1},
    ]


def test_deployment_by_id_has_full_services(server: Server, deployment_id: str) -> None:
    dep = server.admin.deployment(deployment_id)
    assert dep["id"] == deployment_id
    assert dep["protocol_type"] == "BidiStream"
    services = {s["name"]: s for s in dep["services"]}
    assert set(services) == {"Greeter", "Long", "Failing"}
    check_greeter_metadata(services["Greeter"], deployment_id)


def test_service_shape(server: Server, deployment_id: str) -> None:
    check_greeter_metadata(server.admin.service("Greeter"), deployment_id)
    names = {s["name"] for s in server.admin.services()}
    assert {"Greeter", "Long", "Failing"} <= names


def test_unknown_service_is_404(server: Server, deployment_id: str) -> None:
    resp = server.admin.get("/services/Nope")
    assert resp.status == 404
    assert resp.json()["message"] == "The requested service 'Nope' does not exist"


def test_cli_lists_services(cli: RestateCli, deployment_id: str) -> None:
    result = cli.run("services", "list")
    assert result.returncode == 0, str(result)
    for name in ("Greeter", "Long", "Failing"):
        assert name in result.stdout
    assert deployment_id in result.stdout


def check_greeter_metadata(svc: dict[str, Any], deployment_id: str) -> None:
    assert svc["name"] == "Greeter"
    assert svc["ty"] == "Service"
    assert svc["deployment_id"] == deployment_id
    assert svc["revision"] == 1
    assert svc["public"] is True
    assert svc["idempotency_retention"] == "1d"
    assert svc["journal_retention"] == "1d"
    assert svc["inactivity_timeout"] == "1m"
    assert svc["abort_timeout"] == "10m"
    assert svc["enable_lazy_state"] is False
    assert "workflow_completion_retention" not in svc
    assert svc["retry_policy"] == {
        "initial_interval": "500ms",
        "exponentiation_factor": 2.0,
        "max_attempts": 70,
        "max_interval": "1m",
        "on_max_attempts": "Pause",
    }
    [handler] = svc["handlers"]
    assert handler["name"] == "greet"
    assert "ty" not in handler  # plain services' handlers have no handler type
    assert handler["public"] is True
    assert handler["input_description"] == "JSON object"
    assert handler["output_description"] == "JSON object"
    assert handler["input_json_schema"] == {"type": "object"}
    assert handler["output_json_schema"] == {"type": "object"}
