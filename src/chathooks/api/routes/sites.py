"""``/api/v1/sites``: the admin key creates sites; a site key reads its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from yarl import URL

from chathooks.api.auth import AdminOnly, SiteId, authenticate
from chathooks.api.errors import ApiError, not_found
from chathooks.api.schemas import Page, SiteCreate, SiteCreated, SiteOut, SiteUpdate, SiteUpdated
from chathooks.api.state import Cursor, Limit, ServicesDep
from chathooks.queue import write_transaction
from chathooks.repository.endpoints import alert_endpoint, set_alert_url
from chathooks.repository.sites import KeyOwner, create_site, get_site, list_sites

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SiteCreated)
async def create(body: SiteCreate, _admin: AdminOnly, services: ServicesDep) -> SiteCreated:
    """Create a site; the answer holds its API key, which is never shown again."""
    async with write_transaction(services.engine) as connection:
        created = await create_site(connection, body.name)
    return SiteCreated(**SiteOut.of(created.site).model_dump(), api_key=created.api_key)


@router.get("", response_model=Page[SiteOut])
async def list_all(
    owner: Annotated[KeyOwner, Depends(authenticate)],
    services: ServicesDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[SiteOut]:
    """Every site for the admin key; just its own site for a site key."""
    async with services.engine.connect() as connection:
        if owner.site_id is not None:
            site = await get_site(connection, owner.site_id)
            return Page(items=[SiteOut.of(site)] if site else [])
        sites, next_cursor = await list_sites(connection, limit=limit, cursor=cursor)
    return Page(items=[SiteOut.of(site) for site in sites], next_cursor=next_cursor)


@router.get("/{site}", response_model=SiteOut)
async def read(site: SiteId, services: ServicesDep) -> SiteOut:
    async with services.engine.connect() as connection:
        found = await get_site(connection, site)
        alerts = await alert_endpoint(connection, site)
    if found is None:
        raise not_found(f"site {site!r}", field="site")
    return SiteOut.of(found, alerts.url if alerts else None)


@router.patch("/{site}", response_model=SiteUpdated)
async def change(site: SiteId, body: SiteUpdate, services: ServicesDep) -> SiteUpdated:
    """Set (or, with null, stop) where the site's operational alerts go.

    The answer holds the new ``alert_secret``, which is never shown again.
    An address the service may not post to is refused now, not at the first alert.
    """
    if "alert_url" in body.model_fields_set and body.alert_url is not None:
        refusal = services.sender.guard.check_url(URL(body.alert_url))
        if refusal is not None:
            raise ApiError(422, "validation_error", refusal, field="alert_url")
    async with write_transaction(services.engine) as connection:
        found = await get_site(connection, site)
        if found is None:
            raise not_found(f"site {site!r}", field="site")
        alerts = await alert_endpoint(connection, site)
        secret = None
        if "alert_url" in body.model_fields_set:
            alerts = await set_alert_url(connection, site, body.alert_url)
            secret = alerts.secret if alerts else None
    return SiteUpdated(
        **SiteOut.of(found, alerts.url if alerts else None).model_dump(), alert_secret=secret
    )
