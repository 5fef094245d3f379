"""Small helpers shared by the ingress and admin ASGI apps: bodies, JSON and plain responses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from undying.server.http.types import Receive, Scope, Send

__all__ = [
    "BodyTooLarge",
    "ClientGone",
    "header",
    "read_body",
    "send_empty",
    "send_json",
    "send_raw",
    "send_text",
]

_JSON: Final = msgspec.json.Encoder()


class BodyTooLarge(Exception):
    """The request body is over the limit."""


class ClientGone(Exception):
    """The client disconnected before the body was read."""


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` lowercase), decoded as latin-1."""
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")  # type: ignore[no-any-return]
    return None


async def read_body(scope: Scope, receive: Receive, limit: int | None = None) -> bytes:
    """The whole request body; raises ``BodyTooLarge`` as soon as it passes ``limit``."""
    if limit is not None:
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone
        body = msg.get("body", b"")
        if body:
            size += len(body)
            if limit is not None and size > limit:
                raise BodyTooLarge
            chunks.append(body)
        if not msg.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def send_raw(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[str, str]] = (),
    *,
    content_type: str | None = None,
) -> None:
    out = _encode_headers(headers)
    if content_type is not None:
        out.append((b"content-type", content_type.encode("latin-1")))
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, obj: Any, headers: Iterable[tuple[str, str]] = ()
) -> None:
    await send_raw(send, status, _JSON.encode(obj), headers, content_type="application/json")


async def send_text(
    send: Send, status: int, text: str, headers: Iterable[tuple[str, str]] = ()
) -> None:
    await send_raw(send, status, text.encode(), headers, content_type="text/plain; charset=utf-8")


async def send_empty(send: Send, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
    await send_raw(send, status, b"", headers)
