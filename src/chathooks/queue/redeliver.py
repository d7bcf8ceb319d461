"""Sending deliveries again on request: one (``redeliver``) or an outage's worth (``recover``).

A redelivered delivery keeps its id, so its ``webhook-id`` is the same and a
receiver that already has it can dedupe; its attempts keep counting up, and
the retry schedule starts over as if it were new.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import ColumnElement

from chathooks.db.tables import deliveries
from chathooks.queue.notify import announce_due
from chathooks.queue.reads import get_delivery
from chathooks.queue.statuses import DELIVERING, FAILED, PENDING


def _back_to_pending(at: float) -> dict[str, Any]:
    return {
        "status": PENDING,
        "next_attempt_at": at,
        "round_attempts": 0,
        "lease_owner": None,
        "lease_expires_at": None,
        "finished_at": None,
        "updated_at": at,
    }


async def redeliver(
    connection: AsyncConnection,
    site_id: str,
    delivery_id: str,
    *,
    now: float | None = None,
) -> dict[str, Any] | None:
    """Queue a delivery of ``site_id`` to be sent now, whatever its status; None if unknown.

    A delivery being sent at this very moment is left alone (that attempt is
    the redelivery the caller asked for) and returned as it is.
    """
    at = time.time() if now is None else now
    await connection.execute(
        update(deliveries)
        .where(
            deliveries.c.site_id == site_id,
            deliveries.c.id == delivery_id,
            deliveries.c.status != DELIVERING,
        )
        .values(_back_to_pending(at))
    )
    await announce_due(connection)
    return await get_delivery(connection, site_id, delivery_id)


async def recover(
    connection: AsyncConnection,
    site_id: str,
    endpoint_id: str,
    *,
    since: float,
    now: float | None = None,
) -> list[str]:
    """Redeliver every ``failed`` delivery to an endpoint made at or after ``since``.

    For after an outage: once the receiver is back (and the endpoint enabled
    again), everything it missed goes out in its original order. Returns the
    ids, oldest first.
    """
    at = time.time() if now is None else now
    condition: ColumnElement[bool] = and_(
        deliveries.c.site_id == site_id,
        deliveries.c.endpoint_id == endpoint_id,
        deliveries.c.status == FAILED,
        deliveries.c.created_at >= since,
    )
    rows = await connection.execute(
        update(deliveries)
        .where(condition)
        .values(_back_to_pending(at))
        .returning(deliveries.c.seq, deliveries.c.id)
    )
    recovered = [row.id for row in sorted(rows, key=lambda row: row.seq)]
    if recovered:
        await announce_due(connection)
    return recovered
