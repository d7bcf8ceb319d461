"""Deleting finished deliveries once they are older than the retention period.

Only finished deliveries (``FINISHED``: succeeded, failed...) whose
``finished_at`` is before the cutoff are taken, oldest first, a bounded batch
per transaction, with their payloads and attempts. Nothing unfinished is ever
selected, and the ``DELETE`` repeats the status condition, so a delivery
redelivered meanwhile stays. On PostgreSQL the batch is chosen ``FOR UPDATE
SKIP LOCKED``: several workers purging at once take different rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import ColumnElement

from chathooks.db.forget import oldest_batch
from chathooks.db.jsonpath import visitor_email_is
from chathooks.db.tables import attempts, deliveries, delivery_payloads
from chathooks.queue.statuses import FINISHED

__all__ = [
    "PurgedDeliveries",
    "delete_deliveries",
    "deliveries_to_erase",
    "purge_finished_deliveries",
]


@dataclass(frozen=True)
class PurgedDeliveries:
    deliveries: int = 0
    payloads: int = 0
    attempts: int = 0
    #: Of ``deliveries``, how many were still to be sent (erasure cancels them).
    unfinished: int = 0


def _finished() -> ColumnElement[bool]:
    """``status IN ('succeeded', 'failed', ...)``, spelled with literals like ``unfinished``."""
    return deliveries.c.status.in_([literal_column(f"'{status}'") for status in FINISHED])


async def delete_deliveries(
    connection: AsyncConnection, rows: Sequence[tuple[int, str]], *, finished_only: bool = True
) -> PurgedDeliveries:
    """Delete deliveries given as ``(seq, id)`` with their attempts and payloads."""
    if not rows:
        return PurgedDeliveries()
    seqs, ids = [seq for seq, _ in rows], [delivery_id for _, delivery_id in rows]
    removed_attempts = await connection.execute(
        delete(attempts).where(attempts.c.delivery_seq.in_(seqs))
    )
    removed_payloads = await connection.execute(
        delete(delivery_payloads).where(delivery_payloads.c.delivery_id.in_(ids))
    )
    statement = delete(deliveries).where(deliveries.c.seq.in_(seqs))
    if finished_only:
        statement = statement.where(_finished())
    unfinished_count = 0
    if not finished_only:
        unfinished_count = int(
            (
                await connection.execute(
                    select(func.count()).where(deliveries.c.seq.in_(seqs), ~_finished())
                )
            ).scalar_one()
        )
    removed = await connection.execute(statement)
    return PurgedDeliveries(
        deliveries=int(removed.rowcount),
        payloads=int(removed_payloads.rowcount),
        attempts=int(removed_attempts.rowcount),
        unfinished=unfinished_count,
    )


async def deliveries_to_erase(
    connection: AsyncConnection,
    site_id: str,
    *,
    conversation_ids: Sequence[str] = (),
    email: str | None = None,
) -> list[tuple[int, str]]:
    """``(seq, id)`` of ``site_id``'s deliveries of ``conversation_ids``, or whose payload's
    visitor has the address ``email`` (offline messages too), whatever their status."""
    conditions: list[ColumnElement[bool]] = []
    if conversation_ids:
        conditions.append(deliveries.c.conversation_id.in_(list(conversation_ids)))
    if email:
        conditions.append(visitor_email_is(delivery_payloads.c.payload, email))
    if not conditions:
        return []
    query = (
        select(deliveries.c.seq, deliveries.c.id)
        .join(delivery_payloads, delivery_payloads.c.delivery_id == deliveries.c.id)
        .where(deliveries.c.site_id == site_id, or_(*conditions))
    )
    return [(row.seq, row.id) for row in await connection.execute(query)]


async def purge_finished_deliveries(
    connection: AsyncConnection, *, finished_before: float, limit: int
) -> PurgedDeliveries:
    """Delete up to ``limit`` deliveries finished before ``finished_before`` (one batch)."""
    query = (
        select(deliveries.c.seq, deliveries.c.id)
        .where(
            deliveries.c.finished_at < finished_before,
            _finished(),
        )
        .order_by(deliveries.c.finished_at)
    )
    rows = [(row.seq, row.id) for row in await oldest_batch(connection, query, limit=limit)]
    return await delete_deliveries(connection, rows)
