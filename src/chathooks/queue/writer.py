"""Write transactions that never fail with "database is locked" on SQLite.

SQLite lets one transaction write at a time. Two things go wrong with its
default (deferred) transactions: a second writer waits in SQLite's busy
handler, which sleeps in steps of up to 100 ms; and a transaction that read
before it writes fails at once with "database is locked" when another
connection wrote in between. So on SQLite, writers of this process first take
turns on an asyncio lock (handing over without sleeping), then open their
transaction with ``BEGIN IMMEDIATE``, which takes the write lock up front and
waits (``busy_timeout``, off the event loop) for writers in other processes.
With the service's inline SQLite (:mod:`chathooks.db.engine`) everything
after ``BEGIN IMMEDIATE`` then runs without yielding, so the write lock is
held only while SQLite works. PostgreSQL locks
rows, so there it is a plain transaction.

Either way, a transaction that made deliveries due wakes this process's
workers once it has committed (:mod:`chathooks.queue.notify`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.db.driver import inline_driver
from chathooks.queue.notify import forget_announcement, signal_committed

_gates: WeakKeyDictionary[Engine, asyncio.Lock] = WeakKeyDictionary()


def write_gate(engine: AsyncEngine) -> contextlib.AbstractAsyncContextManager[object]:
    """The lock this process's writers to ``engine`` take turns on (a no-op for PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    gate = _gates.get(engine.sync_engine)
    if gate is None:
        gate = _gates[engine.sync_engine] = asyncio.Lock()
    return gate


@contextlib.asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Like ``engine.begin()``: commits when the block ends, rolls back when it raises."""
    if engine.dialect.name != "sqlite":
        async with engine.connect() as connection:
            try:
                async with connection.begin():
                    yield connection
            except BaseException:
                forget_announcement(connection)
                raise
            signal_committed(engine, connection)
        return
    async with write_gate(engine), engine.connect() as connection:
        inline = inline_driver(connection)
        if inline is None:
            # pysqlite sees a transaction is open and adds no BEGIN of its own.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # The same, without a statement's trip through Core when the lock is free:
            # SQLAlchemy's transaction (which sends nothing on SQLite), then the driver's.
            await connection.begin()
            if not inline.try_begin_immediate():
                # Another process holds the lock: wait for it through Core, which wraps the
                # driver's errors ("database is locked" is an outage) and completes the
                # BEGIN before a cancellation takes effect, so no pooled connection is left
                # holding a transaction nobody uses.
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            forget_announcement(connection)
            await connection.rollback()
            raise
        await connection.commit()
        signal_committed(engine, connection)
