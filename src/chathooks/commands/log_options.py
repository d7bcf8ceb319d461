"""``--log-format`` and ``--log-level``, shared by every command that runs a service."""

from __future__ import annotations

import typer

from chathooks.logs import LOG_FORMATS, LOG_LEVELS, configure_logging

__all__ = ["LOG_FORMAT", "LOG_LEVEL", "setup_logging"]

LOG_FORMAT = typer.Option(
    "text",
    "--log-format",
    envvar="CHATHOOKS_LOG_FORMAT",
    help="text for people, json (one object per line) for log collectors.",
)
LOG_LEVEL = typer.Option(
    "info",
    "--log-level",
    envvar="CHATHOOKS_LOG_LEVEL",
    help=f"The least severe level shown: {', '.join(LOG_LEVELS)}.",
)


def setup_logging(log_format: str, log_level: str) -> None:
    """Configure logging for this process, or stop with a usage error naming the option."""
    if log_format not in LOG_FORMATS:
        raise typer.BadParameter(
            f"{log_format!r} is not one of {', '.join(LOG_FORMATS)}", param_hint="--log-format"
        )
    if log_level.lower() not in LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
        )
    configure_logging(log_format, log_level.lower())
