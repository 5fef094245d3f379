"""The client knobs of an HTTP/2 connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["H2Settings"]

_MiB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class H2Settings:
    """Client knobs of an HTTP/2 connection (defaults as in Restate)."""

    initial_stream_window: int = 2 * _MiB
    """How much a deployment may send on one stream before the consumer reads it."""
    connection_window: int = 5 * _MiB
    """The same for all streams of a connection together."""
    max_frame_size: int = 16 * 1024
    """Largest DATA frame accepted (the peer's own setting caps what we send)."""
    max_concurrent_streams: int | None = 128
    """Cap on streams per connection, on top of the peer's ``MAX_CONCURRENT_STREAMS``.

    Some servers advertise no limit but reset streams past their memory budget (Node's http2
    keeps 10 MB per session); like Restate, open another connection after 128."""
    keepalive_interval: float | None = 40.0
    """Send a PING after this long without a frame while streams are open; ``None``: never."""
    keepalive_timeout: float = 20.0
    """Fail the connection when a keep-alive PING is not answered within this long."""
