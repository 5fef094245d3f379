"""What both HTTP clients share: deployment endpoints, buffered responses, connect errors."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar
from urllib.parse import urlsplit

from undying.errors import DeploymentError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "Endpoint",
    "Headers",
    "RequestClient",
    "Response",
    "connect",
    "connection_lost_error",
]

Headers = list[tuple[str, str]]
"""HTTP header fields in order; names are lower case."""

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_MAX_BODY_SIZE: Final = 32 * 1024 * 1024

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The base URI of a deployment, split into the parts a client needs.

    ``path`` is the prefix that goes before ``/discover`` or ``/invoke/...``:
    either ``''`` or a path that starts with ``/`` and does not end with one.

    >>> Endpoint.parse("http://localhost:9080/prefix/")
    Endpoint(scheme='http', host='localhost', port=9080, path='/prefix')
    >>> Endpoint.parse("http://[::1]").authority
    '[::1]:80'
    """

    scheme: str
    host: str
    port: int
    path: str = ""

    @classmethod
    def parse(cls, uri: str) -> Endpoint:
        """Parse ``http://host[:port][/prefix]``; raise ``ValueError`` for anything else."""
        parts = urlsplit(uri.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"deployment URI {uri!r} must start with http:// or https://")
        if parts.query or parts.fragment:
            raise ValueError(f"deployment URI {uri!r} must not have a query or a fragment")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"deployment URI {uri!r} must not carry credentials")
        host = parts.hostname
        if not host:
            raise ValueError(f"deployment URI {uri!r} has no host")
        port = parts.port  # raises ValueError when out of range
        return cls(scheme, host, port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/"))

    @property
    def authority(self) -> str:
        """``host:port``, with IPv6 addresses in brackets (the ``:authority`` / ``host``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def target(self, path: str) -> str:
        """The request target for ``path`` (``/discover``, ``/invoke/S/h``) under the prefix."""
        return self.path + path

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"


@dataclass(frozen=True, slots=True)
class Response:
    """A response read in full."""

    status: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or ``None``."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class RequestClient(Protocol):
    """What discovery needs: one buffered request at a time. Both clients implement it."""

    async def request(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        headers: Headers,
        body: bytes = b"",
    ) -> Response:
        """Send a request with ``body`` and read the whole response (bound it with
        ``asyncio.timeout``)."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


_P = TypeVar("_P", bound=asyncio.Protocol)


async def connect(endpoint: Endpoint, factory: Callable[[], _P], connect_timeout: float) -> _P:
    """Open a TCP connection to ``endpoint`` driven by the protocol ``factory`` makes.

    Raises:
        DeploymentError: refused, unreachable, timed out, or a TLS endpoint (not supported).
    """
    if endpoint.scheme != "http":
        raise DeploymentError(f"cannot connect to {endpoint}: https deployments are not supported")
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(connect_timeout):
            _, protocol = await loop.create_connection(factory, endpoint.host, endpoint.port)
    except TimeoutError:
        raise DeploymentError(
            f"connection to {endpoint.authority} timed out after {connect_timeout:g} s"
        ) from None
    except ConnectionRefusedError:
        raise DeploymentError(f"connection to {endpoint.authority} refused") from None
    except socket.gaierror as exc:
        raise DeploymentError(f"cannot resolve {endpoint.host}: {exc.strerror}") from exc
    except OSError as exc:
        # A multi-address host raises a combined OSError with errno None when all fail.
        if exc.errno == errno.ECONNREFUSED or "refused" in str(exc).lower():
            raise DeploymentError(f"connection to {endpoint.authority} refused") from None
        raise DeploymentError(f"cannot connect to {endpoint.authority}: {exc}") from exc
    return protocol


def connection_lost_error(authority: str, exc: BaseException | None) -> DeploymentError:
    """The error for a connection that went away under a request."""
    if exc is None:
        return DeploymentError(f"connection to {authority} closed by the deployment")
    if isinstance(exc, ConnectionResetError):
        return DeploymentError(f"connection to {authority} reset by the deployment")
    return DeploymentError(f"connection to {authority} lost: {exc}")
