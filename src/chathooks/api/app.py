"""The sender service as one FastAPI app: the API, and (by default) a delivery worker.

``create_app`` builds the app; its lifespan opens the database, makes sure an
admin key exists, and runs a :class:`chathooks.worker.Worker` in the same
process so ``chathooks serve`` alone delivers. Extra workers (``chathooks
worker``) can run anywhere else against the same PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks import __version__
from chathooks.api import openapi
from chathooks.api.auth import Authenticator, key_gate
from chathooks.api.errors import install_error_handlers
from chathooks.api.lean import LeanRoutes
from chathooks.api.metrics import ServiceMetrics
from chathooks.api.routes import (
    alerts,
    conversations,
    deliveries,
    endpoints,
    erasures,
    meta,
    sites,
    transcripts,
)
from chathooks.api.state import Services
from chathooks.conversations import ConversationService, OutcomeSignal
from chathooks.conversations.store import latest_changes
from chathooks.heap import freeze_startup_objects
from chathooks.http_limits.body import RequestLimits
from chathooks.idempotency.middleware import IdempotencyMiddleware
from chathooks.ingest import Ingestor
from chathooks.liveness import Heartbeat, run_worker
from chathooks.queue import Outcome, write_transaction
from chathooks.repository.sites import create_admin_key, has_admin_key
from chathooks.runtime import new_worker, open_service_engine, require_current_schema
from chathooks.sender import Sender
from chathooks.settings import Settings
from chathooks.ui import routes as ui
from chathooks.worker import Worker

__all__ = ["create_app", "new_worker", "require_current_schema"]

log = logging.getLogger("chathooks.api")

#: How long shutdown waits for in-flight deliveries before leaving them to their leases.
WORKER_STOP_SECONDS = 30.0


def create_app(
    settings: Settings | None = None,
    *,
    run_worker: bool = True,
    freeze_startup: bool = False,
) -> FastAPI:
    """The service app for ``settings`` (default: from ``CHATHOOKS_*``).

    ``freeze_startup`` keeps what start-up made out of the garbage collector's
    later scans (see :mod:`chathooks.heap`); a serving process wants it, a test
    that builds many apps does not.
    """
    config = settings if settings is not None else Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await open_service_engine(config)
        try:
            if config.admin_key is None:
                await _ensure_admin_key(engine)
            metrics = ServiceMetrics()
            outcomes = OutcomeSignal(_change_reader(engine))
            worker = (
                new_worker(engine, config, on_outcome=_listeners(metrics, outcomes))
                if run_worker
                else None
            )
            heartbeat = (
                None
                if worker is None
                else Heartbeat(engine, config, worker.worker_id, kind="serve")
            )
            async with Sender.from_settings(config) as sender:
                app.state.conversation_outcomes = outcomes
                app.state.heartbeat = heartbeat
                app.state.services = Services(
                    settings=config,
                    engine=engine,
                    auth=Authenticator(engine, admin_key=config.admin_key),
                    metrics=metrics,
                    sender=sender,
                    ingestor=Ingestor(engine),
                    conversations=ConversationService(engine),
                    worker=worker,
                )
                if freeze_startup:
                    freeze_startup_objects()
                async with _running(worker, heartbeat):
                    yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="chathooks",
        version=__version__,
        summary="Olark-compatible chat transcript webhooks, sent durably.",
        lifespan=lifespan,
        openapi_tags=openapi.TAGS,
        generate_unique_id_function=openapi.operation_id,
        # No Swagger UI: it needs a CDN; see chathooks.api.openapi.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # The last added runs first: bodies are capped and keys checked before a repeated
    # request is looked up (and its body hashed) by its Idempotency-Key.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RequestLimits, limit_for=body_limits(config), gate=key_gate)
    # Routes are matched in this order, by the router and by the key gate: the
    # hottest route (one request per chat) first. No two routers share a path.
    routers = [
        module.router
        for module in (
            transcripts,
            sites,
            alerts,
            endpoints,
            deliveries,
            conversations,
            erasures,
            meta,
            ui,
        )
    ]
    for router in routers:
        app.include_router(router)
    # The lean routes' requests go to their handlers without the router's walk through
    # every route (chathooks.api.lean); inside all middleware and the error handlers.
    app.router.middleware_stack = LeanRoutes(
        app.router.middleware_stack, [route for router in routers for route in router.routes]
    )
    document: dict[str, Any] = {}

    def contract() -> dict[str, Any]:
        if not document:
            document.update(openapi.contract(app))
        return document

    app.openapi = contract  # type: ignore[method-assign]
    return app


#: The body limit of requests that change settings (sites, endpoints): they are small.
MAX_SETTINGS_BODY_BYTES = 64 * 1024


def body_limits(settings: Settings) -> Callable[[str], int]:
    """The body limit of each path: chats and transcripts ``max_body_bytes``, settings 64 KiB."""

    def limit_for(path: str) -> int:
        if path.rstrip("/") == "/api/v1/sites" or "/endpoints" in path:
            return MAX_SETTINGS_BODY_BYTES
        return settings.max_body_bytes

    return limit_for


async def _ensure_admin_key(engine: AsyncEngine) -> None:
    """Make an admin key on first start and print it; afterwards its stored hash opens it."""
    async with write_transaction(engine) as connection:
        if await has_admin_key(connection):
            return
        key = await create_admin_key(connection)
    print(
        "chathooks: this is the admin key (it creates sites). It is shown only now; "
        f"store it, or set CHATHOOKS_ADMIN_KEY instead:\n  {key}",
        file=sys.stdout,
        flush=True,
    )


def _change_reader(
    engine: AsyncEngine,
) -> Callable[[Sequence[tuple[str, str]]], Awaitable[dict[tuple[str, str], Any]]]:
    """The one read the event streams of this process share (see OutcomeSignal)."""

    async def read(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        async with engine.connect() as connection:
            return dict(await latest_changes(connection, keys))

    return read


def _listeners(
    metrics: ServiceMetrics, outcomes: OutcomeSignal
) -> Callable[[list[Outcome]], Awaitable[None]]:
    """The worker's ``on_outcome``: count for /metrics, wake operator consoles."""

    async def on_outcome(batch: list[Outcome]) -> None:
        metrics.observe(batch)
        await outcomes.notify(batch)

    return on_outcome


@contextlib.asynccontextmanager
async def _running(worker: Worker | None, heartbeat: Heartbeat | None) -> AsyncIterator[None]:
    """Run ``worker`` (with its heartbeat) for the life of the block; stop it gracefully after."""
    if worker is None:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(worker, stop, kind="serve", heartbeat=heartbeat), name="chathooks-worker"
    )
    task.add_done_callback(_report_worker_exit)
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, WORKER_STOP_SECONDS)
        except TimeoutError:
            log.warning("the worker did not stop in %.0fs; leases will expire", WORKER_STOP_SECONDS)


def _report_worker_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the delivery worker stopped", exc_info=task.exception())
