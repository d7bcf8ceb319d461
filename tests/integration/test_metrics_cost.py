"""A scrape of /metrics, ``chathooks status`` and retention never scan the finished history.

The statements are captured as the real functions run them against a table
holding thousands of finished deliveries and a handful of unfinished ones,
then explained by the database itself (with statistics, on PostgreSQL): none
may read the deliveries table whole. The timing side, a million rows against
a thousand, is the benchmark's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import deliveries, endpoints, sites
from chathooks.queue import list_deliveries, queue_stats
from chathooks.queue.overview import endpoint_problems
from chathooks.queue.retention import purge_finished_deliveries

T0 = 1_700_000_000.0
FINISHED_ROWS = 5000


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(
            insert(sites).values(id="s", name="s", api_key_hash="s", created_at=T0)
        )
        await connection.execute(
            insert(endpoints).values(
                id="e", site_id="s", url="https://e.example/", created_at=T0, updated_at=T0
            )
        )
        rows: list[dict[str, Any]] = [
            {
                "id": f"d{n}",
                "site_id": "s",
                "endpoint_id": "e",
                "conversation_id": f"c{n}",
                "payload_kind": "transcript",
                "status": "succeeded" if n % 3 else "failed",
                "next_attempt_at": T0 + n,
                "created_at": T0 + n,
                "updated_at": T0 + n,
                "finished_at": T0 + n,
            }
            for n in range(FINISHED_ROWS)
        ]
        for n, status in enumerate(("pending", "retrying", "delivering", "held")):
            rows.append({**rows[0], "id": f"u{n}", "status": status, "finished_at": None})
        await connection.execute(insert(deliveries), rows)
    async with engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE")
        await connection.commit()
    yield engine
    await engine.dispose()


async def _plans(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[object]]
) -> list[str]:
    """The plan of every statement ``work`` runs on the deliveries table."""
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "deliveries" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.connect() as connection:
            await work(connection)
            await connection.rollback()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert captured, "nothing ran on deliveries"
    explain = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
    plans = []
    async with engine.connect() as connection:
        for statement, parameters in captured:
            if statement.lstrip().upper().startswith("DELETE"):
                continue  # deletes go by primary key, after the select that chose them
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            if engine.dialect.name == "sqlite":
                cursor = await driver.execute(f"{explain} {statement}", parameters)
                rows = await cursor.fetchall()
            else:
                rows = await driver.fetch(f"{explain} {statement}", *parameters)
            plans.append("\n".join(str(row[-1]) for row in rows))
    return plans


#: Partial indexes: they hold unfinished (or held) deliveries only, so reading one whole is cheap.
PARTIAL = ("ix_deliveries_unfinished_", "ix_deliveries_held")


def _scans_deliveries(plan: str) -> bool:
    """Whether the plan reads all of ``deliveries`` (or a full index of it) rather than
    searching an index or reading a partial one."""
    for line in plan.splitlines():
        text = line.strip()
        if "Seq Scan on deliveries" in text:
            return True
        if text.startswith("SCAN deliveries") and not any(name in text for name in PARTIAL):
            return True
    return False


async def test_the_metrics_queries_read_unfinished_work_only(engine: AsyncEngine) -> None:
    plans = await _plans(engine, queue_stats)
    assert plans and not any(_scans_deliveries(plan) for plan in plans), plans
    # Each searches an index by status, or reads a partial one of unfinished work.
    assert all(_uses(plan, "ix_deliveries_") for plan in plans), plans


async def test_status_reads_unfinished_work_only(engine: AsyncEngine) -> None:
    plans = await _plans(engine, endpoint_problems)
    assert plans and not any(_scans_deliveries(plan) for plan in plans), plans


async def test_retention_finds_its_batch_by_the_finished_index(engine: AsyncEngine) -> None:
    async def batch(connection: AsyncConnection) -> object:
        return await purge_finished_deliveries(connection, finished_before=T0 + 10, limit=100)

    plans = await _plans(engine, batch)
    assert plans and not any(_scans_deliveries(plan) for plan in plans), plans


def _uses(plan: str, index: str) -> bool:
    """Whether the plan searches ``index`` (SQLite's SEARCH, PostgreSQL's index scans)."""
    return any(
        index in line and ("SEARCH" in line or "Index" in line) for line in plan.splitlines()
    )


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"conversation_id": "c4242"}, "ix_deliveries_site_conversation"),
        ({"conversation_prefix": "c4242"}, "ix_deliveries_site_conversation"),
        ({"created_from": T0 + 10, "created_to": T0 + 20}, "ix_deliveries_site_created"),
        ({"created_from": T0 + 10}, "ix_deliveries_site_created"),
    ],
    ids=["conversation", "prefix", "created-range", "created-since"],
)
async def test_a_narrow_delivery_log_search_reads_its_own_index(
    engine: AsyncEngine, filters: dict[str, Any], index: str
) -> None:
    """Searching the log for one conversation or one moment reads that, not the history."""

    async def search(connection: AsyncConnection) -> object:
        if "created_from" in filters and "created_to" not in filters:
            filters_now = {**filters, "created_from": T0 + FINISHED_ROWS - 5}
        else:
            filters_now = filters
        return await list_deliveries(connection, "s", **filters_now)

    plans = await _plans(engine, search)
    assert not any(_scans_deliveries(plan) for plan in plans), plans
    assert _uses(plans[-1], index), plans


async def test_a_wide_prefix_walks_the_newest_first_instead_of_sorting_them_all(
    engine: AsyncEngine,
) -> None:
    """Every delivery starts with "c": the newest five are the first five of a walk in
    queue order (which stops there), not five of all of them sorted."""

    async def search(connection: AsyncConnection) -> object:
        items, _ = await list_deliveries(connection, "s", conversation_prefix="c", limit=5)
        return items

    plans = await _plans(engine, search)
    assert not _uses(plans[-1], "ix_deliveries_site_conversation"), plans
    assert not any("TEMP B-TREE" in plan or "Sort" in plan for plan in plans), plans
    async with engine.connect() as connection:
        items, _ = await list_deliveries(connection, "s", conversation_prefix="c", limit=5)
        narrow, _ = await list_deliveries(connection, "s", conversation_prefix="c499")
    assert [item["id"] for item in items] == ["u3", "u2", "u1", "u0", f"d{FINISHED_ROWS - 1}"]
    assert sorted(item["conversation_id"] for item in narrow) == [
        "c499",
        *(f"c499{n}" for n in range(10)),
    ]
