"""``/api/v1/sites/{site}/endpoints``: where a site's payloads go, and which ones."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from chathooks import manage
from chathooks.api.auth import SiteId
from chathooks.api.errors import not_found
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
from chathooks.api.state import Cursor, Limit, Services, ServicesDep
from chathooks.queue import health_of, new_delivery_id, release_held, write_transaction
from chathooks.repository import endpoints as repository
from chathooks.sender import build_request
from chathooks.wire import TestPayloadKind, dumps, send_test_payload

router = APIRouter(prefix="/api/v1/sites/{site}/endpoints", tags=["endpoints"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EndpointWithSecret)
async def create(body: EndpointCreate, site: SiteId, services: ServicesDep) -> EndpointWithSecret:
    """Add an endpoint; the answer holds its signing secret."""
    async with write_transaction(services.engine) as connection:
        endpoint = await repository.create_endpoint(connection, site, **body.model_dump())
        health = await health_of(connection, [endpoint.id])
    return EndpointWithSecret.of(endpoint, health[endpoint.id])


@router.get("", response_model=Page[EndpointOut])
async def list_all(
    site: SiteId, services: ServicesDep, limit: Limit = 100, cursor: Cursor = None
) -> Page[EndpointOut]:
    async with services.engine.connect() as connection:
        items, next_cursor = await repository.list_endpoints(
            connection, site, limit=limit, cursor=cursor
        )
        health = await health_of(connection, [e.id for e in items])
    return Page(items=[EndpointOut.of(e, health[e.id]) for e in items], next_cursor=next_cursor)


@router.get("/{endpoint}", response_model=EndpointOut)
async def read(endpoint: str, site: SiteId, services: ServicesDep) -> EndpointOut:
    async with services.engine.connect() as connection:
        found = await repository.get_endpoint(connection, site, endpoint)
        health = {} if found is None else await health_of(connection, [found.id])
    if found is None:
        raise not_found(f"endpoint {endpoint!r}", field="endpoint")
    return EndpointOut.of(found, health[found.id])


@router.patch("/{endpoint}", response_model=EndpointOut)
async def change(
    endpoint: str, body: EndpointUpdate, site: SiteId, services: ServicesDep
) -> EndpointOut:
    """Change only the keys sent; ``"secret": null`` stops signing.

    ``"enabled": true`` sends what was held while the endpoint was disabled, in order.
    """
    changes = body.changes()
    async with write_transaction(services.engine) as connection:
        updated = await repository.update_endpoint(connection, site, endpoint, changes)
        if updated is not None and changes.get("enabled") is True:
            await release_held(connection, updated.id)
        health = {} if updated is None else await health_of(connection, [updated.id])
    if updated is None:
        raise not_found(f"endpoint {endpoint!r}", field="endpoint")
    return EndpointOut.of(updated, health[updated.id])


@router.delete("/{endpoint}", status_code=status.HTTP_204_NO_CONTENT)
async def remove(endpoint: str, site: SiteId, services: ServicesDep) -> Response:
    """Delete an endpoint together with its deliveries."""
    async with write_transaction(services.engine) as connection:
        deleted = await repository.delete_endpoint(connection, site, endpoint)
    if not deleted:
        raise not_found(f"endpoint {endpoint!r}", field="endpoint")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


#: An answer holding a secret is kept by no cache on the way.
_NOT_STORED = {"Cache-Control": "no-store"}


@router.get("/{endpoint}/secret", response_model=EndpointSecret)
async def reveal_secret(
    endpoint: str, site: SiteId, services: ServicesDep, response: Response
) -> EndpointSecret:
    """The signing secret again; during a rotation's grace also the one it replaced."""
    response.headers.update(_NOT_STORED)
    return await manage.reveal_secret(services.engine, site, endpoint)


@router.post("/{endpoint}/rotate-secret", response_model=EndpointSecret)
async def rotate_secret(
    endpoint: str,
    site: SiteId,
    services: ServicesDep,
    response: Response,
    body: RotateSecretRequest | None = None,
) -> EndpointSecret:
    """A new signing secret. For ``grace_seconds`` (default one day) every attempt, retries
    and redeliveries included, carries two ``v1`` signatures, by the new secret and the old
    one, so receivers can switch at their pace; then only the new one."""
    response.headers.update(_NOT_STORED)
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
    return await _send_test(
        services,
        url=body.url,
        fmt=body.format,
        secret=body.secret,
        headers=body.headers,
        kind=body.kind,
        saved=False,
    )


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
    async with services.engine.connect() as connection:
        found = await repository.get_endpoint(connection, site, endpoint)
    if found is None:
        raise not_found(f"endpoint {endpoint!r}", field="endpoint")
    wanted = body or TestRequest()
    url = wanted.url if wanted.url is not None else found.url
    fmt = wanted.format if wanted.format is not None else found.format
    headers = wanted.headers if wanted.headers is not None else found.headers
    return await _send_test(
        services,
        url=url,
        fmt=fmt,
        secret=found.secret,
        headers=headers,
        kind=wanted.kind,
        saved=(url, fmt, headers) == (found.url, found.format, found.headers),
    )


async def _send_test(
    services: Services,
    *,
    url: str,
    fmt: str,
    secret: str | None,
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
    result = await services.sender.send(request)
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
