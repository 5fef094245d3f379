"""Options of definitions and handlers: :class:`RetryPolicy`, and the check of each option.

A check takes the value as given and where it was given (``"service 'Greeter'"``,
``"handler Greeter/greet"``), and raises :class:`~undying.errors.DefinitionError` naming both
when the value is wrong. The checks of optional values return them (``None``: inherit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Literal, cast, final

from undying.errors import DefinitionError
from undying.sdk.serde import Serde

__all__ = [
    "HandlerOptions",
    "RetryPolicy",
    "check_accept",
    "check_content_type",
    "check_duration",
    "check_flag",
    "check_metadata",
    "check_retry_policy",
    "check_text",
]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How the server retries a failing invocation (manifest v4, restate-server >= 1.5).

    Unset fields fall back to the enclosing definition's policy, then to the server's default.

    Args:
        initial_interval: the delay before the first retry.
        max_interval: the longest delay between two attempts.
        max_attempts: attempts before giving up, the first one included (at least 1).
        exponentiation_factor: what each delay is multiplied by for the next one (at least 1).
        on_max_attempts: what happens to the invocation once the attempts are used up:
            ``"pause"`` it (it can be resumed) or ``"kill"`` it.

    Raises:
        DefinitionError: a field has the wrong type or is out of range.
    """

    initial_interval: timedelta | None = None
    max_interval: timedelta | None = None
    max_attempts: int | None = None
    exponentiation_factor: float | None = None
    on_max_attempts: Literal["pause", "kill"] | None = None

    def __post_init__(self) -> None:
        where = "RetryPolicy"
        check_duration(self.initial_interval, "initial_interval", where)
        check_duration(self.max_interval, "max_interval", where)
        if (
            self.initial_interval is not None
            and self.max_interval is not None
            and self.max_interval < self.initial_interval
        ):
            raise DefinitionError(
                f"{where}: max_interval ({self.max_interval}) is shorter than "
                f"initial_interval ({self.initial_interval})"
            )
        attempts = self.max_attempts
        if attempts is not None and (
            not isinstance(attempts, int)  # pyright: ignore[reportUnnecessaryIsInstance]
            or isinstance(attempts, bool)
            or attempts < 1
        ):
            raise DefinitionError(f"{where}: max_attempts must be an int >= 1, got {attempts!r}")
        factor = self.exponentiation_factor
        if factor is not None and (
            not isinstance(factor, int | float)  # pyright: ignore[reportUnnecessaryIsInstance]
            or isinstance(factor, bool)
            or not math.isfinite(factor)
            or factor < 1
        ):
            raise DefinitionError(
                f"{where}: exponentiation_factor must be a finite number >= 1, got {factor!r}"
            )
        if self.on_max_attempts not in (None, "pause", "kill"):
            raise DefinitionError(
                f"{where}: on_max_attempts must be 'pause' or 'kill', got {self.on_max_attempts!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerOptions:
    """The options of one handler, as given to its decorator (not checked yet)."""

    input_serde: Serde[Any] | None = None
    output_serde: Serde[Any] | None = None
    accept: str | None = None
    content_type: str | None = None
    description: str | None = None
    metadata: Mapping[str, str] | None = None
    inactivity_timeout: timedelta | None = None
    abort_timeout: timedelta | None = None
    idempotency_retention: timedelta | None = None
    journal_retention: timedelta | None = None
    workflow_retention: timedelta | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_policy: RetryPolicy | None = None


def check_duration(value: object, option: str, where: str) -> timedelta | None:
    """A non-negative :class:`~datetime.timedelta`, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise DefinitionError(
            f"{where}: {option} must be a datetime.timedelta, got {type(value).__name__} {value!r}"
        )
    if value < timedelta(0):
        raise DefinitionError(f"{where}: {option} must not be negative, got {value}")
    return value


def check_flag(value: object, option: str, where: str) -> bool | None:
    """A bool, or ``None``."""
    if value is not None and not isinstance(value, bool):
        raise DefinitionError(f"{where}: {option} must be a bool, got {value!r}")
    return value


def check_text(value: object, option: str, where: str) -> str | None:
    """A str, or ``None``."""
    if value is not None and not isinstance(value, str):
        raise DefinitionError(f"{where}: {option} must be a str, got {value!r}")
    return value


def check_metadata(value: object, where: str) -> Mapping[str, str] | None:
    """A read-only copy of a str-to-str mapping, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str)
        for k, v in cast("Mapping[object, object]", value).items()
    ):
        raise DefinitionError(f"{where}: metadata must map str to str, got {value!r}")
    return MappingProxyType(dict(cast("Mapping[str, str]", value)))


def check_retry_policy(value: object, where: str) -> RetryPolicy | None:
    """A :class:`RetryPolicy`, or ``None``."""
    if value is not None and not isinstance(value, RetryPolicy):
        raise DefinitionError(
            f"{where}: retry_policy must be an undying.sdk.definitions.RetryPolicy, got {value!r}"
        )
    return value


def check_accept(accept: object, where: str) -> None:
    """A content type or range a handler accepts as input: ``application/json``, ``text/*``."""
    if not isinstance(accept, str):
        raise DefinitionError(f"{where}: accept must be a str, got {accept!r}")
    kind, slash, subtype = accept.strip().partition("/")
    if not slash or not kind or not subtype or "/" in subtype or not accept.isascii():
        raise DefinitionError(
            f"{where}: accept {accept!r} is not a content type like 'application/json' or "
            "a range like 'application/*' or '*/*'"
        )
    if kind == "*" and subtype.split(";", 1)[0].strip() != "*":
        raise DefinitionError(f"{where}: accept {accept!r}: '*/subtype' ranges are not supported")


def check_content_type(content_type: object, where: str) -> None:
    """The content type of a handler's output: no wildcard."""
    if not isinstance(content_type, str):
        raise DefinitionError(f"{where}: content_type must be a str, got {content_type!r}")
    printable = all(" " <= c <= "~" for c in content_type)
    if not printable or "/" not in content_type or "*" in content_type:
        raise DefinitionError(
            f"{where}: content_type {content_type!r} is not a content type like 'application/json'"
        )
