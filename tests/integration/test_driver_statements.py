"""Statements run row by row through the driver (chathooks.db.driver), on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.db.driver import DriverStatement
from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import endpoints, sites
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


async def test_a_value_written_in_the_statement_is_sent_with_every_row(engine: AsyncEngine) -> None:
    fixed = DriverStatement(
        update(sites).where(sites.c.id == bindparam("b_id")).values(name="fixed")
    )
    async with write_transaction(engine) as connection:
        await _INSERT.executemany(connection, [site(1), site(2), site(3)])
        await fixed.executemany(connection, [{"b_id": "s1"}, {"b_id": "s3"}])
    async with engine.connect() as connection:
        names = dict((await connection.execute(select(sites.c.id, sites.c.name))).all())
    assert names == {"s1": "fixed", "s2": "n2", "s3": "fixed"}


async def test_an_expanding_parameter_is_refused(engine: AsyncEngine) -> None:
    listed = DriverStatement(
        select(sites).where(sites.c.id.in_(bindparam("b_ids", expanding=True)))
    )
    async with engine.connect() as connection:
        with pytest.raises(ValueError, match="expands"):
            await listed.execute(connection, {"b_ids": ["s1"]})


# Every kind of column the queue's tables hold: text, JSON, booleans, floats, integers, NULLs.
_ENDPOINT_COLUMNS = (
    endpoints.c.id,
    endpoints.c.headers,
    endpoints.c.enabled,
    endpoints.c.send_events,
    endpoints.c.created_at,
    endpoints.c.max_in_flight,
    endpoints.c.disabled_reason,
)
_ENDPOINTS_OF = DriverStatement(
    select(*_ENDPOINT_COLUMNS)
    .where(endpoints.c.site_id == bindparam("b_site"), endpoints.c.role == "delivery")
    .order_by(endpoints.c.id)
)


async def _site_with_endpoints(connection: AsyncConnection) -> None:
    await _INSERT.executemany(connection, [site(1)])
    now = 1_700_000_000.25
    common = {
        "site_id": "s1",
        "url": "http://127.0.0.1:9/hook",
        "description": "",
        "auto_send": True,
        "send_offline": False,
        "format": "form",
        "created_at": now,
        "updated_at": now,
        "role": "delivery",
    }
    await connection.execute(
        insert(endpoints),
        [
            {**common, "id": "e1", "enabled": True, "send_events": False, "headers": {"A": "1"}},
            {
                **common,
                "id": "e2",
                "enabled": False,
                "send_events": True,
                "headers": {},
                "max_in_flight": 4,
                "disabled_reason": "failing",
            },
        ],
    )


async def test_rows_read_back_as_core_reads_them(engine: AsyncEngine) -> None:
    """Inside a transaction (on SQLite, straight on the sqlite3 connection) and outside it."""
    core = select(*_ENDPOINT_COLUMNS).where(endpoints.c.site_id == "s1").order_by(endpoints.c.id)
    async with write_transaction(engine) as connection:
        await _site_with_endpoints(connection)
        expected = [tuple(row) for row in (await connection.execute(core)).all()]
        inside = await _ENDPOINTS_OF.execute(connection, {"b_site": "s1"})
    async with engine.connect() as connection:
        outside = await _ENDPOINTS_OF.execute(connection, {"b_site": "s1"})
    assert expected[0] == ("e1", {"A": "1"}, True, False, 1_700_000_000.25, None, None)
    assert expected[1][2:4] == (False, True)
    for result in (inside, outside):
        assert result.rows == expected
        assert [type(value) for value in result.rows[0]] == [type(v) for v in expected[0]]
    assert inside.first() == expected[0]


async def test_returning_and_rowcount(engine: AsyncEngine) -> None:
    rename = DriverStatement(
        update(sites)
        .where(sites.c.id == bindparam("b_id"), sites.c.name != "closed")
        .values(name=bindparam("b_name"))
        .returning(sites.c.id, sites.c.name)
    )
    async with write_transaction(engine) as connection:
        await _INSERT.executemany(connection, [site(1)])
        renamed = await rename.execute(connection, {"b_id": "s1", "b_name": "closed"})
        again = await rename.execute(connection, {"b_id": "s1", "b_name": "closed"})
    assert (renamed.rows, renamed.rowcount) == ([("s1", "closed")], 1)
    assert (again.rows, again.rowcount, again.first()) == ([], 0, None)


async def test_a_refusal_of_the_database_is_raised_as_sqlalchemy_raises_it(
    engine: AsyncEngine,
) -> None:
    async with write_transaction(engine) as connection:
        await _INSERT.executemany(connection, [site(1)])
    with pytest.raises(IntegrityError):
        async with write_transaction(engine) as connection:
            await _INSERT.executemany(connection, [site(2), site(1)])
    with pytest.raises(IntegrityError):
        async with write_transaction(engine) as connection:
            await _INSERT.execute(connection, site(1))
    async with engine.connect() as connection:
        ids = (await connection.execute(select(sites.c.id))).scalars().all()
    assert ids == ["s1"]  # each transaction rolled back whole


async def test_statements_are_seen_by_whatever_listens_for_them(engine: AsyncEngine) -> None:
    """A tracer (or a test counting queries) on the engine sees these statements too."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        async with write_transaction(engine) as connection:
            await _INSERT.executemany(connection, [site(1)])
            found = await _ENDPOINTS_OF.execute(connection, {"b_site": "s1"})
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert found.rows == []
    assert [s.split()[0] for s in seen if not s.startswith(("BEGIN", "PRAGMA"))] == [
        "INSERT",
        "SELECT",
    ]


async def test_a_column_whose_default_is_computed_per_row_must_be_given(
    engine: AsyncEngine,
) -> None:
    """Core fills ``endpoints.description`` (default "") itself; rows here must say it."""
    insert_endpoint = DriverStatement(
        insert(endpoints), columns=["id", "site_id", "url", "created_at", "updated_at"]
    )
    async with write_transaction(engine) as connection:
        with pytest.raises(ValueError, match="description"):
            await insert_endpoint.executemany(connection, [{"id": "e1"}])
