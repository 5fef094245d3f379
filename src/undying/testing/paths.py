"""Where the external tools live, and free loopback ports.

The official Restate packages (server, CLI, TypeScript SDK) and Node 22 come from the project's
``node_modules`` (installed by ``make setup``). It is found from ``$UNDYING_NODE_MODULES``, else
by walking up from the working directory, else from this file's location.
"""

from __future__ import annotations

import os
import platform
import socket
from functools import cache
from pathlib import Path

__all__ = [
    "LOOPBACK",
    "free_port",
    "free_ports",
    "node_binary",
    "node_modules",
    "restate_cli_argv",
    "restate_server_argv",
]

LOOPBACK = "127.0.0.1"


@cache
def node_modules() -> Path:
    """The ``node_modules`` directory holding ``@restatedev/*`` and ``node``."""
    env = os.environ.get("UNDYING_NODE_MODULES")
    if env:
        return Path(env)
    starts = [Path.cwd(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / "node_modules"
            if (candidate / "@restatedev").is_dir():
                return candidate
    raise FileNotFoundError(
        "node_modules with @restatedev packages not found (run `make setup`, "
        "or set UNDYING_NODE_MODULES)"
    )


def node_binary() -> Path:
    """Node 22 from ``node_modules/.bin/node`` (the system node may be too old for the TS SDK)."""
    path = node_modules() / ".bin" / "node"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing (run `make setup`)")
    return path


def _platform_package(name: str, binary: str) -> Path | None:
    """The native binary of an npm package with per-platform sub-packages, if installed."""
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system())
    arch = {"x86_64": "x64", "AMD64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine()
    )
    if system is None or arch is None:
        return None
    path = node_modules() / "@restatedev" / f"{name}-{system}-{arch}" / "bin" / binary
    return path if path.exists() else None


def restate_server_argv() -> list[str]:
    """Command that runs restate-server.

    The native binary is used directly when available, so that signals (``kill -9``) hit the
    server itself rather than the Node wrapper script.
    """
    native = _platform_package("restate-server", "restate-server")
    if native is not None:
        return [str(native)]
    return [str(node_binary()), str(node_modules() / ".bin" / "restate-server")]


def restate_cli_argv() -> list[str]:
    """Command that runs the official ``restate`` CLI."""
    native = _platform_package("restate", "restate")
    if native is not None:
        return [str(native)]
    return [str(node_binary()), str(node_modules() / ".bin" / "restate")]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's ephemeral pick).

    Only for programs that cannot bind port 0 and report it; there is a small window in which
    another process could take the port.
    """
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all held open together while picking them)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
