"""What the routes share for the life of the app: settings, database, keys, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.api.auth import Authenticator
from chathooks.api.metrics import ServiceMetrics
from chathooks.conversations import ConversationService
from chathooks.ingest import Ingestor
from chathooks.sender import Sender
from chathooks.settings import Settings
from chathooks.worker import Worker

__all__ = ["Cursor", "Limit", "Services", "ServicesDep", "not_stored"]


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    auth: Authenticator
    metrics: ServiceMetrics
    #: Posts Send-test requests right away (queued deliveries go through the worker's).
    sender: Sender
    #: Queues whole payloads, committing concurrent requests together.
    ingestor: Ingestor
    #: Chats reported as they happen; commits concurrent chat lines together.
    conversations: ConversationService
    #: This process's worker (None with ``--no-worker``).
    worker: Worker | None = None


async def _services(request: Request) -> Services:
    # async: FastAPI would run a plain function in its thread pool, on every request.
    services: Services = request.app.state.services
    return services


#: A route parameter: the app's shared services.
ServicesDep = Annotated[Services, Depends(_services)]
#: Page size of a list.
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (1-500).")]
#: ``next_cursor`` of the previous page.
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]


#: Headers of an answer that holds a secret or a key: no cache on the way may keep it.
_NOT_STORED = {"Cache-Control": "no-store"}


async def not_stored(response: Response) -> None:
    """A route dependency (``dependencies=[Depends(not_stored)]``): the answer holds a secret."""
    response.headers.update(_NOT_STORED)
