"""The composition root of the service: how its engine, its worker and its app are built.

``chathooks serve``, ``chathooks worker``, the admin commands and the test
helpers all build what they run here, so each is put together one way. The
FastAPI app is imported only by :func:`build_app`: a ``chathooks worker``
process, or a CLI command, never loads the web stack it does not use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.attempt_log import logging_outcomes
from chathooks.conversations import idle_check
from chathooks.db.engine import create_engine
from chathooks.db.migrate import current_revision_async, head_revision
from chathooks.queue import Outcome
from chathooks.retention import retention_job
from chathooks.sealing import bind_keyring, check_keyring
from chathooks.settings import Settings
from chathooks.worker import Worker

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "build_app",
    "new_worker",
    "open_engine",
    "open_service_engine",
    "require_current_schema",
]


def open_engine(settings: Settings, *, inline: bool = False) -> AsyncEngine:
    """The engine for ``settings.database_url``.

    ``inline`` runs SQLite statements on the event loop, which the long-running
    service and worker want (see :mod:`chathooks.db.engine`); a short CLI
    command does not need it.
    """
    engine = create_engine(
        settings.database_url, inline=inline, synchronous=settings.sqlite_synchronous
    )
    bind_keyring(engine, settings.keyring())
    return engine


async def open_service_engine(settings: Settings) -> AsyncEngine:
    """:func:`open_engine` for a long-running service or worker, once the schema is current
    and the service key opens the secrets stored (a wrong key stops it here)."""
    await require_current_schema(settings.database_url)
    engine = open_engine(settings, inline=True)
    try:
        async with engine.connect() as connection:
            await check_keyring(connection)
    except BaseException:
        await engine.dispose()
        raise
    return engine


def new_worker(
    engine: AsyncEngine,
    settings: Settings,
    *,
    on_outcome: Callable[[list[Outcome]], Awaitable[None]] | None = None,
) -> Worker:
    """A delivery worker that also completes idle conversations and deletes what is past
    retention, as every worker should; it logs every failed attempt."""
    return Worker(
        engine,
        settings,
        periodic=[idle_check(engine, settings), retention_job(engine, settings)],
        on_outcome=logging_outcomes(on_outcome),
    )


async def require_current_schema(database_url: str) -> None:
    """Refuse to start on a database ``chathooks migrate`` has not brought up to date."""
    current, expected = await current_revision_async(database_url), head_revision()
    if current != expected:
        state = "empty" if current is None else f"at schema revision {current}"
        raise RuntimeError(
            f"the database is {state}; this chathooks needs revision {expected}. "
            "Run 'chathooks migrate' first (chathooks serve does it for you)"
        )


def build_app(
    settings: Settings, *, run_worker: bool = True, freeze_startup: bool = False
) -> FastAPI:
    """The service's FastAPI app (API, web UI, and an in-process worker unless told not to)."""
    from chathooks.api.app import create_app

    return create_app(settings, run_worker=run_worker, freeze_startup=freeze_startup)
