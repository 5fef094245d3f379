"""Request-identity verification: Ed25519 (RFC 8032), the key format, the JWT rules, and one
interop check against the real restate-server with request signing enabled.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import random
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import pytest

from undying.errors import IdentityError, UndyingError
from undying.sdk.identity import (
    JWT_HEADER,
    KEY_PREFIX,
    SCHEME_HEADER,
    IdentityVerifier,
    ed25519_public_key,
    ed25519_sign,
    ed25519_verify,
    encode_public_key,
    parse_public_key,
)
from undying.testing import RestateServer
from undying.testing.paths import LOOPBACK

# RFC 8032, section 7.1 (Ed25519): secret key (seed), public key, message, signature, in hex.
RFC8032_VECTORS: Final = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        (
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ),
        id="TEST 1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        (
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ),
        id="TEST 2",
    ),
    pytest.param(
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        (
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
            "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"
        ),
        id="TEST 3",
    ),
    pytest.param(
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        (
            "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
            "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
            "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
            "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
            "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
            "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
            "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
            "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
            "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
            "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
            "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
            "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
            "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
            "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
            "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
            "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
            "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
            "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
            "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
            "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
            "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
            "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
            "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
            "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
            "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
            "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
            "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
            "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
            "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
            "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
            "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
            "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0"
        ),
        (
            "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
            "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"
        ),
        id="TEST 1024",
    ),
    pytest.param(
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        (
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        ),
        (
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
            "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"
        ),
        id="TEST SHA(abc)",
    ),
]

#: The order of the base point.
L: Final = 2**252 + 27742317777372353535851937790883648493
#: A point of order 8 (its encoding), and the neutral element (order 1).
SMALL_ORDER_POINT: Final = bytes.fromhex(
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
)
NEUTRAL_POINT: Final = (1).to_bytes(32, "little")
#: ``y = 2`` has no ``x`` on the curve.
NOT_A_POINT: Final = (2).to_bytes(32, "little")

SEED: Final = hashlib.sha256(b"undying identity test key").digest()
OTHER_SEED: Final = hashlib.sha256(b"undying identity other key").digest()
KEY: Final = encode_public_key(ed25519_public_key(SEED))
OTHER_KEY: Final = encode_public_key(ed25519_public_key(OTHER_SEED))
#: A key id printed in the Restate TypeScript SDK's documentation.
DOCUMENTED_KEY: Final = "publickeyv1_2G8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX9"

NOW: Final = 1_795_498_649
PATH: Final = "/invoke/Counter/add"


# -- helpers -----------------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value).encode())


def claims_for(aud: Any = PATH, now: int = NOW, **extra: Any) -> dict[str, Any]:
    """Claims as restate-server makes them (60 s leeway either way)."""
    return {"aud": aud, "exp": now + 60, "iat": now, "nbf": now - 60, **extra}


def make_token(
    claims: Mapping[str, Any] | None = None,
    *,
    seed: bytes = SEED,
    header: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS signed with ``seed`` (by default, Restate's header with the seed's kid)."""
    if header is None:
        header = {"typ": "JWT", "alg": "EdDSA", "kid": encode_public_key(ed25519_public_key(seed))}
    body = claims if claims is not None else claims_for()
    signing_input = f"{b64url_json(header)}.{b64url_json(body)}"
    return f"{signing_input}.{b64url(ed25519_sign(seed, signing_input.encode()))}"


def signed(token: str) -> dict[str, str]:
    return {SCHEME_HEADER: "v1", JWT_HEADER: token}


def verifier(*keys: str, now: float = NOW) -> IdentityVerifier:
    return IdentityVerifier(keys or (KEY,), clock=lambda: now)


def rejected(headers: Mapping[str, str], path: str = PATH, *, now: float = NOW) -> str:
    """The message of the IdentityError raised for this request by a verifier trusting KEY."""
    with pytest.raises(IdentityError) as caught:
        verifier(now=now).verify(headers, path)
    return str(caught.value)


