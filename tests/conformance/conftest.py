"""Fixtures of the conformance suite.

- one server of the selected target (``--target undying|restate``) per test module, with the
  three service deployments (Python SDK, TypeScript SDK and undying SDK apps) registered by the
  official CLI;
- the three deployments run once per session and are registered with every module's server;
- ``sdk``: parametrizes a scenario over the SDKs (service names ``Counter`` / ``CounterTs`` /
  ``CounterUd``).

Every process is stopped by a finalizer; a session finalizer kills whatever is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conf_support import SDKS, Apps, Conf, Sdk, start_apps, start_conf


@pytest.fixture(scope="session")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    """The Python, TypeScript and undying SDK deployments, shared by every module."""
    started = start_apps(tmp_path_factory.mktemp("conf-apps"))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def conf(target: str, apps: Apps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conf]:
    """A fresh server for the module, with every deployment registered."""
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
