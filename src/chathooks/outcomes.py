"""Writing a worker's outcomes down so that none loops and none is lost to an outage.

Two things used to go wrong when a batch of outcomes did not write:

* the database refused one row (PostgreSQL and a NUL byte, say): the whole
  batch rolled back, every delivery in it, other sites' too, came back when
  its lease ran out, was posted again, and failed to record again, forever;
* the database was away for a while: everything posted meanwhile was
  forgotten and posted again after the lease.

:class:`OutcomeWriter` writes a batch in one transaction as before. When the
database is unavailable (:func:`chathooks.db.outage.database_unavailable`)
it holds the outcomes in memory, up to a bound, and the worker hands them in
again with its next write; since a claim is only settled while this worker
still holds it, an outcome written late is exactly as good as one written at
once. When the database refuses the batch for any other reason, each outcome
is written alone, so the rest record, and one that is refused even alone is
recorded as failed with the reason (:func:`chathooks.queue.unstorable`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.db.outage import database_unavailable
from chathooks.queue import Outcome, record_outcomes, unstorable, write_transaction

__all__ = ["MAX_HELD_OUTCOMES", "Committed", "FollowUp", "OutcomeWriter"]

log = logging.getLogger("chathooks.worker")

#: Outcomes kept in memory while the database is away; beyond this the oldest
#: are let go, and their deliveries come back when their leases run out.
MAX_HELD_OUTCOMES = 20_000

#: Runs in the transaction that recorded outcomes, with those recorded (e.g. endpoint
#: health); what it returns goes to the ``committed`` callback once that transaction
#: committed, and is dropped if it rolled back.
FollowUp = Callable[[AsyncConnection, list[Outcome]], Awaitable[Any]]
Committed = Callable[[Any], None]


class OutcomeWriter:
    """Records the outcomes of claims held by ``owner``; never raises."""

    def __init__(
        self,
        engine: AsyncEngine,
        owner: str,
        *,
        follow_up: FollowUp | None = None,
        committed: Committed | None = None,
        limit: int = MAX_HELD_OUTCOMES,
    ) -> None:
        self.engine = engine
        self.owner = owner
        self.follow_up = follow_up
        self.committed = committed
        self.limit = limit
        self._held: list[Outcome] = []

    @property
    def held(self) -> int:
        """How many outcomes wait for the database to come back."""
        return len(self._held)

    async def write(self, outcomes: Sequence[Outcome] = ()) -> list[Outcome]:
        """Record ``outcomes`` and any held earlier; what was recorded, as stored."""
        batch, self._held = [*self._held, *outcomes], []
        if not batch:
            return []
        try:
            return await self._write(batch)
        except Exception as exc:
            if database_unavailable(exc):
                self._hold(batch, exc)
                return []
            log.warning(
                "recording %d outcomes failed (%s); recording them one by one", len(batch), exc
            )
        return await self._write_each(batch)

    async def _write(self, batch: Sequence[Outcome]) -> list[Outcome]:
        followed: Any = None
        async with write_transaction(self.engine) as connection:
            recorded = await record_outcomes(connection, batch, owner=self.owner)
            if self.follow_up is not None and recorded:
                followed = await self.follow_up(connection, recorded)
        # At once, before a next transaction (of a row-by-row write, say) follows up again.
        if self.committed is not None and followed is not None:
            self.committed(followed)
        return recorded

    async def _write_each(self, batch: list[Outcome]) -> list[Outcome]:
        recorded: list[Outcome] = []
        for index, outcome in enumerate(batch):
            try:
                recorded.extend(await self._write([outcome]))
                continue
            except Exception as exc:
                if database_unavailable(exc):
                    self._hold(batch[index:], exc)
                    return recorded
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error(
                "the database refused the outcome of delivery %s: %s", outcome.delivery_id, reason
            )
            try:
                recorded.extend(await self._write([unstorable(outcome, reason)]))
            except Exception:
                # Nothing of the receiver's is left in it; the lease brings it back.
                log.exception("recording delivery %s as failed failed too", outcome.delivery_id)
        return recorded

    def _hold(self, batch: list[Outcome], exc: BaseException) -> None:
        if len(batch) > self.limit:
            log.error(
                "%d outcomes not recorded while the database is away; their deliveries "
                "are sent again when their leases run out",
                len(batch) - self.limit,
            )
            batch = batch[-self.limit :]
        self._held = batch
        log.warning(
            "the database is unavailable (%s); holding %d outcomes to record when it is back",
            exc,
            len(batch),
        )
