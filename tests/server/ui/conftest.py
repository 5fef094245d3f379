"""Fixtures of the web UI tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The helper modules sit next to this file; make them importable whatever the import mode.
sys.path.insert(0, str(Path(__file__).parent))

from ui_artifacts import ARTIFACTS
from ui_world import UiWorld


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    where = config.stash.get(ARTIFACTS, None)
    if where is not None:
        terminalreporter.write_line(f"web UI screenshots: {where}")


@pytest.fixture(scope="module")
def world() -> Iterator[UiWorld]:
    """One in-process server with every test service and invocation, per test module."""
    w = UiWorld().start()
    try:
        yield w
    finally:
        w.stop()
