"""Thin clients for the Restate-compatible ingress and admin APIs (used against both targets)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from undying.testing.httpclient import HttpResponse, request, request_json

__all__ = ["AdminClient", "UnexpectedResponse", "IngressClient", "InvocationFailure"]

_JSON = {"content-type": "application/json"}


class UnexpectedResponse(RuntimeError):
    """The ingress or admin API answered with an unexpected status."""

    def __init__(self, what: str, response: HttpResponse) -> None:
        super().__init__(f"{what}: {response}")
        self.response = response


@dataclass(frozen=True)
class InvocationFailure:
    """Retry bookkeeping of one invocation, as ``sys_invocation`` reports it."""

    id: str
    retry_count: int
    last_failure: str | None


class AdminClient:
    """The admin API at ``base_url`` (unversioned paths, as the server accepts them)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path: str) -> HttpResponse:
        return request("GET", self.base_url + path, timeout=self.timeout)

    def _get_json(self, path: str) -> Any:
        resp = self.get(path)
        if resp.status != 200:
            raise UnexpectedResponse(f"GET {path}", resp)
        return resp.json()

    def version(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get_json("/version")
        return result

    def deployments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get_json("/deployments")["deployments"]
        return result

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._get_json(f"/deployments/{quote(deployment_id)}")
        return result

    def services(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get_json("/services")["services"]
        return result

    def service(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._get_json(f"/services/{quote(name)}")
        return result

    def query(self, sql: str) -> list[dict[str, Any]]:
        """``POST /query`` with ``accept: application/json``; returns the rows.

        NULL columns are absent from a row (Restate's JSON encoding).
        """
        resp = request_json(
            "POST",
            self.base_url + "/query",
            {"query": sql},
            headers={"accept": "application/json"},
            timeout=self.timeout,
        )
        if resp.status != 200:
            raise UnexpectedResponse(f"query {sql!r}", resp)
        rows: list[dict[str, Any]] = resp.json()["rows"]
        return rows

    def invocation_failure(self, invocation_id: str) -> InvocationFailure | None:
        """Retry count and last failure of an invocation (``None`` if no such row)."""
        if "'" in invocation_id:
            raise ValueError(f"`invocation_id` must not contain quotes: {invocation_id!r}")
        rows = self.query(
            f"SELECT id, retry_count, last_failure FROM sys_invocation WHERE id = '{invocation_id}'"
        )
        if not rows:
            return None
        row = rows[0]
        return InvocationFailure(
            id=str(row["id"]),
            retry_count=int(row.get("retry_count") or 0),
            last_failure=row.get("last_failure"),
        )

    def kill_invocation(self, invocation_id: str) -> HttpResponse:
        return request(
            "PATCH", f"{self.base_url}/invocations/{quote(invocation_id)}/kill", timeout=10.0
        )

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        """Any admin request; ``payload`` (if not ``None``) is sent as JSON."""
        return request_json(
            method, self.base_url + path, payload, headers=headers, timeout=self.timeout
        )

    def invocation_command(self, invocation_id: str, command: str) -> HttpResponse:
        """``PATCH /invocations/{id}/{command}``: cancel, kill, purge, pause, resume…"""
        return request(
            "PATCH",
            f"{self.base_url}/invocations/{quote(invocation_id, safe='')}/{quote(command)}",
            timeout=self.timeout,
        )

    def set_state(
        self,
        service: str,
        object_key: str,
        new_state: dict[str, bytes],
        *,
        version: str | None = None,
    ) -> HttpResponse:
        """``POST /services/{service}/state``: replace the whole state of one object key.

        Values are raw bytes (sent as arrays of byte values, as the CLI does).
        """
        body: dict[str, Any] = {
            "object_key": object_key,
            "new_state": {k: list(v) for k, v in new_state.items()},
        }
        if version is not None:
            body["version"] = version
        return self.request("POST", f"/services/{quote(service)}/state", body)


class IngressClient:
    """The ingress at ``base_url``: call, send, attach."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    @staticmethod
    def _target(service: str, handler: str, key: str | None) -> str:
        if key is None:
            return f"/{quote(service)}/{quote(handler)}"
        return f"/{quote(service)}/{quote(key, safe='')}/{quote(handler)}"

    def call(
        self,
        service: str,
        handler: str,
        payload: Any = None,
        *,
        key: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        """``POST /{service}[/{key}]/{handler}`` and wait for the result.

        ``payload`` is sent as JSON; pass ``body`` (and headers) instead for raw requests.
        """
        return self._post(self._target(service, handler, key), payload, body, headers, timeout)

    def send(
        self,
        service: str,
        handler: str,
        payload: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """``POST …/send``; returns the invocation id (expects 202)."""
        path = self._target(service, handler, key) + "/send"
        resp = self._post(path, payload, None, headers, None)
        if resp.status != 202:
            raise UnexpectedResponse(f"POST {path}", resp)
        invocation_id: str = resp.json()["invocationId"]
        return invocation_id

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        """Any ingress request (``path`` starts with ``/``), sent as given."""
        return request(
            method,
            self.base_url + path,
            body=body,
            headers=headers,
            timeout=timeout or self.timeout,
        )

    def send_response(
        self,
        service: str,
        handler: str,
        payload: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        delay: str | None = None,
    ) -> HttpResponse:
        """``POST …/send[?delay=…]``; returns the response whatever its status."""
        path = self._target(service, handler, key) + "/send"
        if delay is not None:
            path += f"?delay={quote(delay)}"
        return self._post(path, payload, None, headers, None)

    def attach(self, invocation_id: str, *, timeout: float | None = None) -> HttpResponse:
        """``GET /restate/invocation/{id}/attach``: blocks until the invocation completes."""
        return request(
            "GET",
            f"{self.base_url}/restate/invocation/{quote(invocation_id)}/attach",
            timeout=timeout or self.timeout,
        )

    def output(self, invocation_id: str) -> HttpResponse:
        """``GET /restate/invocation/{id}/output`` (470 while not completed)."""
        return request(
            "GET",
            f"{self.base_url}/restate/invocation/{quote(invocation_id)}/output",
            timeout=self.timeout,
        )

    def _post(
        self,
        path: str,
        payload: Any,
        body: bytes | None,
        headers: dict[str, str] | None,
        timeout: float | None,
    ) -> HttpResponse:
        hdrs = dict(headers or {})
        if body is None and payload is not None:
            body = json.dumps(payload).encode()
            hdrs = {**_JSON, **hdrs}
        return request(
            "POST", self.base_url + path, body=body, headers=hdrs, timeout=timeout or self.timeout
        )
