"""Options and safety nets shared by the whole test suite."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from undying.testing import kill_all
from undying.testing.processes import live_processes


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--target",
        choices=("undying", "restate"),
        default="undying",
        help=(
            "server the interop tests run against: undying (default) or the reference "
            "restate-server from node_modules"
        ),
    )


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> str:
    """The server the interop and conformance suites run against."""
    value: str = request.config.getoption("--target")
    return value


@pytest.fixture(scope="session", autouse=True)
def _kill_leftover_processes() -> Iterator[None]:
    """Safety net: kill every process the harness started, even after failed finalizers.

    SIGTERM (e.g. from ``timeout``) is turned into KeyboardInterrupt so that the finalizers
    and the harness's atexit hook run instead of leaving servers behind.
    """
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        kill_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the recent output of every process the harness still runs."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        tails = [proc.tail(30) for proc in live_processes()]
        if tails:
            report.sections.append(("process logs", "\n\n".join(tails)))
