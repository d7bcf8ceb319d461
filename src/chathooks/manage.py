"""What an operator does to sites, endpoints and deliveries, once for the API and the CLI.

Each function takes the engine, does its work in one transaction through the
repository and queue functions, and returns the API's own shapes
(:mod:`chathooks.api.schemas`), so ``chathooks endpoint add --json`` prints
exactly what ``POST .../endpoints`` answers and both refuse the same input
the same way (the request models validate it). Something that does not exist
is a :class:`NotFound`, a :class:`~chathooks.errors.FieldError` the API answers
with 404 and the CLI prints.

Waking the in-process worker after new work is the caller's business: the API
has a worker in its process, a CLI command does not (workers elsewhere find
the work at their next poll, or at once through PostgreSQL's ``NOTIFY``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.api.schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryRef,
    EndpointCreate,
    EndpointOut,
    EndpointSecret,
    EndpointUpdate,
    EndpointWithSecret,
    IngestAccepted,
    Page,
    RecoverRequest,
    RotateSecretRequest,
    SiteCreated,
    SiteOut,
    TestResult,
)
from chathooks.errors import FieldError
from chathooks.queue import (
    get_delivery,
    health_of,
    list_deliveries,
    new_delivery_id,
    recover,
    redeliver,
    release_held,
    site_of_delivery,
    write_transaction,
)
from chathooks.repository import endpoints as endpoint_rows
from chathooks.repository import sites as site_rows
from chathooks.repository.endpoints import Endpoint
from chathooks.sender import Sender, build_request
from chathooks.wire import dumps, send_test_transcript

__all__ = [
    "NotFound",
    "change_endpoint",
    "create_endpoint",
    "create_site",
    "delete_endpoint",
    "delivery",
    "delivery_page",
    "endpoint_page",
    "recover_failed",
    "redeliver_delivery",
    "reveal_secret",
    "rotate_secret",
    "site_page",
    "test_endpoint",
    "update_endpoint",
]


class NotFound(FieldError):
    """A site, endpoint or delivery that does not exist (or is not this site's)."""

    code = "not_found"
    status_code = 404

    def __init__(self, what: str, identifier: str) -> None:
        super().__init__(f"{what} {identifier!r} does not exist", field=what)
        self.identifier = identifier


async def create_site(engine: AsyncEngine, name: str) -> SiteCreated:
    async with write_transaction(engine) as connection:
        created = await site_rows.create_site(connection, name)
    return SiteCreated(**SiteOut.of(created.site).model_dump(), api_key=created.api_key)


async def site_page(engine: AsyncEngine, *, limit: int, cursor: str | None) -> Page[SiteOut]:
    async with engine.connect() as connection:
        sites, next_cursor = await site_rows.list_sites(connection, limit=limit, cursor=cursor)
    return Page(items=[SiteOut.of(site) for site in sites], next_cursor=next_cursor)


async def create_endpoint(
    engine: AsyncEngine, site: str, body: EndpointCreate
) -> EndpointWithSecret:
    async with write_transaction(engine) as connection:
        if await site_rows.get_site(connection, site) is None:
            raise NotFound("site", site)
        endpoint = await endpoint_rows.create_endpoint(connection, site, **body.model_dump())
        health = await health_of(connection, [endpoint.id])
    return EndpointWithSecret.of(endpoint, health[endpoint.id])


async def endpoint_page(
    engine: AsyncEngine, site: str, *, limit: int, cursor: str | None
) -> Page[EndpointOut]:
    async with engine.connect() as connection:
        items, next_cursor = await endpoint_rows.list_endpoints(
            connection, site, limit=limit, cursor=cursor
        )
        health = await health_of(connection, [e.id for e in items])
    return Page(items=[EndpointOut.of(e, health[e.id]) for e in items], next_cursor=next_cursor)


async def update_endpoint(
    engine: AsyncEngine, site: str, endpoint: str, body: EndpointUpdate
) -> EndpointOut:
    """Change only the keys given; ``secret: None`` among them stops signing.

    Enabling an endpoint sends what was held while it was disabled, in order.
    """
    changed, _ = await change_endpoint(engine, site, endpoint, body)
    return changed


async def change_endpoint(
    engine: AsyncEngine, site: str, endpoint: str, body: EndpointUpdate
) -> tuple[EndpointOut, int]:
    """:func:`update_endpoint`, also telling how many held deliveries were sent again."""
    changes = body.changes()
    released = 0
    async with write_transaction(engine) as connection:
        updated = await endpoint_rows.update_endpoint(connection, site, endpoint, changes)
        if updated is not None and changes.get("enabled") is True:
            released = await release_held(connection, updated.id)
        health = {} if updated is None else await health_of(connection, [updated.id])
    if updated is None:
        raise NotFound("endpoint", endpoint)
    return EndpointOut.of(updated, health[updated.id]), released


async def delete_endpoint(engine: AsyncEngine, site: str, endpoint: str) -> None:
    """Delete an endpoint together with its deliveries."""
    async with write_transaction(engine) as connection:
        deleted = await endpoint_rows.delete_endpoint(connection, site, endpoint)
    if not deleted:
        raise NotFound("endpoint", endpoint)


async def _existing_endpoint(engine: AsyncEngine, site: str, endpoint: str) -> Endpoint:
    """The site's endpoint, or :class:`NotFound`."""
    async with engine.connect() as connection:
        found = await endpoint_rows.get_endpoint(connection, site, endpoint)
    if found is None:
        raise NotFound("endpoint", endpoint)
    return found


async def reveal_secret(engine: AsyncEngine, site: str, endpoint: str) -> EndpointSecret:
    """The endpoint's signing secret again (and the one it replaced, during a rotation's grace)."""
    return EndpointSecret.of(await _existing_endpoint(engine, site, endpoint))


async def rotate_secret(
    engine: AsyncEngine, site: str, endpoint: str, body: RotateSecretRequest
) -> EndpointSecret:
    """A new signing secret; the old one signs too for ``body.grace_seconds``, then no more."""
    async with write_transaction(engine) as connection:
        rotated = await endpoint_rows.rotate_secret(
            connection, site, endpoint, grace_seconds=body.grace_seconds
        )
    if rotated is None:
        raise NotFound("endpoint", endpoint)
    return EndpointSecret.of(rotated)


async def test_endpoint(
    engine: AsyncEngine, sender: Sender, site: str, endpoint: str
) -> TestResult:
    """Olark's **Send test**: post the test transcript now, through the destination guard."""
    found = await _existing_endpoint(engine, site, endpoint)
    request = build_request(
        delivery_id=new_delivery_id(),
        url=found.url,
        document_json=dumps(send_test_transcript().to_wire()),
        fmt=found.format,
        secret=found.secret,
        extra_headers=found.headers,
    )
    result = await sender.send(request)
    return TestResult(
        url=found.url,
        saved_settings=True,
        ok=result.ok,
        status_code=result.status_code,
        duration_ms=round(result.duration_ms, 3),
        integration_url=result.integration_url,
        response_body=result.response_body,
        error=result.error,
    )


async def redeliver_delivery(
    engine: AsyncEngine, site: str | None, delivery: str
) -> DeliveryDetail:
    """Queue a delivery again now, same ``webhook-id``; ``site=None``: whichever site has it."""
    async with write_transaction(engine) as connection:
        owner = site if site is not None else await site_of_delivery(connection, delivery)
        found = None if owner is None else await redeliver(connection, owner, delivery)
    if found is None:
        raise NotFound("delivery", delivery)
    return DeliveryDetail.of(found)


async def recover_failed(
    engine: AsyncEngine, site: str, endpoint: str, body: RecoverRequest
) -> IngestAccepted:
    """After an outage: queue again every failed delivery to ``endpoint`` made since then."""
    async with write_transaction(engine) as connection:
        if await endpoint_rows.get_endpoint(connection, site, endpoint) is None:
            raise NotFound("endpoint", endpoint)
        ids = await recover(connection, site, endpoint, since=body.since_epoch())
    return IngestAccepted(deliveries=[DeliveryRef(id=i, endpoint_id=endpoint) for i in ids])


async def delivery_page(
    engine: AsyncEngine,
    site: str,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
    endpoint_id: str | None = None,
    conversation_id: str | None = None,
) -> Page[DeliveryOut]:
    async with engine.connect() as connection:
        items, next_cursor = await list_deliveries(
            connection,
            site,
            status=status,
            endpoint_id=endpoint_id,
            conversation_id=conversation_id,
            limit=limit,
            cursor=cursor,
        )
    return Page(items=[DeliveryOut.of(item) for item in items], next_cursor=next_cursor)


async def delivery(engine: AsyncEngine, site: str, delivery_id: str) -> DeliveryDetail:
    async with engine.connect() as connection:
        found = await get_delivery(connection, site, delivery_id)
    if found is None:
        raise NotFound("delivery", delivery_id)
    return DeliveryDetail.of(found)
