"""Fixtures of the conformance suite.

- one server of the selected target (``--target undying|restate``) per test module, with both
  service deployments (Python SDK and TypeScript SDK apps) registered by the official CLI;
- the two deployments run once per session and are registered with every module's server;
- ``sdk``: parametrizes a scenario over both SDKs (service names ``Counter`` / ``CounterTs``).

Every process is stopped by a finalizer; a session finalizer kills whatever is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conf_support import SDKS, Apps, Conf, Sdk, start_apps, start_conf


@pytest.fixture(scope="session")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    """The Python and TypeScript deployments, shared by every module."""
    started = start_apps(tmp_path_factory.mktemp("conf-apps"))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def conf(target: str, apps: Apps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conf]:
    """A fresh server for the module, with both deployments registered."""
    root: Path = tmp_path_factory.mktemp(f"conf-{target}")
    env = start_conf(target, root, apps)
    try:
        yield env
    finally:
        env.close()


@pytest.fixture(params=SDKS, ids=lambda s: s.name)
def sdk(request: pytest.FixtureRequest) -> Sdk:
    value: Sdk = request.param
    return value
