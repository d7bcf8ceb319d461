"""A worker's heartbeat: it proves the worker alive, and finds the claims of dead ones.

:func:`run_worker` runs a :class:`chathooks.worker.Worker` the way ``serve``
and ``chathooks worker`` do: before the first claim it registers the worker
and releases the claims of workers known dead (see
:mod:`chathooks.queue.workers`), so a restarted process picks up what its
killed predecessor held at once; meanwhile it beats every
``heartbeat_interval`` and keeps looking for workers that stopped beating;
when the worker stops cleanly its row goes.

:class:`Heartbeat` also answers ``/readyz``: the in-process worker is alive
while its loop runs and its last beat reached the database recently.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.queue import write_transaction
from chathooks.queue.workers import beat, forget, register, release_claims_of_dead_workers
from chathooks.settings import Settings
from chathooks.worker import Worker, set_within

__all__ = ["Heartbeat", "run_worker"]

log = logging.getLogger("chathooks.worker")


class Heartbeat:
    """The ``workers`` row of one worker, kept fresh while it runs."""

    def __init__(self, engine: AsyncEngine, settings: Settings, worker_id: str, *, kind: str):
        self.engine = engine
        self.settings = settings
        self.worker_id = worker_id
        self.kind = kind
        #: ``time.time()`` of the last beat that reached the database.
        self.last_beat: float | None = None
        self.running = False

    def alive(self, now: float | None = None) -> str | None:
        """None when the worker is alive; otherwise why it is not."""
        at = time.time() if now is None else now
        if not self.running:
            return "the delivery worker is not running"
        if self.last_beat is None or at - self.last_beat > self.settings.worker_timeout:
            return "the delivery worker has not written its heartbeat to the database recently"
        return None

    async def start(self) -> None:
        """Register, and release what dead workers held (before this one claims anything)."""
        self.running = True
        try:
            async with write_transaction(self.engine) as connection:
                await register(connection, self.worker_id, kind=self.kind)
                await self._release_dead(connection)
        except Exception:
            log.exception("cannot register worker %s; retrying at its next beat", self.worker_id)
            return
        self.last_beat = time.time()

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every ``heartbeat_interval`` until ``stop``; a failed beat is tried again."""
        while not await set_within(stop, self.settings.heartbeat_interval):
            try:
                async with write_transaction(self.engine) as connection:
                    if not await beat(connection, self.worker_id):
                        # Forgotten while away (e.g. the database was restored): back in the list.
                        await register(connection, self.worker_id, kind=self.kind)
                    await self._release_dead(connection)
            except Exception:
                log.warning("worker %s cannot write its heartbeat", self.worker_id, exc_info=True)
                continue
            self.last_beat = time.time()

    async def finish(self) -> None:
        """Remove this worker's row: it stopped cleanly and holds nothing."""
        self.running = False
        try:
            async with write_transaction(self.engine) as connection:
                await forget(connection, [self.worker_id])
        except Exception:
            log.warning("cannot remove worker %s from the workers list", self.worker_id)

    async def _release_dead(self, connection: AsyncConnection) -> None:
        dead, released = await release_claims_of_dead_workers(
            connection, me=self.worker_id, timeout_seconds=self.settings.worker_timeout
        )
        if released:
            log.warning(
                "released %d claim(s) of dead worker(s) %s: they are due again now",
                released,
                ", ".join(dead),
            )


async def run_worker(
    worker: Worker, stop: asyncio.Event, *, kind: str, heartbeat: Heartbeat | None = None
) -> None:
    """Run ``worker`` until ``stop`` with its heartbeat (see the module's docstring)."""
    heartbeat = heartbeat or Heartbeat(worker.engine, worker.settings, worker.worker_id, kind=kind)
    await heartbeat.start()
    beating = asyncio.create_task(heartbeat.run(stop), name="chathooks-heartbeat")
    clean = False
    try:
        await worker.run(stop)
        clean = True
    finally:
        heartbeat.running = False
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        if clean:
            await heartbeat.finish()
