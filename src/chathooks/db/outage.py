"""Telling "the database is not there right now" from "the database refused this value".

The two call for opposite answers. An unreachable, starting or shutting-down
database is temporary: an HTTP caller gets 503 with ``Retry-After`` and the
worker keeps what it has not written yet, to write it when the database is
back. A value the database cannot store (PostgreSQL refuses NUL bytes in
text, for one) will be refused again however often it is retried: the caller
gets a 4xx, and the worker settles that one delivery on its own instead of
failing the whole batch with it.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["database_refused_value", "database_unavailable"]

#: SQLSTATE classes of a database that cannot serve now: connection exception,
#: insufficient resources, operator intervention (starting up, shutting down).
_UNAVAILABLE_CLASSES = ("08", "53", "57")
#: SQLSTATE class "data exception": a value the database will never accept.
_DATA_EXCEPTION_CLASS = "22"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it: SQLAlchemy's wrapper, the adapter's error, the driver's."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        orig = getattr(current, "orig", None)  # SQLAlchemy's StatementError and DBAPIError
        if isinstance(orig, BaseException):
            current = orig
        else:
            current = current.__cause__ or current.__context__
    return chain


def _sqlstate(exc: BaseException) -> str | None:
    """The five-character SQLSTATE of a driver error, wherever the driver keeps it."""
    for cause in _causes(exc):
        for name in ("sqlstate", "pgcode"):
            code = getattr(cause, name, None)
            if isinstance(code, str) and len(code) == 5:
                return code
    return None


def _bad_value(exc: BaseException) -> bool:
    # A driver refusing a value before sending it (asyncpg's DataError is also an
    # InterfaceError; sqlite3 raises OverflowError or UnicodeEncodeError).
    return any(isinstance(cause, ValueError | TypeError | OverflowError) for cause in _causes(exc))


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or cannot serve at the moment."""
    if _bad_value(exc):
        return False
    if isinstance(exc, PoolTimeout | OperationalError | InterfaceError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    code = _sqlstate(exc)
    if code is not None:
        return code[:2] in _UNAVAILABLE_CLASSES
    return any(isinstance(cause, OSError | TimeoutError) for cause in _causes(exc))


def database_refused_value(exc: BaseException) -> bool:
    """Whether ``exc`` is the database (or its driver) refusing a value it can never store."""
    code = _sqlstate(exc)
    if code is not None:
        return code.startswith(_DATA_EXCEPTION_CLASS)
    return _bad_value(exc)
