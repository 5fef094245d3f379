"""How the invoker talks HTTP to deployments: one ``AttemptStream`` per invocation attempt."""

from __future__ import annotations

from typing import Protocol

from undying.server.schema import DeploymentInfo

__all__ = ["AttemptStream", "Connector"]


class AttemptStream(Protocol):
    """One HTTP exchange carrying an attempt: request frames out, response frames in.

    Errors (connection refused or lost, reset stream, bad status) raise
    :class:`undying.errors.DeploymentError`.
    """

    async def response(self) -> tuple[int, list[tuple[str, str]]]:
        """Status and headers of the response (waits for them)."""
        ...

    async def send(self, data: bytes) -> None:
        """Write more request body (bidi only)."""
        ...

    async def end(self) -> None:
        """Close the request body (half-close in bidi)."""
        ...

    async def receive(self) -> bytes:
        """The next piece of the response body; ``b""`` when it ended."""
        ...

    def abort(self) -> None:
        """Give up on the exchange (reset the stream or drop the connection)."""
        ...


class Connector(Protocol):
    """Opens attempt streams and discovery requests to deployments."""

    async def open(
        self,
        deployment: DeploymentInfo,
        path: str,
        headers: list[tuple[str, str]],
        initial: bytes,
        *,
        end_input: bool,
    ) -> AttemptStream:
        """Start ``POST {deployment}{path}`` with ``initial`` as the first request bytes.

        With ``end_input`` the request body ends after ``initial`` (request/response mode).
        """
        ...

    async def discover(
        self, uri: str, headers: list[tuple[str, str]], *, use_http_11: bool, timeout: float
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """``GET {uri}/discover``: status, headers and body."""
        ...

    async def aclose(self) -> None: ...
