"""Ids in Restate's text formats.

* invocation id ``inv_1`` + base62(partition key, 11 chars) + base62(uuid, 22 chars); the raw form
  (``StartMessage.id``) is the 8-byte big-endian partition key followed by the 16-byte uuid;
* deployment id ``dp_1`` + base62(uuid, 22 chars);
* awakeable id ``sign_1`` + base64url (no padding) of the raw invocation id + the signal index
  as a big-endian u32.

Base62 uses the alphabet ``[0-9a-zA-Z]``, most significant digit first, zero padded to a fixed
width, over the number whose little-endian bytes are the big-endian bytes of the value.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Final

from undying.errors import InvalidIdError

__all__ = [
    "AwakeableId",
    "DeploymentId",
    "InvocationId",
    "new_ulid",
    "partition_key_for",
]

_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGIT: Final = {c: i for i, c in enumerate(_ALPHABET)}
_CODEC_VERSION: Final = "1"


def _b62_encode(raw: bytes, width: int) -> str:
    n = int.from_bytes(raw, "little")
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    if len(out) > width:  # pragma: no cover - widths are chosen to fit
        raise ValueError("value too large for width")
    out.extend("0" * (width - len(out)))
    return "".join(reversed(out))


def _b62_decode(text: str, size: int) -> bytes:
    n = 0
    for c in text:
        d = _DIGIT.get(c)
        if d is None:
            raise InvalidIdError(f"invalid base62 character {c!r}")
        n = n * 62 + d
    if n >> (8 * size):
        raise InvalidIdError("base62 value out of range")
    return n.to_bytes(size, "little")


@functools.lru_cache(maxsize=8192)
def _invocation_text(partition_key: int, uuid: bytes) -> str:
    # Cached: an invocation's id is printed several times while it runs.
    return (
        "inv_"
        + _CODEC_VERSION
        + _b62_encode(partition_key.to_bytes(8, "big"), 11)
        + _b62_encode(uuid, 22)
    )


def _new_uuid() -> bytes:
    """A time-ordered 16-byte id: 48-bit millisecond timestamp then 80 random bits."""
    return (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)


_TO_CROCKFORD: Final = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)


def new_ulid() -> str:
    """A ULID-like key: 48-bit millisecond time + 80 random bits, 26 Crockford base32
    characters, sorting by time."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return base64.b32encode(raw)[:26].translate(_TO_CROCKFORD).decode()


def partition_key_for(*parts: str) -> int:
    """The deterministic 64-bit partition key of a keyed target or idempotency id."""
    h = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big")


def _split_prefixed(text: str, prefix: str, kind: str) -> str:
    """The part after ``{prefix}1``. The codec version is checked before the resource type."""
    head, sep, body = text.partition("_")
    if not sep:
        raise InvalidIdError(f"bad {kind} id '{text}': id doesn't match the expected type")
    if not body or body[0] != _CODEC_VERSION:
        raise InvalidIdError(f"bad {kind} id '{text}': unrecognized codec version")
    if head + "_" != prefix:
        raise InvalidIdError(f"bad {kind} id '{text}': id doesn't match the expected type")
    return body[1:]


@dataclass(frozen=True, slots=True)
class InvocationId:
    """An invocation id: the partition key it routes by, and a unique 16-byte uuid."""

    partition_key: int
    uuid: bytes

    @classmethod
    def new(cls, partition_key: int | None = None) -> InvocationId:
        """A fresh id; random partition key unless given (keyed targets pass theirs)."""
        if partition_key is None:
            partition_key = int.from_bytes(os.urandom(8), "big")
        return cls(partition_key, _new_uuid())

    @classmethod
    def deterministic(cls, partition_key: int, *parts: str) -> InvocationId:
        """The id derived from ``parts`` (idempotency id, workflow id): same parts, same id."""
        digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).digest()
        return cls(partition_key, digest)

    @classmethod
    def from_bytes(cls, raw: bytes) -> InvocationId:
        """Parse the raw 24-byte form."""
        if len(raw) != 24:
            raise InvalidIdError(f"raw invocation id must have 24 bytes, not {len(raw)}")
        return cls(int.from_bytes(raw[:8], "big"), bytes(raw[8:]))

    @classmethod
    def parse(cls, text: str) -> InvocationId:
        """Parse ``inv_1…``; raises ``InvalidIdError`` with Restate's wording."""
        body = _split_prefixed(text, "inv_", "invocation")
        if len(body) != 33:
            raise InvalidIdError(f"bad invocation id '{text}': bad length")
        try:
            pk = _b62_decode(body[:11], 8)
            uuid = _b62_decode(body[11:], 16)
        except InvalidIdError as e:
            raise InvalidIdError(f"bad invocation id '{text}': {e}") from None
        return cls(int.from_bytes(pk, "big"), uuid)

    def to_bytes(self) -> bytes:
        """The raw 24-byte form sent in ``StartMessage.id``."""
        return self.partition_key.to_bytes(8, "big") + self.uuid

    def __str__(self) -> str:
        return _invocation_text(self.partition_key, self.uuid)


@dataclass(frozen=True, slots=True)
class DeploymentId:
    """A deployment id (``dp_1…``)."""

    uuid: bytes

    @classmethod
    def new(cls) -> DeploymentId:
        return cls(_new_uuid())

    @classmethod
    def parse(cls, text: str) -> DeploymentId:
        body = _split_prefixed(text, "dp_", "deployment")
        if len(body) != 22:
            raise InvalidIdError(f"bad deployment id '{text}': bad length")
        try:
            return cls(_b62_decode(body, 16))
        except InvalidIdError as e:
            raise InvalidIdError(f"bad deployment id '{text}': {e}") from None

    def __str__(self) -> str:
        return "dp_" + _CODEC_VERSION + _b62_encode(self.uuid, 22)


@dataclass(frozen=True, slots=True)
class AwakeableId:
    """An awakeable id (``sign_1…``): the invocation to signal and the signal index."""

    invocation_id: InvocationId
    signal_index: int

    @classmethod
    def parse(cls, text: str) -> AwakeableId:
        body = _split_prefixed(text, "sign_", "awakeable")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            raise InvalidIdError(
                f"bad awakeable id '{text}': id doesn't match the expected type"
            ) from None
        if len(raw) != 28:
            raise InvalidIdError(f"bad awakeable id '{text}': id doesn't match the expected type")
        return cls(InvocationId.from_bytes(raw[:24]), int.from_bytes(raw[24:], "big"))

    def __str__(self) -> str:
        raw = self.invocation_id.to_bytes() + self.signal_index.to_bytes(4, "big")
        return "sign_" + _CODEC_VERSION + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
