"""Helpers of the interop suite: server and service factories, registration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from undying.testing import (
    EffectsLog,
    RestateCli,
    Server,
    ServiceProcess,
    create_server,
    node_service,
    python_service,
)

SERVICES_DIR = Path(__file__).parent / "services"
#: Ingress request body limit given to both servers (restate: ``[ingress] request-size-limit``;
#: undying: ``--ingress-max-body-size``).
MAX_BODY_SIZE = 1024 * 1024

AppKind = Literal["python", "typescript", "undying", "misbehaving"]


class ServerFactory:
    """Starts servers of the selected target under one directory and stops them all at the end."""

    def __init__(self, target: str, root: Path) -> None:
        self.target = target
        self.root = root
        self.servers: list[Server] = []

    def start(self, name: str = "server") -> Server:
        base = self.root / name
        server = create_server(
            self.target, base / "data", log_dir=base / "logs", max_body_size=MAX_BODY_SIZE
        )
        self.servers.append(server)
        server.start()
        return server

    def close(self) -> None:
        for server in self.servers:
            try:
                server.stop()
            finally:
                if server.running:
                    server.kill()


@dataclass
class App:
    """A running service deployment and the effects log its side effects go to."""

    kind: AppKind
    service: ServiceProcess
    effects: EffectsLog

    @property
    def url(self) -> str:
        return self.service.url


class AppFactory:
    """Starts service deployments (official Python and TypeScript SDKs, the undying SDK,
    misbehaving) as processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.apps: list[App] = []

    def start(self, kind: AppKind, name: str | None = None) -> App:
        name = name or kind
        logs = self.root / "logs"
        effects = self.root / f"{name}.effects.jsonl"
        env = {"EFFECTS_LOG": str(effects)}
        if kind == "python":
            service = python_service(SERVICES_DIR / "py_app.py", log_dir=logs, name=name, env=env)
        elif kind == "typescript":
            service = node_service(SERVICES_DIR / "ts_app.mjs", log_dir=logs, name=name, env=env)
        elif kind == "undying":
            service = python_service(SERVICES_DIR / "ud_app.py", log_dir=logs, name=name, env=env)
        else:
            service = python_service(
                SERVICES_DIR / "misbehaving.py", log_dir=logs, name=name, env=env
            )
        app = App(kind, service, EffectsLog(effects))
        self.apps.append(app)
        service.start()
        return app

    def close(self) -> None:
        for app in self.apps:
            try:
                app.service.stop()
            finally:
                if app.service.running:
                    app.service.kill()


def cli_for(server: Server, home: Path) -> RestateCli:
    return RestateCli(server.admin_url, home=home, ingress_url=server.ingress_url)


def register(cli: RestateCli, app: App, *, http1: bool = False) -> str:
    """Register ``app`` with the CLI; returns the deployment id."""
    result = cli.register(app.url, http1=http1)
    assert result.returncode == 0, str(result)
    deployment_id = result.deployment_id
    assert deployment_id is not None, str(result)
    return deployment_id
