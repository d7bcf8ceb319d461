"""``/api/v1/sites/{site}/deliveries``: what was sent where, and sending it again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from chathooks import manage
from chathooks.api.auth import SiteId
from chathooks.api.schemas import (
    DeliveryCounts,
    DeliveryDetail,
    DeliveryOut,
    DeliveryStatus,
    IngestAccepted,
    Page,
    RecoverRequest,
    bound,
)
from chathooks.api.state import Cursor, Limit, ServicesDep

router = APIRouter(prefix="/api/v1/sites/{site}", tags=["deliveries"])

CreatedFrom = Annotated[
    datetime | None,
    Query(description="ISO-8601; only deliveries made at or after it (UTC without an offset)."),
]
CreatedTo = Annotated[
    datetime | None,
    Query(description="ISO-8601; only deliveries made before it (UTC without an offset)."),
]


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else bound(moment)


@router.get("/deliveries", response_model=Page[DeliveryOut])
async def list_all(
    site: SiteId,
    services: ServicesDep,
    status: DeliveryStatus | None = None,
    endpoint_id: str | None = None,
    conversation_id: str | None = None,
    conversation_prefix: Annotated[
        str | None, Query(description="Only conversations whose id starts with this.")
    ] = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """The site's deliveries, newest first, optionally filtered."""
    # An empty parameter (``?endpoint_id=``) means no filter, as in a blank form field.
    return await manage.delivery_page(
        services.engine,
        site,
        status=status,
        endpoint_id=endpoint_id,
        conversation_id=conversation_id,
        conversation_prefix=conversation_prefix,
        created_from=_epoch(created_from),
        created_to=_epoch(created_to),
        limit=limit,
        cursor=cursor,
    )


@router.get("/delivery-counts", response_model=DeliveryCounts)
async def counts(
    site: SiteId,
    services: ServicesDep,
    endpoint_id: str | None = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
) -> DeliveryCounts:
    """How many deliveries wait, retry or failed: the delivery log's counters, and the
    preview of a ``recover`` (``failed`` of one endpoint since a time)."""
    return await manage.delivery_counts(
        services.engine,
        site,
        endpoint_id=endpoint_id,
        created_from=_epoch(created_from),
        created_to=_epoch(created_to),
    )


@router.get("/deliveries/{delivery}", response_model=DeliveryDetail)
async def read(delivery: str, site: SiteId, services: ServicesDep) -> DeliveryDetail:
    """One delivery with its payload and every attempt (status, timing, reply, error)."""
    return await manage.delivery(services.engine, site, delivery)


@router.post(
    "/deliveries/{delivery}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryDetail,
)
async def send_again(delivery: str, site: SiteId, services: ServicesDep) -> DeliveryDetail:
    """Send a delivery again now, with the same ``webhook-id``, whatever its status."""
    return await manage.redeliver_delivery(services.engine, site, delivery)


@router.post(
    "/endpoints/{endpoint}/recover",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestAccepted,
)
async def recover_failed(
    endpoint: str, body: RecoverRequest, site: SiteId, services: ServicesDep
) -> IngestAccepted:
    """After an outage: send again every failed delivery to the endpoint made since ``since``."""
    return await manage.recover_failed(services.engine, site, endpoint, body)