# -- Ed25519 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors(seed: str, public: str, message: str, signature: str) -> None:
    seed_b, public_b = bytes.fromhex(seed), bytes.fromhex(public)
    message_b, signature_b = bytes.fromhex(message), bytes.fromhex(signature)
    assert ed25519_public_key(seed_b) == public_b
    assert ed25519_sign(seed_b, message_b) == signature_b
    assert ed25519_verify(public_b, message_b, signature_b)


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors_tampered(seed: str, public: str, message: str, signature: str) -> None:
    public_b = bytes.fromhex(public)
    message_b, signature_b = bytes.fromhex(message), bytes.fromhex(signature)
    for index in range(64):  # one flipped bit anywhere in R or S
        bad = bytearray(signature_b)
        bad[index] ^= 1 << (index % 8)
        assert not ed25519_verify(public_b, message_b, bytes(bad)), index
    assert not ed25519_verify(public_b, message_b + b"\0", signature_b)
    if message_b:
        flipped = bytes([message_b[0] ^ 0x80]) + message_b[1:]
        assert not ed25519_verify(public_b, flipped, signature_b)
    other = ed25519_public_key(OTHER_SEED)
    assert not ed25519_verify(other, message_b, signature_b)


def test_signatures_of_random_keys_and_messages_verify() -> None:
    rng = random.Random(8032)
    for _ in range(20):
        seed = rng.randbytes(32)
        message = rng.randbytes(rng.randrange(0, 200))
        public = ed25519_public_key(seed)
        signature = ed25519_sign(seed, message)
        assert signature[63] & 0xE0 == 0  # S < L < 2**253
        assert ed25519_verify(public, message, signature)
        assert not ed25519_verify(public, message + b"!", signature)


def test_non_canonical_s_is_rejected() -> None:
    public = ed25519_public_key(SEED)
    signature = ed25519_sign(SEED, b"message")
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + L).to_bytes(32, "little")
    assert not ed25519_verify(public, b"message", malleated)


def test_non_canonical_or_invalid_r_is_rejected() -> None:
    public = ed25519_public_key(SEED)
    signature = ed25519_sign(SEED, b"message")
    p = 2**255 - 19
    for r in ((p + 1).to_bytes(32, "little"), NOT_A_POINT, b"\xff" * 32):
        assert not ed25519_verify(public, b"message", r + signature[32:])


