"""Request-identity verification of the SDK endpoint, compatible with Restate's request signing.

A Restate server configured with an Ed25519 private key
(``[worker.invoker] request-identity-private-key-pem-file``) signs every request it sends to a
deployment (``/discover`` and ``/invoke/{service}/{handler}``) with two headers::

    x-restate-signature-scheme: v1
    x-restate-jwt-v1: <JWT>

The JWT's header is ``{"typ": "JWT", "alg": "EdDSA", "kid": "publickeyv1_..."}``; its claims are
``aud`` (the request path without the prefix the deployment is mounted under), ``exp``, ``iat``
and ``nbf`` (seconds since the epoch) and, for keyed invocations, ``sub``. Public keys are
written ``publickeyv1_`` followed by the base58 (Bitcoin alphabet) of the 32-byte raw Ed25519
public key; the server logs its own on start.

An endpoint configured with such public keys accepts a request only if (in this order):

1. ``x-restate-signature-scheme`` is present and ``v1`` (``unsigned`` or absent: rejected);
2. ``x-restate-jwt-v1`` is present and is a well-formed compact JWS (three base64url parts,
   unpadded and canonical; header and claims JSON objects without duplicate keys; no ``crit``);
3. its ``alg`` is ``EdDSA`` and its signature verifies under one of the configured keys. ``kid``
   only orders the search (the key it names is tried first): a token signed by a configured key
   is accepted whatever its ``kid`` says, as Restate's SDKs do. ``typ`` is not checked;
4. the claims ``aud``, ``exp``, ``iat`` and ``nbf`` are all present, the last three numbers;
5. with ``now`` = the clock in whole seconds (rounded down) and no leeway: ``exp >= now``
   (else expired) and ``nbf <= now`` (else not yet valid). ``iat`` is required but not checked;
6. ``aud`` (a string, or a list of strings one of which must match) equals the request path
   normalised to its suffix: ``…/invoke/S/h`` → ``/invoke/S/h``, else ``…/discover`` →
   ``/discover``; other paths (e.g. ``/health``) are compared as they are.

This matches the verdicts of the official Python SDK (``restate-sdk`` 1.2.0) on every case tested,
except where it is deliberately stricter: ``iat`` must be present and a number (the SDK does not
require it), and a ``crit`` header parameter is refused (RFC 7515; the SDK ignores it). Header
values are taken without surrounding whitespace, as HTTP defines them.

With no keys configured, verification is skipped entirely.

Ed25519 (RFC 8032, section 5.1) is implemented here in pure Python on extended twisted Edwards
coordinates. Verification uses the cofactored group equation ``[8][S]B = [8]R + [8][k]A`` and
rejects non-canonical ``S`` (``S >= L``) and ``R``/``A`` encodings whose ``y >= p``. Both scalar
multiplications of a verification use precomputed tables of 4-bit windows, so one costs at most
128 mixed additions, three doublings and one square root: about 0.4 ms on CPython 3.11 (x86-64).
Each table takes about 6 ms to build: the base point's on first use, a public key's when an
:class:`IdentityVerifier` is constructed (for :func:`ed25519_verify`, on first use, then cached).
Signing is provided for tests and tooling only: it is not constant time.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from undying.errors import IdentityError

__all__ = [
    "JWT_HEADER",
    "KEY_PREFIX",
    "SCHEME_HEADER",
    "IdentityVerifier",
    "ed25519_public_key",
    "ed25519_sign",
    "ed25519_verify",
    "encode_public_key",
    "parse_public_key",
]

#: Request header naming the signature scheme (``v1`` or ``unsigned``).
SCHEME_HEADER: Final = "x-restate-signature-scheme"
#: Request header carrying the JWT of scheme ``v1``.
JWT_HEADER: Final = "x-restate-jwt-v1"
#: Prefix of public keys in text form (and of the JWT ``kid``).
KEY_PREFIX: Final = "publickeyv1_"

_SCHEME_V1: Final = "v1"
_SCHEME_UNSIGNED: Final = "unsigned"
_REQUIRED_CLAIMS: Final = ("aud", "exp", "iat", "nbf")

# -- Ed25519 (RFC 8032, section 5.1) ---------------------------------------------------------

_P: Final = 2**255 - 19
_L: Final = 2**252 + 27742317777372353535851937790883648493
_D: Final = -121665 * pow(121666, -1, _P) % _P
_D2: Final = 2 * _D % _P
_SQRT_M1: Final = pow(2, (_P - 1) // 4, _P)
_Y_MASK: Final = (1 << 255) - 1

#: A point in extended coordinates ``(X, Y, Z, T)``: ``x = X/Z``, ``y = Y/Z``, ``x*y = T/Z``.
_Point = tuple[int, int, int, int]
#: An affine point ready for mixed addition: ``(y + x, y - x, 2*d*x*y)``.
_Cached = tuple[int, int, int]
#: 64 rows (4-bit windows) of 15 multiples: ``table[i][j - 1] = j * 16**i * point``.
_Table = tuple[tuple[_Cached, ...], ...]

_IDENTITY: Final[_Point] = (0, 1, 1, 0)
_WINDOWS: Final = 64


def _add(p: _Point, q: _Point) -> _Point:
    """``p + q``: the strongly unified addition of RFC 8032 (works for any two points)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = t1 * t2 % _P * _D2 % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _add_cached(p: _Point, q: _Cached) -> _Point:
    """``p + q`` for an affine ``q`` in cached form (one multiplication fewer than :func:`_add`)."""
    x1, y1, z1, t1 = p
    q_plus, q_minus, q_t2d = q
    a = (y1 - x1) * q_minus % _P
    b = (y1 + x1) * q_plus % _P
    c = t1 * q_t2d % _P
    d = 2 * z1
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _double(p: _Point) -> _Point:
    """``2p`` (RFC 8032 doubling formulas)."""
    x1, y1, z1, _ = p
    a = x1 * x1 % _P
    b = y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1) % _P
    g = a - b
    f = c + g
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _negate(p: _Point) -> _Point:
    x, y, z, t = p
    return -x % _P, y, z, -t % _P


