"""``undying services`` against a scripted admin API."""

from __future__ import annotations

import json

from .conftest import Run
from .fake_admin import FakeAdmin, Reply
from .test_deployments import DEPLOYMENT, DP, URI, _service

COUNTER = {
    "name": "Counter",
    "ty": "VirtualObject",
    "handlers": [
        {
            "name": "get",
            "ty": "Shared",
            "input_description": "none",
            "output_description": "JSON integer",
        },
        {
            "name": "add",
            "ty": "Exclusive",
            "input_description": "JSON integer",
            "output_description": "JSON integer",
        },
    ],
    "deployment_id": DP,
    "revision": 1,
    "public": True,
    "idempotency_retention": "1d",
    "journal_retention": "1d",
    "inactivity_timeout": "1m",
    "abort_timeout": "10m",
    "retry_policy": {
        "initial_interval": "500ms",
        "exponentiation_factor": 2.0,
        "max_attempts": 70,
        "max_interval": "1m",
        "on_max_attempts": "Pause",
    },
}


def test_list(run: Run, fake: FakeAdmin) -> None:
    fake.on("GET", "/services", Reply(200, {"services": [_service("Greeter", DP), COUNTER]}))
    fake.on("GET", "/deployments", Reply(200, {"deployments": [DEPLOYMENT]}))
    result = run("services", "list")
    assert result.exit_code == 0, result.output
    counter = next(line for line in result.stdout.splitlines() if line.startswith("Counter"))
    assert "VirtualObject" in counter and DP in counter and URI in counter and "get, add" in counter
    listed = json.loads(run("services", "list", "-o", "json").stdout)
    assert [s["name"] for s in listed] == ["Counter", "Greeter"]
    assert listed[0] == COUNTER


def test_list_without_services(run: Run, fake: FakeAdmin) -> None:
    fake.on("GET", "/services", Reply(200, {"services": []}))
    result = run("services", "list")
    assert result.exit_code == 0 and "No services" in result.stderr
    assert json.loads(run("services", "list", "-o", "json").stdout) == []


def test_describe(run: Run, fake: FakeAdmin) -> None:
    fake.on("GET", "/services/Counter", Reply(200, COUNTER))
    result = run("services", "describe", "Counter")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "VirtualObject" in out and DP in out
    assert "500ms x2.0 up to 1m, 70 attempts, then pause" in out
    add = next(line for line in out.splitlines() if line.startswith("add"))
    assert "Exclusive" in add and "JSON integer" in add
    assert json.loads(run("services", "describe", "Counter", "-o", "json").stdout) == COUNTER


def test_status(run: Run, fake: FakeAdmin) -> None:
    fake.on("GET", "/services/Greeter", Reply(200, _service("Greeter", DP)))
    fake.on_query(
        "GROUP BY target_service_name, target_handler_name, status",
        [
            {
                "target_service_name": "Greeter",
                "target_handler_name": "greet",
                "status": "backing-off",
                "num_invocations": 2,
                "oldest_at": "2026-11-24T04:58:43.982Z",
                "oldest_invocation": "inv_16rnEpOfB5ax27rRJelwtkvE2ygbtv2Kxf",
            }
        ],
    )
    result = run("services", "status", "Greeter")
    assert result.exit_code == 0, result.output
    line = next(li for li in result.stdout.splitlines() if li.startswith("Greeter"))
    assert "greet" in line and "backing-off" in line and " 2 " in line
    assert "inv_16rnEpOfB5ax27rRJelwtkvE2ygbtv2Kxf" in line
    assert "WHERE target_service_name IN ('Greeter')" in fake.sql()[0]
    [row] = json.loads(run("services", "status", "Greeter", "-o", "json").stdout)
    assert row == {
        "service": "Greeter",
        "handler": "greet",
        "status": "backing-off",
        "count": 2,
        "oldest_at": "2026-11-24T04:58:43.982Z",
        "oldest_invocation": "inv_16rnEpOfB5ax27rRJelwtkvE2ygbtv2Kxf",
    }


def test_status_of_an_unknown_service(run: Run, fake: FakeAdmin) -> None:
    fake.on(
        "GET",
        "/services/Nope",
        Reply(404, {"message": "The requested service 'Nope' does not exist"}),
    )
    result = run("services", "status", "Nope")
    assert result.exit_code == 1
    assert "The requested service 'Nope' does not exist" in result.stderr
