"""Unauthenticated service routes: ``/api/v1/meta``, ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` is liveness: 200 whenever the process answers. ``/readyz`` is
readiness: 200 only when the database answers with the current schema and the
in-process worker is alive, so a load balancer stops sending ingest traffic to
a process that could not persist or deliver it (see :mod:`chathooks.api.readiness`).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from chathooks import __version__
from chathooks.api.errors import ErrorBody, unauthorized
from chathooks.api.metrics import CONTENT_TYPE
from chathooks.api.readiness import check_ready, expected_revision
from chathooks.api.schemas import Meta
from chathooks.api.state import ServicesDep
from chathooks.liveness import Heartbeat
from chathooks.queue import queue_stats

router = APIRouter(tags=["service"])


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    database: str
    schema_revision: str
    #: ``ok``, or ``none`` when this process runs no worker (``--no-worker``).
    worker: str


@router.get("/api/v1/meta", response_model=Meta)
async def meta(services: ServicesDep) -> Meta:
    """The version, and the ranges deliveries come from (for receivers' allow-lists)."""
    return Meta(version=__version__, egress_cidrs=list(services.settings.egress_cidrs))


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers. Whether it can do its work is ``/readyz``."""
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"model": ErrorBody}})
async def readyz(request: Request, services: ServicesDep) -> Response:
    """Readiness: the database answers, its schema is current, the in-process worker is alive."""
    heartbeat: Heartbeat | None = getattr(request.app.state, "heartbeat", None)
    problem = await check_ready(services.engine, heartbeat)
    if problem is not None:
        body = ErrorBody(error="not_ready", field=problem.field, message=problem.message)
        return JSONResponse(body.model_dump(), status_code=503)
    ready = Ready(
        status="ok",
        database="ok",
        schema_revision=expected_revision(),
        worker="none" if heartbeat is None else "ok",
    )
    return JSONResponse(ready.model_dump())


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}},
)
async def metrics(services: ServicesDep, request: Request) -> Response:
    """Prometheus metrics; queue gauges are read from the database now.

    With ``CHATHOOKS_METRICS_KEY`` set, only a scraper that sends that key
    (``Authorization: Bearer <key>``) is answered; the queue's sizes and the
    endpoints' failure counts are not for anyone who can reach the port.
    """
    expected = services.settings.metrics_key
    if expected and not _bearer_matches(request.headers.get("authorization"), expected):
        raise unauthorized("/metrics needs 'Authorization: Bearer <CHATHOOKS_METRICS_KEY>'")
    async with services.engine.connect() as connection:
        stats = await queue_stats(connection)
    services.metrics.set_queue(stats["by_status"], stats["oldest_pending_age_seconds"])
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)


def _bearer_matches(header: str | None, expected: str) -> bool:
    scheme, _, key = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        key.strip().encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )
