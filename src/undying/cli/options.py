"""Options shared by the commands that talk to the admin API, and the connection they open.

The admin URL comes from, in order: the command's ``--admin-url``, the one given before the
command (``undying --admin-url URL invocations list``), ``$UNDYING_ADMIN_URL``, and
``http://127.0.0.1:9070``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final, Literal, TypeVar

import click

from undying.cli.admin_client import DEFAULT_ADMIN_URL, AdminClient

__all__ = [
    "ADMIN_URL_ENV",
    "Output",
    "admin_url_option",
    "confirm",
    "connect",
    "output_option",
    "resolve_admin_url",
    "yes_option",
]

F = TypeVar("F", bound=Callable[..., Any])

ADMIN_URL_ENV: Final = "UNDYING_ADMIN_URL"
_ROOT_URL: Final = "undying.admin_url"
_CLIENT: Final = "undying.admin_client"

Output = Literal["table", "json"]


def _remember_root_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_ROOT_URL] = value


def root_admin_url_option(fn: F) -> F:
    """``--admin-url`` on the ``undying`` group itself (applies to every command)."""
    return click.option(
        "--admin-url",
        metavar="URL",
        expose_value=False,
        is_eager=True,
        callback=_remember_root_url,
        help=f"The server's admin API [env {ADMIN_URL_ENV}; default {DEFAULT_ADMIN_URL}].",
    )(fn)


def admin_url_option(fn: F) -> F:
    """``--admin-url URL`` on a command."""
    return click.option(
        "--admin-url",
        metavar="URL",
        default=None,
        help=f"The server's admin API [env {ADMIN_URL_ENV}; default {DEFAULT_ADMIN_URL}].",
    )(fn)


def output_option(fn: F) -> F:
    """``--output table|json`` (``-o``): a rich table for people, stable JSON for programs."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table: for reading; json: stable JSON on stdout (see docs/operations.md).",
    )(fn)


def yes_option(fn: F) -> F:
    """``--yes`` (``-y``): do not ask for confirmation."""
    return click.option(
        "--yes", "-y", is_flag=True, default=False, help="Do not ask for confirmation."
    )(fn)


def resolve_admin_url(given: str | None) -> str:
    """The admin URL to use (see the module's docstring for the order)."""
    if given:
        return given
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().meta.get(_ROOT_URL):
        return str(ctx.find_root().meta[_ROOT_URL])
    return os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL


def connect(admin_url: str | None) -> AdminClient:
    """A client of the admin API, closed when the command ends."""
    ctx = click.get_current_context()
    client = AdminClient(resolve_admin_url(admin_url))
    ctx.call_on_close(client.close)
    ctx.meta[_CLIENT] = client
    return client


def confirm(question: str, *, yes: bool) -> None:
    """Ask ``question`` on stderr unless ``yes``; stop the command (exit 1) on no."""
    if yes:
        return
    click.confirm(question, abort=True, err=True)
