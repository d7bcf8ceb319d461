"""The one shape of every error a person can fix: a code, the field at fault, a message.

Payloads that do not read (:mod:`chathooks.wire`), signatures that do not
verify (:mod:`chathooks.signing`), conversation events that cannot apply,
listings asked for wrongly, sources not allowed: each is a
:class:`FieldError`, so an HTTP layer answers every one of them as
``{"error": code, "field": field, "message": message}`` and a CLI prints
the same message. Each also carries the HTTP status it answers as.
"""

from __future__ import annotations

__all__ = ["FieldError"]


class FieldError(Exception):
    """An error naming the part of the input at fault and what to do about it."""

    #: A short, stable machine-readable code.
    code: str = "invalid"
    #: The part of the input at fault: a header, a form field, a JSON path...
    field: str = "body"
    #: The HTTP status an API or a receiver answers this error with.
    status_code: int = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "field": self.field, "message": self.message}
