"""Worker heartbeats, and giving a dead worker's claims back as soon as it is known dead.

Every worker keeps a row in ``workers`` and rewrites its ``last_seen_at``
every few seconds. A claim otherwise comes back only when its lease (two
minutes by default) runs out; with heartbeats it comes back when either

- the worker's heartbeat is older than the timeout (it died, or lost the
  database for that long): any other worker, on any machine, releases its
  claims; or
- it ran on this machine and its process is gone: a restarted ``serve`` or
  ``worker`` sees that at start, so on SQLite (where every process shares one
  machine) a crash costs no more than the restart.

A claim released this way that its worker was in fact still posting is
recorded by nobody twice: :func:`chathooks.queue.record_outcomes` writes an
outcome only while its claim still carries the same owner and lease.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.tables import deliveries, workers
from chathooks.queue.claim import release_where

__all__ = [
    "FORGET_AFTER_SECONDS",
    "WorkerRow",
    "beat",
    "dead_on_this_host",
    "forget",
    "list_workers",
    "register",
    "release_claims_of",
    "release_claims_of_dead_workers",
    "this_host",
]

#: A worker not seen for a week is dropped from ``workers`` (and from ``chathooks status``).
FORGET_AFTER_SECONDS = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class WorkerRow:
    id: str
    host: str
    pid: int
    kind: str
    started_at: float
    last_seen_at: float


def this_host() -> str:
    return socket.gethostname()[:255]


async def register(
    connection: AsyncConnection, worker_id: str, *, kind: str, now: float | None = None
) -> None:
    """Add this process's worker to ``workers``, seen now."""
    at = time.time() if now is None else now
    await connection.execute(
        insert(workers).values(
            id=worker_id,
            host=this_host(),
            pid=os.getpid(),
            kind=kind,
            started_at=at,
            last_seen_at=at,
        )
    )


async def beat(connection: AsyncConnection, worker_id: str, *, now: float | None = None) -> bool:
    """Mark ``worker_id`` seen now; False when its row is gone (another worker gave it up)."""
    at = time.time() if now is None else now
    result = await connection.execute(
        update(workers).where(workers.c.id == worker_id).values(last_seen_at=at)
    )
    return bool(result.rowcount)


async def forget(connection: AsyncConnection, worker_ids: Sequence[str]) -> None:
    """Remove workers' rows (one stopping cleanly, or dead ones whose claims were released)."""
    if worker_ids:
        await connection.execute(delete(workers).where(workers.c.id.in_(list(worker_ids))))


async def list_workers(connection: AsyncConnection) -> list[WorkerRow]:
    """Every known worker, most recently seen first."""
    rows = await connection.execute(
        select(
            workers.c.id,
            workers.c.host,
            workers.c.pid,
            workers.c.kind,
            workers.c.started_at,
            workers.c.last_seen_at,
        ).order_by(workers.c.last_seen_at.desc(), workers.c.id)
    )
    return [WorkerRow(**row._mapping) for row in rows]


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def dead_on_this_host(rows: Sequence[WorkerRow], *, me: str) -> list[str]:
    """Workers that ran on this machine in a process that no longer exists (or is this one)."""
    host, pid = this_host(), os.getpid()
    return [
        row.id
        for row in rows
        if row.id != me
        and row.host == host
        # This very pid under another worker id: an earlier process whose pid was reused.
        and (row.pid == pid or not _process_exists(row.pid))
    ]


async def release_claims_of(
    connection: AsyncConnection, owners: Sequence[str], *, now: float | None = None
) -> int:
    """Make every claim ``owners`` hold due again at once; returns how many.

    As :func:`chathooks.queue.release` does for a worker's own unsent claims:
    a delivery never attempted is ``pending`` again, one attempted before
    ``retrying``; the attempt that was under way was never recorded.
    """
    if not owners:
        return 0
    return await release_where(connection, deliveries.c.lease_owner.in_(list(owners)), now=now)


async def release_claims_of_dead_workers(
    connection: AsyncConnection,
    *,
    me: str,
    timeout_seconds: float,
    now: float | None = None,
) -> tuple[list[str], int]:
    """Release the claims of every worker known dead; returns their ids and the claims freed.

    Dead: not seen for ``timeout_seconds``, or gone from this machine. Their
    rows stay as they were (``chathooks status`` shows when each was last
    seen) until :data:`FORGET_AFTER_SECONDS`; releasing again finds nothing.
    """
    at = time.time() if now is None else now
    rows = await list_workers(connection)
    stale = {row.id for row in rows if row.id != me and row.last_seen_at < at - timeout_seconds}
    dead = sorted(stale | set(dead_on_this_host(rows, me=me)))
    released = await release_claims_of(connection, dead, now=at)
    # Dead for a week: nothing of theirs can still be claimed; status no longer lists them.
    await forget(
        connection, [row.id for row in rows if row.last_seen_at < at - FORGET_AFTER_SECONDS]
    )
    return dead, released
