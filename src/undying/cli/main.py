"""The ``undying`` command line."""

from __future__ import annotations

import click

from undying._version import __version__
from undying.cli.dev import dev
from undying.cli.serve import serve

__all__ = ["cli", "main"]


@click.group()
@click.version_option(__version__, prog_name="undying")
def cli() -> None:
    """undying: durable execution for Python, wire-compatible with Restate."""


cli.add_command(serve)
cli.add_command(dev)


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
