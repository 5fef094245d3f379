"""``undying serve``: run a server with embedded storage."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from pathlib import Path
from typing import Literal

import click
import msgspec

from undying.server import logs
from undying.server.schema import DEFAULT_RETRY_POLICY
from undying.server.server import Server, ServerConfig

__all__ = ["install_loop", "run_server", "serve", "tune_gc"]


def install_loop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def tune_gc() -> None:
    """Keep the collector off the hot path: what exists after start-up (modules, recovered
    state) is frozen out of collections, and young collections run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(5_000, 20, 20)


async def run_server(config: ServerConfig, *, ready_line: bool = True) -> None:
    """Start a server, print the ready line, and run until SIGTERM or SIGINT."""
    server = Server(config)
    await server.start()
    tune_gc()
    if ready_line:
        sys.stdout.write(f"undying ready ingress={server.ingress_url} admin={server.admin_url}\n")
        sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".undying"),
    show_default=True,
    help="Where the embedded storage lives.",
)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--ingress-port", type=int, default=8080, show_default=True, help="0 picks a free port."
)
@click.option(
    "--admin-port", type=int, default=9070, show_default=True, help="0 picks a free port."
)
@click.option("--partitions", type=int, default=4, show_default=True)
@click.option(
    "--ingress-max-body-size",
    type=int,
    default=None,
    help="Largest request body the ingress accepts, in bytes (413 above). Default: no limit.",
)
@click.option(
    "--retry-max-attempts",
    type=click.IntRange(min=1),
    default=DEFAULT_RETRY_POLICY.max_attempts,
    show_default=True,
    help="Default attempts per invocation for handlers that configure none.",
)
@click.option(
    "--retry-on-max-attempts",
    type=click.Choice(["pause", "kill"]),
    default="pause",
    show_default=True,
    help="What happens when the attempts are used up.",
)
@click.option(
    "--retry-initial-interval-ms",
    type=click.IntRange(min=1),
    default=DEFAULT_RETRY_POLICY.initial_interval_ms,
    show_default=True,
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="Least severe level logged (to stderr).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per line (time, level, logger, message, invocation_id).",
)
@click.option(
    "--loop",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    default="auto",
    show_default=True,
    help="Event loop implementation (auto: uvloop when installed).",
)
def serve(
    data_dir: Path,
    bind: str,
    ingress_port: int,
    admin_port: int,
    partitions: int,
    ingress_max_body_size: int | None,
    retry_max_attempts: int,
    retry_on_max_attempts: str,
    retry_initial_interval_ms: int,
    log_level: str,
    log_format: Literal["text", "json"],
    loop: str,
) -> None:
    """Run the undying server (ingress, admin API, storage) in this process."""
    logs.configure(log_level, log_format)
    config = ServerConfig(
        data_dir=data_dir,
        host=bind,
        ingress_port=ingress_port,
        admin_port=admin_port,
        partitions=partitions,
        ingress_max_body_size=ingress_max_body_size,
        default_retry=msgspec.structs.replace(
            DEFAULT_RETRY_POLICY,
            max_attempts=retry_max_attempts,
            on_max_attempts="Pause" if retry_on_max_attempts == "pause" else "Kill",
            initial_interval_ms=retry_initial_interval_ms,
        ),
    )
    if loop != "asyncio":
        install_loop()
    try:
        asyncio.run(run_server(config))
    except KeyboardInterrupt:  # pragma: no cover
        pass
