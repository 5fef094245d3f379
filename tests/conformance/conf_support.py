"""Helpers of the conformance suite: the three SDK deployments, the per-module server, and small
wrappers for what scenarios do again and again (calls, SQL look-ups, waiting for a status)."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from undying.testing import (
    AdminClient,
    HttpResponse,
    IngressClient,
    RestateCli,
    Server,
    ServiceProcess,
    create_server,
    node_service,
    poll_until,
    python_service,
)

SERVICES_DIR: Final = Path(__file__).parent / "services"
JSON: Final = {"content-type": "application/json"}
#: Lookups in ``sys_invocation`` etc. reflect the server's state after a short delay at most.
STATUS_TIMEOUT: Final = 20.0
#: The reference server removes completed invocations whose retention ran out in a periodic
#: cleanup pass (``[worker] cleanup-interval``, 1 h by default); run it every second so that
#: retention expiry is observable within a scenario.
RESTATE_CONFIG: Final = '[worker]\ncleanup-interval = "1s"\n'


@dataclass(frozen=True)
class Sdk:
    """Which SDK's copy of the services a scenario talks to."""

    name: str
    suffix: str

    def svc(self, base: str) -> str:
        """The service name in this SDK's deployment (``Counter``, ``CounterTs``, ``CounterUd``)."""
        return base + self.suffix


PY: Final = Sdk("py", "")
TS: Final = Sdk("ts", "Ts")
UD: Final = Sdk("ud", "Ud")
SDKS: Final = (PY, TS, UD)

_counter = itertools.count()


def unique(prefix: str) -> str:
    """A key no other scenario (or earlier run on a reused data dir) uses."""
    return f"{prefix}-{os.getpid()}-{int(time.time() * 1000) % 10**8}-{next(_counter)}"


