"""The endpoints of a site: where its payloads are posted, and which ones.

Every query is scoped by ``site_id``: an endpoint of another site is simply
not found, so a site key can never reach it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.driver import DriverStatement
from chathooks.db.tables import endpoints
from chathooks.paging import decode_cursor, encode_cursor
from chathooks.repository.ids import new_id
from chathooks.repository.validation import EndpointFormat, check_format
from chathooks.sealing import Keyring, keyring_of, still_signs
from chathooks.signing import generate_secret

__all__ = [
    "ALERTS",
    "DELIVERY",
    "UPDATABLE_FIELDS",
    "Endpoint",
    "alert_endpoint",
    "create_endpoint",
    "delete_endpoint",
    "enabled_endpoints",
    "enabled_endpoints_of_sites",
    "forget_replaced_secrets",
    "get_endpoint",
    "list_endpoints",
    "rotate_secret",
    "set_alert_url",
    "update_endpoint",
]

#: What a PATCH may change.
UPDATABLE_FIELDS = frozenset(
    {
        "url",
        "description",
        "enabled",
        "auto_send",
        "send_offline",
        "send_events",
        "secret",
        "format",
        "headers",
        "max_in_flight",
    }
)


#: The roles of an endpoint: a site's webhooks, and the one its operational alerts go to.
DELIVERY, ALERTS = "delivery", "alerts"
#: The site's webhooks: what the endpoint API, the CLI and routing see.
_WEBHOOKS = endpoints.c.role == DELIVERY


@dataclass(frozen=True)
class Endpoint:
    id: str
    site_id: str
    url: str
    description: str = ""
    enabled: bool = True
    auto_send: bool = True
    send_offline: bool = True
    send_events: bool = False
    #: ``whsec_...``; None for an unsigned endpoint.
    secret: str | None = None
    format: EndpointFormat = "form"
    headers: dict[str, str] = field(default_factory=dict)
    #: Why chathooks switched the endpoint off (e.g. it answered 410 Gone).
    disabled_reason: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    #: Requests in flight at once to it, across all workers; None: the service default.
    max_in_flight: int | None = None
    #: ``delivery``, or ``alerts`` for the site's alert endpoint (see :func:`set_alert_url`).
    role: str = "delivery"
    #: The secret :func:`rotate_secret` replaced, and until when it signs as well.
    previous_secret: str | None = None
    previous_secret_until: float | None = None


def _endpoint(row: Mapping[Any, Any], keyring: Keyring) -> Endpoint:
    """The endpoint of a row (its columns by name), its secrets opened (an expired previous
    secret is left out)."""
    previous = still_signs(row["previous_secret_until"], time.time())
    return Endpoint(
        id=row["id"],
        site_id=row["site_id"],
        url=row["url"],
        description=row["description"],
        enabled=row["enabled"],
        auto_send=row["auto_send"],
        send_offline=row["send_offline"],
        send_events=row["send_events"],
        secret=keyring.open_optional(row["secret"]),
        format=check_format(row["format"]),
        headers=keyring.open_values(row["headers"] or {}),
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        max_in_flight=row["max_in_flight"],
        role=row["role"],
        previous_secret=keyring.open_optional(row["previous_secret"]) if previous else None,
        previous_secret_until=row["previous_secret_until"] if previous else None,
    )


async def _insert(connection: AsyncConnection, endpoint: Endpoint) -> None:
    """Store ``endpoint`` as a new row, its secrets sealed."""
    keyring = keyring_of(connection)
    values = {column.name: getattr(endpoint, column.name) for column in endpoints.columns}
    values["secret"] = keyring.seal_optional(endpoint.secret)
    values["previous_secret"] = keyring.seal_optional(endpoint.previous_secret)
    values["headers"] = keyring.seal_values(endpoint.headers)
    await connection.execute(insert(endpoints).values(values))


async def create_endpoint(
    connection: AsyncConnection,
    site_id: str,
    *,
    url: str,
    description: str = "",
    enabled: bool = True,
    auto_send: bool = True,
    send_offline: bool = True,
    send_events: bool = False,
    secret: str | None = None,
    format: EndpointFormat = "form",
    headers: Mapping[str, str] | None = None,
    max_in_flight: int | None = None,
) -> Endpoint:
    """Store a new endpoint; the values are expected to be validated already."""
    now = time.time()
    endpoint = Endpoint(
        id=new_id("ep"),
        site_id=site_id,
        url=url,
        description=description,
        enabled=enabled,
        auto_send=auto_send,
        send_offline=send_offline,
        send_events=send_events,
        secret=secret,
        format=format,
        headers=dict(headers or {}),
        created_at=now,
        updated_at=now,
        max_in_flight=max_in_flight,
    )
    await _insert(connection, endpoint)
    return endpoint


async def get_endpoint(
    connection: AsyncConnection, site_id: str, endpoint_id: str
) -> Endpoint | None:
    query = select(endpoints).where(
        endpoints.c.site_id == site_id, endpoints.c.id == endpoint_id, _WEBHOOKS
    )
    row = (await connection.execute(query)).first()
    return None if row is None else _endpoint(row._mapping, keyring_of(connection))


async def list_endpoints(
    connection: AsyncConnection, site_id: str, *, limit: int, cursor: str | None = None
) -> tuple[list[Endpoint], str | None]:
    """A page of a site's endpoints, oldest first; ``cursor`` continues a listing."""
    query = (
        select(endpoints).where(endpoints.c.site_id == site_id, _WEBHOOKS).order_by(endpoints.c.id)
    )
    if cursor:
        query = query.where(endpoints.c.id > decode_cursor(cursor, str)[0])
    rows = (await connection.execute(query.limit(limit + 1))).all()
    keyring = keyring_of(connection)
    items = [_endpoint(row._mapping, keyring) for row in rows[:limit]]
    return items, (encode_cursor(items[-1].id) if len(rows) > limit else None)


