"""Test services in-process: an undying server on virtual time, the services beside it.

::

    async with TestEnvironment([greeter, counter]) as env:
        assert await env.call(greet, "Bob") == "Hello Bob"   # a 30-day ctx.sleep takes ms
        await env.call(add, 5, key="alice")
        assert env.state(counter, "alice") == {"count": 5}

:class:`TestEnvironment` starts an undying :class:`~undying.server.server.Server` on a temporary
data directory with a :class:`~undying.server.clock.VirtualClock`, serves the services with the
undying SDK in the same event loop on a free port of 127.0.0.1 (HTTP/1.1 request/response, so
every wait suspends the invocation and the next attempt replays its journal), and registers
them. Time moves only when the test says so (:meth:`TestEnvironment.advance`) or, with
``auto_advance``, while the test awaits a result and the server has nothing left to do but wait
for a timer or a retry: then the clock jumps to it.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from undying.errors import TerminalError
from undying.protocol.ids import InvocationId, partition_key_for
from undying.sdk.definitions import Handler, Service, VirtualObject, Workflow
from undying.sdk.endpoint import app
from undying.sdk.serde import Serde
from undying.server.clock import VirtualClock
from undying.server.http.server import HttpServer
from undying.server.invoker.transport import Endpoint, H1Client, Headers, Response
from undying.server.query.journal import render_journal
from undying.server.server import Server, ServerConfig

__all__ = [
    "InvocationHandle",
    "InvocationPaused",
    "JournalEntry",
    "RequestRejected",
    "TestEnvironment",
]

I = TypeVar("I")  # noqa: E741 - a handler's input type, as in undying.sdk
O = TypeVar("O")  # noqa: E741

Definition = Service | VirtualObject | Workflow


class RequestRejected(Exception):
    """The ingress or admin API refused a request (not a handler's failure).

    Attributes:
        status: the HTTP status.
        message: the error message the server gave.
    """

    def __init__(self, what: str, status: int, message: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {message}")
        self.status = status
        self.message = message


class InvocationPaused(Exception):
    """The awaited invocation was paused (its retries ran out), so its result will not come.

    Attributes:
        invocation_id: the paused invocation.
        failure: the last failure's message.
    """

    def __init__(self, invocation_id: str, failure: str) -> None:
        super().__init__(f"invocation {invocation_id} was paused after its last failure: {failure}")
        self.invocation_id = invocation_id
        self.failure = failure


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal entry, as the ``sys_journal`` table shows it.

    Attributes:
        index: its position in the journal.
        type: ``"Command: Run"``, ``"Notification: Sleep"``...
        name: the name given to the step (``ctx.run("name", ...)``), if any.
        appended_at: when it was journaled (virtual time).
        entry: the whole entry (``sys_journal.entry_json`` decoded; payloads are byte lists).
        sleep_wakeup_at: for a sleep command, when it wakes up.
        invoked_target: for a call or a send, the target (``Service/handler``, ``Obj/key/h``).
        invoked_id: for a call or a send, the callee's invocation id (once it is known).
        promise_name: for a workflow promise command, the promise.
    """

    index: int
    type: str
    name: str | None
    appended_at: datetime
    entry: dict[str, Any] = field(repr=False)
    sleep_wakeup_at: datetime | None = None
    invoked_target: str | None = None
    invoked_id: str | None = None
    promise_name: str | None = None


@dataclass(frozen=True, slots=True)
class InvocationHandle(Generic[O]):
    """An invocation started by :meth:`TestEnvironment.send`.

    Attributes:
        id: the invocation id (``inv_…``); ``str(handle)`` is the id too.
    """

    id: str
    _env: TestEnvironment = field(repr=False)
    _serde: Serde[O] = field(repr=False)

    async def result(self) -> O:
        """Wait for the invocation's result (the clock auto-advances meanwhile, if enabled).

        Raises:
            TerminalError: the handler failed terminally (its message and status code).
            InvocationPaused: the invocation was paused, so no result will come.
        """
        return await self._env._result(self.id, self._serde)

    def __str__(self) -> str:
        return self.id


class TestEnvironment:
    """An undying server on virtual time with ``services`` deployed, for a test.

    Use it with ``async with`` (or :meth:`start` / :meth:`stop`); it stops every server,
    connection and task it started and removes its temporary data directory.

    Args:
        services: the services, virtual objects and workflows to deploy.
        auto_advance: while :meth:`call` or :meth:`InvocationHandle.result` waits and the
            server is idle, jump the clock to the next timer or retry ("time skipping").
            Without it, only :meth:`advance` moves time.
        start: the virtual time at start (default 2023-11-14 22:13:20 UTC).
        partitions: the server's partition count.
        data_dir: keep the server's data here instead of in a temporary directory.
    """

    __test__ = False  # a helper, not a pytest test class

    def __init__(
        self,
        services: Sequence[Definition],
        *,
        auto_advance: bool = True,
        start: datetime | None = None,
        partitions: int = 2,
        data_dir: Path | None = None,
    ) -> None:
        self._services = list(services)
        self.auto_advance = auto_advance
        self.clock = (
            VirtualClock() if start is None else VirtualClock(round(start.timestamp() * 1000))
        )
        self._partitions = partitions
        self._data_dir = data_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: Server | None = None
        self._deployment: HttpServer | None = None
        self._client: H1Client | None = None
        self._mutations = 0
        self._quiet: list[asyncio.Future[None]] = []

    # ---- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> TestEnvironment:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server and the services, and register them."""
        if self._server is not None:
            raise RuntimeError("the test environment is already started")
        try:
            data_dir = self._data_dir
            if data_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="undying-test-")
                data_dir = Path(self._tmp.name)
            config = ServerConfig(
                data_dir=data_dir, ingress_port=0, admin_port=0, partitions=self._partitions
            )
            self._server = Server(config, clock=self.clock)
            self._client = H1Client()
            await self._server.start()
            endpoint = app(self._services, clock=self._sdk_clock)
            self._deployment = HttpServer(endpoint, host="127.0.0.1", port=0)
            await self._deployment.start()
            await self._register()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop everything :meth:`start` started (safe to call more than once)."""
        client, self._client = self._client, None
        server, self._server = self._server, None
        deployment, self._deployment = self._deployment, None
        tmp, self._tmp = self._tmp, None
        try:
            if client is not None:
                await client.aclose()
            if server is not None:
                await server.stop()
            if deployment is not None:
                await deployment.stop(grace=1.0)
        finally:
            if tmp is not None:
                tmp.cleanup()

    async def _register(self) -> None:
        body = json.dumps({"uri": self.deployment_url, "use_http_11": True}).encode()
        response = await self._admin("POST", "/deployments", body)
        if response.status not in (200, 201):
            raise RequestRejected("registering the services", response.status, _message(response))

    def _sdk_clock(self) -> float:
        return self.clock.now_ms() / 1000

    # ---- where things are ---------------------------------------------------------------------

    @property
    def server(self) -> Server:
        """The running server."""
        if self._server is None:
            raise RuntimeError("the test environment is not started")
        return self._server

    @property
    def ingress_url(self) -> str:
        """The ingress, for any HTTP client (``http://127.0.0.1:<port>``)."""
        return self.server.ingress_url

    @property
    def admin_url(self) -> str:
        """The admin API (``http://127.0.0.1:<port>``)."""
        return self.server.admin_url

    @property
    def deployment_url(self) -> str:
        """Where the services are served (``http://127.0.0.1:<port>``)."""
        if self._deployment is None:
            raise RuntimeError("the test environment is not started")
        return f"http://127.0.0.1:{self._deployment.port}"

    def now(self) -> datetime:
        """The virtual time (UTC)."""
        return _datetime(self.clock.now_ms())

    # ---- invoking handlers --------------------------------------------------------------------

    @overload
    async def call(
        self,
        handler: Handler[None, O],
        /,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> O: ...
    @overload
    async def call(
        self,
        handler: Handler[I, O],
        arg: I,
        /,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> O: ...
    async def call(
        self,
        handler: Handler[Any, O],
        arg: Any = None,
        /,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> O:
        """Invoke ``handler`` through the ingress and wait for its result.

        Args:
            handler: the handler (its service's name and its serdes come with it).
            arg: its input (leave it out for a handler without input).
            key: the object key or workflow id (required for those, refused for services).
            idempotency_key: sent as the ``idempotency-key`` header.
            headers: more request headers (the handler sees them in ``ctx.request()``).

        Returns:
            The handler's output, decoded by its serde.

        Raises:
            TerminalError: the handler failed terminally.
            InvocationPaused: its retries ran out and the server paused it.
            RequestRejected: the ingress refused the request (bad input, unknown handler...).
        """
        handle = await self.send(
            handler, arg, key=key, idempotency_key=idempotency_key, headers=headers
        )
        return await handle.result()

    @overload
    async def send(
        self,
        handler: Handler[None, O],
        /,
        *,
        key: str | None = None,
        delay: timedelta | float | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> InvocationHandle[O]: ...
    @overload
    async def send(
        self,
        handler: Handler[I, O],
        arg: I,
        /,
        *,
        key: str | None = None,
        delay: timedelta | float | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> InvocationHandle[O]: ...
    async def send(
        self,
        handler: Handler[Any, O],
        arg: Any = None,
        /,
        *,
        key: str | None = None,
        delay: timedelta | float | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> InvocationHandle[O]:
        """Start ``handler`` without waiting for it (``delay``: start it that much later).

        Returns once the server has accepted the invocation. Arguments as for :meth:`call`.
        """
        path = _handler_path(handler, key) + "/send"
        if delay is not None:
            path += f"?delay={_millis(delay)}ms"
        request_headers: Headers = []
        body = b""
        if handler.has_input:
            body = handler.input_serde.serialize(arg)
            request_headers.append(("content-type", handler.input_serde.content_type))
        if idempotency_key is not None:
            request_headers.append(("idempotency-key", idempotency_key))
        request_headers.extend((headers or {}).items())
        response = await self._mutate(self._ingress_endpoint, "POST", path, request_headers, body)
        if response.status != 202:
            raise RequestRejected(f"POST {path}", response.status, _message(response))
        invocation_id: str = json.loads(response.body)["invocationId"]
        return InvocationHandle(invocation_id, self, handler.output_serde)

    async def _result(self, invocation_id: str, serde: Serde[O]) -> O:
        path = f"/restate/invocation/{invocation_id}/attach"
        attach = asyncio.ensure_future(self._request(self._ingress_endpoint, "GET", path, []))
        try:
            response = await self._until_done(attach, invocation_id)
        finally:
            if not attach.done():
                attach.cancel()
                await asyncio.gather(attach, return_exceptions=True)
        if response.status == 200:
            return serde.deserialize(response.body)
        error = _error_body(response)
        if error.get("source") == "invocation" or response.header("x-restate-error-source"):
            raise TerminalError(
                str(error.get("message", "")), status_code=int(error.get("code", 500))
            )
        raise RequestRejected(f"GET {path}", response.status, _message(response))

    async def resolve_awakeable(self, awakeable_id: str, value: object) -> None:
        """Resolve an awakeable with ``value`` (JSON; ``bytes`` are sent as they are)."""
        await self._complete_awakeable(awakeable_id, "resolve", _payload(value))

    async def reject_awakeable(self, awakeable_id: str, message: str) -> None:
        """Reject an awakeable: the awaiting handler gets a ``TerminalError(message)``."""
        await self._complete_awakeable(awakeable_id, "reject", message.encode())

    async def _complete_awakeable(self, awakeable_id: str, how: str, body: bytes) -> None:
        path = f"/restate/awakeables/{urllib.parse.quote(awakeable_id, safe='')}/{how}"
        headers: Headers = [
            ("content-type", "application/json" if how == "resolve" else "text/plain")
        ]
        response = await self._mutate(self._ingress_endpoint, "POST", path, headers, body)
        if response.status not in (200, 202):
            raise RequestRejected(f"POST {path}", response.status, _message(response))

    async def cancel(self, invocation: str | InvocationHandle[Any]) -> None:
        """Cancel an invocation (its handler sees ``InvocationCancelled`` at its next await)."""
        path = f"/invocations/{invocation}/cancel"
        response = await self._mutate(self._admin_endpoint, "PATCH", path, [], b"")
        if response.status not in (200, 202):
            raise RequestRejected(f"PATCH {path}", response.status, _message(response))

    # ---- time -----------------------------------------------------------------------------------

    async def advance(self, delta: timedelta | float) -> None:
        """Let ``delta`` (a timedelta or seconds) of virtual time pass.

        First everything in progress settles (so a handler just sent gets to arm its timers);
        then every timer and retry due within ``delta`` fires in time order, each once what
        the earlier ones started has settled; then the clock stands at ``now + delta``.
        """
        target = self.clock.now_ms() + _millis(delta)
        while True:
            await self.settle()
            wake = self.server.next_wake_ms
            if wake is None or wake > target:
                break
            self.clock.set(wake)
        self.clock.set(target)
        await self.settle()

    async def settle(self) -> None:
        """Wait until nothing runs: the server only waits for time, or for the outside world.

        Requests this environment sends count as running until they are answered.
        """
        server = self.server
        while True:
            await server.settle()
            if not self._mutations:
                if not server.busy:
                    return
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._quiet.append(waiter)
            await waiter

    async def _until_done(self, task: asyncio.Future[Response], invocation_id: str) -> Response:
        """Await ``task``, skipping time whenever nothing else can happen meanwhile."""
        if not self.auto_advance:
            return await task
        while True:
            step: asyncio.Future[Any] = asyncio.ensure_future(self._skip(invocation_id))
            try:
                await asyncio.wait([task, step], return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not step.done():
                    step.cancel()
                    await asyncio.gather(step, return_exceptions=True)
            if task.done():
                return task.result()
            step.result()  # InvocationPaused

    async def _skip(self, invocation_id: str) -> None:
        """Settle, then jump to the next timer or retry; if there is none, wait for news."""
        await self.settle()
        server = self.server
        wake = server.next_wake_ms
        if wake is not None:
            self.clock.set(wake)
            return
        inv = InvocationId.parse(invocation_id)
        status = server.partition_for(inv.partition_key).store.get_status(inv.to_bytes())
        if status is not None and status.status == "paused":
            failure = status.last_failure
            raise InvocationPaused(
                invocation_id,
                "unknown" if failure is None else f"[{failure.code}] {failure.message}",
            )
        await server.changed()

    # ---- inspection ---------------------------------------------------------------------------

    def state(self, service: VirtualObject | Workflow | str, key: str) -> dict[str, Any]:
        """The K/V state of one object or workflow key, values decoded from JSON.

        Values that are not JSON (written with another serde) are returned as ``bytes``.
        """
        name = service if isinstance(service, str) else service.name
        processor = self.server.partition_for(partition_key_for(name, key))
        raw = processor.store.state(name, key)
        return {k.decode("utf-8", "replace"): _decode(v) for k, v in sorted(raw.items())}

    def status(self, invocation: str | InvocationHandle[Any]) -> str | None:
        """The invocation's status: ``scheduled``, ``inboxed``, ``invoked`` (running or
        backing off), ``suspended``, ``paused`` or ``completed``; ``None`` if unknown."""
        inv = InvocationId.parse(str(invocation))
        status = self.server.partition_for(inv.partition_key).store.get_status(inv.to_bytes())
        return None if status is None else status.status

    def journal(self, invocation: str | InvocationHandle[Any]) -> list[JournalEntry]:
        """The invocation's journal, as ``sys_journal`` shows it (empty if unknown)."""
        server = self.server
        inv = InvocationId.parse(str(invocation))
        store = server.partition_for(inv.partition_key).store
        if store.get_status(inv.to_bytes()) is None:
            return []
        entries = store.journal(inv.to_bytes())
        rows = render_journal([(e.type, e.payload) for e in entries], server.metadata.schema)
        return [
            JournalEntry(
                index=i,
                type=row.entry_type,
                name=row.name or None,
                appended_at=_datetime(e.appended_at),
                entry=json.loads(row.entry_json) if row.entry_json else {},
                sleep_wakeup_at=(
                    None if row.sleep_wakeup_at is None else _datetime(row.sleep_wakeup_at)
                ),
                invoked_target=row.invoked_target,
                invoked_id=row.invoked_id,
                promise_name=row.promise_name,
            )
            for i, (e, row) in enumerate(zip(entries, rows, strict=True))
        ]

    async def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL on the admin API (``sys_invocation``, ``sys_journal``, ``state``...)."""
        await self.server.db.barrier()  # the state written so far is what the query reads
        body = json.dumps({"query": sql}).encode()
        headers: Headers = [("content-type", "application/json"), ("accept", "application/json")]
        response = await self._request(self._admin_endpoint, "POST", "/query", headers, body)
        if response.status != 200:
            raise RequestRejected("POST /query", response.status, _message(response))
        rows: list[dict[str, Any]] = json.loads(response.body)["rows"]
        return rows

    # ---- HTTP -----------------------------------------------------------------------------------

    @property
    def _ingress_endpoint(self) -> Endpoint:
        return Endpoint.parse(self.ingress_url)

    @property
    def _admin_endpoint(self) -> Endpoint:
        return Endpoint.parse(self.admin_url)

    async def _admin(self, method: str, path: str, body: bytes) -> Response:
        headers: Headers = [("content-type", "application/json")]
        return await self._request(self._admin_endpoint, method, path, headers, body)

    async def _mutate(
        self, endpoint: Endpoint, method: str, path: str, headers: Headers, body: bytes
    ) -> Response:
        """A request that changes something: time does not skip while it is under way."""
        self._mutations += 1
        try:
            return await self._request(endpoint, method, path, headers, body)
        finally:
            self._mutations -= 1
            if not self._mutations:
                waiters, self._quiet = self._quiet, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    async def _request(
        self, endpoint: Endpoint, method: str, path: str, headers: Headers, body: bytes = b""
    ) -> Response:
        if self._client is None:
            raise RuntimeError("the test environment is not started")
        response = await self._client.stream(endpoint, method, path, headers, body or None)
        async with response:
            chunks = []
            while chunk := await response.receive():
                chunks.append(chunk)
        return Response(response.status, response.headers, b"".join(chunks))


def _handler_path(handler: Handler[Any, Any], key: str | None) -> str:
    service = urllib.parse.quote(handler.service_name, safe="")
    name = urllib.parse.quote(handler.name, safe="")
    if handler.service_kind == "service":
        if key is not None:
            raise TypeError(f"{handler!r} is a service handler: it takes no key")
        return f"/{service}/{name}"
    if key is None:
        raise TypeError(f"{handler!r} needs a key (the object key or workflow id)")
    return f"/{service}/{urllib.parse.quote(key, safe='')}/{name}"


def _millis(delta: timedelta | float) -> int:
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    if seconds < 0:
        raise ValueError(f"time only moves forward, not by {delta!r}")
    return round(seconds * 1000)


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _payload(value: object) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def _decode(value: bytes) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _error_body(response: Response) -> dict[str, Any]:
    try:
        body = json.loads(response.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: Response) -> str:
    message = _error_body(response).get("message")
    return str(message) if message is not None else response.body.decode("utf-8", "replace")
