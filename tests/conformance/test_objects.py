"""Virtual objects: K/V state, eager and lazy state, exclusive handlers serialized per key,
shared handlers running alongside, state through the admin API, SQL and the CLI."""

from __future__ import annotations

import json
import threading

import pytest

from undying.testing import HttpResponse

from .conf_support import PY, Conf, Sdk, unique

pytestmark = pytest.mark.conformance

#: How long ``hold`` keeps an object key locked in the serialization scenarios.
HOLD_MS = 1500


def test_state_get_set(conf: Conf, sdk: Sdk) -> None:
    key = unique("kv")
    assert conf.ok(sdk, "Counter", "get", key=key) == 0
    assert conf.ok(sdk, "Counter", "add", 5, key=key) == 5
    assert conf.ok(sdk, "Counter", "add", 3, key=key) == 8
    assert conf.ok(sdk, "Counter", "get", key=key) == 8
    # another key of the same object has its own state
    assert conf.ok(sdk, "Counter", "get", key=key + "-other") == 0


def test_state_keys_clear_and_clear_all(conf: Conf, sdk: Sdk) -> None:
    key = unique("keys")
    for name, value in (("b", "x"), ("a", 1), ("c", {"n": [1, 2]})):
        assert conf.ok(sdk, "Counter", "put", {"key": name, "value": value}, key=key) is None
    assert conf.ok(sdk, "Counter", "keys", key=key) == ["a", "b", "c"]
    assert conf.ok(sdk, "Counter", "read", "c", key=key) == {"n": [1, 2]}
    assert conf.ok(sdk, "Counter", "clear", "b", key=key) is None
    assert conf.ok(sdk, "Counter", "read", "b", key=key) is None
    assert conf.ok(sdk, "Counter", "keys", key=key) == ["a", "c"]
    assert conf.ok(sdk, "Counter", "clear_all", key=key) is None
    assert conf.ok(sdk, "Counter", "keys", key=key) == []
    assert conf.ok(sdk, "Counter", "read", "a", key=key) is None


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_eager_and_lazy_state(conf: Conf, sdk: Sdk, lazy: bool) -> None:
    """Same results either way; the journal shows how the state was read."""
    service = "LazyCounter" if lazy else "Counter"
    assert conf.admin.service(sdk.svc(service))["enable_lazy_state"] is lazy
    key = unique("lazy" if lazy else "eager")
    assert conf.ok(sdk, service, "add", 2, key=key) == 2
    resp = conf.call(sdk, service, "add", 3, key=key)
    assert resp.status == 200, str(resp)
    assert resp.json() == 5
    assert conf.ok(sdk, service, "keys", key=key) == ["count"]
    invocation_id = resp.header("x-restate-id")
    assert invocation_id is not None
    types = [row["entry_type"] for row in conf.journal(invocation_id)]
    expected = "Command: GetLazyState" if lazy else "Command: GetEagerState"
    assert expected in types, types
    other = "Command: GetEagerState" if lazy else "Command: GetLazyState"
    assert other not in types, types


def test_exclusive_calls_wait_in_the_inbox(conf: Conf, sdk: Sdk) -> None:
    key = unique("inbox")
    first = conf.send(sdk, "Counter", "hold", {"tag": "A", "ms": HOLD_MS}, key=key)
    second = conf.send(sdk, "Counter", "append", "B", key=key)
    # B is queued behind A (Restate's "pending" = inboxed) while A holds the key
    conf.wait_status(second, {"pending"}, timeout=HOLD_MS / 1000)
    assert conf.status(first) != "completed"
    resp = conf.ingress.attach(second)
    assert resp.status == 200, str(resp)
    assert resp.json() == ["A", "B"]
    assert conf.ingress.attach(first).json() == ["A"]


def test_blocking_call_waits_for_the_running_exclusive_handler(conf: Conf, sdk: Sdk) -> None:
    key = unique("serial")
    first = conf.send(sdk, "Counter", "hold", {"tag": "A", "ms": HOLD_MS}, key=key)
    conf.wait_journal_entry(first, "Command: Sleep")
    resp = conf.call(sdk, "Counter", "append", "B", key=key)
    assert resp.status == 200, str(resp)
    assert resp.json() == ["A", "B"]
    assert conf.status(first) == "completed"


