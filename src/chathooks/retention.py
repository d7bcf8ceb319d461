"""Retention: finished deliveries and closed conversations do not stay forever.

Every worker runs :func:`retention_job` every ``retention_interval``
seconds: whatever finished (or closed) more than ``retention_days`` ago is
deleted, with its payloads, attempts and posts, a bounded batch per
transaction so that no write lock is held for long, and at most
``MAX_BATCHES_PER_RUN`` batches per run so a backlog is worked off over a few
runs rather than in one stall. Several workers may run it at once (see
:mod:`chathooks.queue.retention`). ``Idempotency-Key`` records go after 24
hours on the same job, and so do signing secrets a rotation replaced once
their grace is over. ``chathooks purge`` runs it now, to the end.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.conversations.retention import purge_closed_conversations
from chathooks.db.forget import in_batches
from chathooks.idempotency.store import KEEP_SECONDS, purge_idempotency_keys
from chathooks.queue import write_transaction
from chathooks.queue.retention import purge_finished_deliveries
from chathooks.repository.endpoints import forget_replaced_secrets
from chathooks.settings import Settings

__all__ = ["MAX_BATCHES_PER_RUN", "Purged", "purge", "retention_job"]

log = logging.getLogger("chathooks.retention")

DAY = 86400.0
MAX_BATCHES_PER_RUN = 20


@dataclass(frozen=True)
class Purged:
    """What one purge removed, by kind."""

    deliveries: int = 0
    payloads: int = 0
    attempts: int = 0
    conversations: int = 0
    conversation_posts: int = 0
    idempotency_keys: int = 0
    #: Endpoints whose previous signing secret was removed: its rotation's grace was over.
    replaced_secrets: int = 0

    @property
    def total(self) -> int:
        return sum(dataclasses.astuple(self))


async def purge(
    engine: AsyncEngine,
    *,
    older_than_days: float,
    batch_size: int = 500,
    max_batches: int | None = None,
    now: float | None = None,
) -> Purged:
    """Delete what finished more than ``older_than_days`` ago; ``max_batches`` per kind."""
    at = time.time() if now is None else now
    cutoff = at - older_than_days * DAY
    counts = {field.name: 0 for field in dataclasses.fields(Purged)}

    async def deliveries_step() -> int:
        async with write_transaction(engine) as connection:
            removed = await purge_finished_deliveries(
                connection, finished_before=cutoff, limit=batch_size
            )
        counts["deliveries"] += removed.deliveries
        counts["payloads"] += removed.payloads
        counts["attempts"] += removed.attempts
        return removed.deliveries

    async def conversations_step() -> int:
        async with write_transaction(engine) as connection:
            removed, posts = await purge_closed_conversations(
                connection, closed_before=cutoff, limit=batch_size
            )
        counts["conversations"] += removed
        counts["conversation_posts"] += posts
        return removed

    async def keys_step() -> int:
        async with write_transaction(engine) as connection:
            removed = await purge_idempotency_keys(
                connection, created_before=at - KEEP_SECONDS, limit=batch_size
            )
        counts["idempotency_keys"] += removed
        return removed

    for step in (deliveries_step, conversations_step, keys_step):
        await in_batches(step, batch_size=batch_size, max_batches=max_batches)
    async with write_transaction(engine) as connection:  # endpoints are few: one statement
        counts["replaced_secrets"] = await forget_replaced_secrets(connection, now=at)
    return Purged(**counts)


def retention_job(
    engine: AsyncEngine, settings: Settings
) -> tuple[float, Callable[[], Awaitable[None]]]:
    """The worker's periodic job: ``(interval, job)``."""

    async def job() -> None:
        purged = await purge(
            engine,
            older_than_days=settings.retention_days,
            batch_size=settings.retention_batch_size,
            max_batches=MAX_BATCHES_PER_RUN,
        )
        if purged.total:
            log.info(
                "retention: removed %d deliveries, %d conversations, %d idempotency keys",
                purged.deliveries,
                purged.conversations,
                purged.idempotency_keys,
                extra=dataclasses.asdict(purged),
            )

    return settings.retention_interval, job
