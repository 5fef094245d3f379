"""Service deployments (SDK apps) as separate processes on free loopback ports.

A service program binds ``127.0.0.1`` on ``$SERVICE_PORT`` (0 or unset: any free port) and,
once it accepts connections, prints exactly one line::

    service listening on 127.0.0.1:PORT

Python programs get this from :func:`undying.testing.asgi.serve_asgi`; Node programs print it
themselves. :meth:`ServiceProcess.restart` passes the previous port back in ``$SERVICE_PORT``,
so the registered deployment URL stays valid.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, Self

from undying.testing.paths import LOOPBACK, node_binary
from undying.testing.processes import ManagedProcess

__all__ = [
    "READY_LINE",
    "ServiceProcess",
    "node_service",
    "python_service",
    "ready_line",
]

READY_LINE: Final = re.compile(r"^service listening on 127\.0\.0\.1:(\d+)\s*$")
DEFAULT_READY_TIMEOUT: Final = 30.0


def ready_line(port: int) -> str:
    """The line a service program prints when it accepts connections on ``port``."""
    return f"service listening on {LOOPBACK}:{port}"


class ServiceProcess:
    """A running service deployment.

    Args:
        argv: the command.
        name: label for logs.
        log_dir: log directory.
        env: extra environment variables (added to ours).
        stop_signal: graceful stop signal. The Python SDK app replaces SIGTERM's handler on its
            first request, so Python services are stopped with SIGINT.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.argv = list(argv)
        self.name = name
        self.log_dir = log_dir
        self.extra_env = dict(env or {})
        self.stop_signal = stop_signal
        self.port = 0
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The deployment URL to register (``http://127.0.0.1:PORT/``)."""
        if not self.port:
            raise RuntimeError(f"{self.name} was never started")
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT) -> Self:
        """Launch and wait for the ready line."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        env = {**os.environ, **self.extra_env, "SERVICE_PORT": str(self.port)}
        env.setdefault("PYTHONUNBUFFERED", "1")
        proc = ManagedProcess(
            self.argv,
            name=self.name,
            log_dir=self.log_dir,
            env=env,
            stop_signal=self.stop_signal,
        ).start()
        self._process = proc
        try:
            found = proc.wait_for_line(READY_LINE, timeout=timeout)
        except BaseException:
            proc.kill()
            raise
        self.port = int(found.group(1))
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """Graceful stop; SIGKILL after ``timeout``."""
        if self._process is None or not self._process.running:
            return None if self._process is None else self._process.returncode
        return self._process.stop(timeout)

    def kill(self) -> int | None:
        if self._process is None:
            return None
        return self._process.kill()

    def restart(self, timeout: float = DEFAULT_READY_TIMEOUT) -> Self:
        """Stop, then start again on the same port."""
        self.stop()
        return self.start(timeout)

    def tail(self) -> str:
        return "" if self._process is None else self._process.tail()

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ServiceProcess {self.name} port={self.port} running={self.running}>"


def python_service(
    script: Path,
    *,
    log_dir: Path,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    python: str | None = None,
) -> ServiceProcess:
    """A Python service program (not started). Stopped with SIGINT (see :class:`ServiceProcess`)."""
    return ServiceProcess(
        [python or sys.executable, str(script), *args],
        name=name or script.stem,
        log_dir=log_dir,
        env=env,
        stop_signal=signal.SIGINT,
    )


def node_service(
    script: Path,
    *,
    log_dir: Path,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> ServiceProcess:
    """A Node (ESM ``.mjs``) service program run with the project's Node 22 (not started)."""
    return ServiceProcess(
        [str(node_binary()), str(script), *args],
        name=name or script.stem,
        log_dir=log_dir,
        env=env,
        stop_signal=signal.SIGTERM,
    )
