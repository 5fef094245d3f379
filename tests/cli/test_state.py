"""``undying state`` against a scripted admin API, and the state version."""

from __future__ import annotations

import json

import pytest

from undying.cli.state import decode_value, state_version

from .conftest import Run
from .fake_admin import FakeAdmin, Reply, Request
from .test_services import COUNTER


def test_the_version_is_restates() -> None:
    # Values restate-server computes (restate's own tests, and the reference run's request).
    assert state_version({}) == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    assert state_version({b"name": b"bob"}) == "tDqA04Lj3_qJ-PgNPTecXDGZgpwy6jm2Ni2BYqJIthM"
    assert state_version({b"b": b"bbb", b"a": b"aaa"}) == (
        "RVM17P6x18Wp-JnzQ01BzmqCvhAunTOQI_az6Px3Zyk"
    )
    assert state_version({b"count": b"1"}) == "c5BzwkDXJZKb3faKSDXzDBnHKylbEnJsnt0tSeeSKps"


def test_decode_value() -> None:
    assert decode_value(b"8") == (8, True)
    assert decode_value(b'{"a": [1]}') == ({"a": [1]}, True)
    assert decode_value(b"plain text") == ("plain text", False)
    assert decode_value(b"\xff\x00") == (None, False)


@pytest.fixture
def world(fake: FakeAdmin) -> FakeAdmin:
    fake.on("GET", "/services/Counter", Reply(200, COUNTER))
    fake.on("GET", "/services/Greeter", Reply(200, {"name": "Greeter", "ty": "Service"}))
    fake.on_query(
        "FROM state WHERE service_name = 'Counter' AND service_key = 'bob'",
        [
            {"key": "count", "value": "38"},  # 8
            {"key": "note", "value": "68656c6c6f"},  # hello (not JSON)
            {"key": "blob", "value": "ff00"},
        ],
    )
    fake.on_query("FROM state WHERE service_name = 'Counter' AND service_key = 'nobody'", [])
    return fake


def test_get(run: Run, world: FakeAdmin) -> None:
    result = run("state", "get", "Counter", "bob")
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line.split(None, 1)[1].strip() for line in result.stdout.splitlines()[2:]
    }
    assert rows == {"blob": "0xff00 (binary)", "count": "8", "note": "hello"}


def test_get_as_json(run: Run, world: FakeAdmin) -> None:
    found = json.loads(run("state", "get", "Counter", "bob", "-o", "json").stdout)
    assert found == {
        "service": "Counter",
        "key": "bob",
        "version": state_version({b"count": b"8", b"note": b"hello", b"blob": b"\xff\x00"}),
        "state": {"blob": None, "count": 8, "note": "hello"},
        "raw": {"blob": "ff00", "count": "38", "note": "68656c6c6f"},
    }


def test_get_empty_and_not_keyed(run: Run, world: FakeAdmin) -> None:
    result = run("state", "get", "Counter", "nobody")
    assert result.exit_code == 0 and "Counter/nobody has no state." in result.stderr
    result = run("state", "get", "Greeter", "x")
    assert result.exit_code == 1
    assert "Greeter is a Service: only virtual objects and workflows have state" in result.stderr


def _posted(world: FakeAdmin) -> list[dict[str, object]]:
    return [r.json() for r in world.sent("POST") if r.route == "/services/Counter/state"]


def test_patch_writes_the_whole_new_state_with_the_version(run: Run, world: FakeAdmin) -> None:
    world.on("POST", "/services/Counter/state", Reply(202))
    patch = json.dumps(
        [
            {"op": "replace", "path": "/count", "value": 41},
            {"op": "add", "path": "/tags", "value": ["a", "b"]},
        ]
    )
    result = run("state", "patch", "Counter", "bob", "--patch", patch, input="y\n")
    assert result.exit_code == 0, result.output
    assert "~ count: 8 -> 41" in result.stderr and '+ tags: ["a", "b"]' in result.stderr
    [body] = _posted(world)
    assert body == {
        "version": state_version({b"count": b"8", b"note": b"hello", b"blob": b"\xff\x00"}),
        "object_key": "bob",
        "new_state": {
            "count": list(b"41"),
            "note": list(b"hello"),  # untouched values keep their bytes
            "blob": [255, 0],
            "tags": list(b'["a","b"]'),
        },
    }
    assert "Updated the state of Counter/bob." in result.stderr
    assert "41" in result.stdout


def test_patch_force_and_from_a_file(run: Run, world: FakeAdmin, tmp_path: object) -> None:
    from pathlib import Path

    world.on("POST", "/services/Counter/state", Reply(202))
    file = Path(str(tmp_path)) / "patch.json"
    file.write_text('[{"op": "remove", "path": "/note"}]')
    result = run("state", "patch", "Counter", "bob", "--patch", f"@{file}", "--force", "-y")
    assert result.exit_code == 0, result.output
    [body] = _posted(world)
    assert "version" not in body
    assert body["new_state"] == {"count": list(b"8"), "blob": [255, 0]}


def test_a_patch_that_does_not_apply(run: Run, world: FakeAdmin) -> None:
    result = run(
        "state",
        "patch",
        "Counter",
        "bob",
        "--patch",
        '[{"op": "replace", "path": "/nope", "value": 1}]',
    )
    assert result.exit_code == 1
    assert "the patch does not apply to Counter/bob" in result.stderr and "nope" in result.stderr
    assert _posted(world) == []
    result = run("state", "patch", "Counter", "bob", "--patch", "not json")
    assert result.exit_code == 2


def test_a_refused_version_shows_the_servers_message(run: Run, world: FakeAdmin) -> None:
    def refuse(req: Request) -> Reply:
        return Reply(409, {"message": "The state was modified concurrently"})

    world.on("POST", "/services/Counter/state", refuse)
    patch = '[{"op": "replace", "path": "/count", "value": 1}]'
    result = run("state", "patch", "Counter", "bob", "--patch", patch, "-y")
    assert result.exit_code == 1
    assert "The state was modified concurrently" in result.stderr


def test_clear(run: Run, world: FakeAdmin) -> None:
    world.on("POST", "/services/Counter/state", Reply(202))
    result = run("state", "clear", "Counter", "bob", input="n\n")
    assert result.exit_code == 1 and _posted(world) == []
    result = run("state", "clear", "Counter", "bob", input="y\n")
    assert result.exit_code == 0, result.output
    [body] = _posted(world)
    assert body["new_state"] == {} and body["object_key"] == "bob" and "version" in body
    assert "Cleared the state of Counter/bob." in result.stderr
