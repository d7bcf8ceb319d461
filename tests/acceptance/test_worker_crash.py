"""A worker killed mid-run loses nothing: after a restart every delivery arrives.

The real ``chathooks worker`` command runs as a separate process against
SQLite and PostgreSQL; it is SIGKILLed (no chance to clean up) while 2,000
deliveries are going out, then started again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, insert, select

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade
from chathooks.db.tables import deliveries, endpoints, sites
from chathooks.queue import NewDelivery, enqueue
from support.receiver import RecordingReceiver

CHATHOOKS = Path(sys.executable).with_name("chathooks")
TOTAL = 2000
CONVERSATIONS = 100
SITE = "site_crash"

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own: Playwright's sync API (used by other
    acceptance tests in the same session) keeps an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def queue_deliveries(database_url: str, receiver_url: str) -> list[tuple[str, str]]:
    """(delivery id, conversation id) of each queued delivery, in queue order."""

    async def run() -> list[tuple[str, str]]:
        engine = create_engine(database_url)
        now = time.time()
        conversations = [f"conv{i % CONVERSATIONS}" for i in range(TOTAL)]
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(sites).values(id=SITE, name="crash", api_key_hash="h", created_at=now)
                )
                await connection.execute(
                    insert(endpoints).values(
                        id="ep_crash",
                        site_id=SITE,
                        url=receiver_url,
                        created_at=now,
                        updated_at=now,
                    )
                )
                refs = await enqueue(
                    connection,
                    [
                        NewDelivery(
                            site_id=SITE,
                            endpoint_id="ep_crash",
                            conversation_id=conversation,
                            payload_kind="transcript",
                            trigger="api",
                            payload=json.dumps({"kind": "Conversation", "id": conversation}),
                        )
                        for conversation in conversations
                    ],
                )
        finally:
            await engine.dispose()
        return [(ref.id, conv) for ref, conv in zip(refs, conversations, strict=True)]

    return run_async(run())


def count_by_status(database_url: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
                )
                return {status: int(count) for status, count in rows}
        finally:
            await engine.dispose()

    return run_async(run())


@contextmanager
def worker_process(database_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "CHATHOOKS_ALLOWED_DESTINATIONS": "127.0.0.0/8",
        # Short leases, so the killed worker's claims come back within the test.
        "CHATHOOKS_LEASE_SECONDS": "3",
        "CHATHOOKS_POLL_INTERVAL": "0.1",
        "CHATHOOKS_RETRY_SCHEDULE": "0.2,0.2,0.2",
        "CHATHOOKS_WORKER_CONCURRENCY": "8",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(CHATHOOKS), "worker", "--database-url", database_url],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def wait_until_all_succeeded(database_url: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while (counts := count_by_status(database_url)).get("succeeded", 0) < TOTAL:
        if time.monotonic() > deadline:
            raise AssertionError(f"not all delivered: {counts}\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def test_a_killed_worker_loses_no_delivery(
    database_url: str, receiver: RecordingReceiver, tmp_path: Path
) -> None:
    upgrade(database_url)
    queued = queue_deliveries(database_url, receiver.url)
    # Slow replies keep the run long enough to kill the worker in the middle of it.
    receiver.reply(200, delay=0.01, times=TOTAL * 2)
    log = tmp_path / "worker.log"

    with worker_process(database_url, log) as first:
        receiver.wait_for(TOTAL // 4, timeout=60)
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    assert count_by_status(database_url).get("succeeded", 0) < TOTAL, "killed too late to test"

    with worker_process(database_url, log) as second:
        wait_until_all_succeeded(database_url, log)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()[-3000:]

    assert count_by_status(database_url) == {"succeeded": TOTAL}
    arrivals = [r.header("webhook-id") for r in receiver.requests]
    assert {delivery_id for delivery_id, _ in queued} <= set(arrivals)
    # Even across the crash, each conversation's deliveries first arrived in queue order.
    first_seen = {delivery_id: n for n, delivery_id in reversed(list(enumerate(arrivals)))}
    for conversation in {conv for _, conv in queued}:
        mine = [delivery_id for delivery_id, conv in queued if conv == conversation]
        assert sorted(mine, key=first_seen.__getitem__) == mine
