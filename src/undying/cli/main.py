"""The ``undying`` command line.

Commands are imported when they run, not when the CLI starts: ``undying --help`` and every
admin command start without importing the server (``serve``, ``dev``) or rich. When the server
is not installed (``pip install undying`` without the ``server`` extra), ``serve`` and ``dev``
say how to get it.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

import click

from undying._version import __version__
from undying.cli.options import root_admin_url_option
from undying.errors import AdminApiError

__all__ = ["cli", "main"]

#: name -> (module:attribute, one-line help), in the order ``--help`` lists them.
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "serve": ("undying.cli.serve:serve", "Run the undying server (ingress, admin API, storage)."),
    "dev": ("undying.cli.dev:dev", "Run the server, serve an app file and register it."),
    "whoami": ("undying.cli.whoami:whoami", "Which server the CLI talks to, and its version."),
    "deployments": ("undying.cli.deployments:deployments", "Register, list, remove deployments."),
    "services": ("undying.cli.services:services", "List services, their handlers and status."),
    "invocations": (
        "undying.cli.invocations:invocations",
        "List, describe, cancel, kill, pause, resume, purge invocations.",
    ),
    "state": ("undying.cli.state:state", "Read and edit the state of virtual objects."),
    "sql": ("undying.cli.sql:sql", "Run a SQL query over the server's tables."),
}
ALIASES: Final = {"dp": "deployments", "svc": "services", "inv": "invocations"}
_NEEDS_SERVER: Final = frozenset({"serve", "dev"})


class LazyGroup(click.Group):
    """A group that imports each command on first use and turns admin API errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = ALIASES.get(cmd_name, cmd_name)
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name][0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            if name in _NEEDS_SERVER:  # the SDK alone is installed
                return _server_missing(name, e)
            raise
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From the table above: listing the commands must not import them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in COMMANDS.items()])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AdminApiError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="undying")
@root_admin_url_option
def cli() -> None:
    """undying: durable execution for Python, wire-compatible with Restate.

    The admin commands talk to a server's admin API (--admin-url, $UNDYING_ADMIN_URL, default
    http://127.0.0.1:9070). Every listing takes --output json.
    """


def _server_missing(name: str, error: ImportError) -> click.Command:
    @click.command(
        name,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        help="Needs the server: pip install 'undying[server]'.",
    )
    def missing() -> None:
        raise click.ClickException(
            f"`undying {name}` needs the server, which is not installed ({error.name} is "
            "missing): pip install 'undying[server]'"
        )

    return missing


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
