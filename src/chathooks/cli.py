"""The ``chathooks`` command line: one Typer app, commands grouped by area."""

from __future__ import annotations

import typer

from chathooks import __version__
from chathooks.commands import operations, receiver, service, simulate

app = typer.Typer(
    name="chathooks",
    help="Olark-compatible chat transcript webhooks: send them durably, receive them safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chathooks {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """chathooks."""


service.register(app)
receiver.register(app)
simulate.register(app)
operations.register(app)


def main() -> None:
    app()
