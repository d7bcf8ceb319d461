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
from yarl import URL

from chathooks.api.schemas import (
    DeliveryCounts,
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
    SiteUpdate,
    SiteUpdated,
    TestRequest,
    TestResult,
    UnsavedTestRequest,
)
from chathooks.errors import FieldError
from chathooks.queue import (
    count_deliveries,
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
from chathooks.sender.guard import DestinationGuard
from chathooks.wire import TestPayloadKind, dumps, send_test_payload

__all__ = [
    "NotFound",
    "Refused",
    "change_endpoint",
    "change_site",
    "create_endpoint",
    "create_site",
    "delete_endpoint",
    "delivery",
    "delivery_counts",
    "delivery_page",
    "endpoint_page",
    "read_endpoint",
    "read_site",
    "recover_failed",
    "redeliver_delivery",
    "reveal_secret",
    "rotate_secret",
    "site_page",
    "test_endpoint",
    "test_settings",
    "update_endpoint",
]


class NotFound(FieldError):
    """A site, endpoint or delivery that does not exist (or is not this site's)."""

    code = "not_found"
    status_code = 404

    def __init__(self, what: str, identifier: str) -> None:
        super().__init__(f"{what} {identifier!r} does not exist", field=what)
        self.identifier = identifier


class Refused(FieldError):
    """A value the rules allow but this service will not use (a destination it may not reach)."""

    code = "validation_error"
    status_code = 422


async def create_site(engine: AsyncEngine, name: str) -> SiteCreated:
    async with write_transaction(engine) as connection:
        created = await site_rows.create_site(connection, name)
    return SiteCreated(**SiteOut.of(created.site).model_dump(), api_key=created.api_key)


async def site_page(
    engine: AsyncEngine, *, limit: int, cursor: str | None, only: str | None = None
) -> Page[SiteOut]:
    """Sites oldest first; ``only``: just that site (what a site's own key may list)."""
    async with engine.connect() as connection:
        if only is not None:
            site = await site_rows.get_site(connection, only)
            return Page(items=[SiteOut.of(site)] if site else [])
        sites, next_cursor = await site_rows.list_sites(connection, limit=limit, cursor=cursor)
    return Page(items=[SiteOut.of(site) for site in sites], next_cursor=next_cursor)


async def read_site(engine: AsyncEngine, site: str) -> SiteOut:
    """One site, with the URL its alerts go to."""
    async with engine.connect() as connection:
        found = await site_rows.get_site(connection, site)
        alerts = await endpoint_rows.alert_endpoint(connection, site)
    if found is None:
        raise NotFound("site", site)
    return SiteOut.of(found, alerts.url if alerts else None)


async def change_site(
    engine: AsyncEngine, guard: DestinationGuard, site: str, body: SiteUpdate
) -> SiteUpdated:
    """Set (or, with None, stop) where the site's alerts go; a new URL gets a new secret.

    An address the service may not post to is refused now, not at the first alert.
    """
    if "alert_url" in body.model_fields_set and body.alert_url is not None:
        refusal = guard.check_url(URL(body.alert_url))
        if refusal is not None:
            raise Refused(refusal, field="alert_url")
    async with write_transaction(engine) as connection:
        found = await site_rows.get_site(connection, site)
        if found is None:
            raise NotFound("site", site)
        alerts = await endpoint_rows.alert_endpoint(connection, site)
        secret = None
        if "alert_url" in body.model_fields_set:
            alerts = await endpoint_rows.set_alert_url(connection, site, body.alert_url)
            secret = alerts.secret if alerts else None
    return SiteUpdated(
        **SiteOut.of(found, alerts.url if alerts else None).model_dump(), alert_secret=secret
    )


async def create_endpoint(
    engine: AsyncEngine, site: str, body: EndpointCreate
) -> EndpointWithSecret:
    async with write_transaction(engine) as connection:
        if await site_rows.get_site(connection, site) is None:
            raise NotFound("site", site)
        endpoint = await endpoint_rows.create_endpoint(connection, site, **body.model_dump())
        health = await health_of(connection, {endpoint.id: endpoint.enabled})
    return EndpointWithSecret.of(endpoint, health[endpoint.id])


async def endpoint_page(
    engine: AsyncEngine, site: str, *, limit: int, cursor: str | None
) -> Page[EndpointOut]:
    async with engine.connect() as connection:
        items, next_cursor = await endpoint_rows.list_endpoints(
            connection, site, limit=limit, cursor=cursor
        )
        health = await health_of(connection, {e.id: e.enabled for e in items})
    return Page(items=[EndpointOut.of(e, health[e.id]) for e in items], next_cursor=next_cursor)


async def read_endpoint(engine: AsyncEngine, site: str, endpoint: str) -> EndpointOut:
    """One endpoint of the site, with its health."""
    async with engine.connect() as connection:
        found = await endpoint_rows.get_endpoint(connection, site, endpoint)
        health = {} if found is None else await health_of(connection, {found.id: found.enabled})
    if found is None:
        raise NotFound("endpoint", endpoint)
    return EndpointOut.of(found, health[found.id])


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
        health = (
            {} if updated is None else await health_of(connection, {updated.id: updated.enabled})
        )
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
    engine: AsyncEngine,
    sender: Sender,
    site: str,
    endpoint: str,
    body: TestRequest | None = None,
) -> TestResult:
    """Olark's **Send test**: post the test payload now, through the destination guard.

    ``body`` may change the ``kind`` of payload, and ``url``, ``format`` and
    ``headers`` to test edits without saving them (the stored endpoint is left
    as it is; ``saved_settings`` tells which was tested). It is signed as a
    delivery would be: during a rotation's grace, with the new and the old secret.
    """
    found = await _existing_endpoint(engine, site, endpoint)
    wanted = body or TestRequest()
    url = wanted.url if wanted.url is not None else found.url
    fmt = wanted.format if wanted.format is not None else found.format
    headers = wanted.headers if wanted.headers is not None else found.headers
    secrets = tuple(s for s in (found.secret, found.previous_secret) if s)
    return await _send_test(
        sender,
        url=url,
        fmt=fmt,
        secret=secrets or None,
        headers=headers,
        kind=wanted.kind,
        saved=(url, fmt, headers) == (found.url, found.format, found.headers),
    )


