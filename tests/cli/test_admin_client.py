"""The admin API client: version handshake, paths, errors, keep-alive."""

from __future__ import annotations

import socket
import threading

import pytest

from undying.cli.admin_client import AdminClient
from undying.errors import AdminApiError, AdminRequestFailed, AdminUnreachable

from .fake_admin import FakeAdmin, Reply


def test_first_asks_the_version_then_prefixes_paths_with_the_highest_common_one(
    fake: FakeAdmin,
) -> None:
    fake.on("GET", "/services", Reply(200, {"services": []}))
    with AdminClient(fake.url) as admin:
        assert admin.get_json("/services") == {"services": []}
        assert admin.api_version == 4
    assert [r.path for r in fake.requests] == ["/version", "/v4/services"]
    assert fake.requests[1].headers["user-agent"].startswith("undying-cli/")


def test_a_server_up_to_v3_gets_v3(fake: FakeAdmin) -> None:
    assert fake.version is not None
    fake.version["max_admin_api_version"] = 3
    fake.on("GET", "/v3/health", Reply(200))
    with AdminClient(fake.url) as admin:
        assert admin.health()
    assert fake.requests[-1].path == "/v3/health"


def test_without_a_version_endpoint_paths_are_unprefixed(fake: FakeAdmin) -> None:
    fake.version = None
    fake.on("GET", "/health", Reply(200))
    with AdminClient(fake.url) as admin:
        assert admin.health()
        assert admin.api_version is None
        assert admin.version() == {}
    assert [r.path for r in fake.requests] == ["/version", "/health"]


def test_a_server_speaking_only_v1_is_refused(fake: FakeAdmin) -> None:
    assert fake.version is not None
    fake.version.update(min_admin_api_version=1, max_admin_api_version=1)
    with AdminClient(fake.url) as admin, pytest.raises(AdminApiError, match="versions 1-1"):
        admin.health()


def test_query_sends_json_and_accepts_json_rows(fake: FakeAdmin) -> None:
    fake.on_query("FROM sys_invocation", [{"id": "inv_1"}])
    with AdminClient(fake.url) as admin:
        assert admin.query("SELECT id FROM sys_invocation") == [{"id": "inv_1"}]
    req = fake.requests[-1]
    assert (req.method, req.path) == ("POST", "/v4/query")
    assert req.headers["accept"] == "application/json"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {"query": "SELECT id FROM sys_invocation"}


def test_error_answers_carry_the_servers_message(fake: FakeAdmin) -> None:
    fake.on(
        "GET",
        "/services/Nope",
        Reply(404, {"message": "The requested service 'Nope' does not exist"}),
    )
    fake.on("GET", "/deployments/dp_bogus", Reply(400, "Invalid URL: bad id", "text/plain"))
    with AdminClient(fake.url) as admin:
        with pytest.raises(AdminRequestFailed) as caught:
            admin.get_json("/services/Nope")
        assert caught.value.status == 404
        assert str(caught.value) == "The requested service 'Nope' does not exist"
        with pytest.raises(AdminRequestFailed, match="^Invalid URL: bad id$"):
            admin.get_json("/deployments/dp_bogus")
        assert admin.request("GET", "/services/Nope", check=False).status == 404


def test_nothing_listening_is_unreachable_with_the_url_and_a_hint() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}"
    with AdminClient(url) as admin, pytest.raises(AdminUnreachable) as caught:
        admin.health()
    message = str(caught.value)
    assert url in message and "connection refused" in message
    assert "undying serve" in message and "--admin-url" in message


def test_a_server_that_closes_without_answering_is_unreachable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        admin = AdminClient(url, timeout=5)

        def close_first() -> None:
            conn, _ = listener.accept()
            conn.recv(1024)
            conn.close()

        t = threading.Thread(target=close_first)
        t.start()
        with pytest.raises(AdminUnreachable, match="closed without an answer"):
            admin.version()
        t.join(5)


def test_one_connection_is_kept_alive_across_requests(fake: FakeAdmin) -> None:
    fake.on("GET", "/health", Reply(200))
    ports: set[int] = set()
    with AdminClient(fake.url) as admin:
        for _ in range(3):
            assert admin.health()
            assert admin._conn is not None and admin._conn.sock is not None
            ports.add(admin._conn.sock.getsockname()[1])
    assert len(ports) == 1


def test_a_keep_alive_connection_closed_by_the_server_is_reopened(fake: FakeAdmin) -> None:
    fake.on("GET", "/health", Reply(200))
    with AdminClient(fake.url) as admin:
        assert admin.health()
        assert admin._conn is not None and admin._conn.sock is not None
        admin._conn.sock.shutdown(socket.SHUT_RDWR)  # as an idle timeout on the server would
        assert admin.health()


@pytest.mark.parametrize("url", ["localhost:9070", "ftp://x", "http://:9070", "http://h:port"])
def test_a_bad_url_is_refused_up_front(url: str) -> None:
    with pytest.raises(AdminApiError, match="admin URL"):
        AdminClient(url)


def test_a_trailing_slash_in_the_url_is_dropped(fake: FakeAdmin) -> None:
    fake.on("GET", "/health", Reply(200))
    with AdminClient(fake.url + "/") as admin:
        assert admin.base_url == fake.url
        assert admin.health()
