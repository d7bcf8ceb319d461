"""What ``chathooks erase`` and ``chathooks receive erase`` ask of their options, checked once."""

from __future__ import annotations

import typer

from chathooks.db.forget import InvalidErasure, check_subject

__all__ = ["checked_subject"]


def checked_subject(conversation: str | None, email: str | None) -> None:
    """Exactly one of ``--conversation`` and ``--email``, and a sensible one: else a usage error."""
    try:
        check_subject(conversation, email)
    except InvalidErasure as exc:
        hint = "--email" if exc.field == "email" else "--conversation / --email"
        raise typer.BadParameter(exc.message, param_hint=hint) from exc
