"""Which database errors mean "try again" and which mean "this value can never be stored"."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError

from chathooks.db.outage import database_refused_value, database_unavailable


def wrapped(orig: BaseException) -> DBAPIError:
    """``orig`` as SQLAlchemy raises a driver's error."""
    try:
        try:
            raise orig
        except BaseException as cause:
            raise DBAPIError("SELECT 1", {}, cause) from cause
    except DBAPIError as exc:
        return exc


@pytest.mark.parametrize(
    "orig",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
)
def test_a_database_starting_stopping_or_unreachable_is_unavailable(orig: BaseException) -> None:
    error = wrapped(orig)
    assert database_unavailable(error)
    assert not database_refused_value(error)


@pytest.mark.parametrize(
    "orig",
    [
        asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence: 0x00"),
        asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"),
        asyncpg.exceptions.DataError("invalid input for query argument $1: value out of range"),
        OverflowError("Python int too large to convert to SQLite INTEGER"),
    ],
)
def test_a_value_the_database_refuses_is_not_an_outage(orig: BaseException) -> None:
    error = wrapped(orig)
    assert database_refused_value(error)
    assert not database_unavailable(error)


def test_sqlite_busy_is_unavailable_and_a_constraint_is_neither() -> None:
    locked = OperationalError("BEGIN", {}, Exception("database is locked"))
    assert database_unavailable(locked)
    constraint = IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
    assert not database_unavailable(constraint)
    assert not database_refused_value(constraint)
    encode = StatementError("bind", "INSERT", {}, UnicodeEncodeError("utf-8", "\ud800", 0, 1, "x"))
    assert database_refused_value(encode)