def sql_str(value: str) -> str:
    """``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass
class Apps:
    """The Python SDK, TypeScript SDK and undying SDK deployments (one process each)."""

    py: ServiceProcess
    ts: ServiceProcess
    ud: ServiceProcess

    def by_sdk(self) -> dict[str, ServiceProcess]:
        """The deployments by SDK name (``py``, ``ts``, ``ud``)."""
        return {"py": self.py, "ts": self.ts, "ud": self.ud}

    def close(self) -> None:
        for service in (self.py, self.ts, self.ud):
            try:
                service.stop()
            finally:
                if service.running:
                    service.kill()


def start_apps(root: Path) -> Apps:
    logs = root / "logs"
    py = python_service(SERVICES_DIR / "conf_app.py", log_dir=logs, name="conf-py")
    ts = node_service(SERVICES_DIR / "conf_app.mjs", log_dir=logs, name="conf-ts")
    ud = python_service(SERVICES_DIR / "conf_app_ud.py", log_dir=logs, name="conf-ud")
    apps = Apps(py, ts, ud)
    try:
        py.start()
        ts.start()
        ud.start()
    except BaseException:
        apps.close()
        raise
    return apps


class Conf:
    """One server of the selected target with every deployment registered."""

    def __init__(self, target: str, server: Server, cli: RestateCli, apps: Apps) -> None:
        self.target = target
        self.server = server
        self.cli = cli
        self.apps = apps
        self.deployments: dict[str, str] = {}

    @property
    def ingress(self) -> IngressClient:
        return self.server.ingress

    @property
    def admin(self) -> AdminClient:
        return self.server.admin

    def register_all(self) -> None:
        for name, service in self.apps.by_sdk().items():
            result = self.cli.register(service.url)
            assert result.returncode == 0, str(result)
            assert result.deployment_id is not None, str(result)
            self.deployments[name] = result.deployment_id

    def close(self) -> None:
        try:
            self.server.stop()
        finally:
            if self.server.running:
                self.server.kill()

    # -- ingress ---------------------------------------------------------------------------

    def call(
        self,
        sdk: Sdk,
        service: str,
        handler: str,
        payload: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        """Blocking ingress call to ``sdk``'s copy of ``service``."""
        return self.ingress.call(
            sdk.svc(service), handler, payload, key=key, headers=headers, timeout=timeout
        )

    def ok(
        self,
        sdk: Sdk,
        service: str,
        handler: str,
        payload: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Like :meth:`call`, expecting 200; returns the parsed JSON body (``None`` if empty)."""
        resp = self.call(sdk, service, handler, payload, key=key, headers=headers, timeout=timeout)
        assert resp.status == 200, f"{sdk.svc(service)}/{handler}: {resp}"
        return resp.json() if resp.body else None

    def send(
        self,
        sdk: Sdk,
        service: str,
        handler: str,
        payload: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """``/send``; returns the invocation id."""
        return self.ingress.send(sdk.svc(service), handler, payload, key=key, headers=headers)

    # -- introspection ---------------------------------------------------------------------

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self.admin.query(sql)

    def invocation(self, invocation_id: str) -> dict[str, Any] | None:
        rows = self.query(f"SELECT * FROM sys_invocation WHERE id = {sql_str(invocation_id)}")
        return rows[0] if rows else None

    def status(self, invocation_id: str) -> str | None:
        row = self.invocation(invocation_id)
        return None if row is None else str(row["status"])

    def wait_status(
        self, invocation_id: str, statuses: Iterable[str], *, timeout: float = STATUS_TIMEOUT
    ) -> dict[str, Any]:
        """Poll ``sys_invocation`` until the invocation's status is one of ``statuses``."""
        wanted = set(statuses)
        seen: list[Any] = []

        def check() -> dict[str, Any] | None:
            row = self.invocation(invocation_id)
            seen[:] = [row]
            return row if row is not None and row["status"] in wanted else None

        return poll_until(
            check,
            timeout=timeout,
            what=f"{invocation_id} has status in {sorted(wanted)}",
            interval=0.1,
            describe=lambda: f"last row: {seen}",
        )

    def journal(self, invocation_id: str) -> list[dict[str, Any]]:
        return self.query(
            "SELECT index, entry_type, name FROM sys_journal "
            f"WHERE id = {sql_str(invocation_id)} ORDER BY index"
        )

    def wait_journal_entry(
        self, invocation_id: str, entry_type: str, *, timeout: float = STATUS_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Poll ``sys_journal`` until the invocation has an entry of ``entry_type``."""
        seen: list[Any] = []

        def check() -> list[dict[str, Any]] | None:
            rows = self.journal(invocation_id)
            seen[:] = rows
            return rows if any(r.get("entry_type") == entry_type for r in rows) else None

        return poll_until(
            check,
            timeout=timeout,
            what=f"{invocation_id} journaled {entry_type!r}",
            interval=0.1,
            describe=lambda: f"journal: {seen}",
        )

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        return self.query(
            "SELECT id, target, status FROM sys_invocation "
            f"WHERE invoked_by_id = {sql_str(parent_id)}"
        )

    def state(self, service: str, key: str) -> dict[str, str]:
        """``key -> value_utf8`` of one object key, from the ``state`` SQL table."""
        rows = self.query(
            "SELECT key, value_utf8 FROM state "
            f"WHERE service_name = {sql_str(service)} AND service_key = {sql_str(key)}"
        )
        return {str(r["key"]): str(r.get("value_utf8", "")) for r in rows}

    def awakeable_id(self, sdk: Sdk, tag: str, *, timeout: float = STATUS_TIMEOUT) -> str:
        """The awakeable id ``Awaker.wait(tag)`` posted to ``Mailbox/{tag}``."""

        def check() -> str | None:
            value = self.ok(sdk, "Mailbox", "get", key=tag)
            return None if value is None else str(value)

        return poll_until(check, timeout=timeout, what=f"Mailbox/{tag} has an id", interval=0.1)


def start_conf(target: str, root: Path, apps: Apps) -> Conf:
    """Start a server of ``target`` under ``root`` and register every deployment."""
    server = create_server(
        target, root / "data", log_dir=root / "logs", restate_config=RESTATE_CONFIG
    )
    server.start()
    conf = Conf(target, server, RestateCli(server.admin_url, home=root / "cli-home"), apps)
    try:
        conf.register_all()
    except BaseException:
        conf.close()
        raise
    return conf


def error_body(resp: HttpResponse) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    return body
