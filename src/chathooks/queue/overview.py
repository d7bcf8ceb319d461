"""What ``chathooks status`` shows of the endpoints: failing ones, and switched-off ones.

Failing is read from each endpoint's circuit breaker (``endpoint_health``)
and from the deliveries waiting to retry (on the partial index of unfinished
work), so the answer costs the same however much history the tables keep.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.tables import deliveries, endpoint_health, endpoints, unfinished
from chathooks.queue.statuses import FAILING, HELD, RETRYING, UNFINISHED

__all__ = ["endpoint_problems"]


async def _counts(connection: AsyncConnection, status: str) -> dict[str, int]:
    """Deliveries in ``status`` per endpoint, on that status's partial index."""
    conditions = [deliveries.c.status == literal_column(f"'{status}'")]
    if status in UNFINISHED:
        conditions.append(unfinished(deliveries))
    rows = await connection.execute(
        select(deliveries.c.endpoint_id, func.count())
        .where(*conditions)
        .group_by(deliveries.c.endpoint_id)
    )
    return {endpoint_id: int(count) for endpoint_id, count in rows}


async def endpoint_problems(connection: AsyncConnection) -> dict[str, list[dict[str, Any]]]:
    """``{"failing": [...], "disabled": [...]}``.

    Failing: the breaker is open, or deliveries wait to retry; with how many,
    since when and the last reason. Disabled: switched off, with why and how
    many deliveries are held for it.
    """
    retrying = await _counts(connection, RETRYING)
    held = await _counts(connection, HELD)
    health = {
        row.endpoint_id: row
        for row in await connection.execute(
            select(
                endpoint_health.c.endpoint_id,
                endpoint_health.c.state,
                endpoint_health.c.consecutive_failures,
                endpoint_health.c.failing_since,
                endpoint_health.c.last_failure_reason,
            ).where(
                or_(
                    endpoint_health.c.state == FAILING,
                    endpoint_health.c.endpoint_id.in_(sorted(retrying)),
                )
            )
        )
    }
    failing_ids = sorted(set(retrying) | {i for i, row in health.items() if row.state == FAILING})
    rows = await connection.execute(
        select(
            endpoints.c.id,
            endpoints.c.site_id,
            endpoints.c.url,
            endpoints.c.enabled,
            endpoints.c.disabled_reason,
        ).where(
            or_(
                endpoints.c.id.in_(failing_ids),
                endpoints.c.enabled.is_(False),
                endpoints.c.disabled_reason.is_not(None),
            )
        )
    )
    failing: list[dict[str, Any]] = []
    disabled: list[dict[str, Any]] = []
    for row in rows:
        if not row.enabled or row.disabled_reason is not None:
            disabled.append(
                {
                    "id": row.id,
                    "site_id": row.site_id,
                    "url": row.url,
                    "disabled_reason": row.disabled_reason,
                    "held": held.get(row.id, 0),
                }
            )
            continue
        state = health.get(row.id)
        failing.append(
            {
                "id": row.id,
                "site_id": row.site_id,
                "url": row.url,
                "breaker": state.state if state is not None else "healthy",
                "consecutive_failures": state.consecutive_failures if state is not None else 0,
                "failing_since": state.failing_since if state is not None else None,
                "last_error": state.last_failure_reason if state is not None else None,
                "retrying": retrying.get(row.id, 0),
            }
        )
    failing.sort(key=lambda e: (-e["retrying"], e["id"]))
    disabled.sort(key=lambda e: e["id"])
    return {"failing": failing, "disabled": disabled}
