"""``/api/v1/sites``: the admin key creates sites; a site key reads its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from chathooks import manage
from chathooks.api.auth import AdminOnly, SiteId, authenticate
from chathooks.api.errors import not_found
from chathooks.api.schemas import Page, SiteCreate, SiteCreated, SiteOut
from chathooks.api.state import Cursor, Limit, ServicesDep
from chathooks.repository.sites import KeyOwner, get_site, list_sites

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SiteCreated)
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
    if found is None:
        raise not_found(f"site {site!r}", field="site")
    return SiteOut.of(found)