def test_malformed_inputs_are_rejected_not_raised() -> None:
    public = ed25519_public_key(SEED)
    signature = ed25519_sign(SEED, b"m")
    assert not ed25519_verify(public, b"m", signature[:63])
    assert not ed25519_verify(public, b"m", signature + b"\0")
    assert not ed25519_verify(public[:31], b"m", signature)
    assert not ed25519_verify(NOT_A_POINT, b"m", signature)
    with pytest.raises(ValueError, match="32 bytes"):
        ed25519_public_key(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        ed25519_sign(b"short", b"m")


def test_verification_is_fast() -> None:
    """A regression guard far above the measured cost (about 0.4 ms per verification)."""
    public = ed25519_public_key(SEED)
    signature = ed25519_sign(SEED, b"timing")
    assert ed25519_verify(public, b"timing", signature)  # builds and caches the key's table
    rounds = 50
    started = time.perf_counter()
    for _ in range(rounds):
        assert ed25519_verify(public, b"timing", signature)
    assert (time.perf_counter() - started) / rounds < 0.01


# -- public keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032_VECTORS)
def test_public_key_text_round_trips(seed: str, public: str, message: str, signature: str) -> None:
    raw = bytes.fromhex(public)
    text = encode_public_key(raw)
    assert text.startswith(KEY_PREFIX)
    assert parse_public_key(text) == raw
    assert parse_public_key(f"  {text}\n") == raw


def test_documented_key_parses() -> None:
    raw = parse_public_key(DOCUMENTED_KEY)
    assert len(raw) == 32
    assert encode_public_key(raw) == DOCUMENTED_KEY


def test_leading_zero_bytes_are_leading_ones() -> None:
    seed = next(
        s for s in (i.to_bytes(32, "big") for i in range(100_000)) if ed25519_public_key(s)[0] == 0
    )
    raw = ed25519_public_key(seed)
    zeros = len(raw) - len(raw.lstrip(b"\0"))
    text = encode_public_key(raw)
    assert text[len(KEY_PREFIX) :].startswith("1" * zeros)
    assert not text[len(KEY_PREFIX) + zeros :].startswith("1")
    assert parse_public_key(text) == raw


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2G8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX9", "does not start with"),
        ("publickeyv2_2G8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX9", "does not start with"),
        ("publickeyv1_", "decodes to 0 bytes"),
        ("publickeyv1_2G8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX", "not 32"),
        ("publickeyv1_2G8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX99", "not 32"),
        (
            "publickeyv1_0G8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX9",
            "invalid base58 character '0'",
        ),
        (
            "publickeyv1_OG8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX9",
            "invalid base58 character 'O'",
        ),
        (
            "publickeyv1_IG8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX9",
            "invalid base58 character 'I'",
        ),
        (
            "publickeyv1_lG8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX9",
            "invalid base58 character 'l'",
        ),
        (encode_public_key(NOT_A_POINT), "not a valid Ed25519 public key"),
        (encode_public_key(SMALL_ORDER_POINT), "small order"),
        (encode_public_key(NEUTRAL_POINT), "small order"),
    ],
)
def test_malformed_public_keys(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_public_key(text)
    with pytest.raises(ValueError, match=reason):
        IdentityVerifier([KEY, text])


def test_public_key_must_be_text() -> None:
    with pytest.raises(ValueError, match="is text"):
        parse_public_key(b"publickeyv1_x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 bytes"):
        encode_public_key(b"\1" * 31)


# -- the verifier ------------------------------------------------------------------------------


def test_no_keys_means_no_verification() -> None:
    off = IdentityVerifier([])
    assert not off.enabled
    assert off.key_ids == ()
    off.verify({}, PATH)
    off.verify({SCHEME_HEADER: "unsigned"}, "/discover")


def test_configuration() -> None:
    on = IdentityVerifier([KEY, OTHER_KEY, f" {KEY} "])
    assert on.enabled
    assert on.key_ids == (KEY, OTHER_KEY)
    with pytest.raises(ValueError, match="not a single string"):
        IdentityVerifier(KEY)


def test_identity_error_is_an_undying_error() -> None:
    assert issubclass(IdentityError, UndyingError)


@pytest.mark.parametrize(
    ("path", "aud"),
    [
        ("/invoke/Counter/add", "/invoke/Counter/add"),
        ("/discover", "/discover"),
        ("/mounted/under/a/prefix/invoke/Counter/add", "/invoke/Counter/add"),
        ("/prefix/discover", "/discover"),
    ],
)
def test_signed_request_is_accepted(path: str, aud: str) -> None:
    verifier().verify(signed(make_token(claims_for(aud=aud, sub="c9"))), path)


def test_header_names_are_case_insensitive() -> None:
    headers = {"X-Restate-Signature-Scheme": "v1", "X-Restate-JWT-V1": make_token()}
    verifier().verify(headers, PATH)


def test_any_configured_key_is_accepted() -> None:
    token = make_token(seed=OTHER_SEED)
    verifier(KEY, OTHER_KEY).verify(signed(token), PATH)
    verifier(OTHER_KEY, KEY).verify(signed(token), PATH)


def test_kid_only_orders_the_search() -> None:
    """The rule: a token signed by a configured key is accepted whatever its kid says."""
    for kid in (OTHER_KEY, DOCUMENTED_KEY, "something else"):
        header = {"typ": "JWT", "alg": "EdDSA", "kid": kid}
        verifier(KEY, OTHER_KEY).verify(signed(make_token(header=header)), PATH)
    verifier().verify(signed(make_token(header={"alg": "EdDSA"})), PATH)  # no kid, no typ


def test_signature_of_an_unconfigured_key_is_rejected() -> None:
    message = rejected(signed(make_token(seed=OTHER_SEED)))
    assert "does not verify with any configured public key" in message
    assert f"kid {OTHER_KEY!r} is not configured" in message
    header = {"typ": "JWT", "alg": "EdDSA", "kid": KEY}  # lies about its key
    message = rejected(signed(make_token(seed=OTHER_SEED, header=header)))
    assert "does not verify with any configured public key" in message
    assert "not configured" not in message


def test_tampered_claims_are_rejected() -> None:
    header_b64, _, signature_b64 = make_token().split(".")
    forged = b64url_json(claims_for(aud="/invoke/Counter/reset"))
    message = rejected(signed(f"{header_b64}.{forged}.{signature_b64}"), "/invoke/Counter/reset")
    assert "does not verify" in message


def test_tampered_signature_is_rejected() -> None:
    head, claims, signature_b64 = make_token().split(".")
    signature = bytearray(base64.urlsafe_b64decode(signature_b64 + "=="))
    signature[5] ^= 0x10
    assert "does not verify" in rejected(signed(f"{head}.{claims}.{b64url(bytes(signature))}"))


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing x-restate-signature-scheme header"),
        ({JWT_HEADER: "a.b.c"}, "missing x-restate-signature-scheme header"),
        ({SCHEME_HEADER: "unsigned"}, "got an unsigned request"),
        ({SCHEME_HEADER: "unsigned", JWT_HEADER: "a.b.c"}, "got an unsigned request"),
        ({SCHEME_HEADER: "v2"}, "unsupported signature scheme 'v2'"),
        ({SCHEME_HEADER: "V1"}, "unsupported signature scheme 'V1'"),
        ({SCHEME_HEADER: "v1"}, "missing x-restate-jwt-v1 header"),
    ],
)
def test_scheme_and_headers(headers: dict[str, str], reason: str) -> None:
    assert reason in rejected(headers)


