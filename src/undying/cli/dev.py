"""``undying dev``: the server, a service app and its registration, in one command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final, TypeVar

import click

from undying.cli.serve import install_loop, tune_gc
from undying.protocol.manifest import Endpoint
from undying.server.admin.discovery import discover
from undying.server.schema import register
from undying.server.server import Server, ServerConfig

__all__ = ["dev"]

T = TypeVar("T")
_PR_SET_PDEATHSIG: Final = 1

# Serves ``app`` from the given file with hypercorn on a pre-bound socket (h2c and HTTP/1.1).
# As with ``python APP``, the file's directory comes first on sys.path (it may import siblings).
_SERVE_APP: Final = """
import asyncio, os, runpy, socket, sys
import hypercorn.asyncio, hypercorn.config
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[1])))
module = runpy.run_path(sys.argv[1], run_name="undying_dev_app")
app = module.get("app")
if app is None:
    sys.exit(f"{sys.argv[1]} defines no `app` (an ASGI app, e.g. restate.app([...]))")
config = hypercorn.config.Config()
config.bind = [f"fd://{int(sys.argv[2])}"]
config.keep_alive_max_requests = 1 << 62
config.accesslog = None
asyncio.run(hypercorn.asyncio.serve(app, config))
"""


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


async def _run(app_path: Path, data_dir: Path, host: str, ports: tuple[int, int, int]) -> None:
    # Ctrl-C and SIGTERM stop everything, from the first moment on (even during start-up);
    # so does the app exiting on its own.
    stop = asyncio.Event()
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        interrupted = True
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    ingress_port, admin_port, app_port = (p if _port_free(host, p) else 0 for p in ports)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, app_port))
    sock.listen(128)
    app_url = f"http://{host}:{sock.getsockname()[1]}/"
    proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
        [sys.executable, "-c", _SERVE_APP, str(app_path), str(sock.fileno())],
        pass_fds=(sock.fileno(),),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_die_with_parent(),
    )
    sock.close()
    app_exit = loop.create_task(asyncio.to_thread(proc.wait))
    app_exit.add_done_callback(lambda _: stop.set())
    try:
        server = Server(
            ServerConfig(
                data_dir=data_dir, host=host, ingress_port=ingress_port, admin_port=admin_port
            )
        )
        await server.start()
        try:
            tune_gc()
            found = await _unless_stopped(stop, _discover_when_up(server, app_url, proc))
            if found is not None:
                await _register(server, app_url, *found)
                await stop.wait()
        finally:
            await server.stop()
    finally:
        await _stop_app(proc, app_exit)
    if not interrupted:
        raise click.ClickException(f"the service app exited with status {proc.returncode}")


async def _register(server: Server, app_url: str, endpoint: Endpoint, sdk: str | None) -> None:
    schema = server.metadata.schema
    outcome = register(
        schema,
        uri=app_url,
        endpoint=endpoint,
        use_http_11=False,
        sdk_version=sdk,
        additional_headers={},
        metadata=None,
        force=True,
        breaking=True,
        now_ms=server.clock.now_ms(),
    )
    await server.metadata.update(schema.version, outcome.schema)
    _banner(server, app_url, outcome.deployment.services)


async def _unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """The result of ``work``, or ``None`` if ``stop`` is set first (``work`` is cancelled)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _stop_app(proc: subprocess.Popen[bytes], exited: asyncio.Future[int]) -> None:
    """SIGINT (what Ctrl-C sends it), then SIGKILL if it has not exited within 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(asyncio.shield(exited), 10)
    except TimeoutError:
        proc.kill()
        await exited


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that has the kernel kill the child if this process dies
    (even by ``kill -9``), so the app never outlives ``undying dev``."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child
    parent = os.getpid()

    def die_with_parent() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return die_with_parent


async def _discover_when_up(
    server: Server, url: str, proc: subprocess.Popen[bytes]
) -> tuple[Endpoint, str | None]:
    last: Exception | None = None
    for _ in range(100):
        if proc.poll() is not None:
            raise click.ClickException(f"the service app exited with status {proc.returncode}")
        try:
            return await discover(
                server._connector,
                url,
                use_http_11=False,
                additional_headers={},
                cluster_name=server.config.cluster_name,
                timeout=2.0,
            )
        except Exception as e:  # not listening yet
            last = e
            await asyncio.sleep(0.1)
    raise click.ClickException(f"could not discover the service app at {url}: {last}")


def _banner(server: Server, app_url: str, services: Mapping[str, object]) -> None:
    lines = [
        "",
        f"  undying is running   ingress {server.ingress_url}   admin {server.admin_url}",
        f"  your services        {', '.join(services)} (served at {app_url})",
        "",
    ]
    if "Greeter" in services:
        lines += [
            "  try it:",
            f"    curl -X POST {server.ingress_url}/Greeter/greet \\",
            "         -H 'content-type: application/json' -d '{\"name\": \"Bob\"}'",
            "",
        ]
    lines += ["  Ctrl-C stops everything.", ""]
    click.echo("\n".join(lines))


@click.command()
@click.argument("app", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".undying"),
    show_default=True,
)
@click.option("--bind", default="127.0.0.1", show_default=True)
@click.option("--ingress-port", type=int, default=8080, show_default=True)
@click.option("--admin-port", type=int, default=9070, show_default=True)
@click.option("--app-port", type=int, default=9080, show_default=True)
def dev(
    app: Path, data_dir: Path, bind: str, ingress_port: int, admin_port: int, app_port: int
) -> None:
    """Run the server, serve the ASGI ``app`` defined in APP (a .py file) and register it.

    APP's directory is importable, so it may combine services defined in sibling files.

    Ports that are taken are replaced by free ones; the banner says which are used.
    """
    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_loop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(app, data_dir, bind, (ingress_port, admin_port, app_port)))
