"""Is this process ready for traffic? The database answers, its schema is current, and the
in-process worker (when there is one) is alive.

``/healthz`` only says the process answers (liveness: restart it when this
fails); ``/readyz`` says whether it can do its job right now (readiness: send
it no traffic while this fails). The first reason found is the answer.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db.engine import shown_url
from chathooks.db.migrate import head_revision
from chathooks.liveness import Heartbeat

__all__ = ["NotReady", "check_ready", "expected_revision"]

#: A database that takes longer than this to answer one query is as good as down.
CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class NotReady:
    #: ``database``, ``schema`` or ``worker``.
    field: str
    message: str


@functools.cache
def expected_revision() -> str:
    return head_revision()


async def _schema_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        try:
            revision = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
        except SQLAlchemyError:
            return None
        return None if revision is None else str(revision)


async def check_ready(engine: AsyncEngine, heartbeat: Heartbeat | None) -> NotReady | None:
    """None when ready; otherwise what is wrong."""
    try:
        revision = await asyncio.wait_for(_schema_revision(engine), CHECK_SECONDS)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = "it did not answer in time" if isinstance(exc, TimeoutError) else _first_line(exc)
        return NotReady(
            "database", f"the database {shown_url(str(engine.url))} is not reachable: {reason}"
        )
    expected = expected_revision()
    if revision != expected:
        state = "empty" if revision is None else f"at schema revision {revision}"
        return NotReady(
            "schema", f"the database is {state}; this chathooks needs revision {expected}"
        )
    if heartbeat is not None and (why := heartbeat.alive()) is not None:
        return NotReady("worker", why)
    return None


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    lines = str(original if original is not None else exc).splitlines()
    return lines[0] if lines else type(exc).__name__
