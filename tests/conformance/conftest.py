"""Fixtures of the conformance suite.

- one server of the selected target (``--target undying|restate``) per test module, with both
  service deployments (Python SDK and TypeScript SDK apps) registered by the official CLI;
- the two deployments run once per session and are registered with every module's server;
- ``sdk``: parametrizes a scenario over both SDKs (service names ``Counter`` / ``CounterTs``).

Every process is stopped by a finalizer; a session finalizer kills whatever is left.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from undying.testing import kill_all
from undying.testing.processes import live_processes

from .conf_support import SDKS, Apps, Conf, Sdk, start_apps, start_conf


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> str:
    value: str = request.config.getoption("--target")
    return value


@pytest.fixture(scope="session", autouse=True)
def _kill_leftover_processes() -> Iterator[None]:
    """Kill every process the harness started, even after failed finalizers.

    SIGTERM (e.g. from ``timeout``) becomes KeyboardInterrupt so finalizers still run.
    """
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        kill_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the recent output of every process still alive."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        tails = [proc.tail(30) for proc in live_processes()]
        if tails:
            report.sections.append(("conformance process logs", "\n\n".join(tails)))


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
