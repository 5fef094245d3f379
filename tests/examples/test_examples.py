"""The examples in ``examples/``, run as they are on a real server (``--target undying|restate``).

Each example file is served on its own (``serve_example.py``) and registered with the module's
server; the tests call them over the ingress and read what their side effects print. The last
test runs ``undying dev examples/app.py``, what ``make run`` runs.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from undying.testing import (
    HttpResponse,
    IngressClient,
    ManagedProcess,
    Server,
    ServiceProcess,
    create_server,
    poll_until,
    python_service,
)

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "examples"
SERVE_EXAMPLE = Path(__file__).with_name("serve_example.py")
EXAMPLES = ("greeter", "counter", "approval", "saga")
#: How long to wait for a line the examples print, or for a status to change.
WAIT = 15.0


@dataclass
class Examples:
    """The module's server and one running deployment per example file."""

    server: Server
    services: dict[str, ServiceProcess]

    def output(self, example: str) -> ManagedProcess:
        """The process serving ``example`` (its stdout has what the side effects print)."""
        process = self.services[example].process
        assert process is not None
        return process

    def call(self, service: str, handler: str, payload: Any = None, **kw: Any) -> HttpResponse:
        return self.server.ingress.call(service, handler, payload, **kw)


def register(server: Server, service: ServiceProcess) -> None:
    resp = server.admin.request("POST", "/deployments", {"uri": service.url})
    assert resp.status == 201, str(resp)


@pytest.fixture(scope="module")
def env(target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Examples]:
    root = tmp_path_factory.mktemp(f"examples-{target}")
    server = create_server(target, root / "data", log_dir=root / "logs")
    services = {
        name: python_service(
            SERVE_EXAMPLE, args=[str(EXAMPLES_DIR / f"{name}.py")], log_dir=root / "logs", name=name
        )
        for name in EXAMPLES
    }
    try:
        server.start()
        for service in services.values():
            service.start()
            register(server, service)
        yield Examples(server, services)
    finally:
        for service in services.values():
            service.stop()
        server.stop()
        if server.running:
            server.kill()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- greeter ---------------------------------------------------------------------------------


def test_greeter_says_hi_after_a_durable_sleep(env: Examples) -> None:
    name = unique("Bob")
    output = env.output("greeter")
    mark = output.mark()

    resp = env.call("Greeter", "greet", {"name": name})

    assert resp.status == 200, str(resp)
    assert resp.json() == {"result": f"You said hi to {name}!"}
    assert resp.elapsed >= 0.9, "the handler sleeps a second"
    notification = output.wait_for_line(
        rf"^Notification (\S+): hi {name}!$", timeout=WAIT, since=mark
    )
    reminder = output.wait_for_line(
        rf"^Reminder (\S+): don't forget {name}!$", timeout=WAIT, since=mark
    )
    assert notification.group(1) == reminder.group(1), "one greeting id throughout"
    uuid.UUID(notification.group(1))


def test_greeter_survives_a_server_crash_during_its_sleep(
    env: Examples, target: str, tmp_path: Path
) -> None:
    """kill -9 of the server during the sleep, restart on the same data dir: the greeting
    arrives, and the notification was sent once."""
    server = create_server(target, tmp_path / "data", log_dir=tmp_path / "logs")
    try:
        server.start()
        register(server, env.services["greeter"])
        name = unique("Carol")
        output = env.output("greeter")
        mark = output.mark()
        invocation_id = server.ingress.send("Greeter", "greet", {"name": name})
        # the sleep comes after the notification's result: once it is journaled, so is that
        journaled_sleep = (
            "SELECT index FROM sys_journal "
            f"WHERE id = '{invocation_id}' AND entry_type = 'Command: Sleep'"
        )
        poll_until(
            lambda: server.admin.query(journaled_sleep) or None,
            timeout=WAIT,
            what=f"{invocation_id} journaled its sleep",
        )
        server.kill()
        reminded = [line for line in output.lines if line.startswith("Reminder") and name in line]
        assert not reminded, "the server was killed after the sleep, not during it"
        server.start()  # same data dir, same ports

        resp = server.ingress.attach(invocation_id, timeout=WAIT)
        assert resp.status == 200, str(resp)
        assert resp.json() == {"result": f"You said hi to {name}!"}
        output.wait_for_line(rf"^Reminder \S+: don't forget {name}!$", timeout=WAIT, since=mark)
        printed = [line for line in output.lines if line.endswith(f" {name}!")]
        assert [line.split()[0] for line in printed] == ["Notification", "Reminder"], printed
    finally:
        server.stop()
        if server.running:
            server.kill()


