"""Micro-benchmark of the HTTP/2 deployment client against hypercorn (echo app, full duplex).

Run: ``.venv/bin/python bench/h2_client_bench.py [--loop uvloop] [--server-loop uvloop]``

hypercorn runs in a child process, so client and server each get a core (on a 2-core box the
numbers are bounded by the server: hypercorn is pure Python). Measured:

- round trip on one stream: send one chunk, wait for its echo (100 B and 16 KiB);
- pipelined on one stream: a writer sends chunks back to back while a reader takes the echoes;
- ping-pong on many streams of one connection at once (aggregate round trips per second);
- new streams: open, one round trip, half-close, read to the end (a short invocation).

Every line also shows the client's CPU time per operation (``cpu``: user + system time of this
process, which runs only the client; the server's CPU is not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from undying.server.invoker.transport import Endpoint, H2Client, H2Stream

Message = MutableMapping[str, Any]


async def echo_app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Echo every request body chunk as soon as it arrives."""
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if body := message.get("body", b""):
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.body", "body": b""})


def serve(fd: int, loop: str) -> None:
    """Child process: hypercorn on the inherited listening socket ``fd``."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{fd}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.keep_alive_max_requests = 10**9  # hypercorn's default 1000 would cut connections
    config.h2_max_concurrent_streams = 1000
    coro = hypercorn_serve(echo_app, config)  # type: ignore[arg-type]
    if loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


async def read_exactly(stream: H2Stream, size: int) -> None:
    got = 0
    while got < size:
        chunk = await stream.receive()
        if not chunk:
            raise RuntimeError("stream ended early")
        got += len(chunk)


def cpu_per_op(cpu_start: float, ops: int) -> str:
    """The client's CPU time per operation since ``cpu_start`` (``time.process_time()``)."""
    return f"cpu {(time.process_time() - cpu_start) / ops * 1e6:6.1f} µs/op"


async def round_trips(client: H2Client, endpoint: Endpoint, size: int, count: int) -> str:
    payload = b"x" * size
    stream = await client.open_stream(endpoint, "/invoke/Bench/rtt", [])
    samples = []
    cpu = time.process_time()
    for _ in range(count):
        start = time.perf_counter()
        await stream.send(payload)
        await read_exactly(stream, size)
        samples.append(time.perf_counter() - start)
    usage = cpu_per_op(cpu, count)
    await stream.end()
    await stream.receive()
    samples.sort()
    p50 = samples[len(samples) // 2] * 1e6
    p99 = samples[int(len(samples) * 0.99)] * 1e6
    mean = statistics.fmean(samples) * 1e6
    return f"{size:>6} B  mean {mean:7.0f} µs  p50 {p50:7.0f} µs  p99 {p99:7.0f} µs  {usage}"


async def pipelined(client: H2Client, endpoint: Endpoint, size: int, count: int) -> str:
    payload = b"x" * size
    stream = await client.open_stream(endpoint, "/invoke/Bench/pipe", [])
    start = time.perf_counter()
    cpu = time.process_time()

    async def write() -> None:
        for _ in range(count):
            await stream.send(payload)
        await stream.end()

    writer = asyncio.create_task(write())
    total = 0
    while chunk := await stream.receive():
        total += len(chunk)
    await writer
    elapsed = time.perf_counter() - start
    usage = cpu_per_op(cpu, count)
    assert total == size * count
    rate = count / elapsed
    return f"{size:>6} B  {rate:9.0f} msg/s  {total / elapsed / 1e6:7.1f} MB/s  {usage}"


async def many_streams(client: H2Client, endpoint: Endpoint, streams: int, rounds: int) -> str:
    payload = b"x" * 100
    opened = [await client.open_stream(endpoint, "/invoke/Bench/many", []) for _ in range(streams)]

    async def ping_pong(stream: H2Stream) -> None:
        for _ in range(rounds):
            await stream.send(payload)
            await read_exactly(stream, len(payload))
        await stream.end()
        await stream.receive()

    start = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(ping_pong(s) for s in opened))
    elapsed = time.perf_counter() - start
    usage = cpu_per_op(cpu, streams * rounds)
    return f"{streams:>4} streams  {streams * rounds / elapsed:9.0f} round trips/s  {usage}"


async def new_streams(client: H2Client, endpoint: Endpoint, concurrency: int, total: int) -> str:
    payload = b"x" * 100
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with await client.open_stream(endpoint, "/invoke/Bench/new", []) as stream:
                await stream.send(payload)
                await read_exactly(stream, len(payload))
                await stream.end()
                await stream.receive()

    start = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    usage = cpu_per_op(cpu, total)
    return f"{concurrency:>4} at once  {total / elapsed:9.0f} streams/s  {usage}"


async def main(endpoint: Endpoint, quick: bool) -> None:
    scale = 10 if quick else 1
    client = H2Client()
    await (await client.open_stream(endpoint, "/warm-up", [], end_stream=True)).receive()
    print("round trip, one stream")
    for size in (100, 16 * 1024):
        print("  " + await round_trips(client, endpoint, size, 5000 // scale))
    print("pipelined, one stream")
    for size in (100, 1024, 16 * 1024):
        print("  " + await pipelined(client, endpoint, size, 50_000 // scale))
    print("ping-pong on many streams of one connection (100 B)")
    for streams in (10, 100):
        print("  " + await many_streams(client, endpoint, streams, 20_000 // streams // scale))
    print("new streams: open, 1 round trip, end")
    for concurrency in (1, 10, 100):
        print("  " + await new_streams(client, endpoint, concurrency, 5000 // scale))
    await client.aclose()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--server-loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--quick", action="store_true", help="a tenth of the work")
    parser.add_argument("--serve", type=int, metavar="FD", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.server_loop)
        return
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    fd = sock.fileno()
    endpoint = Endpoint("http", "127.0.0.1", sock.getsockname()[1])
    argv = [sys.executable, __file__, "--serve", str(fd), "--server-loop", args.server_loop]
    server = subprocess.Popen(argv, pass_fds=[fd])
    sock.close()  # the server process holds it; connections queue until it accepts
    print(f"client loop {args.loop}, server loop {args.server_loop} (hypercorn, own process)")
    try:
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(main(endpoint, args.quick))
        else:
            asyncio.run(main(endpoint, args.quick))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    run()
