"""``/api/v1/sites``: the admin key creates sites; a site key reads its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from chathooks import manage
from chathooks.api.auth import AdminOnly, SiteId, authenticate
from chathooks.api.schemas import Page, SiteCreate, SiteCreated, SiteOut, SiteUpdate, SiteUpdated
from chathooks.api.state import Cursor, Limit, ServicesDep, not_stored
from chathooks.repository.sites import KeyOwner

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SiteCreated,
    dependencies=[Depends(not_stored)],
)
async def create(body: SiteCreate, _admin: AdminOnly, services: ServicesDep) -> SiteCreated:
    """Create a site; the answer holds its API key, which is never shown again."""
    return await manage.create_site(services.engine, body.name)


@router.get("", response_model=Page[SiteOut])
async def list_all(
    owner: Annotated[KeyOwner, Depends(authenticate)],
    services: ServicesDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[SiteOut]:
    """Every site for the admin key; just its own site for a site key."""
    return await manage.site_page(services.engine, limit=limit, cursor=cursor, only=owner.site_id)


@router.get("/{site}", response_model=SiteOut)
async def read(site: SiteId, services: ServicesDep) -> SiteOut:
    return await manage.read_site(services.engine, site)


@router.patch("/{site}", response_model=SiteUpdated, dependencies=[Depends(not_stored)])
async def change(site: SiteId, body: SiteUpdate, services: ServicesDep) -> SiteUpdated:
    """Set (or, with null, stop) where the site's operational alerts go.

    The answer holds the new ``alert_secret``, which is never shown again.
    An address the service may not post to is refused now, not at the first alert.
    """
    return await manage.change_site(services.engine, services.sender.guard, site, body)
