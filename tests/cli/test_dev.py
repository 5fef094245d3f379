"""``undying dev app.py``: server, app and registration in one process tree that Ctrl-C stops
whole, whether the signal reaches the whole process group (a terminal's Ctrl-C) or only the
``undying dev`` process (``kill -INT``), and even during start-up."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from undying.testing import IngressClient, ManagedProcess, poll_until

from .conftest import invoke

APP = Path(__file__).with_name("cli_app.py")
WAIT = 60.0


def _stat(pid: int) -> tuple[int, str, int] | None:
    """``(ppid, state, start time)`` of a live process, ``None`` once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid -> start time (tells a reused pid apart)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _stat(int(entry))) is not None:
            children.setdefault(found[0], []).append(int(entry))
            starts[int(entry)] = found[2]
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out[child] = starts[child]
            todo.append(child)
    return out


def _survivors(processes: dict[int, int]) -> list[int]:
    alive = []
    for pid, start in processes.items():
        found = _stat(pid)
        if found is not None and found[1] != "Z" and found[2] == start:
            alive.append(pid)
    return alive


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[ManagedProcess]:
    proc = ManagedProcess(
        [sys.executable, "-m", "undying", "dev", str(APP), "--data-dir", str(tmp_path / "data")]
        + ["--ingress-port", "0", "--admin-port", "0", "--app-port", "0"],
        name="undying-dev",
        log_dir=tmp_path / "logs",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ).start()
    try:
        yield proc
    finally:
        proc.kill()  # the safety net; the tests check the tree ended before this


def _wait_until_running(dev: ManagedProcess) -> tuple[str, str]:
    found = dev.wait_for_line(
        r"undying is running\s+ingress (http://\S+)\s+admin (http://\S+)", timeout=WAIT
    )
    return found.group(1), found.group(2)


def _tree_of(dev: ManagedProcess) -> dict[int, int]:
    tree = poll_until(
        lambda: _descendants(dev.pid) or None, timeout=WAIT, what="undying dev starts the app"
    )
    return {dev.pid: _stat(dev.pid)[2], **tree}  # type: ignore[index]


def _interrupt(dev: ManagedProcess, whole_group: bool, sig: signal.Signals = signal.SIGINT) -> None:
    if whole_group:
        os.killpg(dev.pid, sig)
    else:
        os.kill(dev.pid, sig)


def _assert_all_stop(dev: ManagedProcess, tree: dict[int, int]) -> None:
    poll_until(
        lambda: _survivors(tree) == [] or None,
        timeout=WAIT,
        what="every process of the tree has exited",
        describe=lambda: f"still alive: {_survivors(tree)}\n{dev.tail()}",
    )


@pytest.mark.parametrize("whole_group", [True, False], ids=["terminal-ctrl-c", "kill-int"])
def test_ctrl_c_stops_the_whole_tree(dev: ManagedProcess, whole_group: bool) -> None:
    ingress, admin = _wait_until_running(dev)
    tree = _tree_of(dev)
    assert len(tree) >= 2  # undying dev and the app it serves
    # it all works: the app is registered and answers through the server
    resp = IngressClient(ingress).call("Greeter", "greet", {"name": "Dev"})
    assert resp.status == 200 and resp.json() == "Hello Dev!"
    assert "Greeter" in invoke(admin, "services", "list").stdout

    _interrupt(dev, whole_group)
    _assert_all_stop(dev, tree)
    assert dev.wait(WAIT) == 0, dev.tail()


def test_sigterm_stops_the_whole_tree(dev: ManagedProcess) -> None:
    _wait_until_running(dev)
    tree = _tree_of(dev)
    _interrupt(dev, whole_group=False, sig=signal.SIGTERM)
    _assert_all_stop(dev, tree)


def test_ctrl_c_during_start_up_stops_the_whole_tree(dev: ManagedProcess) -> None:
    tree = _tree_of(dev)  # the app is started first, then the server
    _interrupt(dev, whole_group=False)
    _assert_all_stop(dev, tree)
    assert not any("undying is running" in line for line in dev.lines), "not during start-up"


def test_kill_9_of_undying_dev_does_not_leave_the_app_behind(dev: ManagedProcess) -> None:
    _wait_until_running(dev)
    tree = _tree_of(dev)
    os.kill(dev.pid, signal.SIGKILL)
    _assert_all_stop(dev, tree)


def _dev(tmp_path: Path, app: Path) -> ManagedProcess:
    return ManagedProcess(
        [sys.executable, "-m", "undying", "dev", str(app), "--data-dir", str(tmp_path / "data")]
        + ["--ingress-port", "0", "--admin-port", "0", "--app-port", "0"],
        name="undying-dev-2",
        log_dir=tmp_path / "logs",
    ).start()


def test_an_app_that_cannot_start_stops_everything(tmp_path: Path) -> None:
    app = tmp_path / "broken.py"
    app.write_text("import sys\nsys.exit(3)\n")
    proc = _dev(tmp_path, app)
    try:
        assert proc.wait(WAIT) == 1
        assert "the service app exited with status 3" in proc.stderr_log.read_text()
    finally:
        proc.kill()


def test_an_app_that_dies_stops_everything(tmp_path: Path) -> None:
    app = tmp_path / "dying.py"
    app.write_text(
        "import os\n"
        "import undying\n"
        "svc = undying.Service('Dying')\n"
        "@svc.handler()\n"
        "async def die(ctx: undying.Context) -> None:\n"
        "    os._exit(5)\n"
        "app = undying.app([svc])\n"
    )
    proc = _dev(tmp_path, app)
    try:
        ingress, _ = _wait_until_running(proc)
        tree = _tree_of(proc)
        IngressClient(ingress).send("Dying", "die")
        _assert_all_stop(proc, tree)
        assert proc.wait(WAIT) == 1
        assert "the service app exited with status 5" in proc.stderr_log.read_text()
    finally:
        proc.kill()
