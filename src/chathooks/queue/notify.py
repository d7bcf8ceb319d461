"""Telling idle workers that work is due: the queue's own after-commit signal.

An idle worker looks for due deliveries every ``poll_interval``. So that new
work does not wait for that, every queue function that makes deliveries due
calls :func:`announce_due` inside its transaction, and the announcement goes
out when (and only if) that transaction commits:

- to workers in this process, by :func:`chathooks.queue.write_transaction`
  after its commit (:func:`signal_committed`), whichever route, command or
  periodic job made the work: no caller has to remember to wake anyone;
- to workers in other processes on PostgreSQL, with ``pg_notify`` in the same
  transaction (PostgreSQL delivers it at commit, never on rollback), which
  every worker :func:`listening` hears.

Polling stays: it covers an announcement missed while a listener reconnects,
work queued on SQLite by another process, and retries that come due later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from sqlalchemy import URL, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "CHANNEL",
    "announce_due",
    "forget_announcement",
    "listening",
    "signal_committed",
    "when_due_here",
]

#: The PostgreSQL notification channel.
CHANNEL = "chathooks_due"

_ANNOUNCE = text(f"SELECT pg_notify('{CHANNEL}', '')")
#: Marks a connection whose open transaction made work due (``connection.info``).
_DUE = "chathooks.due"
#: Workers of this process, by the database they deliver from, with their event loops.
_here: dict[URL, list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]]] = {}


def _database(engine: AsyncEngine) -> URL:
    # The URL itself (equal for every engine of one database), not its text: this runs
    # after every commit that queued work.
    return engine.url


async def announce_due(connection: AsyncConnection) -> None:
    """Tell workers, once this transaction commits, that deliveries are due."""
    connection.info[_DUE] = True
    if connection.dialect.name == "postgresql":
        await connection.execute(_ANNOUNCE)


def forget_announcement(connection: AsyncConnection) -> bool:
    """Take back the mark :func:`announce_due` left (at commit or rollback); was it there?

    A connection whose transaction broke committed nothing, so there is
    nothing to announce. An invalidated one (its statement was cancelled, its
    server went away) is not even asked: reading its ``info`` would open a new
    database connection, outside SQLAlchemy's greenlet where that cannot work,
    in the middle of a cancelled worker's clean-up.
    """
    try:
        if connection.closed or connection.invalidated:
            return False
        return bool(connection.info.pop(_DUE, False))
    except SQLAlchemyError:
        return False


def signal_committed(engine: AsyncEngine, connection: AsyncConnection) -> None:
    """After a commit on ``connection``: wake this process's workers if it made work due."""
    if not forget_announcement(connection):
        return
    for loop, wake in list(_here.get(_database(engine), ())):
        if _running_loop() is loop:
            wake()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(wake)  # a worker on another thread's loop


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@contextlib.contextmanager
def when_due_here(engine: AsyncEngine, wake: Callable[[], None]) -> Iterator[None]:
    """Call ``wake`` after each commit in this process that makes deliveries of ``engine``'s
    database due, while the block runs (on the event loop the block runs on)."""
    listeners = _here.setdefault(_database(engine), [])
    entry = (asyncio.get_running_loop(), wake)
    listeners.append(entry)
    try:
        yield
    finally:
        listeners.remove(entry)
        if not listeners:
            _here.pop(_database(engine), None)


@contextlib.asynccontextmanager
async def listening(
    engine: AsyncEngine, on_due: Callable[[], None]
) -> AsyncIterator[Callable[[], bool]]:
    """Call ``on_due`` at each announcement while the block runs (PostgreSQL only).

    Holds one connection of ``engine`` for the whole block and yields a check
    that it is still open: a listener on a closed connection hears nothing,
    so the caller should leave the block and listen again.
    """
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        listener: Any = raw.driver_connection

        def heard(*_notification: object) -> None:
            on_due()

        await listener.add_listener(CHANNEL, heard)
        try:
            yield lambda: not listener.is_closed()
        finally:
            if not listener.is_closed():
                await listener.remove_listener(CHANNEL, heard)
