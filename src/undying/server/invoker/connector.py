"""The production :class:`~undying.server.invoker.streams.Connector`: h2c and HTTP/1.1 clients."""

from __future__ import annotations

import asyncio

from undying.errors import DeploymentError
from undying.server.invoker.streams import AttemptStream
from undying.server.invoker.transport import Endpoint, H1Client, H1Response, H2Client, H2Stream
from undying.server.schema import DeploymentInfo

__all__ = ["HttpConnector"]


class _H2Attempt:
    __slots__ = ("_stream",)

    def __init__(self, stream: H2Stream) -> None:
        self._stream = stream

    async def response(self) -> tuple[int, list[tuple[str, str]]]:
        return await self._stream.response()

    async def send(self, data: bytes) -> None:
        await self._stream.send(data)

    async def end(self) -> None:
        await self._stream.end()

    async def receive(self) -> bytes:
        return await self._stream.receive()

    def abort(self) -> None:
        self._stream.reset()

    @property
    def refused(self) -> bool:
        """The deployment refused the stream before processing it (GOAWAY, REFUSED_STREAM)."""
        return self._stream.refused


class _H1Attempt:
    __slots__ = ("_response",)

    def __init__(self, response: H1Response) -> None:
        self._response = response

    async def response(self) -> tuple[int, list[tuple[str, str]]]:
        return self._response.status, self._response.headers

    async def send(self, data: bytes) -> None:
        raise DeploymentError("HTTP/1.1 attempts cannot send after the request")

    async def end(self) -> None:
        return None

    async def receive(self) -> bytes:
        return await self._response.receive()

    def abort(self) -> None:
        asyncio.ensure_future(self._response.aclose())


class HttpConnector:
    """Opens attempts over h2c (``HTTP/2.0`` deployments) or HTTP/1.1."""

    def __init__(self) -> None:
        self._h2 = H2Client()
        self._h1 = H1Client()
        self._endpoints: dict[str, Endpoint] = {}

    def _endpoint(self, uri: str) -> Endpoint:
        ep = self._endpoints.get(uri)
        if ep is None:
            try:
                ep = Endpoint.parse(uri)
            except ValueError as e:
                raise DeploymentError(str(e)) from None
            self._endpoints[uri] = ep
        return ep

    async def open(
        self,
        deployment: DeploymentInfo,
        path: str,
        headers: list[tuple[str, str]],
        initial: bytes,
        *,
        end_input: bool,
    ) -> AttemptStream:
        ep = self._endpoint(deployment.uri)
        if deployment.use_http_11:
            response = await self._h1.stream(ep, "POST", path, headers, initial, chunked=True)
            return _H1Attempt(response)
        stream = await self._h2.open_stream(ep, path, headers)
        try:
            await stream.send(initial)
            if end_input:
                await stream.end()
        except BaseException:
            stream.reset()
            raise
        return _H2Attempt(stream)

    async def discover(
        self, uri: str, headers: list[tuple[str, str]], *, use_http_11: bool, timeout: float
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        ep = self._endpoint(uri)
        client: H1Client | H2Client = self._h1 if use_http_11 else self._h2
        try:
            async with asyncio.timeout(timeout):
                response = await client.request(ep, "GET", "/discover", headers)
        except TimeoutError:
            raise DeploymentError(f"discovery at {uri} timed out after {timeout:g} s") from None
        return response.status, response.headers, response.body

    async def aclose(self) -> None:
        await self._h2.aclose()
        await self._h1.aclose()
