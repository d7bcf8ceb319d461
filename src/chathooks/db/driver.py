"""Statements run many rows at a time straight through the driver.

SQLAlchemy's execution of a compiled Core statement costs, in Python, as much
as SQLite takes to run a small one: a cache lookup, then every row of its
parameters built and processed again (``construct_params``). The worker runs
a few statements with one row per delivery (the attempt log's INSERT, the
deliveries' UPDATE): :class:`DriverStatement` compiles such a statement once
per backend, and each execution hands the driver its rows as positional
tuples (``exec_driver_sql``), in the caller's transaction as before. The
statement is still written once, in Core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase

__all__ = ["DriverStatement"]

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    #: A row's values in the statement's positional order, processed for the driver.
    positional: Callable[[Row], tuple[Any, ...]]


class DriverStatement:
    """An INSERT or UPDATE of many rows, each a mapping of its bound parameters' names.

    Every parameter must be an explicit ``bindparam()`` with no value of its
    own (an INSERT's columns are given as ``columns``): a literal is written
    in the statement, so nothing is left to fill in per row.
    """

    def __init__(self, statement: UpdateBase, *, columns: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.columns = None if columns is None else list(columns)
        self._by_dialect: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = self._compile(dialect)
        return found

    async def executemany(self, connection: AsyncConnection, rows: Sequence[Row]) -> None:
        """Run the statement once per row of ``rows`` in ``connection``'s transaction."""
        if not rows:
            return
        compiled = self.compiled(connection.dialect)
        await connection.exec_driver_sql(compiled.sql, [compiled.positional(row) for row in rows])

    def _compile(self, dialect: Dialect) -> _Compiled:
        # As SQLAlchemy compiles for an executemany: no RETURNING of generated keys.
        compiled = self.statement.compile(
            dialect=dialect, column_keys=self.columns, for_executemany=True
        )
        names = compiled.positiontup
        if not dialect.positional or not names:
            raise ValueError(f"{dialect.name} does not take positional parameters")
        processed: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(names):
            bind = compiled.binds[name]
            if not bind.required:
                raise ValueError(f"parameter {name!r} has a value of its own; write it as SQL")
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processed.append((index, process))
        getter = itemgetter(*names)

        def positional(row: Row) -> tuple[Any, ...]:
            values = getter(row)
            if len(names) == 1:
                values = (values,)
            if not processed:
                return values  # type: ignore[no-any-return]
            listed = list(values)
            for index, process in processed:
                listed[index] = process(listed[index])
            return tuple(listed)

        return _Compiled(str(compiled), positional)
