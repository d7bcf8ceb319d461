"""``/api/v1/sites/{site}/endpoints``: where a site's payloads go, and which ones."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from chathooks import manage
from chathooks.api.auth import SiteId
from chathooks.api.schemas import (
    EndpointCreate,
    EndpointOut,
    EndpointSecret,
    EndpointUpdate,
    EndpointWithSecret,
    Page,
    RotateSecretRequest,
    TestRequest,
    TestResult,
    UnsavedTestRequest,
)
from chathooks.api.state import Cursor, Limit, ServicesDep, not_stored

router = APIRouter(prefix="/api/v1/sites/{site}/endpoints", tags=["endpoints"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=EndpointWithSecret,
    dependencies=[Depends(not_stored)],
)
async def create(body: EndpointCreate, site: SiteId, services: ServicesDep) -> EndpointWithSecret:
    """Add an endpoint; the answer holds its signing secret."""
    return await manage.create_endpoint(services.engine, site, body)


@router.get("", response_model=Page[EndpointOut])
async def list_all(
    site: SiteId, services: ServicesDep, limit: Limit = 100, cursor: Cursor = None
) -> Page[EndpointOut]:
    return await manage.endpoint_page(services.engine, site, limit=limit, cursor=cursor)


@router.get("/{endpoint}", response_model=EndpointOut)
async def read(endpoint: str, site: SiteId, services: ServicesDep) -> EndpointOut:
    return await manage.read_endpoint(services.engine, site, endpoint)


@router.patch("/{endpoint}", response_model=EndpointOut)
async def change(
    endpoint: str, body: EndpointUpdate, site: SiteId, services: ServicesDep
) -> EndpointOut:
    """Change only the keys sent; ``"secret": null`` stops signing.

    ``"enabled": true`` sends what was held while the endpoint was disabled, in order.
    """
    return await manage.update_endpoint(services.engine, site, endpoint, body)


@router.delete("/{endpoint}", status_code=status.HTTP_204_NO_CONTENT)
async def remove(endpoint: str, site: SiteId, services: ServicesDep) -> Response:
    """Delete an endpoint together with its deliveries."""
    await manage.delete_endpoint(services.engine, site, endpoint)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{endpoint}/secret", response_model=EndpointSecret, dependencies=[Depends(not_stored)])
async def reveal_secret(endpoint: str, site: SiteId, services: ServicesDep) -> EndpointSecret:
    """The signing secret again; during a rotation's grace also the one it replaced."""
    return await manage.reveal_secret(services.engine, site, endpoint)


@router.post(
    "/{endpoint}/rotate-secret", response_model=EndpointSecret, dependencies=[Depends(not_stored)]
)
async def rotate_secret(
    endpoint: str,
    site: SiteId,
    services: ServicesDep,
    body: RotateSecretRequest | None = None,
) -> EndpointSecret:
    """A new signing secret. For ``grace_seconds`` (default one day) every attempt, retries
    and redeliveries included, carries two ``v1`` signatures, by the new secret and the old
    one, so receivers can switch at their pace; then only the new one."""
    return await manage.rotate_secret(
        services.engine, site, endpoint, body or RotateSecretRequest()
    )


@router.post("/test", response_model=TestResult)
async def send_unsaved_test(
    body: UnsavedTestRequest, site: SiteId, services: ServicesDep
) -> TestResult:
    """**Send test** of settings not saved as an endpoint yet: a new endpoint before Save.

    Nothing is stored, queued or retried; the destination guard applies as for
    any delivery.
    """
    return await manage.test_settings(services.sender, body)


@router.post("/{endpoint}/test", response_model=TestResult)
async def send_test(
    endpoint: str, site: SiteId, services: ServicesDep, body: TestRequest | None = None
) -> TestResult:
    """Olark's **Send test**: post the test transcript (or another ``kind``) now and report
    what came back.

    ``url``, ``format`` and ``headers`` in the body test edits on screen without
    saving them; the stored endpoint is left as it is. Nothing is queued or
    retried; the destination guard applies as for any delivery.
    """
    return await manage.test_endpoint(services.engine, services.sender, site, endpoint, body)