def _is_identity(p: _Point) -> bool:
    x, y, z, _ = p
    return x % _P == 0 and (y - z) % _P == 0


def _times_cofactor(p: _Point) -> _Point:
    return _double(_double(_double(p)))


def _decompress(data: bytes) -> _Point | None:
    """The point encoded by 32 bytes (RFC 8032 5.1.3), or ``None`` if it is not one."""
    if len(data) != 32:
        return None
    n = int.from_bytes(data, "little")
    sign = n >> 255
    y = n & _Y_MASK
    if y >= _P:
        return None
    y2 = y * y % _P
    u = (y2 - 1) % _P
    v = (_D * y2 + 1) % _P
    v3 = v * v % _P * v % _P
    # x = (u/v)^((p+3)/8), computed as u v^3 (u v^7)^((p-5)/8).
    x = u * v3 % _P * pow(u * v3 % _P * v3 % _P * v % _P, (_P - 5) // 8, _P) % _P
    vx2 = v * x % _P * x % _P
    if vx2 == (-u) % _P:
        x = x * _SQRT_M1 % _P
    elif vx2 != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y, 1, x * y % _P


def _compress(p: _Point) -> bytes:
    """The 32-byte encoding of a point (RFC 8032 5.1.2)."""
    x, y, z, _ = p
    z_inv = pow(z, -1, _P)
    x = x * z_inv % _P
    y = y * z_inv % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _window_table(point: _Point) -> _Table:
    """Every ``j * 16**i * point`` (``1 <= j <= 15``, ``0 <= i < 64``), affine, cached form."""
    rows: list[list[_Point]] = []
    base = point
    for _ in range(_WINDOWS):
        row = [base]
        for _ in range(14):
            row.append(_add(row[-1], base))
        rows.append(row)
        base = _double(_double(_double(_double(base))))
    flat = [p for row in rows for p in row]
    # Montgomery's trick: one modular inversion for every Z.
    prefix = [1] * (len(flat) + 1)
    for i, p in enumerate(flat):
        prefix[i + 1] = prefix[i] * p[2] % _P
    inv = pow(prefix[-1], -1, _P)
    cached: list[_Cached] = [(0, 0, 0)] * len(flat)
    for i in range(len(flat) - 1, -1, -1):
        x, y, z, _ = flat[i]
        z_inv = inv * prefix[i] % _P
        inv = inv * z % _P
        ax, ay = x * z_inv % _P, y * z_inv % _P
        cached[i] = ((ay + ax) % _P, (ay - ax) % _P, _D2 * ax % _P * ay % _P)
    return tuple(tuple(cached[i * 15 : i * 15 + 15]) for i in range(_WINDOWS))


def _multiply(table: _Table, scalar: int, acc: _Point = _IDENTITY) -> _Point:
    """``acc + scalar * point`` for the point ``table`` was built from (``0 <= scalar < 2**256``).

    Not constant time: the additions performed depend on the scalar.
    """
    for row in table:
        if not scalar:
            break
        nibble = scalar & 15
        if nibble:
            acc = _add_cached(acc, row[nibble - 1])
        scalar >>= 4
    return acc


@functools.cache
def _base_table() -> _Table:
    """The window table of the base point ``B`` (``y = 4/5``, ``x`` even)."""
    base = _decompress((4 * pow(5, -1, _P) % _P).to_bytes(32, "little"))
    assert base is not None
    return _window_table(base)


@dataclass(frozen=True, slots=True)
class _PublicKey:
    """A decoded public key ``A`` with the window table of ``-A``."""

    encoded: bytes
    negated_table: _Table


def _load_public_key(encoded: bytes) -> _PublicKey | None:
    """Decode and precompute a public key, or ``None`` if the bytes encode no point."""
    point = _decompress(encoded)
    if point is None:
        return None
    return _PublicKey(bytes(encoded), _window_table(_negate(point)))


@functools.lru_cache(maxsize=64)
def _cached_public_key(encoded: bytes) -> _PublicKey | None:
    return _load_public_key(encoded)


def _verify(key: _PublicKey, message: bytes, signature: bytes) -> bool:
    """RFC 8032 5.1.7 with the cofactored check ``[8]([S]B - [k]A - R) == 0``."""
    if len(signature) != 64:
        return False
    r_encoded = signature[:32]
    r = _decompress(r_encoded)
    if r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    digest = hashlib.sha512(r_encoded + key.encoded + message).digest()
    k = int.from_bytes(digest, "little") % _L
    q = _multiply(_base_table(), s)
    q = _multiply(key.negated_table, k, q)
    q = _add(q, _negate(r))
    return _is_identity(_times_cofactor(q))


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``.

    The key's precomputation is cached (least recently used, 64 keys).

    Args:
        public_key: the 32-byte encoded public key.
        message: the signed bytes.
        signature: the 64-byte signature ``R || S``.

    Returns:
        ``True`` if the signature verifies; ``False`` for any invalid input (wrong lengths, a key
        or ``R`` that is not a point, ``S >= L``, or a failing group equation).
    """
    if len(public_key) != 32 or len(signature) != 64:
        return False
    key = _cached_public_key(bytes(public_key))
    return key is not None and _verify(key, message, signature)


def _expand_seed(seed: bytes) -> tuple[int, bytes]:
    """The clamped secret scalar and the nonce prefix of a 32-byte private key (RFC 8032 5.1.5)."""
    if len(seed) != 32:
        raise ValueError(f"an Ed25519 private key (seed) is 32 bytes, got {len(seed)}")
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= ~7  # clear the three lowest bits
    scalar &= (1 << 254) - 1  # clear bits 254 and 255 …
    scalar |= 1 << 254  # … and set bit 254
    return scalar, digest[32:]


def ed25519_public_key(seed: bytes) -> bytes:
    """The 32-byte public key of a 32-byte Ed25519 private key (seed).

    Args:
        seed: the private key.

    Raises:
        ValueError: ``seed`` is not 32 bytes.
    """
    scalar, _ = _expand_seed(seed)
    return _compress(_multiply(_base_table(), scalar))


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``message`` (RFC 8032 5.1.6).

    For tests and tooling only: the arithmetic is not constant time, so it must not sign with a
    valuable key where timing can be observed.

    Args:
        seed: the 32-byte private key.
        message: the bytes to sign.

    Raises:
        ValueError: ``seed`` is not 32 bytes.
    """
    scalar, prefix = _expand_seed(seed)
    public = _compress(_multiply(_base_table(), scalar))
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % _L
    r_encoded = _compress(_multiply(_base_table(), r))
    k = int.from_bytes(hashlib.sha512(r_encoded + public + message).digest(), "little") % _L
    s = (r + k * scalar) % _L
    return r_encoded + s.to_bytes(32, "little")


# -- text encodings ----------------------------------------------------------------------------

_B58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_DIGITS: Final = {c: i for i, c in enumerate(_B58_ALPHABET)}
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]*")


