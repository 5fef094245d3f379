"""``undying services``: the registered services, their handlers and invocations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from undying.cli import queries
from undying.cli.admin_client import path_segment
from undying.cli.options import Output, admin_url_option, connect, output_option
from undying.cli.render import (
    console,
    emit_json,
    key_values,
    relative,
    status_text,
    table,
    text,
)

__all__ = ["handlers_table", "services"]


@click.group()
def services() -> None:
    """List services, describe one, and count its invocations per status."""


def handlers_table(svc: Mapping[str, Any]) -> Any:
    """The handlers of a service: name, kind, input and output."""
    rows = []
    for h in svc.get("handlers", []):
        kind = h.get("ty") or ("Exclusive" if svc.get("ty") == "VirtualObject" else "")
        private = "" if h.get("public", True) else " (private)"
        rows.append(
            [
                str(h.get("name")) + private,
                kind,
                h.get("input_description") or "",
                h.get("output_description") or "",
            ]
        )
    return table(["HANDLER", "KIND", "INPUT", "OUTPUT"], rows)


@services.command("list")
@admin_url_option
@output_option
def list_(admin_url: str | None, output: Output) -> None:
    """Every service: type, revision, deployment and handlers.

    JSON: the admin API's service objects (GET /services).
    """
    admin = connect(admin_url)
    found = admin.get_json("/services").get("services", [])
    found.sort(key=lambda s: str(s.get("name")))
    if output == "json":
        emit_json(found)
        return
    if not found:
        console(err=True).print(text("No services. Register a deployment first."))
        return
    deps = {d["id"]: d for d in admin.get_json("/deployments").get("deployments", [])}
    rows = []
    for s in found:
        dep = deps.get(s.get("deployment_id"), {})
        rows.append(
            [
                s.get("name"),
                s.get("ty"),
                str(s.get("revision")),
                s.get("deployment_id") or "",
                dep.get("uri") or "",
                ", ".join(str(h.get("name")) for h in s.get("handlers", [])),
            ]
        )
    console().print(
        table(
            ["NAME", "TYPE", "REVISION", "DEPLOYMENT", "ENDPOINT", "HANDLERS"],
            rows,
            no_wrap=(0, 1, 3, 4),
        )
    )


@services.command()
@click.argument("name")
@admin_url_option
@output_option
def describe(name: str, admin_url: str | None, output: Output) -> None:
    """A service: its options (retention, timeouts, retry policy) and handlers.

    JSON: the admin API's service object (GET /services/NAME).
    """
    admin = connect(admin_url)
    svc = admin.get_json(f"/services/{path_segment(name)}")
    if output == "json":
        emit_json(svc)
        return
    retry = svc.get("retry_policy") or {}
    retry_text = None
    if retry:
        retry_text = (
            f"{retry.get('initial_interval')} x{retry.get('exponentiation_factor')} up to "
            f"{retry.get('max_interval')}, {retry.get('max_attempts')} attempts, then "
            f"{str(retry.get('on_max_attempts')).lower()}"
        )
    out = console()
    out.print(
        key_values(
            [
                ("Name", str(svc.get("name"))),
                ("Type", str(svc.get("ty"))),
                ("Revision", str(svc.get("revision"))),
                ("Public", str(svc.get("public"))),
                ("Deployment", svc.get("deployment_id")),
                ("Idempotency retention", svc.get("idempotency_retention")),
                ("Workflow retention", svc.get("workflow_completion_retention")),
                ("Journal retention", svc.get("journal_retention")),
                ("Inactivity timeout", svc.get("inactivity_timeout")),
                ("Abort timeout", svc.get("abort_timeout")),
                ("Retry policy", retry_text),
            ]
        )
    )
    out.print()
    out.print(handlers_table(svc))


@services.command()
@click.argument("names", metavar="[NAME]...", nargs=-1)
@admin_url_option
@output_option
def status(names: tuple[str, ...], admin_url: str | None, output: Output) -> None:
    """How many invocations of each handler are in each status, and the oldest of each.

    JSON: a list of {"service", "handler", "status", "count", "oldest_at",
    "oldest_invocation"}.
    """
    admin = connect(admin_url)
    for name in names:
        admin.get_json(f"/services/{path_segment(name)}")  # 404 with the server's message
    rows = admin.query(queries.service_status(names))
    found = [
        {
            "service": r.get("target_service_name"),
            "handler": r.get("target_handler_name"),
            "status": r.get("status"),
            "count": r.get("num_invocations"),
            "oldest_at": r.get("oldest_at"),
            "oldest_invocation": r.get("oldest_invocation"),
        }
        for r in rows
    ]
    if output == "json":
        emit_json(found)
        return
    if not found:
        console(err=True).print(text("No invocations."))
        return
    console().print(
        table(
            ["SERVICE", "HANDLER", "STATUS", "COUNT", "OLDEST", "OLDEST INVOCATION"],
            (
                [
                    r["service"],
                    r["handler"],
                    status_text(r["status"]),
                    str(r["count"]),
                    relative(r["oldest_at"]),
                    r["oldest_invocation"],
                ]
                for r in found
            ),
            no_wrap=(0, 1, 2, 5),
        )
    )
