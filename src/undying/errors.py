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
    ├── TerminalError                 a handler failure that is not retried (status_code)
    │   └── InvocationCancelled       the invocation was cancelled (409)
    ├── StorageError                  the embedded storage failed
    ├── ConfigError                   the server configuration is invalid
    ├── IdentityError                 a request failed request-identity verification (SDK)
    └── AdminApiError                 a request of the undying CLI to the admin API failed
        ├── AdminUnreachable          no answer: the server is down or the URL is wrong
        └── AdminRequestFailed        an error answer (``status`` and the server's message)

    BaseException
    └── SdkControlFlow                the SDK's internal control flow (suspension), never caught
"""

from __future__ import annotations

__all__ = [
    "AdminApiError",
    "AdminRequestFailed",
    "AdminUnreachable",
    "InvocationCancelled",
    "SdkControlFlow",
    "TerminalError",
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


class AdminApiError(UndyingError):
    """A request of the ``undying`` CLI to a server's admin API failed."""


class AdminUnreachable(AdminApiError):
    """The admin API did not answer: nothing listens at the URL, or the connection broke.

    Args:
        url: the admin API's base URL.
        reason: what the connection attempt reported ("connection refused", "timed out").
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the admin API at {url} ({reason}). Is `undying serve` running? "
            "Point --admin-url (or UNDYING_ADMIN_URL) at its admin port."
        )
        self.url = url
        self.reason = reason


class AdminRequestFailed(AdminApiError):
    """The admin API answered with an error status.

    Args:
        status: the HTTP status (404, 409, 500...).
        message: the server's message (the ``message`` of its JSON error, or its text).
        method: the request's method.
        path: the request's path.
    """

    def __init__(self, status: int, message: str, *, method: str, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.method = method
        self.path = path


class TerminalError(UndyingError):
    """A failure that must not be retried: the invocation ends with it.

    Raise it from a handler (or from a ``ctx.run`` closure) to fail the invocation at once with
    ``status_code`` (an HTTP-like code, 500 by default), which the caller sees: over ingress as
    the response status, from another handler as a :class:`TerminalError` raised by the call.
    Any other exception is retried.

    Args:
        message: what went wrong, shown to the caller.
        status_code: the failure code (for example 400, 404, 409).
    """

    def __init__(self, message: str, status_code: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status_code={self.status_code})"


class InvocationCancelled(TerminalError):
    """The invocation was cancelled (code 409) while it awaited something.

    Catch it to clean up (compensate, notify) with further durable steps; re-raise it, or let
    it through, to end the invocation as cancelled. Calls the handler made are cancelled too.
    """

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message, 409)


class SdkControlFlow(BaseException):
    """Base of the SDK's internal control flow (suspension, an attempt ending).

    Derived from :class:`BaseException` so that ``except Exception`` in handler code cannot
    swallow it. Never raise or catch it yourself; if you catch ``BaseException``, re-raise it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"{reason}. This is undying's control flow: do not catch it, or re-raise it "
            "(catch Exception, not BaseException, in handlers)"
        )
