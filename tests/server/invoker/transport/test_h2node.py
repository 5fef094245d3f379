"""H2Client against Node's http2 server (nghttp2): Huffman-coded and indexed response headers,
CONTINUATION frames, large bodies both ways, and a graceful GOAWAY that finishes its streams."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from transport_servers import run

from undying.errors import DeploymentError
from undying.server.invoker.transport import Endpoint, H2Client, H2Stream

SERVER = r"""
const http2 = require("node:http2");
const server = http2.createServer();
server.on("stream", (stream, headers) => {
  const big = Number(headers["x-big-len"] || 0);
  stream.respond({
    ":status": 200,
    "content-type": headers["content-type"] || "x/none",
    "x-path": headers[":path"],
    "x-big": "b".repeat(big),
    "x-request-id": String(headers["x-request-id"]),
  });
  if (headers[":path"] === "/goaway") stream.session.close();  // graceful: GOAWAY, then finish
  stream.pipe(stream);  // echo the request body as it arrives
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
"""


def node() -> Path | None:
    try:
        from undying.testing.paths import node_binary

        return node_binary()
    except (FileNotFoundError, ImportError):
        found = shutil.which("node")
        return Path(found) if found else None


pytestmark = pytest.mark.skipif(node() is None, reason="node is not installed")


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.asynccontextmanager
async def node_server() -> AsyncIterator[Endpoint]:
    binary = node()
    assert binary is not None
    process = await asyncio.create_subprocess_exec(
        str(binary), "-e", SERVER, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        port = int(await asyncio.wait_for(process.stdout.readline(), 30))
        yield Endpoint("http", "127.0.0.1", port)
    finally:
        process.kill()
        await process.wait()


async def echo(stream: H2Stream, payload: bytes) -> None:
    await stream.send(payload)
    got = b""
    while len(got) < len(payload):
        chunk = await stream.receive()
        assert chunk, "stream ended early"
        got += chunk
    assert got == payload


def test_echo_streams_against_node(loop: str) -> None:
    async def main() -> None:
        async with node_server() as endpoint:
            client = H2Client()
            ct = ("content-type", "application/vnd.restate.invocation.v5")

            async def exchange(i: int) -> None:
                headers = [ct, ("x-request-id", f"inv_{i:04d}"), ("x-big-len", str(i * 500))]
                async with await client.open_stream(endpoint, f"/invoke/{i}", headers) as stream:
                    status, response = await stream.response()
                    assert status == 200
                    fields = dict(response)
                    assert fields["content-type"] == ct[1]
                    assert fields["x-path"] == f"/invoke/{i}"
                    assert fields["x-request-id"] == f"inv_{i:04d}"
                    assert fields["x-big"] == "b" * (i * 500)  # up to 24.5 KB: CONTINUATION
                    for round_ in range(5):
                        await echo(stream, b"%d:%d " % (i, round_) * (i + 1))
                    await stream.end()
                    assert await stream.receive() == b""

            await asyncio.gather(*(exchange(i) for i in range(50)))
            assert client.connection_count(endpoint) == 1

            body = os.urandom(7 * 1024 * 1024 + 5)  # past both receive windows
            stream = await client.open_stream(endpoint, "/big", [])

            async def write() -> None:
                await stream.send(body)
                await stream.end()

            writer = asyncio.create_task(write())
            digest = hashlib.sha256()
            size = 0
            while chunk := await stream.receive():
                digest.update(chunk)
                size += len(chunk)
            await writer
            assert (size, digest.digest()) == (len(body), hashlib.sha256(body).digest())
            await client.aclose()

    run(main(), loop)


def test_graceful_goaway_from_node_finishes_its_streams(loop: str) -> None:
    async def main() -> None:
        async with node_server() as endpoint:
            client = H2Client()
            before = await client.open_stream(endpoint, "/before", [])
            await echo(before, b"warm")
            closing = await client.open_stream(endpoint, "/goaway", [])
            await echo(closing, b"after goaway")  # node finishes the streams it has
            await echo(before, b"still open")
            assert client.connection_count(endpoint) == 0  # no new streams on it
            fresh = await client.open_stream(endpoint, "/fresh", [])
            await echo(fresh, b"new connection")
            assert fresh._conn is not closing._conn
            for stream in (before, closing, fresh):
                await stream.end()
                assert await stream.receive() == b""
            await client.aclose()
            with pytest.raises(DeploymentError, match="closed by the client"):
                await fresh._conn.open_stream("POST", "/", []).response()

    run(main(), loop)
