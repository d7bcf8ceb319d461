"""Taking in whole Olark payloads: route each to its endpoints and queue it, in batches.

Every accepted payload must be committed before its caller gets a 2xx. Done
one request at a time, that is a transaction (and on SQLite a disk flush)
per request, and the database round trips dominate the cost of the ingest
path. So concurrent requests share a transaction: while one batch commits,
the next gathers; each caller is answered when the batch holding its payload
has committed (group commit). An idle service adds no delay: a lone request
is committed as soon as the event loop has had :data:`GATHER_TURNS` turns, and
no timer is waited on. The endpoint read is inside the same transaction, so
routing always sees the endpoints as they are.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

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


@dataclass(slots=True)
class _Request:
    site_id: str
    payload: Payload
    #: The JSON text that goes on the wire.
    text: str
    trigger: str
    done: asyncio.Future[list[DeliveryRef]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Ingestor:
    """Queues payloads for a site's endpoints, committing concurrent callers together."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._waiting: list[_Request] = []
        self._committer: asyncio.Task[None] | None = None

    async def ingest(
        self, site_id: str, payload: Payload, text: str, *, trigger: str = "api"
    ) -> list[DeliveryRef]:
        """Queue ``payload`` (wire text ``text``) for the endpoints its kind and switches pick.

        Returns once the deliveries are committed; raises what the commit raised.
        """
        request = _Request(site_id, payload, text, trigger)
        self._waiting.append(request)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        return await asyncio.shield(request.done)

    async def _commit_waiting(self) -> None:
        for _ in range(GATHER_TURNS):
            await asyncio.sleep(0)
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            try:
                results = await self._commit(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0], exc)
                    continue
                # One payload the database refuses must not fail its neighbours:
                # commit each of the batch on its own.
                for request in batch:
                    try:
                        [refs] = await self._commit([request])
                    except Exception as alone:
                        _settle(request, alone)
                    else:
                        _settle(request, refs)
                continue
            for request, refs in zip(batch, results, strict=True):
                _settle(request, refs)

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


def _settle(request: _Request, result: list[DeliveryRef] | BaseException) -> None:
    if request.done.done():
        return
    if isinstance(result, BaseException):
        request.done.set_exception(result)
    else:
        request.done.set_result(result)


__all__ = ["GATHER_TURNS", "MAX_BATCH", "Ingestor"]