async def enabled_endpoints(connection: AsyncConnection, site_id: str) -> list[Endpoint]:
    """Every endpoint of a site that takes payloads: what routing chooses from.

    The enabled ones, and those chathooks disabled itself, whose deliveries
    are held until they are enabled again (:func:`chathooks.routing.takes_deliveries`).
    """
    keyring = keyring_of(connection)
    found = await _TAKING_PAYLOADS_OF_SITE.execute(connection, {"b_site": site_id})
    return [_endpoint(row, keyring) for row in found.mappings()]


async def enabled_endpoints_of_sites(
    connection: AsyncConnection, site_ids: Iterable[str]
) -> dict[str, list[Endpoint]]:
    """:func:`enabled_endpoints` of several sites in one query (for batched ingest)."""
    wanted = sorted(set(site_ids))
    if len(wanted) == 1:  # the usual batch: the statement compiled once
        return {wanted[0]: await enabled_endpoints(connection, wanted[0])}
    found: dict[str, list[Endpoint]] = {site_id: [] for site_id in wanted}
    query = (
        select(endpoints)
        .where(endpoints.c.site_id.in_(wanted), *_TAKING_PAYLOADS)
        .order_by(endpoints.c.id)
    )
    keyring = keyring_of(connection)
    for row in (await connection.execute(query)).all():
        endpoint = _endpoint(row._mapping, keyring)
        found[endpoint.site_id].append(endpoint)
    return found


#: Which of a site's endpoints routing chooses from (see :func:`enabled_endpoints`).
_TAKING_PAYLOADS = (
    _WEBHOOKS,
    or_(endpoints.c.enabled.is_(True), endpoints.c.disabled_reason.is_not(None)),
)
_TAKING_PAYLOADS_OF_SITE = DriverStatement(
    select(endpoints)
    .where(endpoints.c.site_id == bindparam("b_site"), *_TAKING_PAYLOADS)
    .order_by(endpoints.c.id)
)


