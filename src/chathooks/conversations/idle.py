"""The worker's periodic idle check: chats with no message for a while complete.

Olark completes a chat when it goes quiet; chathooks does the same after
``CHATHOOKS_IDLE_TIMEOUT`` seconds (default 1800) without a message or a
command. Every worker runs the check; the service closes each conversation
with one conditional UPDATE, so however many workers race, each idle chat is
completed (and its transcript queued) exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.conversations.service import ConversationService
from chathooks.settings import Settings

__all__ = ["check_interval", "idle_check"]

log = logging.getLogger("chathooks.conversations")

#: The check never runs less often than this, so a chat completes at most this late.
MAX_INTERVAL_SECONDS = 30.0
#: ... nor more often than this, however short the timeout.
MIN_INTERVAL_SECONDS = 0.2

PeriodicJob = tuple[float, Callable[[], Awaitable[None]]]


def check_interval(idle_timeout: float) -> float:
    """How often to look for idle chats: a tenth of the timeout, within sane bounds."""
    return min(MAX_INTERVAL_SECONDS, max(MIN_INTERVAL_SECONDS, idle_timeout / 10))


def idle_check(engine: AsyncEngine, settings: Settings) -> PeriodicJob:
    """``(interval_seconds, job)`` for the worker's ``periodic`` list."""
    service = ConversationService(engine)

    async def complete_idle_conversations() -> None:
        closed = await service.close_idle(settings.idle_timeout)
        if closed:
            log.info("completed %d idle conversation(s)", closed)

    return check_interval(settings.idle_timeout), complete_idle_conversations
