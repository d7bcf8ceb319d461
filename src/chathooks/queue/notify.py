"""Telling idle workers in other processes that work is due, on PostgreSQL.

An idle worker looks for due deliveries every ``poll_interval``; a worker in
the same process as the API is woken directly after each enqueue. Workers in
other processes (``chathooks worker`` next to ``serve --no-worker``) would
wait up to a poll interval for new work. So on PostgreSQL whatever makes
deliveries due also announces it with ``pg_notify`` in the same transaction
(PostgreSQL delivers it when the transaction commits, never when it rolls
back), and every worker listens. Polling stays: it covers an announcement
missed while a listener reconnects, and retries that come due later.
SQLite has no notifications; its service runs its worker in-process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["CHANNEL", "announce_due", "listening"]

#: The PostgreSQL notification channel.
CHANNEL = "chathooks_due"

_ANNOUNCE = text(f"SELECT pg_notify('{CHANNEL}', '')")


async def announce_due(connection: AsyncConnection) -> None:
    """Tell listening workers, once this transaction commits, that deliveries are due."""
    if connection.dialect.name == "postgresql":
        await connection.execute(_ANNOUNCE)


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
