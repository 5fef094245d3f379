"""Fixtures of the /query tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from query_world import World, populate
from reference_world import Live, live_server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The reference data set, written once per test module."""
    path = tmp_path_factory.mktemp("query") / "undying.db"
    return asyncio.run(populate(path))


@pytest.fixture(scope="package")
def live(target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server of the selected target with invocations in every state (shared by the
    dual-target modules)."""
    with live_server(target, tmp_path_factory.mktemp(f"sql-{target}")) as state:
        yield state
