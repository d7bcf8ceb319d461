"""What ``chathooks status`` shows of the queue: endpoints failing or switched off.

Failing is read from unfinished work only (deliveries ``retrying`` now, on
the partial index), so the answer costs the same however much history the
tables keep.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.tables import deliveries, endpoints, unfinished
from chathooks.queue.statuses import RETRYING

__all__ = ["endpoint_problems"]


async def endpoint_problems(connection: AsyncConnection) -> dict[str, list[dict[str, Any]]]:
    """``{"failing": [...], "disabled": [...]}``: endpoints with deliveries waiting to retry,
    with how many and the last error; and endpoints switched off, with why."""
    retrying = (
        select(
            deliveries.c.endpoint_id,
            func.count().label("retrying"),
            func.max(deliveries.c.updated_at).label("last_failed_at"),
        )
        .where(unfinished(deliveries), deliveries.c.status == literal_column(f"'{RETRYING}'"))
        .group_by(deliveries.c.endpoint_id)
        .subquery()
    )
    failing_rows = await connection.execute(
        select(
            endpoints.c.id,
            endpoints.c.site_id,
            endpoints.c.url,
            retrying.c.retrying,
            retrying.c.last_failed_at,
        )
        .join(retrying, retrying.c.endpoint_id == endpoints.c.id)
        .order_by(retrying.c.retrying.desc(), endpoints.c.id)
    )
    failing = [dict(row._mapping) for row in failing_rows]
    last_errors = await _last_errors(connection, [row["id"] for row in failing])
    for row in failing:
        row["last_error"] = last_errors.get(row["id"])
    disabled_rows = await connection.execute(
        select(endpoints.c.id, endpoints.c.site_id, endpoints.c.url, endpoints.c.disabled_reason)
        .where(or_(endpoints.c.enabled.is_(False), endpoints.c.disabled_reason.is_not(None)))
        .order_by(endpoints.c.id)
    )
    return {"failing": failing, "disabled": [dict(row._mapping) for row in disabled_rows]}


async def _last_errors(connection: AsyncConnection, endpoint_ids: list[str]) -> dict[str, str]:
    """The error of each endpoint's most recently failed delivery still retrying."""
    errors: dict[str, str] = {}
    for endpoint_id in endpoint_ids:
        row = (
            await connection.execute(
                select(deliveries.c.last_error, deliveries.c.last_status_code)
                .where(
                    unfinished(deliveries),
                    deliveries.c.status == literal_column(f"'{RETRYING}'"),
                    deliveries.c.endpoint_id == endpoint_id,
                )
                .order_by(deliveries.c.updated_at.desc())
                .limit(1)
            )
        ).first()
        if row is not None:
            code = f"HTTP {row.last_status_code}" if row.last_status_code is not None else None
            errors[endpoint_id] = ": ".join(part for part in (code, row.last_error) if part)
    return errors
