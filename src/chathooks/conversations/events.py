"""The event stream an operator console listens to: how each delivery of a chat went.

When an operator types ``!lead``, Olark shows them the ``integrationUrl`` the
endpoint answered. chathooks does the same through Server-Sent Events: one
``delivery`` event each time a delivery of the conversation succeeds or
fails, carrying ``integration_url``.

The delivery may be made by a worker in another process (``chathooks
worker`` on PostgreSQL), so the stream's source of truth is the database.
It is not polled by each stream: 400 open consoles polling every 0.3 s made
the ingest path's p99 fifty times slower. :class:`OutcomeSignal` runs one
poll per process for every conversation a stream watches (a single query
that gives each one's latest delivery change) and wakes only the streams
whose conversation changed, which then read their deliveries once. A worker
in the same process also wakes the stream at once, so the common
single-process case reports without even the polling delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

from chathooks.conversations.store import PostedDelivery
from chathooks.queue.statuses import FAILED, HELD, RETRYING, SUCCEEDED

__all__ = [
    "BACKSTOP_SECONDS",
    "KEEPALIVE_SECONDS",
    "POLL_SECONDS",
    "REPORTED_STATUSES",
    "OutcomeSignal",
    "backstop_seconds",
    "delivery_events",
    "event_data",
]

log = logging.getLogger("chathooks.conversations")

#: How often the process's one poll reads the watched conversations' deliveries.
POLL_SECONDS = 0.3
#: How often, on average, a stream that is woken by the shared poll still reads on its own,
#: as a backstop. Each stream's period is drawn around it (:func:`backstop_seconds`): 400
#: consoles opened together and reading on the same beat blocked SQLite's loop for long
#: enough to multiply the ingest path's p99 by 3 to 12.
BACKSTOP_SECONDS = 30.0
#: A comment line this often keeps proxies and browsers from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
#: The states that are news to an operator: it worked, it failed and will retry, it gave up,
#: it is held (its endpoint is disabled).
REPORTED_STATUSES = frozenset({SUCCEEDED, RETRYING, FAILED, HELD})


class _Outcome(Protocol):
    """What the signal reads of a worker's outcome (:class:`chathooks.queue.Outcome`)."""

    @property
    def site_id(self) -> str: ...

    @property
    def conversation_id(self) -> str | None: ...


#: The conversations a process's streams watch, as (site id, conversation id).
Key = tuple[str, str]
#: One read of the latest delivery change of each watched conversation (any
#: value that changes when one of its deliveries does; absent: none yet).
ReadChanges = Callable[[Sequence[Key]], Awaitable[dict[Key, Any]]]