GOOD_HEADER: Final = b64url_json({"typ": "JWT", "alg": "EdDSA", "kid": KEY})
GOOD_CLAIMS: Final = b64url_json(claims_for())
GOOD_SIGNATURE: Final = b64url(b"\0" * 64)
NOT_UTF8: Final = b64url(b"\xff")
DUPLICATE_ALG: Final = b64url(b'{"alg":"EdDSA","alg":"none"}')
NAN_EXP: Final = b64url(b'{"exp":NaN}')
DEEP_CLAIMS: Final = b64url(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "1 dot-separated parts instead of 3"),
        (f"{GOOD_HEADER}.{GOOD_CLAIMS}", "2 dot-separated parts instead of 3"),
        (f"{GOOD_HEADER}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}.x", "4 dot-separated parts"),
        (f"{GOOD_HEADER}=.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", "header is not unpadded base64url"),
        (f"{GOOD_HEADER}.{GOOD_CLAIMS}+.{GOOD_SIGNATURE}", "claims is not unpadded base64url"),
        (f"{GOOD_HEADER}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}AAA", "signature is not unpadded base64url"),
        (f"{GOOD_HEADER}.{GOOD_CLAIMS}.{GOOD_SIGNATURE[:-1]}B", "signature is not canonical"),
        (f"{b64url(b'not json')}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", "header is not JSON"),
        (f"{NOT_UTF8}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", "header is not JSON"),
        (f"{b64url_json(['EdDSA'])}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", "not a JSON object"),
        (f"{GOOD_HEADER}.{b64url_json('x')}.{GOOD_SIGNATURE}", "claims is not a JSON object"),
        (
            f"{DUPLICATE_ALG}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}",
            "duplicate member 'alg'",
        ),
        (f"{GOOD_HEADER}.{NAN_EXP}.{GOOD_SIGNATURE}", "claims is not JSON"),
        (f"{GOOD_HEADER}.{DEEP_CLAIMS}.{GOOD_SIGNATURE}", "claims is nested too deeply"),
        (f"{GOOD_HEADER}.{GOOD_CLAIMS}.{b64url(b'short')}", "does not verify"),
        (f"{GOOD_HEADER}.{GOOD_CLAIMS}.{GOOD_SIGNATURE}", "does not verify"),
        (f"{GOOD_HEADER}.{GOOD_CLAIMS}.", "does not verify"),
    ],
)
def test_malformed_tokens(token: str, reason: str) -> None:
    assert reason in rejected(signed(token))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"typ": "JWT", "alg": "none"}, "unsupported JWT algorithm 'none'"),
        ({"typ": "JWT", "alg": "HS256"}, "unsupported JWT algorithm 'HS256'"),
        ({"typ": "JWT", "alg": "ES256"}, "unsupported JWT algorithm 'ES256'"),
        ({"typ": "JWT", "alg": "eddsa"}, "unsupported JWT algorithm 'eddsa'"),
        ({"typ": "JWT"}, "unsupported JWT algorithm None"),
        ({"typ": "JWT", "alg": "EdDSA", "crit": ["exp"]}, "critical header parameters"),
    ],
)
def test_header_checks(header: dict[str, Any], reason: str) -> None:
    assert reason in rejected(signed(make_token(header=header)))


