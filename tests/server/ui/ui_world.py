"""An in-process undying server with the UI's test services, for the page tests.

The server runs on virtual time (:class:`~undying.testing.TestEnvironment`) in an event loop of
its own thread, so tests can fetch pages with a plain synchronous HTTP client and move time
with :meth:`UiWorld.run` (``world.run(world.env.advance(1))``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import ui_services as svc

from undying.testing import InvocationHandle, TestEnvironment

T = TypeVar("T")

#: Headers htmx sends with an action from the UI's own page.
HTMX: dict[str, str] = {"hx-request": "true", "sec-fetch-site": "same-origin"}


class UiWorld:
    """The server, the services, and the invocations every page test looks at (by role)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ui-world")
        self.env = TestEnvironment(svc.SERVICES, auto_advance=False)
        self.ids: dict[str, str] = {}
        self._client: httpx.Client | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the server's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> UiWorld:
        self._thread.start()
        try:
            self.run(self.env.start())
            self.run(self._populate())
            self._client = httpx.Client(base_url=self.env.admin_url, timeout=30.0)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        try:
            if self._thread.is_alive():
                self.run(self.env.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()

    async def _populate(self) -> None:
        env = self.env
        ids = self.ids
        ids["sleeping"] = str(await env.send(svc.greet, "Ada"))
        ids["caller"] = str(await env.send(svc.relay, "Bob"))
        await env.call(svc.add, 3, key="alice")
        await env.call(svc.add, 4, key="bob")
        ids["waiting_workflow"] = str(await env.send(svc.run, "Trip", key="exp-1"))
        ids["done_workflow"] = str(await env.send(svc.run, "Laptop", key="exp-2"))
        await env.settle()
        await env.call(svc.approve, "ok, go", key="exp-2")
        ids["retrying"] = str(await env.send(svc.charge, "Ada"))
        await env.advance(1.0)
        await env.settle()
        callee = env.journal(ids["caller"])[1].invoked_id
        assert callee is not None
        ids["callee"] = callee
        await env.server.db.barrier()

    async def send_flaky(self, what: str) -> InvocationHandle[str]:
        """A new always-failing invocation, retried once."""
        handle = await self.env.send(svc.charge, what)
        await self.env.advance(0.3)
        return handle

    # ---- HTTP ---------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        assert self._client is not None
        return self._client

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.client.get(path, headers=headers)

    def post(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(path, headers=headers)
