"""Statements compiled once and run straight through the driver.

SQLAlchemy's execution of a Core statement costs, in Python, many times what
SQLite takes to run a small one: the statement built again by its caller, its
cache key computed, the compiled form looked up, every row of its parameters
built and processed again (``construct_params``), a result object set up, and
on the async engine a greenlet switch and an await per driver call. The hot
paths (the worker's outcomes, a chat's lines, commands and completions) run a
few such statements many times a second. :class:`DriverStatement` compiles
each once per backend; an execution hands the driver positional tuples, with
the column types' bind processors applied, and reads plain tuples back, with
their result processors applied, so rows look as they would through Core. The
statement is still written once, in Core, next to the others.

Inside an open transaction of the service's inline SQLite
(:mod:`chathooks.db.engine`), where every statement already runs on the event
loop's thread, the statement runs on the ``sqlite3`` connection itself: about
2 µs for a lookup by key, against about 50 µs through the async engine. Driver
errors are raised as SQLAlchemy's exceptions (``IntegrityError``...), as
through Core. When anything listens for the engine's statements
(``before_cursor_execute``: tracing, tests that count queries), or outside a
transaction, or on PostgreSQL, it goes through ``exec_driver_sql`` instead,
which fires those events.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import ReturnsRows

from chathooks.db.engine import InlineConnection

__all__ = ["DriverResult", "DriverStatement", "inline_driver"]

Row = Mapping[str, Any]
Values = tuple[Any, ...]
_NO_PARAMETERS: Row = {}


@dataclass(frozen=True, slots=True)
class DriverResult:
    """What one execution gave: the rows its statement returns, as tuples, and the rows it
    changed (for an UPDATE or DELETE)."""

    rows: list[Values]
    rowcount: int
    #: The returned columns' keys, in the rows' order.
    keys: tuple[str, ...] = ()

    def first(self) -> Values | None:
        return self.rows[0] if self.rows else None

    def mappings(self) -> list[dict[str, Any]]:
        """The rows as mappings of their columns' keys."""
        return [dict(zip(self.keys, row, strict=True)) for row in self.rows]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    #: A row's values in the statement's positional order, processed for the driver.
    positional: Callable[[Row], Values]


