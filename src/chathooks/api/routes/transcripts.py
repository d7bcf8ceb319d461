"""``POST /api/v1/sites/{site}/transcripts``: take an Olark payload and queue its deliveries.

The body is any Olark payload, as JSON or as Olark's own form (``data=...``),
so a site can point an existing Olark-style sender at chathooks unchanged.
Deliveries are committed before the 202 goes out: once a caller has its
answer, the payload survives a crash.

This path is benchmarked: the key lookup is cached, and concurrent requests
share one transaction (see :mod:`chathooks.ingest`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from starlette.responses import Response

from chathooks.api.auth import SiteId, open_site
from chathooks.api.lean import lean_route
from chathooks.api.schemas import IngestAccepted
from chathooks.api.state import Services, ServicesDep
from chathooks.wire import (
    InvalidPayload,
    decode_document,
    dumps,
    validate_document,
    with_ipv4_visitor_ip,
)

#: The width of ``deliveries.conversation_id``.
MAX_CONVERSATION_ID = 200


async def _handle(request: Request) -> Response:
    """The route without FastAPI's dependency solving (see :mod:`chathooks.api.lean`).

    Its parameters are few and fixed: the site of the path, whose key check
    :func:`~chathooks.api.auth.open_site` makes as :data:`SiteId` does, and the
    app's services. Solving them as dependencies was about a fifth of the CPU
    of an ingest.
    """
    site = await open_site(request, request.path_params["site"])
    return await _accept(request, site, request.app.state.services)


router = APIRouter(
    prefix="/api/v1/sites/{site}/transcripts", tags=["transcripts"], route_class=lean_route(_handle)
)

_PAYLOAD_SCHEMA = {
    "type": "object",
    "description": "An Olark payload: transcript, offline message or event.",
    "required": ["id"],
    "properties": {"id": {"type": "string", "minLength": 1, "maxLength": MAX_CONVERSATION_ID}},
    "additionalProperties": True,
}
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _PAYLOAD_SCHEMA},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "data": {"type": "string", "description": "The payload as JSON text."}
                    },
                }
            },
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestAccepted,
    openapi_extra=_REQUEST_BODY,
    responses={400: {}, 413: {}, 415: {}},
)
async def ingest(request: Request, site: SiteId, services: ServicesDep) -> JSONResponse:
    """Queue the payload for each endpoint whose switches want it.

    A transcript goes to endpoints with ``auto_send``, or to every enabled
    endpoint when ``manuallySubmitted`` is true; an offline message to those
    with ``send_offline``; an event (``eventType``) to those with ``send_events``.
    """
    return await _accept(request, site, services)


async def _accept(request: Request, site: str, services: Services) -> JSONResponse:
    # The app's RequestLimits already refused a body over the limit while it arrived
    # (chathooks.http_limits); decode_document checks the size again as a backstop.
    limit = services.settings.max_body_bytes
    body = await request.body()
    document = decode_document(body, request.headers.get("content-type"), max_body_bytes=limit)
    payload = validate_document(document)
    if "\x00" in payload.id or not payload.id.encode("utf-8", "replace").decode() == payload.id:
        raise InvalidPayload("id: a conversation id cannot hold NUL or lone surrogates", field="id")
    if len(payload.id) > MAX_CONVERSATION_ID:
        raise InvalidPayload(
            f"id: a conversation id is at most {MAX_CONVERSATION_ID} characters", field="id"
        )

    # The document goes on as it came: the typed model only checked it, so a lax
    # coercion (a "4" read as 4) never changes what the endpoint receives. The
    # one change is the visitor's ip, left out unless it is IPv4 (as strict
    # consumers require, and as every payload chathooks builds has it).
    document = with_ipv4_visitor_ip(document)
    refs = await services.ingestor.ingest(site, payload, dumps(document))
    deliveries = [{"id": ref.id, "endpoint_id": ref.endpoint_id} for ref in refs]
    return JSONResponse({"deliveries": deliveries}, status_code=status.HTTP_202_ACCEPTED)
