"""``/api/v1/sites/{site}/endpoints``: where a site's payloads go, and which ones."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from chathooks import manage
from chathooks.api.auth import SiteId
from chathooks.api.errors import not_found
from chathooks.api.schemas import (
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
    Page,
    TestResult,
)
from chathooks.api.state import Cursor, Limit, ServicesDep
from chathooks.repository import endpoints as repository

router = APIRouter(prefix="/api/v1/sites/{site}/endpoints", tags=["endpoints"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EndpointWithSecret)
async def create(body: EndpointCreate, site: SiteId, services: ServicesDep) -> EndpointWithSecret:
    """Add an endpoint; the answer holds its signing secret."""
    return await manage.create_endpoint(services.engine, site, body)


@router.get("", response_model=Page[EndpointOut])
async def list_all(
    site: SiteId, services: ServicesDep, limit: Limit = 100, cursor: Cursor = None
) -> Page[EndpointOut]:
    async with services.engine.connect() as connection:
        items, next_cursor = await repository.list_endpoints(
            connection, site, limit=limit, cursor=cursor
        )
    return Page(items=[EndpointOut.of(e) for e in items], next_cursor=next_cursor)


@router.get("/{endpoint}", response_model=EndpointOut)
async def read(endpoint: str, site: SiteId, services: ServicesDep) -> EndpointOut:
    async with services.engine.connect() as connection:
        found = await repository.get_endpoint(connection, site, endpoint)
    if found is None:
        raise not_found(f"endpoint {endpoint!r}", field="endpoint")
    return EndpointOut.of(found)


@router.patch("/{endpoint}", response_model=EndpointOut)
async def change(
    endpoint: str, body: EndpointUpdate, site: SiteId, services: ServicesDep
) -> EndpointOut:
    """Change only the keys sent; ``"secret": null`` stops signing."""
    changed = await manage.update_endpoint(services.engine, site, endpoint, body)
    services.wake_worker()  # enabling it released what was held
    return changed


@router.delete("/{endpoint}", status_code=status.HTTP_204_NO_CONTENT)
async def remove(endpoint: str, site: SiteId, services: ServicesDep) -> Response:
    """Delete an endpoint together with its deliveries."""
    await manage.delete_endpoint(services.engine, site, endpoint)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint}/test", response_model=TestResult)
async def send_test(endpoint: str, site: SiteId, services: ServicesDep) -> TestResult:
    """Olark's **Send test**: post the fixed test transcript now and report what came back.

    Nothing is queued or retried; the destination guard applies as for any delivery.
    """
    return await manage.test_endpoint(services.engine, services.sender, site, endpoint)