class DriverStatement:
    """A SELECT, INSERT, UPDATE or DELETE whose parameters are named ``bindparam()``\\ s.

    Each row (or the one set of parameters) is a mapping of those names; an
    INSERT's columns are given as ``columns``. A value written in the statement
    (``state == "open"``) is part of it and sent as it is. Parameters that
    expand (``IN`` lists) cannot be compiled ahead and are refused.
    """

    def __init__(self, statement: ClauseElement, *, columns: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.columns = None if columns is None else list(columns)
        self._by_dialect: dict[str, _Compiled] = {}
        #: The keys of the columns it returns (none for a plain INSERT or UPDATE).
        self.keys = (
            tuple(column.key for column in statement.exported_columns)
            if isinstance(statement, ReturnsRows)
            else ()
        )
        #: Per backend: the returned rows as Core would give them (None: nothing to convert).
        #: Known from the first result, since a result processor may depend on the type the
        #: driver reports (PostgreSQL's numeric types).
        self._converters: dict[str, _Converter | None] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = self._compile(dialect)
        return found

    async def execute(
        self, connection: AsyncConnection, parameters: Row = _NO_PARAMETERS
    ) -> DriverResult:
        """Run the statement once in ``connection``'s transaction; its rows and rowcount."""
        compiled = self.compiled(connection.dialect)
        values = compiled.positional(parameters)
        inline = _inline_sqlite(connection)
        if inline is not None:
            try:
                cursor = inline.execute(compiled.sql, values)
                fetched: list[Any] = cursor.fetchall()
            except sqlite3.Error as error:
                raise _wrapped(compiled.sql, values, error) from error
            rowcount, description = cursor.rowcount, cursor.description
        else:
            result = await connection.exec_driver_sql(compiled.sql, values)
            description = result.cursor.description if result.returns_rows else None
            fetched = [tuple(row) for row in result.fetchall()] if result.returns_rows else []
            rowcount = result.rowcount
        if fetched:
            name = connection.dialect.name
            if name not in self._converters:
                self._converters[name] = _converter(self.statement, connection.dialect, description)
            convert = self._converters[name]
            if convert is not None:
                fetched = convert(fetched)
        return DriverResult(rows=fetched, rowcount=rowcount, keys=self.keys)

    async def executemany(self, connection: AsyncConnection, rows: Sequence[Row]) -> None:
        """Run the statement once per row of ``rows`` in ``connection``'s transaction."""
        if not rows:
            return
        compiled = self.compiled(connection.dialect)
        values = [compiled.positional(row) for row in rows]
        inline = _inline_sqlite(connection)
        if inline is None:
            await connection.exec_driver_sql(compiled.sql, values)
            return
        try:
            inline.executemany(compiled.sql, values)
        except sqlite3.Error as error:
            raise _wrapped(compiled.sql, values, error) from error

    def _compile(self, dialect: Dialect) -> _Compiled:
        # As SQLAlchemy compiles for an executemany: no RETURNING of generated keys.
        compiled = self.statement.compile(
            dialect=dialect, column_keys=self.columns, for_executemany=True
        )
        if not dialect.positional:
            raise ValueError(f"{dialect.name} does not take positional parameters")
        assert isinstance(compiled, SQLCompiler)
        computed = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if computed:
            listed = ", ".join(column.key for column in computed)
            raise ValueError(f"the rows must give {listed}: Core computes its default per row")
        names = list(compiled.positiontup or ())
        given: list[tuple[int, str]] = []
        fixed: list[tuple[int, Any]] = []
        processed: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(names):
            bind = compiled.binds[name]
            if bind.expanding:
                raise ValueError(f"parameter {name!r} expands; it cannot be compiled ahead")
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required:
                given.append((index, name))
                if process is not None:
                    processed.append((index, process))
            else:
                value = bind.effective_value
                fixed.append((index, value if process is None else process(value)))
        return _Compiled(
            sql=str(compiled),
            positional=_positional(len(names), given, fixed, processed),
        )


def _positional(
    size: int,
    given: list[tuple[int, str]],
    fixed: list[tuple[int, Any]],
    processed: list[tuple[int, Callable[[Any], Any]]],
) -> Callable[[Row], Values]:
    """How a row of named values becomes the driver's positional tuple."""
    if not given:
        constant = tuple(value for _, value in sorted(fixed))
        return lambda row: constant
    if not fixed and not processed and [i for i, _ in given] == list(range(size)):
        getter = itemgetter(*(name for _, name in given))
        if size == 1:
            return lambda row: (getter(row),)
        return getter  # type: ignore[return-value]
    template: list[Any] = [None] * size
    for index, value in fixed:
        template[index] = value

    def positional(row: Row) -> Values:
        listed = list(template)
        for index, name in given:
            listed[index] = row[name]
        for index, process in processed:
            listed[index] = process(listed[index])
        return tuple(listed)

    return positional


_Converter = Callable[[list[Any]], list[Values]]


def _converter(
    statement: ClauseElement, dialect: Dialect, description: Sequence[Sequence[Any]] | None
) -> _Converter | None:
    """The column types' result processors over a statement's returned rows, if it has any;
    ``description`` is the driver's, for the type codes it reports."""
    if not isinstance(statement, ReturnsRows):
        return None
    columns = list(statement.exported_columns)
    codes = [None] * len(columns) if description is None else [d[1] for d in description]
    processors = [
        (index, process)
        for index, (column, code) in enumerate(zip(columns, codes, strict=True))
        if (process := column.type.dialect_impl(dialect).result_processor(dialect, code))
        is not None
    ]
    if not processors:
        return None

    def convert(rows: list[Any]) -> list[Values]:
        converted = []
        for row in rows:
            listed = list(row)
            for index, process in processors:
                listed[index] = process(listed[index])
            converted.append(tuple(listed))
        return converted

    return convert


def inline_driver(connection: AsyncConnection) -> InlineConnection | None:
    """``connection``'s inline SQLite driver connection, when nothing listens for the engine's
    statements (so a statement may bypass Core's execution and its events)."""
    sync = connection.sync_connection
    if sync is None or sync._has_events or sync.engine._has_events:
        return None
    driver = sync.connection.driver_connection
    return driver if isinstance(driver, InlineConnection) else None


def _inline_sqlite(connection: AsyncConnection) -> sqlite3.Connection | None:
    """The ``sqlite3`` connection to run on at once, when that is what Core would do anyway."""
    driver = inline_driver(connection)
    return None if driver is None else driver.open_transaction()


def _wrapped(sql: str, values: Any, error: sqlite3.Error) -> exc.StatementError:
    """``error`` as SQLAlchemy raises it from a driver (``IntegrityError`` for a duplicate...)."""
    return exc.DBAPIError.instance(sql, values, error, sqlite3.Error)
