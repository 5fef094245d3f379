"""Fixtures of the interop suite: one server (``--target undying|restate``) per module, SDK
service processes, the official CLI. Every process is stopped by a finalizer; a session
finalizer kills whatever is left.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from undying.testing import RestateCli, Server

# The suite's helper module sits next to this file; make it importable whatever pytest's
# --import-mode is (test modules import it too).
sys.path.insert(0, str(Path(__file__).parent))

from interop_support import AppFactory, ServerFactory, cli_for


@pytest.fixture(scope="module")
def server_factory(
    target: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerFactory]:
    factory = ServerFactory(target, tmp_path_factory.mktemp(f"{target}-servers"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> Server:
    """One server for the whole module."""
    return server_factory.start()


@pytest.fixture(scope="module")
def app_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppFactory]:
    factory = AppFactory(tmp_path_factory.mktemp("apps"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-home")


@pytest.fixture(scope="module")
def cli(server: Server, cli_home: Path) -> RestateCli:
    """The official CLI pointed at the module's server."""
    return cli_for(server, cli_home)
