"""The official ``restate`` CLI, run non-interactively against a server's admin API."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from undying.testing.paths import restate_cli_argv

__all__ = ["CliResult", "RestateCli"]

_ANSI: Final = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_DEPLOYMENT_ID: Final = re.compile(r"\b(dp_[0-9A-Za-z]+)\b")
_NEW_DEPLOYMENT_ID: Final = re.compile(r"^Deployment ID:\s+(dp_[0-9A-Za-z]+)\b", re.MULTILINE)


@dataclass(frozen=True)
class CliResult:
    """Outcome of one CLI run (ANSI codes stripped from the output)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr

    @property
    def deployment_id(self) -> str | None:
        """The deployment a registration created (its ``Deployment ID:`` line), else the first
        ``dp_…`` id mentioned in the output (e.g. "Deployment already exists with id dp_…").

        A registration that updates services also names their old deployments first.
        """
        found = _NEW_DEPLOYMENT_ID.search(self.output) or _DEPLOYMENT_ID.search(self.output)
        return None if found is None else found.group(1)

    def __str__(self) -> str:
        return (
            f"restate {' '.join(self.args)} -> rc={self.returncode}\n"
            f"--- stdout:\n{self.stdout}\n--- stderr:\n{self.stderr}"
        )


class RestateCli:
    """Runs ``restate`` with ``RESTATE_ADMIN_URL`` set, a private ``HOME`` and ``CI=true``.

    Times are printed in UTC (``TZ=UTC``), so they compare with the server's timestamps.

    Args:
        admin_url: the server's admin API.
        home: an empty directory used as ``HOME`` (no user CLI config is read).
        ingress_url: optional ``RESTATE_INGRESS_URL``.
    """

    def __init__(self, admin_url: str, *, home: Path, ingress_url: str | None = None) -> None:
        self.admin_url = admin_url
        self.ingress_url = ingress_url
        self.home = home

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
        env.update(
            HOME=str(self.home),
            RESTATE_ADMIN_URL=self.admin_url,
            CI="true",
            NO_COLOR="1",
            TERM="dumb",
            TZ="UTC",
        )
        if self.ingress_url is not None:
            env["RESTATE_INGRESS_URL"] = self.ingress_url
        return env

    def run(self, *args: str, timeout: float = 60.0) -> CliResult:
        """Run ``restate ARGS…`` and capture its output (no check of the exit code)."""
        self.home.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        done = subprocess.run(
            [*restate_cli_argv(), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=self.env(),
            cwd=self.home,
            timeout=timeout,
            check=False,
        )
        return CliResult(
            args=tuple(args),
            returncode=done.returncode,
            stdout=_ANSI.sub("", done.stdout.decode("utf-8", "replace")),
            stderr=_ANSI.sub("", done.stderr.decode("utf-8", "replace")),
            elapsed=time.monotonic() - started,
        )

    def register(self, url: str, *, http1: bool = False, force: bool = False) -> CliResult:
        """``restate deployments register URL --yes`` (``--use-http1.1``, ``--force``)."""
        args = ["deployments", "register", url, "--yes"]
        if http1:
            args.append("--use-http1.1")
        if force:
            args.append("--force")
        return self.run(*args)
