"""What ``chathooks receive`` forgets: conversations past ``--retention-days``, and erasures.

A received conversation goes with every stored version of it. Retention
(off unless ``--retention-days`` is given) deletes conversations last
received before the cutoff, in bounded batches; an erasure deletes one
conversation, or every conversation of one visitor email address. As on the
sender, SQLite overwrites what it deletes (``secure_delete``) and the
write-ahead log is truncated after an erasure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.forget import check_subject, forget_wal, in_batches, oldest_batch
from chathooks.receiver.store import ReceivedStore, received_conversations, received_versions

__all__ = ["erase_received", "purge_received"]

DAY = 86400.0


async def _delete(connection: AsyncConnection, ids: Sequence[str]) -> tuple[int, int]:
    if not ids:
        return 0, 0
    versions = await connection.execute(
        delete(received_versions).where(received_versions.c.conversation_id.in_(list(ids)))
    )
    conversations = await connection.execute(
        delete(received_conversations).where(received_conversations.c.id.in_(list(ids)))
    )
    return int(conversations.rowcount), int(versions.rowcount)


async def purge_received(
    store: ReceivedStore,
    *,
    older_than_days: float,
    batch_size: int = 500,
    now: float | None = None,
) -> tuple[int, int]:
    """Delete conversations last received more than ``older_than_days`` ago; both counts."""
    cutoff = (time.time() if now is None else now) - older_than_days * DAY
    totals = [0, 0]
    oldest = (
        select(received_conversations.c.id)
        .where(received_conversations.c.last_received_at < cutoff)
        .order_by(received_conversations.c.last_received_at)
    )

    async def step() -> int:
        async with store.engine.begin() as connection:
            ids = [row.id for row in await oldest_batch(connection, oldest, limit=batch_size)]
            conversations, versions = await _delete(connection, ids)
        totals[0] += conversations
        totals[1] += versions
        return len(ids)

    await in_batches(step, batch_size=batch_size)
    return totals[0], totals[1]


async def erase_received(
    store: ReceivedStore, *, conversation_id: str | None = None, email: str | None = None
) -> tuple[int, int]:
    """Erase one conversation, or every one whose visitor has ``email``; both counts."""
    subject, value = check_subject(conversation_id, email)
    query = select(received_conversations.c.id)
    if subject == "conversation":
        query = query.where(received_conversations.c.id == value)
    else:
        query = query.where(func.lower(received_conversations.c.visitor_email) == value.lower())
    async with store.engine.begin() as connection:
        ids = [row.id for row in await connection.execute(query)]
        counts = await _delete(connection, ids)
    await forget_wal(store.engine)
    return counts