# -- counter ---------------------------------------------------------------------------------


def test_counter_adds_gets_and_resets_per_key(env: Examples) -> None:
    key, other = unique("apples"), unique("pears")

    assert env.call("Counter", "add", 3, key=key).json() == 3
    assert env.call("Counter", "add", 4, key=key).json() == 7
    assert env.call("Counter", "get", key=key).json() == 7
    assert env.call("Counter", "get", key=other).json() == 0

    resp = env.call("Counter", "reset", key=key)
    assert resp.status == 200, str(resp)
    assert env.call("Counter", "get", key=key).json() == 0
    assert env.call("Counter", "add", 1, key=key).json() == 1


def test_counter_adds_of_one_key_run_one_at_a_time(env: Examples) -> None:
    key = unique("visits")
    ingress = env.server.ingress
    ids = [ingress.send("Counter", "add", 1, key=key) for _ in range(20)]

    seen = sorted(ingress.attach(i, timeout=WAIT).json() for i in ids)

    assert seen == list(range(1, 21)), "each add saw the previous one's count"
    assert env.call("Counter", "get", key=key).json() == 20


# -- approval --------------------------------------------------------------------------------


def start_approval(env: Examples, key: str) -> None:
    output = env.output("approval")
    mark = output.mark()
    env.server.ingress.send(
        "Approval", "run", {"title": "Conference ticket", "amount": 450}, key=key
    )
    output.wait_for_line(rf"^Approval {key}: please decide", timeout=WAIT, since=mark)
    poll_until(
        lambda: True if status_of(env, key) == "pending" else None,
        timeout=WAIT,
        what=f"{key} is pending",
        describe=lambda: status_of(env, key),
    )


def status_of(env: Examples, key: str) -> str:
    resp = env.call("Approval", "status", key=key)
    assert resp.status == 200, str(resp)
    status: str = resp.json()
    return status


def workflow_result(env: Examples, key: str) -> HttpResponse:
    return env.server.ingress.request(
        "GET", f"/restate/workflow/Approval/{key}/attach", timeout=WAIT
    )


def test_approval_status_is_unknown_before_run(env: Examples) -> None:
    assert status_of(env, unique("never-started")) == "unknown"


def test_approval_approved_pays_out(env: Examples) -> None:
    key = unique("exp")
    start_approval(env, key)

    resp = env.call("Approval", "approve", "Enjoy the talk", key=key)

    assert resp.status == 200, str(resp)
    result = workflow_result(env, key)
    assert result.status == 200, str(result)
    assert result.json() == {"approved": True, "note": "Enjoy the talk"}
    assert status_of(env, key) == "paid"
    env.output("approval").wait_for_line(rf"^Approval {key}: paid 450", timeout=WAIT)
    # the decision is made: a second one is refused
    assert env.call("Approval", "reject", "too late", key=key).status == 409
    assert env.call("Approval", "approve", "again", key=key).status == 409


def test_approval_rejected_is_not_paid(env: Examples) -> None:
    key = unique("exp")
    start_approval(env, key)

    resp = env.call("Approval", "reject", "Too pricey", key=key)

    assert resp.status == 200, str(resp)
    result = workflow_result(env, key)
    assert result.status == 200, str(result)
    assert result.json() == {"approved": False, "note": "Too pricey"}
    assert status_of(env, key) == "rejected"
    assert not [line for line in env.output("approval").lines if f"{key}: paid" in line]
    assert env.call("Approval", "approve", "changed my mind", key=key).status == 409


# -- saga ------------------------------------------------------------------------------------

_CONFIRM = "confirm the trip"


def book(env: Examples, traveller: str, card: str = "4242") -> tuple[str, str]:
    """Start booking a trip; returns its invocation id and the awakeable to confirm it with."""
    output = env.output("saga")
    mark = output.mark()
    trip = {"traveller": traveller, "flight": "LH 123", "hotel": "Adlon", "card": card}
    invocation_id = env.server.ingress.send("Trips", "book", trip)
    found = output.wait_for_line(
        rf"^\[{traveller}\] {_CONFIRM}: .*/awakeables/(\S+)/resolve", timeout=WAIT, since=mark
    )
    return invocation_id, found.group(1)


def confirm(env: Examples, awakeable_id: str, answer: bool) -> None:
    resp = env.server.ingress.request(
        "POST",
        f"/restate/awakeables/{awakeable_id}/resolve",
        body=b"true" if answer else b"false",
        headers={"content-type": "application/json"},
    )
    assert resp.status in (200, 202), str(resp)


