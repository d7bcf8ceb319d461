"""``GET /api/v1/sites/{site}/alerts``: the operational alerts sent to the site's alert URL.

Each alert is a delivery to the site's alert endpoint (see
:mod:`chathooks.queue.alerts`); this reads them back as what they said (the
type, the endpoint it is about, the reason), where they went and how that
went. Setting a new ``alert_url`` starts a new list: the alerts sent to the
old address go with it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from chathooks.api.auth import SiteId
from chathooks.api.schemas import DeliveryStatus, Page, utc
from chathooks.api.state import Cursor, Limit, ServicesDep
from chathooks.queue import list_alert_deliveries
from chathooks.repository.endpoints import alert_endpoint

router = APIRouter(prefix="/api/v1/sites/{site}", tags=["sites"])


class AlertOut(BaseModel):
    id: str = Field(description="The delivery that carries the alert (its webhook-id).")
    type: str = Field(
        description="endpoint.failing, endpoint.disabled, endpoint.recovered or delivery.exhausted."
    )
    endpoint_id: str | None = Field(description="The endpoint the alert is about.")
    endpoint_url: str | None = Field(description="That endpoint's URL when the alert was made.")
    reason: str | None = Field(description="Why: the last error, or why it was disabled.")
    delivery_id: str | None = Field(None, description="For delivery.exhausted: which delivery.")
    url: str = Field(description="Where the alert was posted: the site's alert_url.")
    status: DeliveryStatus
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When it is tried next; null if not.")
    finished_at: datetime | None

    @classmethod
    def of(cls, delivery: dict[str, Any], url: str) -> AlertOut:
        try:
            document = json.loads(delivery["payload"])
        except ValueError:
            document = {}
        data = document.get("data") if isinstance(document, dict) else None
        data = data if isinstance(data, dict) else {}
        return cls(
            id=delivery["id"],
            type=str(document.get("type", "")) if isinstance(document, dict) else "",
            endpoint_id=data.get("endpoint_id"),
            endpoint_url=data.get("url"),
            reason=data.get("reason"),
            delivery_id=data.get("delivery_id"),
            url=url,
            status=delivery["status"],
            attempt_count=delivery["attempt_count"],
            last_status_code=delivery["last_status_code"],
            last_error=delivery["last_error"],
            created_at=utc(delivery["created_at"]),
            next_attempt_at=utc(delivery["next_attempt_at"]),
            finished_at=utc(delivery["finished_at"]),
        )


@router.get("/alerts", response_model=Page[AlertOut])
async def list_alerts(
    site: SiteId, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[AlertOut]:
    """The alerts sent to the site's alert URL, newest first (none when it has no alert URL)."""
    async with services.engine.connect() as connection:
        endpoint = await alert_endpoint(connection, site)
        if endpoint is None:
            return Page(items=[])
        items, next_cursor = await list_alert_deliveries(
            connection, site, endpoint.id, limit=limit, cursor=cursor or None
        )
    return Page(items=[AlertOut.of(item, endpoint.url) for item in items], next_cursor=next_cursor)
