"""Putting deliveries on the queue, inside the caller's transaction.

The API stores a conversation and its deliveries in one transaction and
commits before it answers 2xx ("persist first, then answer"), so this module
never begins or commits anything itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db import tables
from chathooks.db.driver import DriverStatement
from chathooks.queue.ids import new_delivery_id
from chathooks.queue.notify import announce_due
from chathooks.queue.statuses import PENDING


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One payload for one endpoint, as the API or the conversation rules decided it."""

    site_id: str
    endpoint_id: str
    #: Deliveries sharing (endpoint, conversation) go out one at a time, in order; None: no order.
    conversation_id: str | None
    #: ``transcript``, ``offline_message``, ``event`` or ``test``.
    payload_kind: str
    #: ``api``, ``command``, ``completion``, ``start``, ``offline``...
    trigger: str
    #: The JSON document text exactly as it goes on the wire.
    payload: str


def deliveries_to(
    endpoint_ids: Iterable[str],
    *,
    site_id: str,
    conversation_id: str | None,
    payload_kind: str,
    trigger: str,
    payload: str,
) -> list[NewDelivery]:
    """One :class:`NewDelivery` of the same payload for each endpoint, in the order given."""
    return [
        NewDelivery(site_id, endpoint_id, conversation_id, payload_kind, trigger, payload)
        for endpoint_id in endpoint_ids
    ]


@dataclass(frozen=True, slots=True)
class DeliveryRef:
    """The id a new delivery got (its ``webhook-id``), and where it goes."""

    id: str
    endpoint_id: str


async def enqueue(
    connection: AsyncConnection,
    deliveries: Sequence[NewDelivery],
    *,
    now: float | None = None,
) -> list[DeliveryRef]:
    """Insert ``deliveries`` as due now, in the order given; returns their refs in that order.

    One executemany; the order of the sequence is the order of delivery for
    deliveries of the same conversation and endpoint.
    """
    if not deliveries:
        return []
    at = time.time() if now is None else now
    refs = [DeliveryRef(id=new_delivery_id(), endpoint_id=new.endpoint_id) for new in deliveries]
    rows = [
        {
            "id": ref.id,
            "site_id": new.site_id,
            "endpoint_id": new.endpoint_id,
            "conversation_id": new.conversation_id,
            "payload_kind": new.payload_kind,
            "trigger": new.trigger,
            "status": PENDING,
            "attempt_count": 0,
            "round_attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "updated_at": at,
        }
        for ref, new in zip(refs, deliveries, strict=True)
    ]
    await _INSERT_DELIVERIES.executemany(connection, rows)
    await _INSERT_PAYLOADS.executemany(
        connection,
        [
            {"delivery_id": ref.id, "payload": new.payload}
            for ref, new in zip(refs, deliveries, strict=True)
        ],
    )
    await announce_due(connection)
    return refs


_INSERT_DELIVERIES = DriverStatement(
    insert(tables.deliveries),
    columns=(
        "id",
        "site_id",
        "endpoint_id",
        "conversation_id",
        "payload_kind",
        "trigger",
        "status",
        "attempt_count",
        "round_attempts",
        "next_attempt_at",
        "created_at",
        "updated_at",
    ),
)
_INSERT_PAYLOADS = DriverStatement(
    insert(tables.delivery_payloads), columns=("delivery_id", "payload")
)
