"""Every error the API returns is JSON that names what to fix.

Shape: ``{"error": <code>, "field": <where>, "message": <what to do>}``; the
``field`` is the dotted path inside the request body (``url``,
``headers.X-Token``), a query parameter (``limit``) or a header
(``content-type``), so a client can point at the input at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from chathooks.db.outage import database_refused_value, database_unavailable
from chathooks.errors import FieldError
from chathooks.paging import InvalidCursor
from chathooks.queue import InvalidQueueQuery

__all__ = ["ApiError", "ErrorBody", "install_error_handlers", "not_found", "unauthorized"]

log = logging.getLogger("chathooks.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_content_type",
    422: "validation_error",
}


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: str
    field: str | None = None
    message: str


class ApiError(Exception):
    """An answer other than success, raised from anywhere in a request."""

    def __init__(
        self,
        status_code: int,
        error: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message
        self.field = field
        self.headers = headers

    def response(self) -> JSONResponse:
        return _json(self.status_code, self.error, self.message, self.field, self.headers)


def not_found(what: str, field: str | None = None) -> ApiError:
    return ApiError(404, "not_found", f"{what} does not exist", field=field)


def unauthorized(message: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        message,
        field="authorization",
        headers={"www-authenticate": "Bearer"},
    )


def _json(
    status: int,
    error: str,
    message: str,
    field: str | None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=error, field=field, message=message)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _field_of(location: Sequence[Any]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    # Pydantic prefixes messages of ValueErrors raised by our own validators.
    return message.removeprefix("Value error, ")


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid request"}
    field = _field_of(first.get("loc", ("body",)))
    message = _validation_message(first)
    if first.get("type") == "json_invalid":
        field, message = "body", f"the request body is not valid JSON: {message}"
    return _json(422, "validation_error", f"{field}: {message}", field)


async def _on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _on_field_error(_request: Request, exc: Exception) -> JSONResponse:
    """A payload, signature or conversation error: its own status, code and field."""
    assert isinstance(exc, FieldError)
    return _json(exc.status_code, exc.code, exc.message, exc.field)


async def _on_query_error(_request: Request, exc: Exception) -> JSONResponse:
    """A listing's query parameters: answered like FastAPI's own validation errors."""
    assert isinstance(exc, FieldError)
    return _json(422, "validation_error", f"{exc.field}: {exc.message}", exc.field)


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = "there is no such path in the chathooks API; see /openapi.json"
    return _json(exc.status_code, code, message, None, dict(exc.headers or {}) or None)


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    """The database is unreachable, starting, stopping or overloaded: 503, the caller retries.

    A value the database refuses (SQLSTATE class 22) is the caller's to fix: 422.
    Anything else the database raised is a bug: 500, with the traceback logged.
    """
    if database_unavailable(exc):
        log.error("database unavailable: %s", exc)
        return _json(
            503,
            "unavailable",
            "the database is not available right now; nothing was stored, try again shortly",
            "database",
            {"retry-after": "5"},
        )
    if database_refused_value(exc):
        log.warning("the database refused a value: %s", exc)
        return _json(
            422,
            "validation_error",
            "the request holds a value the database cannot store (a NUL character, a number "
            "out of range); nothing was stored",
            "body",
        )
    log.error("database error", exc_info=exc)
    return await _on_unexpected_error(request, exc)


async def _on_unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the traceback itself after this answer is sent.
    return _json(500, "internal_error", "chathooks failed unexpectedly; see the service log", None)


def install_error_handlers(app: FastAPI) -> None:
    """Replace FastAPI's default error bodies with :class:`ErrorBody`."""
    app.add_exception_handler(Exception, _on_unexpected_error)
    # Outages (connection lost or refused, starting up, shutting down) arrive as any of
    # these, depending on the driver and on where the connection broke.
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(PoolTimeout, _on_database_error)  # every connection busy
    app.add_exception_handler(OSError, _on_database_error)  # e.g. PostgreSQL refusing connections
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(FieldError, _on_field_error)
    app.add_exception_handler(InvalidQueueQuery, _on_query_error)
    app.add_exception_handler(InvalidCursor, _on_query_error)
    app.add_exception_handler(HTTPException, _on_http_error)
