"""The ``undying`` command line."""

from __future__ import annotations

import click

from undying._version import __version__

__all__ = ["cli", "main"]


@click.group()
@click.version_option(__version__, prog_name="undying")
def cli() -> None:
    """undying: durable execution for Python, wire-compatible with Restate."""


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


try:
    from undying.cli.dev import dev
    from undying.cli.serve import serve
except ImportError as exc:  # the SDK alone is installed
    cli.add_command(_server_missing("serve", exc))
    cli.add_command(_server_missing("dev", exc))
else:
    cli.add_command(serve)
    cli.add_command(dev)


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