@pytest.mark.parametrize("claim", ["aud", "exp", "iat", "nbf"])
def test_every_claim_is_required(claim: str) -> None:
    claims = claims_for()
    del claims[claim]
    assert f"JWT claim {claim!r} is missing" in rejected(signed(make_token(claims)))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ["1795498709", None, True, [NOW], {"n": NOW}])
def test_time_claims_are_numbers(claim: str, value: Any) -> None:
    claims = {**claims_for(), claim: value}
    assert f"JWT claim {claim!r} is not a number" in rejected(signed(make_token(claims)))


def test_subject_is_optional() -> None:
    verifier().verify(signed(make_token(claims_for())), PATH)
    verifier().verify(signed(make_token(claims_for(sub="c9"))), PATH)


def test_expiry_has_no_leeway() -> None:
    token = make_token(claims_for())  # exp = NOW + 60
    verifier(now=NOW + 60).verify(signed(token), PATH)
    verifier(now=NOW + 60.999).verify(signed(token), PATH)  # the clock is rounded down
    message = rejected(signed(token), now=NOW + 61)
    assert message == f"JWT expired (exp {NOW + 60} < now {NOW + 61})"


def test_not_before_has_no_leeway() -> None:
    token = make_token(claims_for())  # nbf = NOW - 60
    verifier(now=NOW - 60).verify(signed(token), PATH)
    message = rejected(signed(token), now=NOW - 60.001)
    assert message == f"JWT not yet valid (nbf {NOW - 60} > now {NOW - 61})"


def test_issued_at_is_not_checked() -> None:
    verifier().verify(signed(make_token({**claims_for(), "iat": NOW + 3600})), PATH)


def test_fractional_times_are_accepted() -> None:
    claims = {**claims_for(), "exp": NOW + 0.5, "nbf": NOW - 0.5, "iat": NOW + 0.0}
    verifier().verify(signed(make_token(claims)), PATH)
    assert "JWT not yet valid" in rejected(signed(make_token({**claims, "nbf": NOW + 0.5})))


@pytest.mark.parametrize(
    ("aud", "path"),
    [
        ("/invoke/Counter/get", PATH),
        ("/invoke/Counter/add", "/discover"),
        ("/discover", PATH),
        ("/prefix/invoke/Counter/add", "/prefix/invoke/Counter/add"),
        ("invoke/Counter/add", PATH),
        ("/invoke/counter/add", PATH),
        (["/discover", "/invoke/Counter/get"], PATH),
        ([], PATH),
    ],
)
def test_audience_mismatch(aud: Any, path: str) -> None:
    message = rejected(signed(make_token(claims_for(aud=aud))), path)
    assert message.startswith(f"JWT audience {aud!r} does not match request path")


@pytest.mark.parametrize(
    ("path", "aud"),
    [
        ("/invoke/S/h", "/invoke/S/h"),
        ("//invoke/S/h", "/invoke/S/h"),
        ("/a/invoke/b/invoke/S/h", "/invoke/S/h"),
        ("/x/invoke/S/discover", "/invoke/S/discover"),  # a handler named discover
        ("/invoke/S/h/discover", "/discover"),
        ("/x/discover", "/discover"),
        ("/invoke/S/h/", "/invoke/S/h/"),
        ("/discover/", "/discover/"),
        ("/x/invoke/S/h/y", "/x/invoke/S/h/y"),
        ("/xdiscover", "/xdiscover"),
        ("/x/health", "/x/health"),
        ("invoke/S/h", "invoke/S/h"),
        ("discover", "discover"),
    ],
)
def test_path_normalisation(path: str, aud: str) -> None:
    """The rules of Restate's SDKs (checked side by side with the Python SDK)."""
    verifier().verify(signed(make_token(claims_for(aud=aud))), path)


def test_audience_may_be_a_list() -> None:
    token = make_token(claims_for(aud=["/discover", PATH]))
    verifier().verify(signed(token), PATH)
    verifier().verify(signed(token), "/discover")


@pytest.mark.parametrize("aud", [None, 7, [PATH, 7], {"path": PATH}])
def test_audience_must_be_text(aud: Any) -> None:
    message = rejected(signed(make_token(claims_for(aud=aud))))
    assert "JWT claim 'aud' is not a string or list of strings" in message


