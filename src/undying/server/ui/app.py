"""The web UI: a plain ASGI app the admin API serves under ``/ui``.

Pages are rendered on the server (Jinja2) and kept current by htmx, which polls fragment URLs
(``/ui/fragments/...``) every second and swaps them in; there is no client-side application.
Actions (cancel, kill, pause, resume, purge) go through the same code path as the admin API's
``PATCH /invocations/{id}/{command}``, after a confirmation in the browser. They are POST
requests that must carry htmx's ``HX-Request`` header and come from the same origin: a header a
cross-site form cannot set, so another web page cannot trigger them.

Routes (under the prefix):

====================================  ==========================================================
``/``                                 overview: invocations per status and per service
``/services``, ``/services/{name}``   services; one service's handlers and manifest
``/invocations?service&key&status&since``  the invocations list (filters), live
``/invocations/{id}``                 one invocation: status, last failure, journal timeline, live
``POST /invocations/{id}/{command}``  cancel, kill, pause, resume or purge it
``/state?service&key``                object and workflow state, per key
``/promises?service&key``             workflow promises, per workflow id
``/fragments/...``                    the parts of those pages that htmx refreshes
``/static/...``                       htmx and the stylesheet
====================================  ==========================================================
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final

from undying._version import __version__
from undying.errors import InvalidIdError
from undying.protocol.ids import InvocationId
from undying.server.admin.render import deployment_summary, service_metadata
from undying.server.asgi import header, send_raw
from undying.server.http.types import Receive, Scope, Send
from undying.server.metadata import MetadataStore
from undying.server.query import QueryEngine, QueryError
from undying.server.schema import RetryPolicy, ServiceInfo, format_duration
from undying.server.ui.data import SINCE_CHOICES, STATUS_FILTERS, InvocationFilter, UiData
from undying.server.ui.templating import STATUS_ORDER, create_environment
from undying.server.ui.timeline import build_timeline

__all__ = ["ACTIONS", "UiApp"]

log = logging.getLogger("undying.ui")

#: ``control(invocation_id, command)`` -> (HTTP status, error message): the admin API's code path.
Control = Callable[[InvocationId, str], Awaitable[tuple[int, str | None]]]

_HTML: Final = "text/html; charset=utf-8"
_SECURITY_HEADERS: Final = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
]
_STATIC_TYPES: Final = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_NAV: Final = (
    ("overview", "Overview", "/"),
    ("services", "Services", "/services"),
    ("invocations", "Invocations", "/invocations"),
    ("state", "State", "/state"),
    ("promises", "Promises", "/promises"),
)


class _Action:
    __slots__ = ("confirm", "danger", "label", "when")

    def __init__(self, label: str, confirm: str, when: frozenset[str], danger: bool) -> None:
        self.label = label
        self.confirm = confirm
        self.when = when
        self.danger = danger


#: The actions, the statuses (``sys_invocation.status``) they apply to, and their confirmations.
ACTIONS: Final[dict[str, _Action]] = {
    "cancel": _Action(
        "Cancel",
        "Cancel invocation {id} ({target})? The handler sees the cancellation at its next "
        "step and may run compensations.",
        frozenset(STATUS_ORDER) - {"completed"},
        danger=True,
    ),
    "kill": _Action(
        "Kill",
        "Kill invocation {id} ({target})? It stops at once, without compensations, and the "
        "invocations it called are killed too.",
        frozenset(STATUS_ORDER) - {"completed"},
        danger=True,
    ),
    "pause": _Action(
        "Pause",
        "Pause invocation {id} ({target})? It stops after the current attempt until resumed.",
        frozenset({"running", "backing-off"}),
        danger=False,
    ),
    "resume": _Action(
        "Resume",
        "Resume invocation {id} ({target}) now?",
        frozenset({"paused", "suspended", "backing-off"}),
        danger=False,
    ),
    "purge": _Action(
        "Purge",
        "Purge invocation {id} ({target})? Its status, journal and result are deleted for good.",
        frozenset({"completed"}),
        danger=True,
    ),
}
_DONE: Final = {
    "cancel": "Cancellation sent to {id}.",
    "kill": "Killed {id}.",
    "pause": "Pause requested for {id}.",
    "resume": "Resumed {id}.",
    "purge": "Purged {id}.",
}


class _Reply(Exception):
    """Answer with this status and page (an error page unless ``body`` is given)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UiApp:
    """ASGI app of the web UI, mounted at ``prefix`` of the admin port.

    Args:
        metadata: the schema registry (services, deployments).
        engine: the SQL engine of ``/query``; every list and detail is read through it.
        now_ms: the server's clock (relative times, the ``since`` filter).
        control: the admin API's invocation commands; without it the UI is read-only.
        default_retry: the server's default retry policy (shown in manifests).
        cluster_name: shown in the header.
        prefix: where the app is mounted.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        engine: QueryEngine,
        *,
        now_ms: Callable[[], int],
        control: Control | None = None,
        default_retry: RetryPolicy | None = None,
        cluster_name: str = "undying",
        prefix: str = "/ui",
    ) -> None:
        self._meta = metadata
        self._data = UiData(engine)
        self._now_ms = now_ms
        self._control = control
        self._retry = default_retry
        self._cluster = cluster_name
        self._prefix = prefix.rstrip("/")
        self._env = create_environment()
        static = resources.files("undying.server.ui").joinpath("static")
        self._static = {
            f.name: f.read_bytes() for f in static.iterdir() if f.name.endswith((".js", ".css"))
        }

    def handles(self, path: str) -> bool:
        """Whether ``path`` (of the admin port) belongs to the UI."""
        return path == self._prefix or path.startswith(self._prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"][len(self._prefix) :]
        method: str = scope["method"]
        if not path:
            await send_raw(send, 308, b"", [("location", self._prefix + "/")])
            return
        try:
            if method == "POST":
                await self._post(path, scope, send)
            elif method == "GET":
                await self._get(path, _params(scope), scope, send)
            else:
                raise _Reply(405, f"Method {method} is not allowed here.")
        except _Reply as e:
            await self._page(send, "error.html", "", {"message": e.message}, status=e.status)
        except QueryError as e:
            log.warning("UI query failed: %s", e.message)
            await self._page(send, "error.html", "", {"message": e.message}, status=500)

    # ---- routing ----------------------------------------------------------------------------

    async def _get(self, path: str, params: dict[str, str], scope: Scope, send: Send) -> None:
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        match parts:
            case []:
                await self._page(send, "overview.html", "overview", await self._overview())
            case ["fragments", "overview"]:
                await self._page(send, "_overview_live.html", "overview", await self._overview())
            case ["services"]:
                await self._page(send, "services.html", "services", self._services())
            case ["services", name]:
                await self._page(send, "service.html", "services", self._service(name))
            case ["invocations"]:
                ctx = await self._invocations(params)
                await self._page(send, "invocations.html", "invocations", ctx)
            case ["fragments", "invocations"]:
                ctx = await self._invocations(params)
                headers = []
                if header(scope, b"hx-trigger") == "filters":  # the filter form changed
                    query = urllib.parse.urlencode(ctx["filter"].params())
                    url = f"{self._prefix}/invocations" + (f"?{query}" if query else "")
                    headers.append(("hx-push-url", url))
                await self._page(send, "_invocation_list.html", "invocations", ctx, headers)
            case ["invocations", raw_id]:
                ctx = await self._invocation(_parse_id(raw_id))
                status = 200 if ctx["inv"] is not None else 404
                await self._page(send, "invocation.html", "invocations", ctx, status=status)
            case ["fragments", "invocation", raw_id]:
                ctx = await self._invocation(_parse_id(raw_id))
                await self._page(send, "_invocation_live.html", "invocations", ctx)
            case ["state"]:
                await self._page(send, "state.html", "state", await self._state(params))
            case ["promises"]:
                await self._page(send, "promises.html", "promises", await self._promises(params))
            case ["static", name] if name in self._static:
                ctype = _STATIC_TYPES[name[name.rindex(".") :]]
                headers = [("cache-control", "max-age=3600"), ("x-content-type-options", "nosniff")]
                await send_raw(send, 200, self._static[name], headers, content_type=ctype)
            case _:
                raise _Reply(404, f"There is no page at {self._prefix}{path}.")

    async def _post(self, path: str, scope: Scope, send: Send) -> None:
        parts = [p for p in path.split("/") if p]
        if len(parts) != 3 or parts[0] != "invocations" or parts[2] not in ACTIONS:
            raise _Reply(404, f"There is no action at {self._prefix}{path}.")
        if not _same_origin_htmx(scope):
            raise _Reply(403, "Actions are only accepted from the UI's own pages.")
        if self._control is None:
            raise _Reply(404, "This server does not accept invocation commands.")
        inv = _parse_id(parts[1])
        command = parts[2]
        status, message = await self._control(inv, command)
        ok = message is None
        flash = _DONE[command].format(id=inv) if ok else f"{command} failed: {message}"
        ctx = await self._invocation(inv)
        ctx["flash"] = {"ok": ok, "text": flash}
        await self._page(send, "_invocation_live.html", "invocations", ctx)

    # ---- rendering ----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._now_ms() / 1000, tz=UTC)

    async def _page(
        self,
        send: Send,
        template: str,
        page: str,
        ctx: dict[str, Any],
        headers: list[tuple[str, str]] | None = None,
        *,
        status: int = 200,
    ) -> None:
        body = self._env.get_template(template).render(
            base=self._prefix,
            page=page,
            nav=_NAV,
            now=self._now(),
            cluster=self._cluster,
            version=__version__,
            can_act=self._control is not None,
            **ctx,
        )
        await send_raw(
            send,
            status,
            body.encode(),
            [*_SECURITY_HEADERS, *(headers or [])],
            content_type=_HTML,
        )

    # ---- pages --------------------------------------------------------------------------------

    def _service_rows(self) -> list[dict[str, Any]]:
        services = sorted(self._meta.schema.services.values(), key=lambda s: s.name)
        return [service_metadata(s, self._retry) for s in services]

    async def _overview(self) -> dict[str, Any]:
        counts = await self._data.counts()
        totals: dict[str, int] = dict.fromkeys(STATUS_ORDER, 0)
        for per_status in counts.values():
            for status, n in per_status.items():
                totals[status] = totals.get(status, 0) + n
        return {
            "totals": totals,
            "total": sum(totals.values()),
            "counts": counts,
            "services": self._service_rows(),
            "failing": await self._data.failing(),
            "deployments": len(self._meta.schema.deployments),
        }

    def _services(self) -> dict[str, Any]:
        schema = self._meta.schema
        deps = sorted(schema.deployments.values(), key=lambda d: d.created_at_ms)
        return {
            "services": self._service_rows(),
            "deployments": [deployment_summary(d, schema.services) for d in deps],
        }

    def _service(self, name: str) -> dict[str, Any]:
        schema = self._meta.schema
        svc = schema.services.get(name)
        if svc is None:
            raise _Reply(404, f"There is no service named {name!r}.")
        dep = schema.deployments.get(svc.deployment_id)
        retry = {}
        for h in svc.handlers.values():
            p = svc.retry_policy(h, self._retry)
            retry[h.name] = {
                "initial_interval": format_duration(p.initial_interval_ms),
                "exponentiation_factor": p.factor,
                "max_attempts": p.max_attempts,
                "max_interval": format_duration(p.max_interval_ms),
                "on_max_attempts": p.on_max_attempts,
            }
        return {
            "service": service_metadata(svc, self._retry),
            "deployment": deployment_summary(dep, schema.services) if dep is not None else None,
            "retry": retry,
        }

    async def _invocations(self, params: dict[str, str]) -> dict[str, Any]:
        f = InvocationFilter.from_params(params)
        rows, total = await self._data.invocations(f, self._now_ms())
        names = sorted(self._meta.schema.services)
        if f.service and f.service not in names:
            names.append(f.service)
        return {
            "filter": f,
            "rows": rows,
            "total": total,
            "service_names": names,
            "status_filters": STATUS_FILTERS,
            "since_choices": SINCE_CHOICES,
        }

    async def _invocation(self, inv: InvocationId) -> dict[str, Any]:
        text = str(inv)
        row = await self._data.invocation(text)
        if row is None:
            return {"id": text, "inv": None}
        journal = await self._data.journal(text)
        events = await self._data.events(text)
        svc = self._meta.schema.services.get(str(row["target_service_name"]))
        status = str(row["status"])
        actions = [
            {
                "command": command,
                "label": a.label,
                "danger": a.danger,
                "confirm": a.confirm.format(id=text, target=row["target"]),
            }
            for command, a in ACTIONS.items()
            if status in a.when
        ]
        commands = [r["index"] for r in journal if str(r["entry_type"]).startswith("Command")]
        failed = row["last_failure_related_command_index"]
        return {
            "id": text,
            "inv": row,
            "failed_entry": commands[failed]
            if failed is not None and failed < len(commands)
            else None,
            "items": build_timeline(journal, events, completed=status == "completed"),
            "actions": actions,
            "service": _service_kind(svc),
        }

    def _keyed(self, kind: str) -> list[str]:
        return sorted(s.name for s in self._meta.schema.services.values() if kind in _kinds(s))

    async def _state(self, params: dict[str, str]) -> dict[str, Any]:
        service, key = params.get("service", ""), params.get("key")
        ctx: dict[str, Any] = {
            "services": self._keyed("state"),
            "service": service,
            "key": key,
            "keys": [],
            "entries": [],
            "runs": [],
        }
        if service and key is not None:
            ctx["entries"] = await self._data.state(service, key)
            ctx["runs"] = await self._data.runs(service, key)
        elif service:
            ctx["keys"] = await self._data.state_keys(service)
        return ctx

    async def _promises(self, params: dict[str, str]) -> dict[str, Any]:
        service, key = params.get("service", ""), params.get("key")
        ctx: dict[str, Any] = {
            "services": self._keyed("promises"),
            "service": service,
            "key": key,
            "keys": [],
            "promises": [],
            "runs": [],
        }
        if service and key is not None:
            ctx["promises"] = await self._data.promises(service, key)
            ctx["runs"] = await self._data.runs(service, key)
        elif service:
            ctx["keys"] = await self._data.promise_keys(service)
        return ctx


def _kinds(s: ServiceInfo) -> set[str]:
    if s.ty == "Workflow":
        return {"state", "promises"}
    if s.ty == "VirtualObject":
        return {"state"}
    return set()


def _service_kind(svc: ServiceInfo | None) -> dict[str, Any] | None:
    if svc is None:
        return None
    return {"name": svc.name, "ty": svc.ty, "kinds": _kinds(svc)}


def _params(scope: Scope) -> dict[str, str]:
    """The query parameters (the first value of each)."""
    raw = scope.get("query_string", b"").decode("latin-1")
    parsed = urllib.parse.parse_qs(raw, keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _parse_id(raw: str) -> InvocationId:
    try:
        return InvocationId.parse(raw)
    except (InvalidIdError, ValueError):
        raise _Reply(404, f"{raw!r} is not an invocation id.") from None


def _same_origin_htmx(scope: Scope) -> bool:
    """An htmx request of a page of this server (never a cross-site form or fetch)."""
    if header(scope, b"hx-request") != "true":
        return False
    site = header(scope, b"sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = header(scope, b"origin")
    if origin is not None:
        host = header(scope, b"host")
        return host is not None and urllib.parse.urlsplit(origin).netloc == host
    return True
