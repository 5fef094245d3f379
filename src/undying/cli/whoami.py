"""``undying whoami``: the server the CLI talks to."""

from __future__ import annotations

import click

from undying.cli.options import Output, admin_url_option, connect, output_option
from undying.cli.render import console, emit_json, key_values, text

__all__ = ["whoami"]


@click.command()
@admin_url_option
@output_option
def whoami(admin_url: str | None, output: Output) -> None:
    """Which server the CLI talks to: its version, admin and ingress URLs, its health.

    JSON: {"admin_url", "ingress_url", "server_version", "admin_api_versions": [min, max],
    "admin_api_version", "healthy"}.
    """
    admin = connect(admin_url)
    info = admin.version()
    healthy = admin.health()
    versions = [info.get("min_admin_api_version"), info.get("max_admin_api_version")]
    summary = {
        "admin_url": admin.base_url,
        "ingress_url": info.get("ingress_endpoint"),
        "server_version": info.get("version"),
        "admin_api_versions": versions if None not in versions else None,
        "admin_api_version": admin.api_version,
        "healthy": healthy,
    }
    if output == "json":
        emit_json(summary)
        return
    health = text("healthy", "green") if healthy else text("NOT healthy (GET /health)", "bold red")
    api = "unversioned paths"
    if summary["admin_api_versions"] is not None:
        api = f"v{versions[0]}-v{versions[1]}, using v{admin.api_version}"
    console().print(
        key_values(
            [
                ("Admin API", admin.base_url),
                ("Health", health),
                ("Server version", str(info.get("version") or "unknown")),
                ("Admin API versions", api),
                ("Ingress", info.get("ingress_endpoint") or "unknown"),
            ]
        )
    )
