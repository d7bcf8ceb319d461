"""``/api/v1/sites/{site}/deliveries``: what was sent where, and sending it again."""

from __future__ import annotations

from fastapi import APIRouter, status

from chathooks.api.auth import SiteId
from chathooks.api.errors import not_found
from chathooks.api.schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryRef,
    DeliveryStatus,
    IngestAccepted,
    Page,
    RecoverRequest,
)
from chathooks.api.state import Cursor, Limit, ServicesDep
from chathooks.queue import get_delivery, list_deliveries, recover, redeliver, write_transaction
from chathooks.repository.endpoints import get_endpoint

router = APIRouter(prefix="/api/v1/sites/{site}", tags=["deliveries"])


@router.get("/deliveries", response_model=Page[DeliveryOut])
async def list_all(
    site: SiteId,
    services: ServicesDep,
    status: DeliveryStatus | None = None,
    endpoint_id: str | None = None,
    conversation_id: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """The site's deliveries, newest first, optionally filtered."""
    async with services.engine.connect() as connection:
        items, next_cursor = await list_deliveries(
            connection,
            site,
            status=status,
            # An empty parameter (``?endpoint_id=``) means no filter, as in a blank form field.
            endpoint_id=endpoint_id or None,
            conversation_id=conversation_id or None,
            limit=limit,
            cursor=cursor or None,
        )
    return Page(items=[DeliveryOut.of(item) for item in items], next_cursor=next_cursor)


@router.get("/deliveries/{delivery}", response_model=DeliveryDetail)
async def read(delivery: str, site: SiteId, services: ServicesDep) -> DeliveryDetail:
    """One delivery with its payload and every attempt (status, timing, reply, error)."""
    async with services.engine.connect() as connection:
        found = await get_delivery(connection, site, delivery)
    if found is None:
        raise not_found(f"delivery {delivery!r}", field="delivery")
    return DeliveryDetail.of(found)


@router.post(
    "/deliveries/{delivery}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryDetail,
)
async def send_again(delivery: str, site: SiteId, services: ServicesDep) -> DeliveryDetail:
    """Send a delivery again now, with the same ``webhook-id``, whatever its status."""
    async with write_transaction(services.engine) as connection:
        found = await redeliver(connection, site, delivery)
    if found is None:
        raise not_found(f"delivery {delivery!r}", field="delivery")
    return DeliveryDetail.of(found)


@router.post(
    "/endpoints/{endpoint}/recover",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestAccepted,
)
async def recover_failed(
    endpoint: str, body: RecoverRequest, site: SiteId, services: ServicesDep
) -> IngestAccepted:
    """After an outage: send again every failed delivery to the endpoint made since ``since``."""
    async with write_transaction(services.engine) as connection:
        if await get_endpoint(connection, site, endpoint) is None:
            raise not_found(f"endpoint {endpoint!r}", field="endpoint")
        ids = await recover(connection, site, endpoint, since=body.since_epoch())
    return IngestAccepted(deliveries=[DeliveryRef(id=i, endpoint_id=endpoint) for i in ids])