async def update_endpoint(
    connection: AsyncConnection, site_id: str, endpoint_id: str, changes: Mapping[str, Any]
) -> Endpoint | None:
    """Apply ``changes`` (validated values of :data:`UPDATABLE_FIELDS`); None when not found.

    Switching an endpoint on or off by hand clears the reason chathooks
    switched it off: it is its owner's choice now. A secret set here replaces
    the old one at once (no grace: that is :func:`rotate_secret`).
    """
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(changes)
    if "enabled" in values:
        values["disabled_reason"] = None
    keyring = keyring_of(connection)
    if "secret" in values:
        values["secret"] = keyring.seal_optional(values["secret"])
        values["previous_secret"] = values["previous_secret_until"] = None
    if "headers" in values:
        values["headers"] = keyring.seal_values(values["headers"] or {})
    values["updated_at"] = time.time()
    result = await connection.execute(
        update(endpoints)
        .where(endpoints.c.site_id == site_id, endpoints.c.id == endpoint_id, _WEBHOOKS)
        .values(values)
    )
    if result.rowcount == 0:
        return None
    return await get_endpoint(connection, site_id, endpoint_id)


async def delete_endpoint(connection: AsyncConnection, site_id: str, endpoint_id: str) -> bool:
    """Remove an endpoint (its deliveries go with it); False when there was none."""
    result = await connection.execute(
        delete(endpoints).where(
            endpoints.c.site_id == site_id, endpoints.c.id == endpoint_id, _WEBHOOKS
        )
    )
    return result.rowcount > 0


async def alert_endpoint(connection: AsyncConnection, site_id: str) -> Endpoint | None:
    """The endpoint a site's operational alerts are posted to; None if it set no alert_url."""
    query = select(endpoints).where(endpoints.c.site_id == site_id, endpoints.c.role == ALERTS)
    row = (await connection.execute(query)).first()
    return None if row is None else _endpoint(row._mapping, keyring_of(connection))


async def rotate_secret(
    connection: AsyncConnection,
    site_id: str,
    endpoint_id: str,
    *,
    grace_seconds: float,
    now: float | None = None,
) -> Endpoint | None:
    """Give the endpoint a new secret; the current one also signs for ``grace_seconds``.

    Only one previous secret is kept: rotating again during a grace ends the
    older one's. An unsigned endpoint becomes signed. None when not found.
    """
    found = await get_endpoint(connection, site_id, endpoint_id)
    if found is None:
        return None
    at = time.time() if now is None else now
    keep = found.secret if grace_seconds > 0 else None
    keyring = keyring_of(connection)
    new_secret = generate_secret()
    await connection.execute(
        update(endpoints)
        .where(endpoints.c.site_id == site_id, endpoints.c.id == endpoint_id, _WEBHOOKS)
        .values(
            secret=keyring.seal(new_secret),
            previous_secret=keyring.seal_optional(keep),
            previous_secret_until=None if keep is None else at + grace_seconds,
            updated_at=at,
        )
    )
    return replace(
        found,
        secret=new_secret,
        previous_secret=keep,
        previous_secret_until=None if keep is None else at + grace_seconds,
        updated_at=at,
    )


async def set_alert_url(
    connection: AsyncConnection, site_id: str, url: str | None
) -> Endpoint | None:
    """Point a site's alerts at ``url`` (validated already) with a new secret; None stops them.

    The alert endpoint is an endpoint like the others, so alerts are queued,
    signed, retried and logged like any delivery, but never routed a payload
    nor listed among the site's webhooks. JSON, signed with its own secret.
    """
    await connection.execute(
        delete(endpoints).where(endpoints.c.site_id == site_id, endpoints.c.role == ALERTS)
    )
    if url is None:
        return None
    now = time.time()
    endpoint = Endpoint(
        id=new_id("ep"),
        site_id=site_id,
        url=url,
        description="operational alerts",
        send_offline=False,
        auto_send=False,
        secret=generate_secret(),
        format="json",
        created_at=now,
        updated_at=now,
        role=ALERTS,
    )
    await _insert(connection, endpoint)
    return endpoint


async def forget_replaced_secrets(connection: AsyncConnection, *, now: float) -> int:
    """Remove the secrets rotations replaced whose grace is over; how many endpoints had one.

    Once its grace ended a replaced secret never signs again (see
    :func:`chathooks.sealing.still_signs`), so it is not kept, even sealed.
    """
    result = await connection.execute(
        update(endpoints)
        .where(endpoints.c.previous_secret_until <= now)
        .values(previous_secret=None, previous_secret_until=None)
    )
    return result.rowcount
