"""Statements run row by row through the driver (chathooks.db.driver), on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db.driver import DriverStatement
from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import sites
from chathooks.queue import write_transaction

_INSERT = DriverStatement(insert(sites), columns=["id", "name", "api_key_hash", "created_at"])
_RENAME = DriverStatement(
    update(sites).where(sites.c.id == bindparam("b_id")).values(name=bindparam("b_name"))
)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = create_engine(database_url, inline=True)
    yield engine
    await engine.dispose()


def site(number: int) -> dict[str, object]:
    return {"id": f"s{number}", "name": f"n{number}", "api_key_hash": f"h{number}", "created_at": 7}


async def test_rows_are_written_in_the_callers_transaction(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as connection:
        await _INSERT.executemany(connection, [site(1), site(2), site(3)])
        await _RENAME.executemany(
            connection, [{"b_id": "s1", "b_name": "one"}, {"b_id": "s3", "b_name": "three"}]
        )
    with pytest.raises(RuntimeError):
        async with write_transaction(engine) as connection:
            await _INSERT.executemany(connection, [site(4)])
            raise RuntimeError("rolled back")
    async with engine.connect() as connection:
        rows = (
            await connection.execute(select(sites.c.id, sites.c.name, sites.c.created_at))
        ).all()
    assert sorted(rows) == [("s1", "one", 7.0), ("s2", "n2", 7.0), ("s3", "three", 7.0)]
    # The column's type converted the integer given, as SQLAlchemy's own execution does.
    assert all(isinstance(row.created_at, float) for row in rows)


async def test_nothing_is_sent_for_no_rows(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as connection:
        await _INSERT.executemany(connection, [])


async def test_a_parameter_with_a_value_of_its_own_is_refused(engine: AsyncEngine) -> None:
    """Such a value would not be sent: every value must come from the rows."""
    fixed = DriverStatement(
        update(sites).where(sites.c.id == bindparam("b_id")).values(name="fixed")
    )
    async with write_transaction(engine) as connection:
        with pytest.raises(ValueError, match="value of its own"):
            await fixed.executemany(connection, [{"b_id": "s1"}])
