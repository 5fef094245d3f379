"""Micro-benchmark: undying's HTTP/1.1 ASGI server vs hypercorn (and uvicorn, if installed).

Each server runs a trivial ASGI app in a child process (so client and server do not share
one event loop); the parent drives it with a minimal asyncio keep-alive client and prints
requests/s and p50/p99 latency.

    .venv/bin/python bench/http_server_bench.py -n 20000 -c 1
    .venv/bin/python bench/http_server_bench.py -n 50000 -c 16 --loop uvloop
    .venv/bin/python bench/http_server_bench.py --in-process   # server + client in one loop
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import statistics
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from typing import Any, cast

from undying.server.http import Receive, Scope, Send

BODY = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # hypercorn sends lifespan
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        if message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# ---------------------------------------------------------------------------- servers


async def _serve_undying(port_out: Callable[[int], None], stop: asyncio.Event) -> None:
    from undying.server.http import HttpServer

    server = HttpServer(app, host="127.0.0.1", port=0)
    await server.start()
    port_out(server.port)
    await stop.wait()
    await server.stop()


async def _serve_hypercorn(port_out: Callable[[int], None], stop: asyncio.Event) -> None:
    import socket

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_max_requests = 10**9  # default 1000 would close our connection
    task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    # hypercorn gives no readiness hook: poll until the port accepts connections.
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        break
    port_out(port)
    await task


async def _serve_uvicorn(port_out: Callable[[int], None], stop: asyncio.Event) -> None:
    import uvicorn  # type: ignore[import-not-found,unused-ignore]

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn has no readiness event to await)
        await asyncio.sleep(0.05)
    port_out(server.servers[0].sockets[0].getsockname()[1])
    await stop.wait()
    server.should_exit = True
    await task


SERVERS: dict[str, Callable[[Callable[[int], None], asyncio.Event], Coroutine[Any, Any, None]]] = {
    "undying": _serve_undying,
    "hypercorn": _serve_hypercorn,
    "uvicorn": _serve_uvicorn,
}


def _child(kind: str, loop_kind: str, pipe: Connection) -> None:
    loop = _new_loop(loop_kind)
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    loop.add_reader(pipe.fileno(), stop.set)
    loop.run_until_complete(SERVERS[kind](pipe.send, stop))
    loop.close()


# ---------------------------------------------------------------------------- client


class _Client(asyncio.Protocol):
    """Keep-alive client: one request in flight, response delimited by content-length."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.need = -1
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            pos = head.find(b"content-length:")
            length = int(head[pos + 15 : head.find(b"\r\n", pos)]) if pos >= 0 else 0
            self.need = end + 4 + length
        if len(buf) >= self.need:
            del buf[: self.need]
            self.need = -1
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("server closed the connection"))


async def _drive(port: int, requests: int, latencies: list[float]) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(_Client, "127.0.0.1", port)
    request = b"GET /bench HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n"
    perf = time.perf_counter
    try:
        for _ in range(requests):
            client.waiter = loop.create_future()
            t0 = perf()
            transport.write(request)
            await client.waiter
            latencies.append(perf() - t0)
    finally:
        transport.close()


async def _measure(port: int, n: int, concurrency: int) -> tuple[float, list[float]]:
    warm: list[float] = []
    await asyncio.gather(*(_drive(port, 500, warm) for _ in range(concurrency)))
    latencies: list[float] = []
    per_conn = n // concurrency
    t0 = time.perf_counter()
    await asyncio.gather(*(_drive(port, per_conn, latencies) for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return elapsed, latencies


def _report(label: str, elapsed: float, latencies: list[float]) -> None:
    latencies.sort()
    n = len(latencies)
    p50 = statistics.median(latencies) * 1e6
    p99 = latencies[min(n - 1, int(n * 0.99))] * 1e6
    print(f"{label:<34} {n / elapsed:>10.0f} req/s   p50 {p50:>7.1f} µs   p99 {p99:>7.1f} µs")


def _bench_child(kind: str, loop_kind: str, n: int, concurrency: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    parent_end, child_end = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(kind, loop_kind, child_end), daemon=True)
    proc.start()
    try:
        if not parent_end.poll(30):
            raise RuntimeError(f"{kind} did not start")
        port = parent_end.recv()
        loop = _new_loop(loop_kind)
        try:
            elapsed, latencies = loop.run_until_complete(_measure(port, n, concurrency))
        finally:
            loop.close()
        _report(f"{kind} ({loop_kind} loops, c={concurrency})", elapsed, latencies)
    finally:
        parent_end.send(b"stop")
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _bench_in_process(loop_kind: str, n: int, concurrency: int) -> None:
    from undying.server.http import HttpServer

    async def main() -> None:
        server = HttpServer(app)
        await server.start()
        try:
            elapsed, latencies = await _measure(server.port, n, concurrency)
        finally:
            await server.stop()
        _report(f"undying in-process ({loop_kind}, c={concurrency})", elapsed, latencies)

    loop = _new_loop(loop_kind)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--requests", type=int, default=20000)
    parser.add_argument("-c", "--concurrency", type=int, default=1, help="connections")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument(
        "--servers", default="undying,hypercorn,uvicorn", help="comma-separated list"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="also run client+server in one loop"
    )
    args = parser.parse_args()
    for kind in args.servers.split(","):
        if kind != "undying" and importlib.util.find_spec(kind) is None:
            print(f"{kind:<34} (not installed, skipped)")
            continue
        _bench_child(kind, args.loop, args.requests, args.concurrency)
    if args.in_process:
        _bench_in_process(args.loop, args.requests, args.concurrency)


if __name__ == "__main__":
    main()
