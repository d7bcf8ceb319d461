"""Errors raised while reading a webhook body.

Every failure to read a payload is a :class:`WireError` subclass whose message
tells a person what to fix. ``field`` names the part of the request at fault,
so an HTTP layer can answer ``{"error": ..., "field": ...}`` without guessing.
"""

from __future__ import annotations

from chathooks.errors import FieldError


class WireError(FieldError, ValueError):
    """A request body that is not a readable Olark payload."""

    #: The part of the request at fault: ``body``, ``data``, ``content-type``, or a JSON path.
    field: str = "body"
    #: A short, stable machine-readable code.
    code: str = "invalid_payload"


class BodyTooLarge(WireError):
    code = "body_too_large"
    status_code = 413

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"request body is {size} bytes; the limit is {limit} bytes")
        self.size = size
        self.limit = limit


class UnsupportedContentType(WireError):
    code = "unsupported_content_type"
    status_code = 415
    field = "content-type"

    def __init__(self, content_type: str | None) -> None:
        shown = content_type or "(none)"
        super().__init__(
            f"content type {shown!r} is not supported; send "
            "application/x-www-form-urlencoded with a 'data' field, or application/json"
        )
        self.content_type = content_type


class MissingDataField(WireError):
    code = "missing_data_field"
    field = "data"

    def __init__(self, detail: str = "") -> None:
        message = "the form body has no 'data' field holding the JSON payload"
        super().__init__(f"{message}{': ' + detail if detail else ''}")


class InvalidJSON(WireError):
    code = "invalid_json"
    field = "data"

    def __init__(self, reason: str, *, position: int, line: int, column: int) -> None:
        super().__init__(
            f"the payload is not valid JSON: {reason} at line {line}, column {column} "
            f"(character {position})"
        )
        self.reason = reason
        self.position = position
        self.line = line
        self.column = column


class NotAnObject(WireError):
    code = "not_an_object"
    field = "data"

    def __init__(self, found: str) -> None:
        super().__init__(f"the payload must be a JSON object, found {found}")
        self.found = found


class InvalidPayload(WireError):
    """The JSON is an object, but a key has a value of the wrong shape."""

    code = "invalid_payload"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field)