def test_claims_are_checked_only_after_the_signature() -> None:
    claims = {"aud": "/elsewhere"}  # missing exp/iat/nbf, wrong aud, and signed by another key
    assert "does not verify" in rejected(signed(make_token(claims, seed=OTHER_SEED)))


def test_verification_cost_per_request() -> None:
    """A regression guard far above the measured cost (about 0.4 ms per request)."""
    check = verifier()
    headers = signed(make_token())
    check.verify(headers, PATH)
    rounds = 50
    started = time.perf_counter()
    for _ in range(rounds):
        check.verify(headers, PATH)
    assert (time.perf_counter() - started) / rounds < 0.01


# -- interop: restate-server signs, we verify --------------------------------------------------

#: PKCS#8 DER of an Ed25519 private key, up to the 32-byte seed (RFC 8410).
PKCS8_ED25519_PREFIX: Final = bytes.fromhex("302e020100300506032b657004220420")


def private_key_pem(seed: bytes) -> str:
    body = base64.b64encode(PKCS8_ED25519_PREFIX + seed).decode("ascii")
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"


class CapturedRequest:
    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.method, self.path, self.headers = method, path, headers


class CaptureHandler(BaseHTTPRequestHandler):
    """Records each request (method, path, lower-cased headers) and answers 400."""

    protocol_version = "HTTP/1.1"
    captured: queue.Queue[CapturedRequest]

    def _capture(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.captured.put(CapturedRequest(self.command, self.path, headers))
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = b"not a deployment: only capturing the request headers"
        self.send_response(400)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _capture

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def capture() -> Iterator[tuple[str, queue.Queue[CapturedRequest]]]:
    """A loopback HTTP/1.1 listener standing in for a deployment: (base URL, captured requests)."""
    captured: queue.Queue[CapturedRequest] = queue.Queue()
    handler = type("Handler", (CaptureHandler,), {"captured": captured})
    httpd = ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="capture", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{httpd.server_address[1]}", captured
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.mark.interop
def test_restate_server_signed_discovery_verifies(
    tmp_path: Path, capture: tuple[str, queue.Queue[CapturedRequest]]
) -> None:
    seed = os.urandom(32)
    key = encode_public_key(ed25519_public_key(seed))
    key_file = tmp_path / "request-identity.pem"
    key_file.write_text(private_key_pem(seed))
    key_file.chmod(0o600)
    base_url, captured = capture
    server = RestateServer(
        tmp_path / "data",
        log_dir=tmp_path / "logs",
        extra_config=(f'[worker.invoker]\nrequest-identity-private-key-pem-file = "{key_file}"\n'),
    )
    try:
        server.start()
        server.admin.request(
            "POST", "/deployments", {"uri": f"{base_url}/mounted/here", "use_http_11": True}
        )
        request = captured.get(timeout=30)
    finally:
        server.stop()
        if server.running:
            server.kill()

    assert (request.method, request.path) == ("GET", "/mounted/here/discover")
    assert request.headers[SCHEME_HEADER] == "v1"
    token = request.headers[JWT_HEADER]
    header_b64, claims_b64, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=="))
    assert header == {"typ": "JWT", "alg": "EdDSA", "kid": key}
    assert claims["aud"] == "/discover"
    assert claims["nbf"] <= claims["iat"] <= claims["exp"]
    # The server logs the key id it derives from our PEM: the same as ours.
    server_log = (tmp_path / "logs" / "restate-server.stdout.log").read_text()
    assert f'Loaded request identity key kid="{key}"' in server_log

    IdentityVerifier([key]).verify(request.headers, request.path)
    IdentityVerifier([OTHER_KEY, key]).verify(request.headers, "/discover")
    with pytest.raises(IdentityError, match="does not verify"):
        IdentityVerifier([OTHER_KEY]).verify(request.headers, request.path)
    with pytest.raises(IdentityError, match="does not match request path"):
        IdentityVerifier([key]).verify(request.headers, "/invoke/Svc/handler")
    with pytest.raises(IdentityError, match="expired"):
        IdentityVerifier([key], clock=lambda: claims["exp"] + 1).verify(
            request.headers, request.path
        )


def _token_cases(now: int) -> dict[str, tuple[dict[str, str], str]]:
    """Requests (headers, path) around ``now`` on which both verifiers must agree."""
    claims = claims_for(now=now)
    token = make_token(claims)
    head, body, signature_b64 = token.split(".")
    signature = base64.urlsafe_b64decode(signature_b64 + "==")
    s = int.from_bytes(signature[32:], "little")

    def with_claims(**changes: Any) -> dict[str, str]:
        return signed(make_token({**claims, **changes}))

    def without(claim: str) -> dict[str, str]:
        return signed(make_token({k: v for k, v in claims.items() if k != claim}))

    return {
        "valid": (signed(token), PATH),
        "valid under a prefix": (signed(token), "/mounted" + PATH),
        "discover under a prefix": (with_claims(aud="/discover"), "/mounted/discover"),
        "other key": (signed(make_token(claims, seed=OTHER_SEED)), PATH),
        "no scheme": ({JWT_HEADER: token}, PATH),
        "unsigned": ({SCHEME_HEADER: "unsigned", JWT_HEADER: token}, PATH),
        "scheme v2": ({SCHEME_HEADER: "v2", JWT_HEADER: token}, PATH),
        "no jwt": ({SCHEME_HEADER: "v1"}, PATH),
        "expired": (with_claims(exp=now - 5), PATH),
        "not yet valid": (with_claims(nbf=now + 5), PATH),
        "no aud": (without("aud"), PATH),
        "no exp": (without("exp"), PATH),
        "no nbf": (without("nbf"), PATH),
        "iat in the future": (with_claims(iat=now + 3600), PATH),
        "fractional exp": (with_claims(exp=now + 60.5), PATH),
        "string exp": (with_claims(exp=str(now + 60)), PATH),
        "aud mismatch": (with_claims(aud="/invoke/Counter/get"), PATH),
        "aud list": (with_claims(aud=["/discover", PATH]), PATH),
        "aud list mismatch": (with_claims(aud=["/discover"]), PATH),
        "aud number": (with_claims(aud=7), PATH),
        "wrong kid": (
            signed(make_token(claims, header={"typ": "JWT", "alg": "EdDSA", "kid": OTHER_KEY})),
            PATH,
        ),
        "no kid nor typ": (signed(make_token(claims, header={"alg": "EdDSA"})), PATH),
        "alg none": (signed(make_token(claims, header={"typ": "JWT", "alg": "none"})), PATH),
        "alg HS256": (signed(make_token(claims, header={"typ": "JWT", "alg": "HS256"})), PATH),
        "tampered claims": (
            signed(f"{head}.{b64url_json(claims_for(aud='/x'))}.{signature_b64}"),
            "/x",
        ),
        "S + L": (
            signed(f"{head}.{body}.{b64url(signature[:32] + (s + L).to_bytes(32, 'little'))}"),
            PATH,
        ),
        "padded signature": (signed(f"{token}=="), PATH),
        "two parts": (signed(f"{head}.{body}"), PATH),
        "duplicate alg": (signed(f"{DUPLICATE_ALG}.{body}.{signature_b64}"), PATH),
    }


@pytest.mark.interop
def test_same_verdicts_as_the_restate_python_sdk() -> None:
    """Side by side with the official Python SDK's verifier (Rust, ``restate-sdk`` from PyPI)."""
    from restate._internal import (  # type: ignore[import-not-found]
        IdentityVerificationException,
        PyIdentityVerifier,
    )

    reference = PyIdentityVerifier([KEY])
    ours = IdentityVerifier([KEY])  # the real clock, like the reference
    cases = _token_cases(int(time.time()))
    verdicts: dict[str, tuple[bool, bool]] = {}
    for name, (headers, path) in cases.items():
        try:
            reference.verify(list(headers.items()), path)
            reference_accepts = True
        except IdentityVerificationException:
            reference_accepts = False
        try:
            ours.verify(headers, path)
            ours_accepts = True
        except IdentityError:
            ours_accepts = False
        verdicts[name] = (reference_accepts, ours_accepts)
    disagreements = {name: v for name, v in verdicts.items() if v[0] != v[1]}
    assert disagreements == {}
    assert verdicts["valid"] == (True, True)
    assert verdicts["expired"] == (False, False)
