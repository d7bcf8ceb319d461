"""Operational alerts to a site's owner, queued like any delivery.

When an endpoint's breaker opens (``endpoint.failing``), it is disabled
(``endpoint.disabled``), its breaker closes again (``endpoint.recovered``)
or a delivery fails for good (``delivery.exhausted``), the site's alert
endpoint (its ``alert_url``) is sent::

    {"type": "endpoint.failing", "timestamp": "2026-12-01T11:50:00Z",
     "data": {"site_id": ..., "endpoint_id": ..., "url": ..., "reason": ...}}

as JSON with Standard Webhooks headers, signed with the site's alert secret.
Alerts are deliveries to that endpoint, so they are retried and logged; one
about the alert endpoint itself is never sent (it could only fail the same
way). Each type of alert about one endpoint goes out at most once per
``CHATHOOKS_ALERT_INTERVAL`` seconds, so a flapping endpoint does not flood
its owner.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.tables import endpoint_health, endpoints
from chathooks.queue.enqueue import DeliveryRef, NewDelivery, enqueue
from chathooks.queue.health import Transition
from chathooks.repository.endpoints import ALERTS

__all__ = ["ALERT_KIND", "queue_alerts"]

#: ``payload_kind`` and ``trigger`` of an alert delivery.
ALERT_KIND = "alert"


_MARK_ALERTED = (
    update(endpoint_health)
    .where(endpoint_health.c.endpoint_id == bindparam("b_endpoint_id"))
    .values(alerted=bindparam("b_alerted"))
)


async def queue_alerts(
    connection: AsyncConnection,
    transitions: Sequence[Transition],
    *,
    min_interval: float,
    now: float | None = None,
) -> list[DeliveryRef]:
    """Queue the alerts ``transitions`` call for, in the caller's transaction.

    Reads nothing when there are no transitions (the usual case).
    """
    if not transitions:
        return []
    at = time.time() if now is None else now
    about = {t.endpoint_id for t in transitions}
    rows = await connection.execute(
        select(endpoints.c.id, endpoints.c.url, endpoints.c.role).where(
            endpoints.c.id.in_(sorted(about))
        )
    )
    webhooks = {row.id: row.url for row in rows if row.role != ALERTS}
    sites = sorted({t.site_id for t in transitions if t.endpoint_id in webhooks})
    if not sites:
        return []
    alert_to = {
        row.site_id: row.id
        for row in await connection.execute(
            select(endpoints.c.site_id, endpoints.c.id).where(
                endpoints.c.site_id.in_(sites),
                endpoints.c.role == ALERTS,
                endpoints.c.enabled.is_(True),
            )
        )
    }
    wanted = [t for t in transitions if t.endpoint_id in webhooks and t.site_id in alert_to]
    if not wanted:
        return []
    query = select(endpoint_health.c.endpoint_id, endpoint_health.c.alerted).where(
        endpoint_health.c.endpoint_id.in_(sorted({t.endpoint_id for t in wanted}))
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    alerted = {row.endpoint_id: dict(row.alerted or {}) for row in await connection.execute(query)}
    due: list[NewDelivery] = []
    for transition in wanted:
        sent = alerted.setdefault(transition.endpoint_id, {})
        last = sent.get(transition.type)
        if last is not None and at - float(last) < min_interval:
            continue
        sent[transition.type] = at
        document = _document(transition, webhooks[transition.endpoint_id])
        due.append(
            NewDelivery(
                site_id=transition.site_id,
                endpoint_id=alert_to[transition.site_id],
                conversation_id=None,
                payload_kind=ALERT_KIND,
                trigger=ALERT_KIND,
                payload=json.dumps(document, separators=(",", ":")),
            )
        )
    if not due:
        return []
    await connection.execute(
        _MARK_ALERTED,
        [{"b_endpoint_id": ep, "b_alerted": marks} for ep, marks in sorted(alerted.items())],
    )
    return await enqueue(connection, due, now=at)


def _document(transition: Transition, url: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "site_id": transition.site_id,
        "endpoint_id": transition.endpoint_id,
        "url": url,
        "reason": transition.reason,
    }
    if transition.delivery_id is not None:
        data["delivery_id"] = transition.delivery_id
    return {
        "type": transition.type,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(transition.at)),
        "data": data,
    }