class OutcomeSignal:
    """Wakes this process's event streams when a delivery of their conversation changes.

    Call :meth:`notify` from the worker's ``on_outcome`` listener, which runs
    once the outcomes are committed. With ``read_changes``, one task also
    polls the database every ``poll_seconds`` for all watched conversations
    at once, for outcomes recorded by workers in other processes; it runs
    only while some stream watches. Streams of other conversations are not
    woken.
    """

    def __init__(
        self, read_changes: ReadChanges | None = None, *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self._waiters: dict[Key, set[asyncio.Event]] = {}
        self._read_changes = read_changes
        self._poll_seconds = poll_seconds
        self._seen: dict[Key, Any] = {}
        self._poller: asyncio.Task[None] | None = None
        #: Polls made, for tests and metrics: one per interval, however many streams.
        self.polls = 0

    @property
    def polls_for_streams(self) -> bool:
        """Whether streams may rely on this signal instead of polling themselves."""
        return self._read_changes is not None

    async def _poll(self) -> None:
        assert self._read_changes is not None
        while self._waiters:
            keys = list(self._waiters)
            try:
                latest = await self._read_changes(keys)
            except Exception:
                log.warning("polling watched conversations failed; trying again", exc_info=True)
                latest = None
            self.polls += 1
            if latest is not None:
                for key in keys:
                    value = latest.get(key)
                    if key not in self._seen or self._seen[key] != value:
                        self._seen[key] = value
                        for waiter in self._waiters.get(key, ()):
                            waiter.set()
            await asyncio.sleep(self._poll_seconds)
        self._poller = None

    async def notify(self, outcomes: Sequence[_Outcome]) -> None:
        """Wake the streams of these outcomes' conversations (the worker's listener shape)."""
        for outcome in outcomes:
            if outcome.conversation_id is None:
                continue
            for waiter in self._waiters.get((outcome.site_id, outcome.conversation_id), ()):
                waiter.set()

    @contextlib.contextmanager
    def watch(self, site_id: str, conversation_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever a delivery of this conversation has an outcome."""
        key = (site_id, conversation_id)
        waiter = asyncio.Event()
        self._waiters.setdefault(key, set()).add(waiter)
        if self._read_changes is not None and self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="chathooks-stream-poll")
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[key]
                    self._seen.pop(key, None)


def backstop_seconds(mean: float = BACKSTOP_SECONDS) -> float:
    """One stream's backstop period: ``mean`` ± 50 %, so that streams do not read together."""
    return mean * random.uniform(0.5, 1.5)


def event_data(post: PostedDelivery) -> dict[str, Any]:
    """The JSON of one ``delivery`` event (also what ``integrations`` lists per endpoint)."""
    return {
        "delivery_id": post.delivery_id,
        "endpoint_id": post.endpoint_id,
        "trigger": post.trigger,
        "command": post.command,
        "operator_id": post.operator_id,
        "version": post.version,
        "status": post.status,
        "final": post.status in (SUCCEEDED, FAILED),
        "attempt_count": post.attempt_count,
        "status_code": post.status_code,
        "integration_url": post.integration_url,
        "error": post.error,
        # Epoch seconds: when the payload was made (the console orders its lines by it),
        # and when a retrying delivery is tried next (what it waits for).
        "posted_at": post.posted_at,
        "next_attempt_at": post.next_attempt_at if post.status == "retrying" else None,
    }


def _event(post: PostedDelivery) -> str:
    # The id lets a reconnecting EventSource resume: it sends it back as Last-Event-ID.
    return (
        f"id: {post.updated_at:.6f}\n"
        "event: delivery\n"
        f"data: {json.dumps(event_data(post), separators=(',', ':'))}\n\n"
    )


async def delivery_events(
    read_posts: Callable[[], Awaitable[list[PostedDelivery]]],
    *,
    disconnected: Callable[[], Awaitable[bool]],
    wake: asyncio.Event | None = None,
    since: float | None = None,
    poll_seconds: float = POLL_SECONDS,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
) -> AsyncIterator[str]:
    """Server-Sent Events text, chunk by chunk, until the client goes away.

    The stream first reports the outcomes that already happened (after
    ``since``, the ``Last-Event-ID`` of a reconnecting client), then each new
    one as it happens.
    """
    seen: dict[str, tuple[str, int]] = {}
    first_read = True
    yield ": connected\n\n"  # sends the headers now, so the client knows it is listening
    last_write = time.monotonic()
    while not await disconnected():
        for post in await read_posts():
            state = (post.status, post.attempt_count)
            if seen.get(post.delivery_id) == state:
                continue
            seen[post.delivery_id] = state
            if post.status not in REPORTED_STATUSES:
                continue
            if first_read and since is not None and post.updated_at <= since:
                continue
            yield _event(post)
            last_write = time.monotonic()
        first_read = False
        if time.monotonic() - last_write >= keepalive_seconds:
            yield ": keep-alive\n\n"
            last_write = time.monotonic()
        await _sleep(wake, poll_seconds)


async def _sleep(wake: asyncio.Event | None, seconds: float) -> None:
    """Wait ``seconds``, or less when ``wake`` is set."""
    if wake is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
    wake.clear()
