"""Open event streams share one database poll per process, on SQLite and PostgreSQL.

Before, every open operator console polled its conversation's deliveries
every 0.3 s: 400 consoles made 1,300 reads a second and took ingest's p99
from 2.45 ms to 117 ms. Now one poll per interval covers every watched
conversation, and a stream reads its deliveries only when that poll (or the
process's own worker) says they changed. News from a worker in another
process still reaches the stream.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
from sqlalchemy import event

from chathooks.api.app import create_app
from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade
from chathooks.worker import Worker
from integration.test_conversations_http import OPERATOR, VISITOR
from support.receiver import RecordingReceiver
from support.service import ADMIN_KEY, serving, test_settings

STREAMS = 30


async def test_open_streams_share_one_poll_and_still_hear_of_other_processes_deliveries(
    database_url: str, receiver: RecordingReceiver
) -> None:
    settings = test_settings(database_url)
    upgrade(database_url)
    app = create_app(settings, run_worker=False)  # every outcome comes from "elsewhere"
    with serving(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            made = await client.post(
                "/api/v1/sites",
                json={"name": "consoles"},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            site, key = made.json()["id"], made.json()["api_key"]
            auth = {"Authorization": f"Bearer {key}"}
            path = f"/api/v1/sites/{site}"
            await client.post(
                f"{path}/endpoints", json={"url": receiver.url, "auto_send": False}, headers=auth
            )
            chats = []
            for _ in range(STREAMS):
                started = await client.post(
                    f"{path}/conversations", json={"visitor": VISITOR}, headers=auth
                )
                chats.append(started.json()["id"])

            statements = 0
            lock = threading.Lock()

            def count(*_args: Any) -> None:
                nonlocal statements
                with lock:
                    statements += 1

            engine = app.state.services.engine.sync_engine
            event.listen(engine, "before_cursor_execute", count)
            heard: dict[str, list[dict[str, Any]]] = {chat: [] for chat in chats}
            connected: set[str] = set()

            async def listen(chat: str) -> None:
                url = f"{path}/conversations/{chat}/events"
                async with client.stream("GET", url, headers=auth) as stream:
                    async for line in stream.aiter_lines():
                        if line == ": connected":
                            connected.add(chat)
                        elif line.startswith("data: "):
                            heard[chat].append(json.loads(line[6:]))

            listeners = [asyncio.create_task(listen(chat)) for chat in chats]
            try:
                deadline = time.monotonic() + 30
                while len(connected) < STREAMS:
                    assert time.monotonic() < deadline, f"{len(connected)} streams connected"
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # the streams' first reads are done
                with lock:
                    statements = 0
                window = 3.0
                await asyncio.sleep(window)  # a rate is counted over time, not timed
                with lock:
                    idle_reads = statements
                # One poll per 0.3 s for all 30 streams (30 streams polling alone: ~300).
                assert idle_reads <= 3 * window / 0.3, idle_reads

                said = await client.post(
                    f"{path}/conversations/{chats[7]}/messages",
                    json={"from": "operator", "body": "!webhook", "operator": OPERATOR},
                    headers=auth,
                )
                assert said.status_code == 201, said.text
                elsewhere = create_engine(database_url)
                try:
                    assert await Worker(elsewhere, settings).run_once() == 1
                finally:
                    await elsewhere.dispose()
                deadline = time.monotonic() + 20
                while not heard[chats[7]]:
                    assert time.monotonic() < deadline, "the stream never heard of the delivery"
                    await asyncio.sleep(0.05)
            finally:
                for task in listeners:
                    task.cancel()
                await asyncio.gather(*listeners, return_exceptions=True)
                event.remove(engine, "before_cursor_execute", count)

    [news] = heard[chats[7]]
    assert news["status"] == "succeeded"
    assert news["integration_url"] == f"https://crm.example/leads/{chats[7]}"
    assert all(not heard[chat] for chat in chats if chat != chats[7])
