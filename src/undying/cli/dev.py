"""``undying dev``: server + a service app + registration, in one command."""

from __future__ import annotations

import click

__all__ = ["dev"]


@click.command()
@click.argument("app")
def dev(app: str) -> None:
    """Run the server, serve APP (module:attr or a .py file) and register it."""
    raise click.ClickException("not implemented yet")
