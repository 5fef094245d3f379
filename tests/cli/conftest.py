"""Fixtures of the CLI tests: a scripted admin API, and the CLI run in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from undying.cli.main import cli

from .fake_admin import FakeAdmin

Run = Callable[..., Result]


@pytest.fixture
def fake() -> Iterator[FakeAdmin]:
    admin = FakeAdmin().start()
    try:
        yield admin
    finally:
        admin.stop()


def invoke(admin_url: str, *args: str, input: str | None = None, **env: str | None) -> Result:
    """``undying ARGS…`` in-process against ``admin_url`` (no colours, no terminal)."""
    runner = CliRunner()
    environ: dict[str, str | None] = {
        "UNDYING_ADMIN_URL": admin_url,
        "NO_COLOR": "1",
        "COLUMNS": None,
        "FORCE_COLOR": None,
        **env,
    }
    return runner.invoke(cli, list(args), input=input, env=environ, catch_exceptions=False)


@pytest.fixture
def run(fake: FakeAdmin) -> Run:
    """``run(*args, input=None, **env)``: the CLI against the fake admin API."""

    def run(*args: str, input: str | None = None, **env: str | None) -> Result:
        return invoke(fake.url, *args, input=input, **env)

    return run
