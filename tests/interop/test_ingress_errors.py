"""What the ingress answers to bad requests (bodies as restate-server 1.7.12 sends them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from interop_support import MAX_BODY_SIZE, App, AppFactory, register

from undying.testing import HttpResponse, RestateCli, Server
from undying.testing.httpclient import request, request_head

pytestmark = pytest.mark.interop

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def app(app_factory: AppFactory, cli: RestateCli) -> App:
    app = app_factory.start("python", name="ingress-py")
    register(cli, app)
    return app


def assert_ingress_error(resp: HttpResponse, status: int, message: str) -> None:
    """An error produced by the ingress itself (no invocation was created)."""
    assert resp.status == status, str(resp)
    assert resp.header("content-type") == "application/json"
    assert resp.header("x-restate-error-source") == "ingress"
    assert resp.header("x-restate-id") is None
    assert resp.json() == {"code": status, "message": message, "source": "ingress"}


def test_unknown_service_is_404(server: Server, app: App) -> None:
    resp = server.ingress.call("Nope", "greet", {"name": "Bob"})
    assert_ingress_error(
        resp,
        404,
        "service 'Nope' not found, make sure to register the service before calling it.",
    )


def test_unknown_handler_is_404(server: Server, app: App) -> None:
    resp = server.ingress.call("Greeter", "nope", {"name": "Bob"})
    assert_ingress_error(
        resp,
        404,
        "the service 'Greeter' exists, but the handler 'nope' was not found, check that the "
        "handler exists in the latest registered service version.",
    )


def test_wrong_content_type_is_400(server: Server, app: App) -> None:
    resp = server.ingress.call(
        "Greeter", "greet", body=b'{"name": "Bob"}', headers={"content-type": "text/plain"}
    )
    assert_ingress_error(
        resp,
        400,
        "input validation error: Content-type 'text/plain' does not match 'application/json'",
    )


def test_malformed_json_fails_in_the_sdk(server: Server, app: App) -> None:
    """The ingress does not parse JSON; the SDK's terminal error becomes the response."""
    resp = server.ingress.call("Greeter", "greet", body=b"{bad", headers=JSON)
    assert resp.status == 500, str(resp)
    assert resp.header("content-type") == "application/json"
    assert resp.header("x-restate-error-source") == "invocation"
    assert (resp.header("x-restate-id") or "").startswith("inv_")
    assert resp.json() == {
        "code": 500,
        "message": "Unable to parse an input argument. Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1)",
        "source": "invocation",
    }


def test_terminal_error_keeps_its_code(server: Server, app: App) -> None:
    resp = server.ingress.call("Failing", "terminal", {"reason": "because"})
    assert resp.status == 409, str(resp)
    assert resp.header("x-restate-error-source") == "invocation"
    assert (resp.header("x-restate-id") or "").startswith("inv_")
    assert resp.json() == {"code": 409, "message": "refused: because", "source": "invocation"}


def test_success_carries_invocation_id(server: Server, app: App) -> None:
    resp = server.ingress.call("Greeter", "greet", {"name": "Bob"})
    assert resp.status == 200, str(resp)
    assert (resp.header("x-restate-id") or "").startswith("inv_")


def test_announced_body_over_limit_is_413(server: Server, app: App) -> None:
    """Rejected from the content-length header alone, before the body is read."""
    resp = request_head(
        "POST",
        f"{server.ingress_url}/Greeter/greet",
        headers={**JSON, "content-length": str(MAX_BODY_SIZE + 1)},
        timeout=10.0,
    )
    assert resp.status == 413, str(resp)
    assert resp.header("x-restate-id") is None


def test_streamed_body_over_limit_is_413(server: Server, app: App) -> None:
    """A chunked body (no content-length) is cut off once it passes the limit."""

    def chunks() -> Iterator[bytes]:
        piece = b"x" * 65536
        for _ in range(2 * MAX_BODY_SIZE // len(piece)):
            yield piece

    resp = request("POST", f"{server.ingress_url}/Greeter/greet", body=chunks(), headers=JSON)
    assert resp.status == 413, str(resp)
    assert resp.header("x-restate-id") is None


def test_body_at_the_limit_is_accepted(server: Server, app: App) -> None:
    prefix, suffix = b'{"name": "', b'"}'
    name = b"x" * (MAX_BODY_SIZE - len(prefix) - len(suffix))
    body = prefix + name + suffix
    assert len(body) == MAX_BODY_SIZE
    resp = server.ingress.call("Greeter", "greet", body=body, headers=JSON)
    assert resp.status == 200, str(resp)
    assert resp.json() == {"result": f"You said hi to {name.decode()}!"}
