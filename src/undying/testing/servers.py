"""undying and the reference restate-server behind one interface.

>>> server = create_server("restate", tmp / "data")        # doctest: +SKIP
>>> with server:                                           # doctest: +SKIP
...     server.ingress_url, server.admin_url
...     server.kill()          # kill -9
...     server.restart()       # same data dir, same ports

Both expose ``ingress_url`` / ``admin_url`` (no trailing slash), ``data_dir``, ``start()``,
``stop()`` (graceful, SIGTERM), ``kill()`` (SIGKILL), ``restart()`` and the wall-clock time at
which the current incarnation became ready (``ready_wall``).
"""

from __future__ import annotations

import abc
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Final, Literal, Self

from undying.testing.clients import AdminClient, IngressClient
from undying.testing.httpclient import request
from undying.testing.paths import LOOPBACK, free_ports, restate_server_argv
from undying.testing.processes import ManagedProcess, ProcessExited
from undying.testing.waiting import poll_until

__all__ = [
    "TARGETS",
    "RestateServer",
    "Server",
    "Target",
    "UndyingServer",
    "create_server",
]

Target = Literal["undying", "restate"]
TARGETS: Final[tuple[Target, ...]] = ("undying", "restate")

DEFAULT_START_TIMEOUT: Final = 60.0
DEFAULT_STOP_TIMEOUT: Final = 30.0


class Server(abc.ABC):
    """A durable-execution server process with an ingress and an admin endpoint.

    Args:
        data_dir: the server's persistent state; reused by :meth:`restart`.
        log_dir: where stdout/stderr logs go (default: ``data_dir/../logs``).
        max_body_size: ingress request body limit in bytes (``None``: the server's default).
    """

    target: ClassVar[Target]

    def __init__(
        self,
        data_dir: Path,
        *,
        log_dir: Path | None = None,
        max_body_size: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log_dir = log_dir if log_dir is not None else data_dir.parent / "logs"
        self.max_body_size = max_body_size
        self._process: ManagedProcess | None = None
        self._ingress_url: str | None = None
        self._admin_url: str | None = None
        self.starts = 0
        #: ``time.time()`` when the current incarnation was seen ready.
        self.ready_wall = 0.0
        #: ``time.time()`` when the current incarnation was launched.
        self.started_wall = 0.0

    # -- interface ---------------------------------------------------------------------------

    @property
    def ingress_url(self) -> str:
        if self._ingress_url is None:
            raise RuntimeError(f"{self.target} server was never started")
        return self._ingress_url

    @property
    def admin_url(self) -> str:
        if self._admin_url is None:
            raise RuntimeError(f"{self.target} server was never started")
        return self._admin_url

    @property
    def admin(self) -> AdminClient:
        return AdminClient(self.admin_url)

    @property
    def ingress(self) -> IngressClient:
        return IngressClient(self.ingress_url)

    @property
    def process(self) -> ManagedProcess | None:
        """The current (or last) incarnation."""
        return self._process

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> Self:
        """Launch on ``data_dir`` and block until ready. Returns ``self``."""
        if self.running:
            raise RuntimeError(f"{self.target} server is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.started_wall = time.time()
        proc = self._launch()
        self._process = proc
        try:
            self._await_ready(proc, timeout)
        except BaseException:
            proc.kill()
            raise
        self.ready_wall = time.time()
        return self

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> int | None:
        """Graceful stop (SIGTERM), SIGKILL after ``timeout``. Returns the exit code."""
        if self._process is None or not self._process.running:
            return None if self._process is None else self._process.returncode
        return self._process.stop(timeout)

    def kill(self) -> int | None:
        """``kill -9``: no chance to flush or clean up. Returns the exit code."""
        if self._process is None:
            return None
        return self._process.kill()

    def restart(self, timeout: float = DEFAULT_START_TIMEOUT) -> Self:
        """Stop gracefully if running, then start again on the same data dir and ports."""
        self.stop()
        return self.start(timeout)

    def tail(self) -> str:
        """Recent log output, for failure messages."""
        return "" if self._process is None else self._process.tail()

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} ingress={self._ingress_url} admin={self._admin_url} "
            f"data_dir={self.data_dir} running={self.running}>"
        )

    # -- per implementation ------------------------------------------------------------------

    @abc.abstractmethod
    def _launch(self) -> ManagedProcess:
        """Start the process (not waiting for readiness)."""

    @abc.abstractmethod
    def _await_ready(self, proc: ManagedProcess, timeout: float) -> None:
        """Block until ``proc`` serves ingress and admin; set the URLs."""


