"""The SQL of ``Idempotency-Key`` records: claim a key, store its answer, forget it after 24 h.

A key is taken with one ``INSERT`` (the primary key is ``(site_id, key)``),
so of two requests racing with the same key exactly one runs; the other
finds the row, and whether its answer is there yet.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.tables import idempotency_keys
from chathooks.sealing import keyring_of

__all__ = [
    "KEEP_SECONDS",
    "StoredKey",
    "find_key",
    "forget_key",
    "purge_idempotency_keys",
    "store_answer",
    "take_key",
]

#: How long a key and its answer are kept (the draft's suggestion, and Stripe's).
KEEP_SECONDS = 86400.0


@dataclass(frozen=True)
class StoredKey:
    request_hash: str
    #: None while the first request is still running.
    status_code: int | None
    response_body: str | None
    response_type: str | None
    created_at: float


async def take_key(
    connection: AsyncConnection, site_id: str, key: str, *, request_hash: str, now: float
) -> None:
    """Record ``key`` as running; raises ``IntegrityError`` when it exists (a repeat)."""
    await connection.execute(
        insert(idempotency_keys).values(
            site_id=site_id, key=key, request_hash=request_hash, created_at=now
        )
    )


async def find_key(connection: AsyncConnection, site_id: str, key: str) -> StoredKey | None:
    row = (
        await connection.execute(
            select(
                idempotency_keys.c.request_hash,
                idempotency_keys.c.status_code,
                idempotency_keys.c.response_body,
                idempotency_keys.c.response_type,
                idempotency_keys.c.created_at,
            ).where(idempotency_keys.c.site_id == site_id, idempotency_keys.c.key == key)
        )
    ).first()
    if row is None:
        return None
    stored = StoredKey(**row._mapping)
    if stored.response_body is None:
        return stored
    # Answers are kept sealed: one may hold a new endpoint's secret.
    body = keyring_of(connection).open(stored.response_body, cached=False)
    return replace(stored, response_body=body)


async def store_answer(
    connection: AsyncConnection,
    site_id: str,
    key: str,
    *,
    status_code: int,
    body: str,
    content_type: str | None,
) -> None:
    await connection.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.site_id == site_id, idempotency_keys.c.key == key)
        .values(
            status_code=status_code,
            response_body=keyring_of(connection).seal(body),
            response_type=content_type,
        )
    )


async def forget_key(connection: AsyncConnection, site_id: str, key: str) -> None:
    """Drop a key whose request did not complete, so that a retry runs it afresh."""
    await connection.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.site_id == site_id, idempotency_keys.c.key == key
        )
    )


async def purge_idempotency_keys(
    connection: AsyncConnection, *, created_before: float, limit: int
) -> int:
    """Delete up to ``limit`` keys taken before ``created_before``."""
    oldest = (
        select(idempotency_keys.c.site_id, idempotency_keys.c.key)
        .where(idempotency_keys.c.created_at < created_before)
        .order_by(idempotency_keys.c.created_at)
        .limit(limit)
    )
    rows = [(row.site_id, row.key) for row in await connection.execute(oldest)]
    if not rows:
        return 0
    result = await connection.execute(
        delete(idempotency_keys).where(
            tuple_(idempotency_keys.c.site_id, idempotency_keys.c.key).in_(rows)
        )
    )
    return int(result.rowcount)
