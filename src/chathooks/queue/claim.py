"""Taking due deliveries off the queue under a lease, and giving them back.

A claim is one ``UPDATE ... RETURNING`` over a batch: it marks the batch
``delivering``, records who holds it and until when, and moves
``next_attempt_at`` to that lease expiry. A worker that dies therefore leaves
nothing stuck: when the lease runs out its deliveries are simply due again.

The candidates are chosen in a CTE that skips rows another worker is claiming
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer at a time and
ignores it), and that keeps conversations in order: a delivery is taken only
when no earlier delivery of the same (endpoint, conversation) is unfinished.
Both lookups run on partial indexes that hold unfinished deliveries only.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    Float,
    Integer,
    Select,
    String,
    Update,
    and_,
    bindparam,
    case,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.tables import deliveries, delivery_payloads, endpoints, unfinished
from chathooks.queue.notify import announce_due
from chathooks.queue.statuses import DELIVERING, PENDING, RETRYING


@dataclass(frozen=True, slots=True)
class Destination:
    """Where and how a claimed delivery is posted: its endpoint's settings at claim time."""

    endpoint_id: str
    url: str
    secret: str | None
    format: str
    headers: dict[str, str]
    enabled: bool


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this worker now holds, with everything needed to post it."""

    seq: int
    id: str
    site_id: str
    endpoint_id: str
    conversation_id: str | None
    payload: str
    #: Attempts made before this claim (the coming one is number ``attempt_count + 1``).
    attempt_count: int
    #: Attempts made since the retry schedule (re)started.
    round_attempts: int
    destination: Destination
    #: The claim is this worker's until then; its outcome is recorded only if it still is.
    lease_expires_at: float


#: Bound parameters of the claim statement.
NOW, LIMIT, OWNER, LEASE_UNTIL = "claim_now", "claim_limit", "claim_owner", "claim_lease_until"


def due_deliveries() -> Select[tuple[int]]:
    """The ``seq`` of up to ``:claim_limit`` deliveries that may be sent at ``:claim_now``.

    Oldest due first. Built with bound parameters, so the statement is
    compiled once and every claim after that reuses it.
    """
    now = bindparam(NOW, type_=Float)
    candidate = deliveries.alias("candidate")
    earlier = deliveries.alias("earlier")
    held_back = (
        select(literal_column("1"))
        .where(
            earlier.c.endpoint_id == candidate.c.endpoint_id,
            earlier.c.conversation_id == candidate.c.conversation_id,
            unfinished(earlier),
            or_(
                # An earlier one still to be sent goes first...
                earlier.c.seq < candidate.c.seq,
                # ...and nothing overtakes one in flight (a redelivered earlier delivery
                # waits for a later one being posted right now).
                and_(
                    earlier.c.seq != candidate.c.seq,
                    earlier.c.status == literal_column(f"'{DELIVERING}'"),
                    earlier.c.lease_expires_at > now,
                ),
            ),
        )
        .exists()
    )
    return (
        select(candidate.c.seq)
        .where(unfinished(candidate), candidate.c.next_attempt_at <= now, ~held_back)
        .order_by(candidate.c.next_attempt_at)
        .limit(bindparam(LIMIT, type_=Integer))
        .with_for_update(skip_locked=True)
    )


_SQLITE_FROM = "FROM deliveries AS candidate"
_SQLITE_INDEXED_FROM = "FROM deliveries AS candidate INDEXED BY ix_deliveries_unfinished_due"


def due_cte(dialect_name: str) -> CTE:
    """:func:`due_deliveries` as the claim's CTE, pinned to the due index on SQLite.

    Without ANALYZE statistics SQLite prefers ``ix_deliveries_due`` and then
    sorts every due row, so a claim would cost as much as the whole backlog;
    the partial index is already in due order and stops after ``limit`` rows.
    SQLAlchemy has no way to say ``INDEXED BY``, so the SQL is rendered here
    and the clause inserted (which also makes SQLite fail loudly, rather than
    slowly, should the index ever stop matching the query).
    """
    due = due_deliveries()
    if dialect_name != "sqlite":
        return due.cte("due")
    # Rendered with named parameters, so the text keeps ``:claim_now`` and ``:claim_limit``
    # (and with a literal offset, which SQLite's LIMIT clause would otherwise bind).
    due = due.offset(literal_column("0"))
    sql = str(due.compile(dialect=sqlite.dialect(paramstyle="named")))
    if sql.count(_SQLITE_FROM) != 1:
        raise RuntimeError(f"the claim query changed shape; cannot pin its index: {sql}")
    sql = sql.replace(_SQLITE_FROM, _SQLITE_INDEXED_FROM)
    pinned = text(sql).bindparams(bindparam(NOW, type_=Float), bindparam(LIMIT, type_=Integer))
    return pinned.columns(deliveries.c.seq).cte("due")


@functools.cache
def claim_statement(dialect_name: str) -> Update:
    """The claiming ``UPDATE ... RETURNING`` for a backend, built once.

    Its parameters are :data:`NOW`, :data:`LIMIT`, :data:`OWNER` and
    :data:`LEASE_UNTIL`. Building and compiling this statement cost more than
    running it on a small queue, so it is made once per backend and reused.
    """
    due = due_cte(dialect_name)
    lease_until = bindparam(LEASE_UNTIL, type_=Float)
    return (
        update(deliveries)
        # No need to repeat the conditions: PostgreSQL re-checks them on the rows
        # it locks, and SQLite runs one writer at a time.
        .where(deliveries.c.seq.in_(select(due.c.seq)))
        .values(
            status=DELIVERING,
            lease_owner=bindparam(OWNER, type_=String),
            lease_expires_at=lease_until,
            next_attempt_at=lease_until,
            updated_at=bindparam(NOW, type_=Float),
        )
        .returning(
            deliveries.c.seq,
            deliveries.c.id,
            deliveries.c.site_id,
            deliveries.c.endpoint_id,
            deliveries.c.conversation_id,
            deliveries.c.attempt_count,
            deliveries.c.round_attempts,
        )
    )


async def claim(
    connection: AsyncConnection,
    *,
    owner: str,
    limit: int,
    lease_seconds: float,
    now: float | None = None,
) -> list[ClaimedDelivery]:
    """Claim up to ``limit`` due deliveries for ``owner`` until ``now + lease_seconds``.

    Three statements, whatever the batch size: the claiming ``UPDATE ...
    RETURNING``, then the settings of the endpoints involved, then the
    payloads. SQLite's RETURNING cannot join, so those come in queries of
    their own. Deliveries of a disabled endpoint are claimed too, so the
    worker can fail them instead of leaving them to clog the queue.
    """
    at = time.time() if now is None else now
    lease_until = at + lease_seconds
    parameters = {NOW: at, LIMIT: limit, OWNER: owner, LEASE_UNTIL: lease_until}
    statement = claim_statement(connection.dialect.name)
    claimed = (await connection.execute(statement, parameters)).all()
    if not claimed:
        return []
    destinations = await _destinations(connection, {row.endpoint_id for row in claimed})
    payloads = await _payloads(connection, [row.id for row in claimed])
    # RETURNING order is unspecified; hand them out in queue order.
    return [
        ClaimedDelivery(
            seq=row.seq,
            id=row.id,
            site_id=row.site_id,
            endpoint_id=row.endpoint_id,
            conversation_id=row.conversation_id,
            payload=payloads[row.id],
            attempt_count=row.attempt_count,
            round_attempts=row.round_attempts,
            destination=destinations[row.endpoint_id],
            lease_expires_at=lease_until,
        )
        for row in sorted(claimed, key=lambda row: row.seq)
        # An endpoint deleted meanwhile takes its deliveries with it (ON DELETE CASCADE).
        if row.endpoint_id in destinations
    ]


async def _payloads(connection: AsyncConnection, ids: list[str]) -> dict[str, str]:
    rows = await connection.execute(
        select(delivery_payloads.c.delivery_id, delivery_payloads.c.payload).where(
            delivery_payloads.c.delivery_id.in_(ids)
        )
    )
    return {row.delivery_id: row.payload for row in rows}


async def _destinations(connection: AsyncConnection, ids: set[str]) -> dict[str, Destination]:
    rows = await connection.execute(
        select(
            endpoints.c.id,
            endpoints.c.url,
            endpoints.c.secret,
            endpoints.c.format,
            endpoints.c.headers,
            endpoints.c.enabled,
        ).where(endpoints.c.id.in_(sorted(ids)))
    )
    return {
        row.id: Destination(
            endpoint_id=row.id,
            url=row.url,
            secret=row.secret,
            format=row.format,
            headers=_string_headers(row.headers),
            enabled=bool(row.enabled),
        )
        for row in rows
    }


def _string_headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(name): str(text) for name, text in value.items()}


async def release(
    connection: AsyncConnection,
    seqs: Sequence[int],
    *,
    owner: str,
    now: float | None = None,
) -> int:
    """Give claimed deliveries back unsent (a worker stopping), due at once; returns how many.

    Only ``owner``'s own claims are touched: one that already expired and
    went to another worker stays with that worker.
    """
    if not seqs:
        return 0
    at = time.time() if now is None else now
    result = await connection.execute(
        update(deliveries)
        .where(
            deliveries.c.seq.in_(list(seqs)),
            deliveries.c.lease_owner == owner,
            deliveries.c.status == DELIVERING,
        )
        .values(
            status=case((deliveries.c.attempt_count == 0, PENDING), else_=RETRYING),
            next_attempt_at=at,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=at,
        )
    )
    if result.rowcount:
        await announce_due(connection)  # another worker may take them at once
    return int(result.rowcount)