def _child_env(**extra: str) -> dict[str, str]:
    """Our environment minus ``RESTATE_*`` variables (they would override the config file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
    env.update(extra)
    return env


class UndyingServer(Server):
    """``python -m undying serve`` on a data dir.

    The first start binds free ports (``--ingress-port 0 --admin-port 0``) and reads them from the
    ready line ``undying ready ingress=URL admin=URL``; restarts pass the same ports explicitly so
    URLs (and registered deployments' view of the server) stay stable.
    """

    target: ClassVar[Target] = "undying"
    READY_LINE: Final = re.compile(r"^undying ready ingress=(http://\S+) admin=(http://\S+)\s*$")

    def __init__(
        self,
        data_dir: Path,
        *,
        log_dir: Path | None = None,
        max_body_size: int | None = None,
        python: str | None = None,
        ingress_port: int = 0,
        admin_port: int = 0,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(data_dir, log_dir=log_dir, max_body_size=max_body_size)
        self.python = python or sys.executable
        self.ingress_port = ingress_port
        self.admin_port = admin_port
        self.extra_args = list(extra_args)

    def argv(self) -> list[str]:
        """The command line of the next start."""
        args = [
            self.python,
            "-m",
            "undying",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--ingress-port",
            str(self.ingress_port),
            "--admin-port",
            str(self.admin_port),
        ]
        if self.max_body_size is not None:
            args += ["--ingress-max-body-size", str(self.max_body_size)]
        return args + self.extra_args

    def _launch(self) -> ManagedProcess:
        return ManagedProcess(
            self.argv(),
            name="undying",
            log_dir=self.log_dir,
            env=_child_env(PYTHONUNBUFFERED="1"),
        ).start()

    def _await_ready(self, proc: ManagedProcess, timeout: float) -> None:
        found = proc.wait_for_line(self.READY_LINE, timeout=timeout)
        self._ingress_url = found.group(1).rstrip("/")
        self._admin_url = found.group(2).rstrip("/")
        self.ingress_port = _port_of(self._ingress_url)
        self.admin_port = _port_of(self._admin_url)


def _port_of(url: str) -> int:
    match = re.search(r":(\d+)$", url)
    if match is None:
        raise ValueError(f"no port in {url!r}")
    return int(match.group(1))


class RestateServer(Server):
    """The reference restate-server from npm, configured for loopback-only ephemeral ports.

    Ports (ingress, admin, node-to-node) are picked once at construction and reused by restarts.
    Readiness: admin ``/health`` answers 200 and ingress ``/restate/health`` answers 200.
    """

    target: ClassVar[Target] = "restate"
    NODE_NAME: Final = "undying-ref"

    def __init__(
        self,
        data_dir: Path,
        *,
        log_dir: Path | None = None,
        max_body_size: int | None = None,
        ingress_port: int | None = None,
        admin_port: int | None = None,
        node_port: int | None = None,
        extra_config: str = "",
    ) -> None:
        super().__init__(data_dir, log_dir=log_dir, max_body_size=max_body_size)
        picked = iter(free_ports(3))
        self.ingress_port = ingress_port or next(picked)
        self.admin_port = admin_port or next(picked)
        self.node_port = node_port or next(picked)
        self.extra_config = extra_config
        self.config_file = data_dir / "restate-config.toml"
        self._ingress_url = f"http://{LOOPBACK}:{self.ingress_port}"
        self._admin_url = f"http://{LOOPBACK}:{self.admin_port}"

    def config_text(self) -> str:
        """The TOML configuration file (keys as accepted by restate-server 1.7.12)."""
        ingress_extra = ""
        if self.max_body_size is not None:
            ingress_extra = f'request-size-limit = "{self.max_body_size} B"\n'
        return (
            f'node-name = "{self.NODE_NAME}"\n'
            f'base-dir = "{self.data_dir}"\n'
            f'bind-ip = "{LOOPBACK}"\n'
            f"bind-port = {self.node_port}\n"
            'listen-mode = "tcp"\n'
            "disable-telemetry = true\n"
            'log-format = "compact"\n'
            "log-disable-ansi-codes = true\n"
            'shutdown-timeout = "10s"\n'
            f"{self.extra_config}\n"
            "[admin]\n"
            f'bind-address = "{LOOPBACK}:{self.admin_port}"\n'
            "\n[ingress]\n"
            f'bind-address = "{LOOPBACK}:{self.ingress_port}"\n'
            f"{ingress_extra}"
        )

    def _launch(self) -> ManagedProcess:
        self.config_file.write_text(self.config_text())
        return ManagedProcess(
            [*restate_server_argv(), "--config-file", str(self.config_file), "--no-logo"],
            name="restate-server",
            log_dir=self.log_dir,
            env=_child_env(),
            cwd=self.data_dir,
        ).start()

    def _await_ready(self, proc: ManagedProcess, timeout: float) -> None:
        def ready() -> bool | None:
            if not proc.running:
                raise ProcessExited(f"restate-server exited ({proc.returncode})\n{proc.tail()}")
            try:
                admin = request("GET", f"{self.admin_url}/health", timeout=2.0)
                if admin.status != 200:
                    return None
                ingress = request("GET", f"{self.ingress_url}/restate/health", timeout=2.0)
            except OSError:
                return None
            return True if ingress.status == 200 else None

        poll_until(ready, timeout=timeout, what="restate-server is ready", describe=proc.tail)


def create_server(
    target: Target | str,
    data_dir: Path,
    *,
    log_dir: Path | None = None,
    max_body_size: int | None = None,
    restate_config: str = "",
) -> Server:
    """A not yet started server of the given kind (``"undying"`` or ``"restate"``).

    Args:
        restate_config: extra TOML for the reference server's configuration file (top-level
            keys and whole tables, e.g. ``[worker]\ncleanup-interval = "1s"``); undying has no
            equivalent and ignores it.
    """
    if target == "undying":
        return UndyingServer(data_dir, log_dir=log_dir, max_body_size=max_body_size)
    if target == "restate":
        return RestateServer(
            data_dir, log_dir=log_dir, max_body_size=max_body_size, extra_config=restate_config
        )
    raise ValueError(f"`target` must be one of {TARGETS}, got {target!r}")
