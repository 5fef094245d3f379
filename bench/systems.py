"""A system under test: a server (undying or restate-server), its own SDK service process serving
``bench/services.py``, registered with the official CLI.

Built on the test harness (:mod:`undying.testing`); nothing here changes how the servers are
configured: both run with their defaults on free ephemeral loopback ports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.services import SERVICE_NAME
from undying.testing import RestateCli, Server, ServiceProcess, create_server, python_service
from undying.testing.httpclient import request
from undying.testing.servers import RestateServer, UndyingServer

__all__ = ["SERVICE_SCRIPT", "System"]

SERVICE_SCRIPT = Path(__file__).resolve().parent / "services.py"


class System:
    """``name`` is ``"undying"`` or ``"restate"``; everything lives under ``root``."""

    def __init__(self, name: str, root: Path, data_root: Path) -> None:
        self.name = name
        self.root = root
        self.log_dir = root / "logs"
        self.server: Server = create_server(name, data_root / name, log_dir=self.log_dir)
        self.service: ServiceProcess = python_service(
            SERVICE_SCRIPT, log_dir=self.log_dir, name=f"sdk-{name}"
        )
        self.cli = RestateCli("", home=root / "cli-home")
        self.deployment_id: str | None = None
        self.register_output = ""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self.server.start()
        self.service.start()
        self.cli = RestateCli(
            self.server.admin_url, home=self.root / "cli-home", ingress_url=self.server.ingress_url
        )
        result = self.cli.register(self.service.url)
        self.register_output = result.output
        if result.returncode != 0:
            raise RuntimeError(f"registration with {self.name} failed:\n{result}")
        self.deployment_id = result.deployment_id

    def stop(self) -> None:
        for part in (self.service, self.server):
            try:
                part.stop()
            finally:
                if part.running:
                    part.kill()

    # -- calls ----------------------------------------------------------------------------------

    def url(self, handler: str) -> str:
        return f"{self.server.ingress_url}/{SERVICE_NAME}/{handler}"

    def check(self) -> None:
        """One call of each handler, answers checked (also waits until the service is routable)."""
        for handler, n, expected in (("noop", 0, "ok"), ("steps", 3, "done")):
            resp = request(
                "POST",
                self.url(handler),
                body=json.dumps(n).encode(),
                headers={"content-type": "application/json"},
                timeout=30.0,
            )
            if resp.status != 200 or json.loads(resp.body) != expected:
                raise RuntimeError(
                    f"{self.name}: {handler}({n}) answered {resp.status} {resp.body[:300]!r}"
                )

    # -- facts ----------------------------------------------------------------------------------

    @property
    def server_pid(self) -> int:
        proc = self.server.process
        if proc is None:
            raise RuntimeError(f"{self.name} server is not running")
        return proc.pid

    @property
    def sdk_pid(self) -> int:
        proc = self.service.process
        if proc is None:
            raise RuntimeError(f"{self.name} SDK service is not running")
        return proc.pid

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "ingress_url": self.server.ingress_url,
            "admin_url": self.server.admin_url,
            "deployment_url": self.service.url,
            "deployment_id": self.deployment_id,
            "server_pid": self.server_pid,
            "sdk_pid": self.sdk_pid,
            "sdk_argv": self.service.argv,
            "logs": str(self.log_dir),
        }
        if isinstance(self.server, UndyingServer):
            info["server_argv"] = self.server.argv()
        if isinstance(self.server, RestateServer):
            info["server_config"] = self.server.config_text()
        return info

    def log_problems(self, limit: int = 20) -> dict[str, Any]:
        """Warning/error lines of the server and SDK logs (count and the last ``limit``)."""
        out: dict[str, Any] = {}
        for path in sorted(self.log_dir.glob("*.log")):
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            bad = [
                line
                for line in lines
                if any(
                    word in line
                    for word in ("WARN", "ERROR", "Error", "Traceback", "CRITICAL", "panicked")
                )
            ]
            out[path.name] = {"lines": len(lines), "problems": len(bad), "last": bad[-limit:]}
        return out

    def data_size_mib(self) -> float:
        total = 0
        for path in self.server.data_dir.rglob("*"):
            try:
                if path.is_file():
                    total += path.stat().st_size
            except OSError:
                continue
        return round(total / 2**20, 1)
