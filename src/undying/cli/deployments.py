"""``undying deployments``: register, list, describe and remove deployments."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import click

from undying.cli import queries
from undying.cli.admin_client import AdminClient, path_segment
from undying.cli.options import (
    Output,
    admin_url_option,
    confirm,
    connect,
    output_option,
    yes_option,
)
from undying.cli.render import console, emit_json, format_time, key_values, table, text
from undying.cli.services import handlers_table

__all__ = ["deployments"]


@click.group()
def deployments() -> None:
    """Register, list, describe and remove deployments (service endpoints)."""


@contextmanager
def _spinner(message: str) -> Iterator[None]:
    """A spinner on stderr while something slow runs (a terminal only)."""
    err = console(err=True)
    if not err.is_terminal:
        yield
        return
    with err.status(text(message)):
        yield


@deployments.command()
@click.argument("uri")
@click.option("--use-http1.1", "http1", is_flag=True, help="Reach it over HTTP/1.1 (not h2c).")
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    help="Extra header to send it (repeatable).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing deployment at this URI.")
@click.option("--breaking", is_flag=True, help="Allow breaking changes to existing services.")
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@yes_option
@admin_url_option
@output_option
def register(
    uri: str,
    http1: bool,
    headers: tuple[str, ...],
    force: bool,
    breaking: bool,
    dry_run: bool,
    yes: bool,
    admin_url: str | None,
    output: Output,
) -> None:
    """Discover the services served at URI and register them.

    JSON: the admin API's answer ({"id", "services", "min_protocol_version",
    "max_protocol_version", "sdk_version"}) and "already_existed".
    """
    extra: dict[str, str] = {}
    for header in headers:
        name, sep, value = header.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{header!r} is not NAME=VALUE", param_hint="--header")
        extra[name.strip()] = value.strip()
    admin = connect(admin_url)
    request: dict[str, Any] = {
        "uri": uri,
        "additional_headers": extra or None,
        "use_http_11": http1,
        "breaking": breaking,
        "force": force,
        "dry_run": True,
    }
    with _spinner(f"Discovering {uri} …"):
        trial = admin.request("POST", "/deployments", request)
    found = trial.json()
    if trial.status == 200:
        if output == "json":
            emit_json({**found, "already_existed": True})
            return
        console(err=True).print(
            text(
                f"A deployment at {uri} already exists with id {found.get('id')}; nothing "
                "changes (--force registers it again)."
            )
        )
        return
    current = {s["name"]: s for s in admin.get_json("/services").get("services", [])}
    if output != "json":
        console(err=True).print(_changes(found.get("services", []), current))
    if dry_run:
        if output == "json":
            emit_json({**found, "already_existed": False})
        return
    confirm("Register this deployment?", yes=yes)
    with _spinner(f"Registering {uri} …"):
        done = admin.request("POST", "/deployments", {**request, "dry_run": False}).json()
    if output == "json":
        emit_json({**done, "already_existed": False})
        return
    out = console()
    out.print(text(f"Registered deployment {done.get('id')}", "green"))
    out.print(
        table(
            ["SERVICE", "TYPE", "REVISION"],
            ([s.get("name"), s.get("ty"), str(s.get("revision"))] for s in done["services"]),
        )
    )


def _changes(services: Sequence[Mapping[str, Any]], current: Mapping[str, Any]) -> Any:
    rows = []
    for svc in services:
        old = current.get(str(svc.get("name")))
        if old is None:
            change = text("new", "green")
        else:
            change = text(f"revision {old.get('revision')} -> {svc.get('revision')}", "yellow")
        handlers = ", ".join(str(h.get("name")) for h in svc.get("handlers", []))
        rows.append([svc.get("name"), svc.get("ty"), change, handlers])
    return table(["SERVICE", "TYPE", "CHANGE", "HANDLERS"], rows)


def _load(admin: AdminClient) -> dict[str, int]:
    """Invocations not completed, per pinned deployment id."""
    rows = admin.query(queries.deployment_load())
    return {str(r["pinned_deployment_id"]): int(r.get("num_invocations", 0)) for r in rows}


def _status(dep_id: str, latest: set[str], load: Mapping[str, int]) -> str:
    if dep_id in latest:
        return "active"
    return "draining" if load.get(dep_id) else "drained"


@deployments.command("list")
@admin_url_option
@output_option
def list_(admin_url: str | None, output: Output) -> None:
    """Every deployment, its services, and whether it still serves their latest revision
    (describe one for its protocol, SDK and creation time).

    active: it serves the latest revision of a service; draining: superseded, but invocations
    still run on it (IN FLIGHT: not completed); drained: nothing runs on it any more (it can
    be removed).

    JSON: the admin API's deployment objects with "status" and "active_invocations" added.
    """
    admin = connect(admin_url)
    services = admin.get_json("/services").get("services", [])
    deps = admin.get_json("/deployments").get("deployments", [])
    latest = {str(s.get("deployment_id")) for s in services}
    load = _load(admin)
    if output == "json":
        emit_json(
            [
                {
                    **d,
                    "status": _status(d["id"], latest, load),
                    "active_invocations": load.get(d["id"], 0),
                }
                for d in deps
            ]
        )
        return
    if not deps:
        console(err=True).print(
            text("No deployments. Register one: undying deployments register URI")
        )
        return
    rows = []
    for d in deps:
        status = _status(d["id"], latest, load)
        names = ", ".join(
            f"{s.get('name')} (rev {s.get('revision')})" for s in d.get("services", [])
        )
        rows.append(
            [
                d.get("id"),
                d.get("uri") or d.get("arn"),
                text(status, {"active": "green", "draining": "yellow"}.get(status, "dim")),
                str(load.get(d["id"], 0)),
                names,
            ]
        )
    console().print(
        table(["ID", "ENDPOINT", "STATUS", "IN FLIGHT", "SERVICES"], rows, no_wrap=(0, 1, 2))
    )


def _protocol(d: Mapping[str, Any]) -> str:
    kind = {"BidiStream": "bidi", "RequestResponse": "request/response"}.get(
        str(d.get("protocol_type")), str(d.get("protocol_type") or "")
    )
    return f"{kind} {d.get('http_version') or ''}".strip()


@deployments.command()
@click.argument("deployment_id", metavar="ID")
@admin_url_option
@output_option
def describe(deployment_id: str, admin_url: str | None, output: Output) -> None:
    """A deployment: endpoint, protocol, SDK, and each service with its handlers.

    JSON: the admin API's deployment object (services in full).
    """
    admin = connect(admin_url)
    dep = admin.get_json(f"/deployments/{path_segment(deployment_id)}")
    if output == "json":
        emit_json(dep)
        return
    services = admin.get_json("/services").get("services", [])
    latest = {str(s.get("deployment_id")) for s in services}
    status = _status(dep["id"], latest, _load(admin))
    out = console()
    out.print(
        key_values(
            [
                ("ID", str(dep.get("id"))),
                ("Endpoint", str(dep.get("uri") or dep.get("arn"))),
                ("Status", status),
                ("Protocol", _protocol(dep)),
                (
                    "Protocol versions",
                    f"{dep.get('min_protocol_version')}-{dep.get('max_protocol_version')}",
                ),
                ("SDK", dep.get("sdk_version")),
                ("Created", format_time(dep.get("created_at"))),
            ]
        )
    )
    for svc in dep.get("services", []):
        out.print()
        out.print(
            text(f"{svc.get('name')}  ({svc.get('ty')}, revision {svc.get('revision')})", "bold")
        )
        out.print(handlers_table(svc))


@deployments.command()
@click.argument("deployment_id", metavar="ID")
@click.option(
    "--force", is_flag=True, help="Remove it even if it serves the latest revision of a service."
)
@yes_option
@admin_url_option
def remove(deployment_id: str, force: bool, yes: bool, admin_url: str | None) -> None:
    """Remove a deployment (its services go away with it if it serves their latest revision)."""
    admin = connect(admin_url)
    dep = admin.get_json(f"/deployments/{path_segment(deployment_id)}")
    services = admin.get_json("/services").get("services", [])
    serving = [str(s["name"]) for s in services if s.get("deployment_id") == dep["id"]]
    if serving and not force:
        raise click.ClickException(
            f"deployment {dep['id']} serves the latest revision of {', '.join(serving)}; "
            "removing it removes them (--force to do it anyway)"
        )
    load = _load(admin).get(dep["id"], 0)
    warning = f" {load} invocation(s) still run on it." if load else ""
    confirm(f"Remove deployment {dep['id']} at {dep.get('uri')}?{warning}", yes=yes)
    admin.request("DELETE", f"/deployments/{path_segment(dep['id'])}?force=true")
    console().print(text(f"Removed deployment {dep['id']}", "green"))