def trip_steps(env: Examples, traveller: str, last: str) -> list[str]:
    """What the saga printed for ``traveller`` (once ``last`` was printed), booking ids checked."""
    output = env.output("saga")
    output.wait_for_line(rf"^\[{traveller}\] {last}", timeout=WAIT)
    steps, booking_ids = [], set()
    for line in output.lines:
        if not line.startswith(f"[{traveller}] "):
            continue
        text = line.removeprefix(f"[{traveller}] ")
        if text.startswith(_CONFIRM):
            steps.append(_CONFIRM)
            continue
        found = re.fullmatch(r"(.*) \((\S+)\)", text)
        assert found is not None, line
        steps.append(found.group(1))
        booking_ids.add(found.group(2))
    assert len(booking_ids) == 1, f"one booking id throughout: {booking_ids}"
    return steps


def test_saga_books_a_confirmed_trip(env: Examples) -> None:
    traveller = unique("Ada")
    invocation_id, awakeable_id = book(env, traveller)

    confirm(env, awakeable_id, True)

    resp = env.server.ingress.attach(invocation_id, timeout=WAIT)
    assert resp.status == 200, str(resp)
    booking = resp.json()
    assert (booking["flight"], booking["hotel"]) == ("LH 123", "Adlon")
    assert trip_steps(env, traveller, "card 4242 charged") == [
        "flight LH 123 reserved",
        "hotel Adlon reserved",
        _CONFIRM,
        "card 4242 charged",
    ]


@pytest.mark.parametrize(
    ("card", "answer", "status", "message"),
    [
        ("4242", False, 409, "the traveller declined the trip"),
        ("4000000000000000", True, 402, "card 4000000000000000 was declined"),
    ],
    ids=["traveller-declines", "card-declined"],
)
def test_saga_compensates_in_reverse_order_after_a_terminal_error(
    env: Examples, card: str, answer: bool, status: int, message: str
) -> None:
    traveller = unique("Bo")
    invocation_id, awakeable_id = book(env, traveller, card)

    confirm(env, awakeable_id, answer)

    resp = env.server.ingress.attach(invocation_id, timeout=WAIT)
    assert resp.status == status, str(resp)
    assert message in resp.text, str(resp)
    assert trip_steps(env, traveller, "flight LH 123 cancelled") == [
        "flight LH 123 reserved",
        "hotel Adlon reserved",
        _CONFIRM,
        "hotel Adlon cancelled",
        "flight LH 123 cancelled",
    ]


def test_saga_compensates_when_cancelled(env: Examples) -> None:
    traveller = unique("Cy")
    invocation_id, _ = book(env, traveller)

    resp = env.server.admin.invocation_command(invocation_id, "cancel")
    assert resp.status in (200, 202), str(resp)

    result = env.server.ingress.attach(invocation_id, timeout=WAIT)
    assert result.status == 409, str(result)
    assert trip_steps(env, traveller, "flight LH 123 cancelled") == [
        "flight LH 123 reserved",
        "hotel Adlon reserved",
        _CONFIRM,
        "hotel Adlon cancelled",
        "flight LH 123 cancelled",
    ]


# -- make run --------------------------------------------------------------------------------


def test_make_run_serves_every_example(target: str, tmp_path: Path) -> None:
    """``undying dev examples/app.py`` (the Makefile's ``run``): every example, registered."""
    if target != "undying":
        pytest.skip("undying dev runs the undying server; nothing to compare on restate")
    makefile = (ROOT / "Makefile").read_text()
    assert "undying dev examples/app.py" in makefile, "make run serves something else"
    dev = ManagedProcess(
        [sys.executable, "-m", "undying", "dev", str(EXAMPLES_DIR / "app.py")]
        + ["--data-dir", str(tmp_path / "data")]
        + ["--ingress-port", "0", "--admin-port", "0", "--app-port", "0"],
        name="undying-dev",
        log_dir=tmp_path / "logs",
    ).start()
    try:
        ingress = dev.wait_for_line(r"undying is running\s+ingress (http://\S+)", timeout=WAIT)
        services = dev.wait_for_line(r"your services\s+(.*) \(served at", timeout=WAIT)
        assert services.group(1).split(", ") == ["Greeter", "Counter", "Approval", "Trips"]

        # the README's line
        resp = IngressClient(ingress.group(1)).call("Greeter", "greet", {"name": "Bob"})
        assert resp.status == 200, str(resp)
        assert resp.json() == {"result": "You said hi to Bob!"}
        dev.wait_for_line(r"^Reminder \S+: don't forget Bob!$", timeout=WAIT)
    finally:
        assert dev.stop() == 0, dev.tail()
