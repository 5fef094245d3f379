"""The ``undying`` group: lazy commands, the admin URL, errors as one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from undying._version import __version__

from .conftest import Run, invoke
from .fake_admin import FakeAdmin, Reply

COMMANDS = ["serve", "dev", "whoami", "deployments", "services", "invocations", "state", "sql"]


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_help_lists_every_command(run: Run) -> None:
    result = run("--help")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line]
    assert listed == COMMANDS
    assert run("--version").output.strip().endswith(__version__)


def test_help_and_admin_commands_import_neither_the_server_nor_rich() -> None:
    code = (
        "import sys\n"
        "from undying.cli.main import cli\n"
        "for args in (['--help'], ['invocations', '--help'], ['state', 'get', '--help']):\n"
        "    try:\n"
        "        cli(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "loaded = [m for m in sys.modules if m.startswith(('undying.server', 'rich'))]\n"
        "print('LOADED', loaded)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout


def test_serve_and_dev_say_how_to_get_the_server_when_it_is_missing() -> None:
    code = (
        "import sys\n"
        "sys.modules['msgspec'] = None  # as if `pip install undying` (no server extra)\n"
        "from undying.cli.main import cli\n"
        "cli(sys.argv[1:])\n"
    )
    for command in ("serve", "dev"):
        out = _python(code, command, "--data-dir", "x")
        assert out.returncode == 1
        assert f"`undying {command}` needs the server" in out.stderr
        assert "pip install 'undying[server]'" in out.stderr
        assert "Traceback" not in out.stderr


def test_an_unreachable_server_is_one_line_with_the_url_and_a_hint_and_exit_code_1() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    out = subprocess.run(
        [sys.executable, "-m", "undying", "invocations", "list", "--admin-url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"Error: cannot reach the admin API at {url} (connection refused)")
    assert "Is `undying serve` running?" in lines[0] and "--admin-url" in lines[0]


def test_a_server_error_shows_its_message(run: Run, fake: FakeAdmin) -> None:
    fake.on(
        "GET",
        "/services/Nope",
        Reply(404, {"message": "The requested service 'Nope' does not exist"}),
    )
    result = run("services", "describe", "Nope")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: The requested service 'Nope' does not exist"
    assert result.stdout == ""


def test_admin_url_from_the_command_then_the_group_then_the_environment(fake: FakeAdmin) -> None:
    fake.on("GET", "/health", Reply(200))
    dead = f"http://127.0.0.1:{_closed_port()}"
    assert invoke(dead, "whoami", "--admin-url", fake.url).exit_code == 0
    assert invoke(dead, "--admin-url", fake.url, "whoami").exit_code == 0
    assert invoke(fake.url, "whoami").exit_code == 0
    assert invoke(fake.url, "--admin-url", dead, "whoami").exit_code == 1
    assert invoke(fake.url, "--admin-url", dead, "whoami", "--admin-url", fake.url).exit_code == 0
    assert sum(1 for r in fake.requests if r.path == "/v4/health") == 4


def test_aliases(run: Run, fake: FakeAdmin) -> None:
    fake.on("GET", "/services", Reply(200, {"services": []}))
    fake.on("GET", "/deployments", Reply(200, {"deployments": []}))
    fake.on_query("pinned_deployment_id", [])
    for alias in ("svc", "dp"):
        assert run(alias, "list").exit_code == 0
    fake.on_query("COUNT(1)", [{"total": 0}])
    fake.on_query("FROM sys_invocation", [])
    assert run("inv", "list").exit_code == 0
    assert run("nope").exit_code == 2


def test_whoami(run: Run, fake: FakeAdmin) -> None:
    fake.on("GET", "/health", Reply(200))
    result = run("whoami")
    assert result.exit_code == 0
    assert fake.url in result.stdout
    assert "1.7.12" in result.stdout and "healthy" in result.stdout
    assert "http://127.0.0.1:8080/" in result.stdout and "using v4" in result.stdout
    result = run("whoami", "-o", "json")
    assert json.loads(result.stdout) == {
        "admin_url": fake.url,
        "ingress_url": "http://127.0.0.1:8080/",
        "server_version": "1.7.12",
        "admin_api_versions": [2, 4],
        "admin_api_version": 4,
        "healthy": True,
    }


def test_whoami_says_when_the_server_is_not_healthy(run: Run, fake: FakeAdmin) -> None:
    fake.on("GET", "/health", Reply(503))
    result = run("whoami")
    assert result.exit_code == 0
    assert "NOT healthy" in result.stdout
