"""HTTP clients the server uses to talk to service deployments.

- :class:`H2Client`: HTTP/2 cleartext with prior knowledge, one connection per deployment
  address carrying many full-duplex streams (``BIDI_STREAM`` invocations, discovery).
- :class:`H1Client`: HTTP/1.1 with a keep-alive pool (``REQUEST_RESPONSE`` invocations with a
  chunked request body, discovery with ``use_http_11``).

Both raise :class:`undying.errors.DeploymentError` for every transport failure.
"""

from .base import Endpoint, Headers, RequestClient, Response
from .h1client import H1Client, H1Response
from .h2client import H2Client
from .h2connection import H2Connection, H2Settings
from .h2stream import H2Stream

__all__ = [
    "Endpoint",
    "H1Client",
    "H1Response",
    "H2Client",
    "H2Connection",
    "H2Settings",
    "H2Stream",
    "Headers",
    "RequestClient",
    "Response",
]
