"""The exception tree of undying. Every error undying raises on purpose is one of these.

::

    UndyingError
    ├── ProtocolError                 the service protocol was broken
    │   ├── ProtocolViolation         unexpected or malformed message (code 571)
    │   └── UnsupportedVersion        no protocol version both sides speak (code 415)
    ├── InvalidIdError                text that is not a valid id of its kind
    ├── DefinitionError               an invalid service or handler definition (SDK)
    ├── SerdeError                    a value could not be (de)serialized (SDK)
    ├── ManifestError                 a deployment's manifest breaks the schema or the rules
    ├── DiscoveryError                a deployment could not be discovered
    ├── DeploymentError               a deployment answered an invocation badly
    ├── StorageError                  the embedded storage failed
    ├── ConfigError                   the server configuration is invalid
    └── IdentityError                 a request failed request-identity verification (SDK)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DefinitionError",
    "DeploymentError",
    "DiscoveryError",
    "IdentityError",
    "InvalidIdError",
    "ManifestError",
    "ProtocolError",
    "ProtocolViolation",
    "SerdeError",
    "StorageError",
    "UndyingError",
    "UnsupportedVersion",
]


class UndyingError(Exception):
    """Root of every error undying raises."""


class ProtocolError(UndyingError):
    """The service protocol was broken. ``code`` is the protocol error code."""

    code: int = 571

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ProtocolViolation(ProtocolError):
    """A message that is unexpected in the current state, or cannot be decoded."""

    code = 571


class UnsupportedVersion(ProtocolError):
    """No protocol version is supported by both sides."""

    code = 415


class InvalidIdError(UndyingError, ValueError):
    """Text that is not a valid id of the expected kind."""


class DefinitionError(UndyingError, TypeError):
    """An invalid service, virtual object, workflow or handler definition (SDK).

    Raised when the definition is made (a decorator applied, a definition or retry policy
    created) or turned into a discovery manifest: a handler that is not an ``async def``, takes
    the wrong parameters or context, a name the server refuses or uses twice, a negative
    duration, a workflow without exactly one run handler. The message says what and where.
    """


class SerdeError(UndyingError, ValueError):
    """A value could not be serialized, or bytes could not be deserialized, by a serde.

    Raised by the SDK's serdes (:mod:`undying.sdk.serde`) for data that is not a valid encoding
    of the expected type, and for values that cannot be encoded. The message says where.
    """


class ManifestError(UndyingError):
    """A discovery manifest breaks the schema or the registration rules."""


class DiscoveryError(UndyingError):
    """A deployment could not be discovered (unreachable, bad status, bad content type)."""


class DeploymentError(UndyingError):
    """A deployment answered an invocation attempt badly (status, content type, transport)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class StorageError(UndyingError):
    """The embedded storage failed."""


class ConfigError(UndyingError):
    """The server configuration is invalid."""


class IdentityError(UndyingError):
    """A request to the SDK endpoint failed request-identity verification.

    The signature scheme header is missing or ``unsigned``, the JWT is malformed, its signature
    matches no configured public key, or one of its claims (``aud``, ``exp``, ``nbf``, ``iat``)
    is missing or fails its check. The message says which check failed.
    """
