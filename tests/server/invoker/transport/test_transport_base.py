from __future__ import annotations

import pytest

from undying.server.invoker.transport import Endpoint, H1Client, H2Client, RequestClient, Response


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://localhost:9080", Endpoint("http", "localhost", 9080, "")),
        ("http://localhost:9080/", Endpoint("http", "localhost", 9080, "")),
        ("http://Svc.Example:80/a/b/", Endpoint("http", "svc.example", 80, "/a/b")),
        ("http://10.0.0.1", Endpoint("http", "10.0.0.1", 80, "")),
        ("https://example.com/p", Endpoint("https", "example.com", 443, "/p")),
        ("http://[::1]:9080/x", Endpoint("http", "::1", 9080, "/x")),
        ("  HTTP://host:1  ", Endpoint("http", "host", 1, "")),
    ],
)
def test_parse(uri: str, expected: Endpoint) -> None:
    assert Endpoint.parse(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "localhost:9080",
        "ftp://host",
        "http://",
        "http://host:99999",
        "http://host/?q=1",
        "http://host/#f",
        "http://user:pw@host/",
    ],
)
def test_parse_rejects(uri: str) -> None:
    with pytest.raises(ValueError):
        Endpoint.parse(uri)


def test_authority_target_and_str() -> None:
    endpoint = Endpoint.parse("http://[::1]:9080/prefix")
    assert endpoint.authority == "[::1]:9080"
    assert endpoint.target("/discover") == "/prefix/discover"
    assert str(endpoint) == "http://[::1]:9080/prefix"
    assert Endpoint.parse("http://h").target("/invoke/S/h") == "/invoke/S/h"


def test_response_header() -> None:
    response = Response(200, [("a", "1"), ("b", "2"), ("a", "3")], b"")
    assert response.header("a") == "1"
    assert response.header("c") is None


def test_both_clients_do_buffered_requests() -> None:
    clients: list[RequestClient] = [H1Client(), H2Client()]  # checked by mypy
    assert all(callable(client.request) for client in clients)
