"""Fixtures of the /query tests."""

from __future__ import annotations

import asyncio

import pytest
from query_world import World, populate


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The reference data set, written once per test module."""
    path = tmp_path_factory.mktemp("query") / "undying.db"
    return asyncio.run(populate(path))
