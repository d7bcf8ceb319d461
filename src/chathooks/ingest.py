"""Taking in whole Olark payloads: route each to its endpoints and queue it, in batches.

Every accepted payload must be committed before its caller gets a 2xx. Done
one request at a time, that is a transaction (and on SQLite a disk flush)
per request, and the database round trips dominate the cost of the ingest
path. So concurrent requests share a transaction (:mod:`chathooks.group_commit`):
each caller is answered when the batch holding its payload has committed, and
a lone request is committed once the event loop has had :data:`GATHER_TURNS`
turns. The endpoint read is inside the same transaction, so
routing always sees the endpoints as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.group_commit import GroupCommit
from chathooks.queue import DeliveryRef, NewDelivery, deliveries_to, enqueue, write_transaction
from chathooks.repository.endpoints import enabled_endpoints_of_sites
from chathooks.routing import payload_kind, select_endpoints
from chathooks.wire import Payload

#: Most payloads committed in one transaction.
MAX_BATCH = 256
#: Turns of the event loop a new batch lets pass before it is taken. On SQLite a
#: batch commits without yielding, so nothing gathers while it runs: without
#: these, a batch was the requests whose bytes came in the same read of the
#: sockets (4 on average with 32 in flight); with them, about twice as many,
#: and the transaction's cost is shared by as many more.
GATHER_TURNS = 3


@dataclass(frozen=True, slots=True)
class _Request:
    site_id: str
    payload: Payload
    #: The JSON text that goes on the wire.
    text: str
    trigger: str


class Ingestor:
    """Queues payloads for a site's endpoints, committing concurrent callers together."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self._batches: GroupCommit[_Request, list[DeliveryRef]] = GroupCommit(
            self._commit, max_batch=max_batch, gather_turns=GATHER_TURNS
        )

    async def ingest(
        self, site_id: str, payload: Payload, text: str, *, trigger: str = "api"
    ) -> list[DeliveryRef]:
        """Queue ``payload`` (wire text ``text``) for the endpoints its kind and switches pick.

        Returns once the deliveries are committed; raises what the commit raised.
        """
        return await self._batches.submit(_Request(site_id, payload, text, trigger))

    async def _commit(self, batch: list[_Request]) -> list[list[DeliveryRef]]:
        async with write_transaction(self.engine) as connection:
            endpoints = await enabled_endpoints_of_sites(connection, (r.site_id for r in batch))
            new: list[NewDelivery] = []
            counts: list[int] = []
            for request in batch:
                targets = select_endpoints(request.payload, endpoints[request.site_id])
                new += deliveries_to(
                    (e.id for e in targets),
                    site_id=request.site_id,
                    conversation_id=request.payload.id,
                    payload_kind=payload_kind(request.payload),
                    trigger=request.trigger,
                    payload=request.text,
                )
                counts.append(len(targets))
            refs = await enqueue(connection, new)
        results: list[list[DeliveryRef]] = []
        start = 0
        for count in counts:
            results.append(refs[start : start + count])
            start += count
        return results


__all__ = ["GATHER_TURNS", "MAX_BATCH", "Ingestor"]
