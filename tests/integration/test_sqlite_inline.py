"""SQLite run inline on the event loop: what the service relies on.

A write transaction must hold SQLite's single write lock only while it
works, so nothing else in the process may run between its statements; while
reads, and a wait for a lock another process holds, must not stall the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db import engine as engine_module
from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.outage import database_unavailable
from chathooks.db.tables import sites
from chathooks.queue.writer import write_transaction


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "chathooks.db"


@asynccontextmanager
async def engine_at(path: Path, *, inline: bool) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite:///{path}"
    await upgrade_async(url)
    engine = create_engine(url, inline=inline)
    try:
        yield engine
    finally:
        await engine.dispose()


class Ticker:
    """Counts event-loop turns: other tasks get to run exactly when it advances."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def _insert_sites(engine: AsyncEngine, prefix: str, count: int) -> None:
    async with write_transaction(engine) as connection:
        for n in range(count):
            await connection.execute(
                sites.insert().values(
                    id=f"{prefix}{n}", name="x", api_key_hash=f"h-{prefix}{n}", created_at=1.0
                )
            )


@pytest.mark.parametrize(("inline", "others_run"), [(True, False), (False, True)])
async def test_an_inline_write_transaction_lets_nothing_else_run_while_it_holds_the_lock(
    path: Path, inline: bool, others_run: bool
) -> None:
    async with engine_at(path, inline=inline) as engine:
        with Ticker() as ticker:
            async with write_transaction(engine) as connection:
                # The write lock is held from here to the commit.
                before = ticker.ticks
                for n in range(20):
                    await connection.execute(
                        sites.insert().values(
                            id=f"s{n}", name="x", api_key_hash=f"h{n}", created_at=1.0
                        )
                    )
                await connection.execute(select(sites.c.id))
                during = ticker.ticks - before
        async with engine.connect() as connection:
            stored = (await connection.execute(select(sites.c.id))).scalars().all()
    assert len(stored) == 20
    # Threaded, each statement hands the loop over to other tasks while the lock is held.
    assert (during > 0) is others_run, during


@pytest.fixture
def other_process_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own (as another process would have) that can hold the write lock."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


async def test_a_lock_held_elsewhere_is_waited_for_without_stalling_the_loop(
    path: Path, other_process_lock: sqlite3.Connection
) -> None:
    async with engine_at(path, inline=True) as engine:
        other_process_lock.execute("BEGIN IMMEDIATE")
        writing = asyncio.create_task(_insert_sites(engine, "w", 3))
        with Ticker() as ticker:
            await asyncio.sleep(0.3)
            assert not writing.done()
            # The loop went on: a stalled loop would have turned only a few times.
            assert ticker.ticks > 100, ticker.ticks
        other_process_lock.execute("COMMIT")
        await asyncio.wait_for(writing, timeout=5)
        async with engine.connect() as connection:
            stored = (await connection.execute(select(sites.c.id))).scalars().all()
    assert sorted(stored) == ["w0", "w1", "w2"]


async def test_a_read_outside_a_transaction_does_not_stall_the_loop(path: Path) -> None:
    async with engine_at(path, inline=True) as engine:
        await _insert_sites(engine, "s", 1)
        with Ticker() as ticker:
            await asyncio.sleep(0)
            before = ticker.ticks
            async with engine.connect() as connection:
                # A slow query: SQLite counts to two million before it answers.
                slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                slow += "WHERE i < 2000000) SELECT count(*) FROM n"
                counted = (await connection.exec_driver_sql(slow)).scalar()
            during = ticker.ticks - before
    assert counted == 2_000_000
    assert during > 100, during


@pytest.mark.parametrize("inline", [True, False])
async def test_a_lock_held_past_the_busy_timeout_is_an_outage(
    path: Path,
    other_process_lock: sqlite3.Connection,
    monkeypatch: pytest.MonkeyPatch,
    inline: bool,
) -> None:
    """What the API answers with a 503 and the worker holds its outcomes for: SQLAlchemy's
    OperationalError, not the driver's own exception (a 500, and outcomes dropped)."""
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_SECONDS", 0.2)
    async with engine_at(path, inline=inline) as engine:
        other_process_lock.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError) as raised:
            async with write_transaction(engine):
                pass
        other_process_lock.execute("ROLLBACK")
        assert database_unavailable(raised.value)
        await _insert_sites(engine, "after", 1)  # and it is usable once the lock is free


async def test_a_writer_cancelled_while_it_waits_for_the_lock_leaves_no_transaction_open(
    path: Path, other_process_lock: sqlite3.Connection
) -> None:
    """A cancelled wait must not leave a pooled connection holding the write lock later."""
    async with engine_at(path, inline=True) as engine:
        other_process_lock.execute("BEGIN IMMEDIATE")
        writing = asyncio.create_task(_insert_sites(engine, "w", 1))
        await asyncio.sleep(0.2)  # waiting for the lock, on aiosqlite's thread
        assert not writing.done()
        writing.cancel()
        # The other process finishes soon after; the cancelled writer's BEGIN then gets
        # the lock, and must let it go again.
        asyncio.get_running_loop().call_later(0.2, other_process_lock.execute, "ROLLBACK")
        await asyncio.gather(writing, return_exceptions=True)
        await asyncio.sleep(0.2)
        third = sqlite3.connect(path, timeout=0.5, isolation_level=None)
        try:
            third.execute("BEGIN IMMEDIATE")  # "database is locked" if a pooled one held it
            third.execute("ROLLBACK")
        finally:
            third.close()
        await _insert_sites(engine, "after", 1)
        async with engine.connect() as connection:
            stored = (await connection.execute(select(sites.c.id))).scalars().all()
    assert "after0" in stored
