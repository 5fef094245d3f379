"""Fixtures of the chaos suite: a server of the selected target (``--target``) on a data dir of
its own, the chaos SDK app (a separate process that stays up while the server is killed), the
app registered with the official CLI, and the run's seed.

The seed comes from ``$UNDYING_CHAOS_SEED`` if set (to replay a failed run), else it is random;
it is printed and attached to any failure.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from undying.testing import RestateCli, Server, ServiceProcess, create_server, python_service

SERVICES_DIR = Path(__file__).parent / "services"


@dataclass
class ChaosEnv:
    server: Server
    app: ServiceProcess
    effects_log: Path
    root: Path


@pytest.fixture
def chaos_seed() -> int:
    env = os.environ.get("UNDYING_CHAOS_SEED")
    return int(env) if env else random.SystemRandom().randrange(1, 2**31)


@pytest.fixture
def chaos_env(target: str, tmp_path: Path) -> Iterator[ChaosEnv]:
    server = create_server(target, tmp_path / "data", log_dir=tmp_path / "logs")
    effects = tmp_path / "effects.jsonl"
    app = python_service(
        SERVICES_DIR / "chaos_app.py",
        log_dir=tmp_path / "logs",
        name="chaos-app",
        env={"EFFECTS_LOG": str(effects)},
    )
    try:
        server.start()
        app.start()
        cli = RestateCli(server.admin_url, home=tmp_path / "cli-home")
        registered = cli.register(app.url)
        assert registered.returncode == 0, str(registered)
        yield ChaosEnv(server, app, effects, tmp_path)
    finally:
        try:
            app.stop()
            server.stop()
        finally:
            if app.running:
                app.kill()
            if server.running:
                server.kill()
