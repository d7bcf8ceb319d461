"""The ``chathooks`` command: the full command line, or the toolkit's alone.

With the ``[server]`` extra installed this is the Typer app of
:mod:`chathooks.commands.root`. A toolkit-only install (``pip install
chathooks``) lacks Typer and the service's dependencies, so ``main`` runs
:mod:`chathooks.commands.toolkit` instead: ``send-test`` works, and a service
command says which extra it needs rather than failing with a traceback.
``chathooks.cli.app`` stays importable for tests and embedding.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["main", "server_installed"]


def server_installed() -> bool:
    """Whether the ``[server]`` extra's command line can be imported."""
    try:
        import chathooks.commands.root  # noqa: F401
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "chathooks":
            raise  # a real bug in chathooks, not a missing extra
        return False
    return True


def main() -> None:
    if not server_installed():
        from chathooks.commands.toolkit import main as toolkit_main

        sys.exit(toolkit_main())
    from chathooks.commands.root import app

    app()


def __getattr__(name: str) -> Any:
    if name == "app":
        from chathooks.commands.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
