"""Options shared by the whole test suite."""

from __future__ import annotations

import pytest


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