def test_shared_handler_runs_while_exclusive_holds_the_key(conf: Conf, sdk: Sdk) -> None:
    key = unique("shared")
    conf.ok(sdk, "Counter", "append", "before", key=key)
    first = conf.send(sdk, "Counter", "hold", {"tag": "A", "ms": 3 * HOLD_MS}, key=key)
    conf.wait_journal_entry(first, "Command: Sleep")
    assert conf.ok(sdk, "Counter", "log", key=key) == ["before"]
    assert conf.ok(sdk, "Counter", "get", key=key) == 0
    assert conf.status(first) != "completed"
    assert conf.ingress.attach(first).json() == ["before", "A"]


def test_other_keys_are_not_blocked(conf: Conf, sdk: Sdk) -> None:
    key = unique("lockA")
    first = conf.send(sdk, "Counter", "hold", {"tag": "A", "ms": 3 * HOLD_MS}, key=key)
    conf.wait_journal_entry(first, "Command: Sleep")
    assert conf.ok(sdk, "Counter", "append", "B", key=key + "-other") == ["B"]
    assert conf.status(first) != "completed"
    assert conf.ingress.attach(first).json() == ["A"]


def test_exclusive_handlers_serialize_concurrent_callers(conf: Conf, sdk: Sdk) -> None:
    """20 concurrent blocking ``append`` calls on one key: each sees all earlier ones."""
    key = unique("concurrent")
    results: dict[int, HttpResponse] = {}

    def one(i: int) -> None:
        results[i] = conf.call(sdk, "Counter", "append", f"t{i}", key=key)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logs = sorted((r.json() for r in results.values()), key=len)
    assert [len(log) for log in logs] == list(range(1, 21))
    for shorter, longer in zip(logs, logs[1:], strict=False):
        assert longer[: len(shorter)] == shorter
    assert sorted(logs[-1]) == sorted(f"t{i}" for i in range(20))


def test_state_visible_in_sql(conf: Conf, sdk: Sdk) -> None:
    key = unique("sql")
    conf.ok(sdk, "Counter", "add", 7, key=key)
    conf.ok(sdk, "Counter", "put", {"key": "name", "value": "Bob"}, key=key)
    rows = conf.query(
        "SELECT service_name, service_key, key, value_utf8, value, value_length FROM state "
        f"WHERE service_name = '{sdk.svc('Counter')}' AND service_key = '{key}' ORDER BY key"
    )
    assert [r["key"] for r in rows] == ["count", "name"]
    count, name = rows
    assert count["service_name"] == sdk.svc("Counter")
    assert count["service_key"] == key
    assert count["value_utf8"] == "7"
    assert count["value"] == b"7".hex()  # binary columns are hex strings in JSON rows
    assert count["value_length"] == 1
    assert json.loads(name["value_utf8"]) == "Bob"


def test_state_edited_through_admin_api(conf: Conf, sdk: Sdk) -> None:
    key = unique("admin-state")
    conf.ok(sdk, "Counter", "add", 1, key=key)
    resp = conf.admin.set_state(sdk.svc("Counter"), key, {"count": b"41", "extra": b'"x"'})
    assert resp.status == 202, str(resp)
    assert resp.body == b""
    assert conf.ok(sdk, "Counter", "get", key=key) == 41
    assert conf.ok(sdk, "Counter", "add", 1, key=key) == 42
    assert conf.ok(sdk, "Counter", "keys", key=key) == ["count", "extra"]
    # replacing with an empty state clears every key
    resp = conf.admin.set_state(sdk.svc("Counter"), key, {})
    assert resp.status == 202, str(resp)
    assert conf.ok(sdk, "Counter", "keys", key=key) == []


def test_admin_state_of_unknown_service_is_404(conf: Conf) -> None:
    resp = conf.admin.set_state("NoSuchObject", "k", {"a": b"1"})
    assert resp.status == 404, str(resp)
    assert resp.json() == {
        "message": "The requested service 'NoSuchObject' does not exist",
        "restate_code": None,
    }


def test_cli_state_get_patch_clear(conf: Conf) -> None:
    sdk = PY
    key = unique("cli-state")
    conf.ok(sdk, "Counter", "add", 8, key=key)
    got = conf.cli.run("state", "get", "Counter", key)
    assert got.returncode == 0, str(got)
    assert "count" in got.stdout and "8" in got.stdout, str(got)

    patch = json.dumps([{"op": "replace", "path": "/count", "value": 41}])
    patched = conf.cli.run("state", "patch", "Counter", key, "--patch", patch, "--yes")
    assert patched.returncode == 0, str(patched)
    assert conf.ok(sdk, "Counter", "get", key=key) == 41

    cleared = conf.cli.run("state", "clear", f"Counter/{key}", "--yes")
    assert cleared.returncode == 0, str(cleared)
    assert conf.ok(sdk, "Counter", "keys", key=key) == []
    assert conf.state("Counter", key) == {}