async def test_settings(sender: Sender, body: UnsavedTestRequest) -> TestResult:
    """**Send test** of settings not saved as an endpoint yet; nothing is stored or queued."""
    return await _send_test(
        sender,
        url=body.url,
        fmt=body.format,
        secret=body.secret,
        headers=body.headers,
        kind=body.kind,
        saved=False,
    )


async def _send_test(
    sender: Sender,
    *,
    url: str,
    fmt: str,
    secret: str | tuple[str, ...] | None,
    headers: dict[str, str],
    kind: TestPayloadKind,
    saved: bool,
) -> TestResult:
    request = build_request(
        delivery_id=new_delivery_id(),
        url=url,
        document_json=dumps(send_test_payload(kind).to_wire()),
        fmt=fmt,
        secret=secret,
        extra_headers=headers,
    )
    result = await sender.send(request)
    return TestResult(
        kind=kind,
        url=url,
        saved_settings=saved,
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
    conversation_prefix: str | None = None,
    created_from: float | None = None,
    created_to: float | None = None,
) -> Page[DeliveryOut]:
    """The site's deliveries, newest first; an empty filter (``""``) is no filter."""
    async with engine.connect() as connection:
        items, next_cursor = await list_deliveries(
            connection,
            site,
            status=status,
            endpoint_id=endpoint_id or None,
            conversation_id=conversation_id or None,
            conversation_prefix=conversation_prefix or None,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            cursor=cursor or None,
        )
    return Page(items=[DeliveryOut.of(item) for item in items], next_cursor=next_cursor)


async def delivery_counts(
    engine: AsyncEngine,
    site: str,
    *,
    endpoint_id: str | None = None,
    created_from: float | None = None,
    created_to: float | None = None,
) -> DeliveryCounts:
    """How many of the site's deliveries are in each status that needs a look."""
    async with engine.connect() as connection:
        found = await count_deliveries(
            connection,
            site,
            endpoint_id=endpoint_id or None,
            created_from=created_from,
            created_to=created_to,
        )
    return DeliveryCounts(counts=found)


async def delivery(engine: AsyncEngine, site: str, delivery_id: str) -> DeliveryDetail:
    async with engine.connect() as connection:
        found = await get_delivery(connection, site, delivery_id)
    if found is None:
        raise NotFound("delivery", delivery_id)
    return DeliveryDetail.of(found)
