"""A deployment that breaks the service protocol on purpose: a raw ASGI app, not an SDK.

``GET /discover`` returns a valid manifest for service ``Misbehaving``. Each handler misbehaves
in its own way on the first ``bad_attempts`` attempts of an invocation (input JSON
``{"bad_attempts": N}``, default 2) and then answers correctly, with output
``{"handler": ..., "attempt": n}``:

- ``garbage``: 200 + right content type, then a frame with an unknown control type code.
- ``bad_protobuf``: 200 + right content type, then an ErrorMessage frame whose payload is not
  valid protobuf. (Not a command frame: restate-server 1.7.12 journals a command's bytes
  without decoding them, and an undecodable OutputCommand then crash-loops its partition
  processor.)
- ``close_early``: 200 + right content type, then the response ends with no End/Suspension/Error.
- ``wrong_content_type``: 200 with ``content-type: application/json``.
- ``status_500``: HTTP 500.

Attempts are counted per invocation id (``x-restate-invocation-id``); ``GET /attempts`` returns
``{invocation_id: {"handler": ..., "attempts": n}}``. Answering correctly takes only a little
protocol: read StartMessage + InputCommand, write OutputCommand then End.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from undying.protocol.framing import FrameDecoder, encode_frame, encode_message
from undying.protocol.messages import MessageType, pb
from undying.testing.asgi import serve_asgi

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SERVICE = "Misbehaving"
HANDLERS = ("garbage", "bad_protobuf", "close_early", "wrong_content_type", "status_500")
DEFAULT_BAD_ATTEMPTS = 2
UNKNOWN_CONTROL_TYPE = 0x03F0  # inside the control range, assigned to no message

ATTEMPTS: dict[str, dict[str, Any]] = {}


def manifest(http2: bool) -> dict[str, Any]:
    handler_io = {
        "input": {"required": False, "contentType": "application/json"},
        "output": {"contentType": "application/json", "setContentTypeIfEmpty": False},
    }
    return {
        "protocolMode": "BIDI_STREAM" if http2 else "REQUEST_RESPONSE",
        "minProtocolVersion": 5,
        "maxProtocolVersion": 6,
        "services": [
            {
                "name": SERVICE,
                "ty": "SERVICE",
                "handlers": [{"name": name, **handler_io} for name in HANDLERS],
            }
        ],
    }


def pick_manifest_version(accept: str) -> str:
    for version in (4, 3, 2, 1):
        media = f"application/vnd.restate.endpointmanifest.v{version}+json"
        if media in accept:
            return media
    return "application/vnd.restate.endpointmanifest.v1+json"


class Response:
    """The ASGI response of one request, sent in steps."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.ended = False

    async def start(self, status: int, content_type: str) -> None:
        headers = [
            (b"content-type", content_type.encode()),
            (b"x-restate-server", b"undying-misbehaving/1"),
        ]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        self.started = True

    async def write(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self) -> None:
        if self.started and not self.ended:
            self.ended = True
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def simple(self, status: int, content_type: str, body: bytes) -> None:
        await self.start(status, content_type)
        await self.write(body)
        await self.end()


class RequestBody:
    """The request body as a stream of chunks (ASGI ``http.request`` messages)."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False

    async def chunk(self) -> bytes | None:
        """The next piece of the body; None once it ended or the client left."""
        if self.done:
            return None
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.done = True
            return None
        if not message.get("more_body", False):
            self.done = True
        data: bytes = message.get("body", b"")
        return data


async def read_start_and_input(body: RequestBody) -> bytes | None:
    """Input value bytes once StartMessage and InputCommand arrived; None if the body ended."""
    decoder = FrameDecoder()
    started = False
    while (chunk := await body.chunk()) is not None:
        for frame in decoder.feed(chunk):
            if frame.type == MessageType.START:
                started = True
            elif frame.type == MessageType.INPUT and started:
                command = pb.InputCommandMessage.FromString(frame.payload)
                return command.value.content
    return None


async def invoke(scope: Scope, receive: Receive, send: Send, handler: str) -> None:
    """Answer and end the response, without waiting for the request stream to end.

    In bidi mode the server keeps its request stream open until it has seen the end of the
    response, so the response must end first. (hypercorn's crash on the request's late DATA
    frames is patched away by ``serve_asgi``.)
    """
    response = Response(send)
    try:
        await answer(scope, RequestBody(receive), response, handler)
    finally:
        await response.end()


async def answer(scope: Scope, body: RequestBody, response: Response, handler: str) -> None:
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    content_type = headers.get("content-type", "")
    invocation_id = headers.get("x-restate-invocation-id", "?")
    if handler not in HANDLERS:
        await response.start(404, "text/plain")
        return
    value = await read_start_and_input(body)
    if value is None:
        return
    try:
        bad_attempts = int(json.loads(value or b"{}").get("bad_attempts", DEFAULT_BAD_ATTEMPTS))
    except (ValueError, AttributeError):
        bad_attempts = DEFAULT_BAD_ATTEMPTS
    record = ATTEMPTS.setdefault(invocation_id, {"handler": handler, "attempts": 0})
    record["attempts"] += 1
    attempt = record["attempts"]
    print(f"invoke {handler} {invocation_id} attempt={attempt}", flush=True)

    if attempt > bad_attempts:
        output = json.dumps({"handler": handler, "attempt": attempt}).encode()
        await response.start(200, content_type)
        await response.write(
            encode_message(
                MessageType.OUTPUT, pb.OutputCommandMessage(value=pb.Value(content=output))
            )
            + encode_message(MessageType.END, pb.EndMessage())
        )
    elif handler == "garbage":
        await response.start(200, content_type)
        await response.write(encode_frame(UNKNOWN_CONTROL_TYPE, b"\x08\x01"))
    elif handler == "bad_protobuf":
        await response.start(200, content_type)
        await response.write(encode_frame(MessageType.ERROR, b"\xff\xff\xff"))
    elif handler == "close_early":
        await response.start(200, content_type)
        await response.end()
    elif handler == "wrong_content_type":
        await response.start(200, "application/json")
        await response.write(b"{}")
    else:  # status_500
        await response.start(500, "text/plain")
        await response.write(b"simulated internal error")


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    response = Response(send)
    if path.endswith("/discover"):
        accept = dict(scope["headers"]).get(b"accept", b"").decode()
        body = json.dumps(manifest(scope.get("http_version") == "2")).encode()
        await response.simple(200, pick_manifest_version(accept), body)
    elif path == "/attempts":
        await response.simple(200, "application/json", json.dumps(ATTEMPTS).encode())
    elif path.startswith(f"/invoke/{SERVICE}/"):
        await invoke(scope, receive, send, path.rsplit("/", 1)[-1])
    else:
        await response.simple(404, "text/plain", b"not found")


if __name__ == "__main__":
    serve_asgi(app)