def _b58decode(text: str) -> bytes:
    """Base58 (Bitcoin alphabet) to bytes; each leading ``1`` is a leading zero byte."""
    n = 0
    for char in text:
        digit = _B58_DIGITS.get(char)
        if digit is None:
            raise ValueError(f"invalid base58 character {char!r}")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return bytes(zeros) + n.to_bytes((n.bit_length() + 7) // 8, "big")


def _b58encode(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    digits: list[str] = []
    while n:
        n, digit = divmod(n, 58)
        digits.append(_B58_ALPHABET[digit])
    zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def _b64url_decode(text: str, what: str) -> bytes:
    """Unpadded, canonical base64url to bytes.

    Raises:
        IdentityError: ``text`` has padding, characters outside the alphabet, an impossible
            length or non-zero unused bits.
    """
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise IdentityError(f"malformed JWT: the {what} is not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != text.encode("ascii"):
        raise IdentityError(f"malformed JWT: the {what} is not canonical base64url")
    return raw


def encode_public_key(public_key: bytes) -> str:
    """The text form ``publickeyv1_<base58>`` of a 32-byte Ed25519 public key.

    Raises:
        ValueError: ``public_key`` is not 32 bytes.
    """
    if len(public_key) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    return KEY_PREFIX + _b58encode(public_key)


def parse_public_key(text: str) -> bytes:
    """The raw 32-byte Ed25519 public key written as ``publickeyv1_<base58>``.

    Surrounding whitespace is ignored. The key must be a point of the curve and not of small
    order (such a key would accept forged signatures).

    Args:
        text: the key as Restate prints it.

    Returns:
        The 32-byte encoded public key.

    Raises:
        ValueError: the prefix is missing, the base58 is invalid, it does not decode to 32 bytes,
            or the bytes are not a usable Ed25519 public key.
    """
    if not isinstance(text, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"an identity public key is text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped.startswith(KEY_PREFIX):
        raise ValueError(f"identity public key {text!r} does not start with {KEY_PREFIX!r}")
    try:
        raw = _b58decode(stripped[len(KEY_PREFIX) :])
    except ValueError as exc:
        raise ValueError(f"identity public key {text!r}: {exc}") from None
    if len(raw) != 32:
        raise ValueError(f"identity public key {text!r} decodes to {len(raw)} bytes, not 32")
    point = _decompress(raw)
    if point is None:
        raise ValueError(f"identity public key {text!r} is not a valid Ed25519 public key")
    if _is_identity(_times_cofactor(point)):
        raise ValueError(f"identity public key {text!r} is a point of small order")
    return raw


# -- JWT ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise IdentityError(f"malformed JWT: duplicate member {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
        )
    except ValueError as exc:  # also UnicodeDecodeError and json.JSONDecodeError
        raise IdentityError(f"malformed JWT: the {what} is not JSON ({exc})") from None
    except RecursionError:
        raise IdentityError(f"malformed JWT: the {what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise IdentityError(f"malformed JWT: the {what} is not a JSON object")
    return cast("dict[str, Any]", value)


def _parse_token(token: str) -> _Token:
    parts = token.split(".")
    if len(parts) != 3:
        raise IdentityError(f"malformed JWT: {len(parts)} dot-separated parts instead of 3")
    header_b64, claims_b64, signature_b64 = parts
    header = _json_object(_b64url_decode(header_b64, "header"), "header")
    claims = _json_object(_b64url_decode(claims_b64, "claims"), "claims")
    signature = _b64url_decode(signature_b64, "signature")
    return _Token(header, claims, f"{header_b64}.{claims_b64}".encode("ascii"), signature)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def _normalise_path(path: str) -> str:
    """The request path without the prefix the endpoint is mounted under.

    ``…/invoke/{service}/{handler}`` becomes ``/invoke/{service}/{handler}`` (even for a handler
    named ``discover``), else ``…/discover`` becomes ``/discover``; any other path is returned
    unchanged. This is what Restate's SDKs compare the ``aud`` claim with.
    """
    segments = path.split("/")
    if len(segments) >= 4 and segments[-3] == "invoke":
        return "/" + "/".join(segments[-3:])
    if len(segments) >= 2 and segments[-1] == "discover":
        return "/discover"
    return path


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (lower case), looked up case-insensitively."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                value = candidate
                break
    return None if value is None else value.strip()


class IdentityVerifier:
    """Checks that requests to the SDK endpoint were signed by a trusted Restate server.

    Args:
        keys: trusted public keys, each ``publickeyv1_<base58>`` (duplicates are ignored). If
            empty, verification is off and :meth:`verify` accepts every request.
        clock: seconds since the epoch (for ``exp``/``nbf``); ``time.time`` by default.

    Raises:
        ValueError: a key is malformed (see :func:`parse_public_key`), or ``keys`` is a single
            string rather than a sequence of them.
    """

    def __init__(self, keys: Sequence[str], *, clock: Callable[[], float] = time.time) -> None:
        if isinstance(keys, str):
            raise ValueError("`keys` must be a sequence of public keys, not a single string")
        loaded: dict[str, _PublicKey] = {}
        for text in keys:
            raw = parse_public_key(text)
            kid = encode_public_key(raw)
            if kid not in loaded:
                key = _load_public_key(raw)
                assert key is not None  # parse_public_key checked that it decodes
                loaded[kid] = key
        if loaded:
            _base_table()  # build it now rather than during the first request
        self._keys: Final = loaded
        self._clock: Final = clock

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (else :meth:`verify` accepts every request)."""
        return bool(self._keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The configured keys in canonical text form (``publickeyv1_…``), without duplicates."""
        return tuple(self._keys)

    def verify(self, headers: Mapping[str, str], path: str) -> None:
        """Accept the request or raise; a no-op when no key is configured.

        Args:
            headers: the request headers (names matched case-insensitively).
            path: the request path, with or without the prefix the endpoint is mounted under
                (it is normalised to ``/discover`` or ``/invoke/{service}/{handler}``).

        Raises:
            IdentityError: the request is not signed, or not acceptably; the message names the
                check that failed.
        """
        if not self._keys:
            return
        scheme = _header(headers, SCHEME_HEADER)
        if scheme is None:
            raise IdentityError(
                f"missing {SCHEME_HEADER} header: expecting only signed requests (scheme v1)"
            )
        if scheme == _SCHEME_UNSIGNED:
            raise IdentityError(
                "got an unsigned request, expecting only signed requests matching the configured "
                "keys"
            )
        if scheme != _SCHEME_V1:
            raise IdentityError(f"unsupported signature scheme {scheme!r} (expecting v1)")
        text = _header(headers, JWT_HEADER)
        if text is None:
            raise IdentityError(f"missing {JWT_HEADER} header with signature scheme v1")
        token = _parse_token(text)
        self._check_signature(token)
        self._check_claims(token.claims, _normalise_path(path))

    def _check_signature(self, token: _Token) -> None:
        alg = token.header.get("alg")
        if alg != "EdDSA":
            raise IdentityError(f"unsupported JWT algorithm {alg!r} (expecting EdDSA)")
        if "crit" in token.header:
            raise IdentityError("unsupported JWT: critical header parameters ('crit')")
        kid = token.header.get("kid")
        first = self._keys.get(kid) if isinstance(kid, str) else None
        candidates = [first] if first is not None else []
        candidates += [key for key in self._keys.values() if key is not first]
        for key in candidates:
            if _verify(key, token.signing_input, token.signature):
                return
        unknown = "" if first is not None or kid is None else f" (kid {kid!r} is not configured)"
        raise IdentityError(
            f"JWT signature does not verify with any configured public key{unknown}"
        )

    def _check_claims(self, claims: Mapping[str, Any], audience: str) -> None:
        for name in _REQUIRED_CLAIMS:
            if name not in claims:
                raise IdentityError(f"JWT claim {name!r} is missing")
        for name in ("exp", "iat", "nbf"):
            if not _is_number(claims[name]):
                raise IdentityError(f"JWT claim {name!r} is not a number: {claims[name]!r}")
        now = math.floor(self._clock())
        if claims["exp"] < now:
            raise IdentityError(f"JWT expired (exp {claims['exp']} < now {now})")
        if claims["nbf"] > now:
            raise IdentityError(f"JWT not yet valid (nbf {claims['nbf']} > now {now})")
        aud = claims["aud"]
        audiences = cast("list[object]", aud) if isinstance(aud, list) else [aud]
        if not all(isinstance(item, str) for item in audiences):
            raise IdentityError(f"JWT claim 'aud' is not a string or list of strings: {aud!r}")
        if audience not in audiences:
            raise IdentityError(f"JWT audience {aud!r} does not match request path {audience!r}")
