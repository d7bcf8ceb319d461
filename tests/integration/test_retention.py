"""Retention: what finished long enough ago goes, with everything of it; nothing unfinished does."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from chathooks import cli
from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade, upgrade_async
from chathooks.db.tables import (
    attempts,
    conversation_posts,
    conversations,
    deliveries,
    delivery_payloads,
    endpoints,
    idempotency_keys,
    sites,
)
from chathooks.repository.endpoints import get_endpoint, rotate_secret
from chathooks.retention import DAY, purge
from support.receiver import RecordingReceiver
from support.service import running_service

NOW = 1_800_000_000.0
OLD = NOW - 31 * DAY
RECENT = NOW - 1 * DAY


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = create_engine(database_url, inline=True)
    async with engine.begin() as connection:
        await connection.execute(
            insert(sites).values(id="site_r", name="r", api_key_hash="r", created_at=OLD)
        )
        await connection.execute(
            insert(endpoints).values(
                id="ep_r",
                site_id="site_r",
                url="https://r.example/",
                created_at=OLD,
                updated_at=OLD,
            )
        )
    yield engine
    await engine.dispose()


async def _delivery(
    engine: AsyncEngine, name: str, status: str, *, finished_at: float | None, conversation: str
) -> None:
    async with engine.begin() as connection:
        result = await connection.execute(
            insert(deliveries).values(
                id=name,
                site_id="site_r",
                endpoint_id="ep_r",
                conversation_id=conversation,
                payload_kind="transcript",
                status=status,
                attempt_count=1,
                next_attempt_at=OLD,
                created_at=OLD,
                updated_at=OLD,
                finished_at=finished_at,
            )
        )
        [seq] = result.inserted_primary_key or [None]
        await connection.execute(insert(delivery_payloads).values(delivery_id=name, payload="{}"))
        await connection.execute(
            insert(attempts).values(
                delivery_seq=seq, number=1, started_at=OLD, duration_ms=1.0, outcome="failed"
            )
        )


async def _conversation(
    engine: AsyncEngine, name: str, state: str, *, closed_at: float | None
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(conversations).values(
                site_id="site_r",
                id=name,
                state=state,
                document={},
                version=1,
                created_at=OLD,
                updated_at=OLD,
                last_activity_at=OLD,
                closed_at=closed_at,
            )
        )
        await connection.execute(
            insert(conversation_posts).values(
                site_id="site_r",
                conversation_id=name,
                endpoint_id="ep_r",
                delivery_id=f"post-{name}",
                action_id="a",
                trigger="completion",
                version=1,
                created_at=OLD,
            )
        )


async def _names(engine: AsyncEngine, column: Any) -> set[str]:
    async with engine.connect() as connection:
        return {row[0] for row in await connection.execute(select(column))}


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def test_purge_removes_old_finished_work_and_leaves_everything_unfinished(
    engine: AsyncEngine,
) -> None:
    await _delivery(engine, "old-ok", "succeeded", finished_at=OLD, conversation="c-old")
    await _delivery(engine, "old-failed", "failed", finished_at=OLD, conversation="c-x")
    await _delivery(engine, "new-ok", "succeeded", finished_at=RECENT, conversation="c-x")
    for status in ("pending", "retrying", "delivering"):
        # Created a month ago and still to be sent: never retention's business.
        await _delivery(engine, f"old-{status}", status, finished_at=None, conversation="c-busy")
    await _conversation(engine, "c-old", "closed", closed_at=OLD)
    await _conversation(engine, "c-new", "closed", closed_at=RECENT)
    await _conversation(engine, "c-open", "open", closed_at=None)
    # Closed long ago though a delivery of it is still unsent: the chat goes, the delivery stays.
    await _conversation(engine, "c-busy", "closed", closed_at=OLD)
    async with engine.begin() as connection:
        for key, created in (("k-old", NOW - DAY - 1), ("k-new", NOW - 60)):
            await connection.execute(
                insert(idempotency_keys).values(
                    site_id="site_r", key=key, request_hash="h", created_at=created
                )
            )

    purged = await purge(engine, older_than_days=30, batch_size=1, now=NOW)

    assert (purged.deliveries, purged.payloads, purged.attempts) == (2, 2, 2)
    assert (purged.conversations, purged.conversation_posts) == (2, 2)
    assert purged.idempotency_keys == 1
    assert await _names(engine, deliveries.c.id) == {
        "new-ok",
        "old-pending",
        "old-retrying",
        "old-delivering",
    }
    assert await _count(engine, delivery_payloads) == 4  # no orphans either way
    assert await _count(engine, attempts) == 4
    assert await _names(engine, conversations.c.id) == {"c-new", "c-open"}
    assert await _count(engine, conversation_posts) == 2
    assert await _names(engine, idempotency_keys.c.key) == {"k-new"}
    again = await purge(engine, older_than_days=30, now=NOW)
    assert again.total == 0


async def test_a_replaced_secret_is_removed_once_its_grace_is_over(engine: AsyncEngine) -> None:
    """After a rotation's grace the old secret never signs again, so it is not kept at all."""
    async with engine.begin() as connection:
        rotated = await rotate_secret(connection, "site_r", "ep_r", grace_seconds=3600, now=NOW)
    assert rotated is not None and rotated.previous_secret is None  # it was unsigned
    async with engine.begin() as connection:
        rotated = await rotate_secret(connection, "site_r", "ep_r", grace_seconds=3600, now=NOW)
    assert rotated is not None and rotated.previous_secret is not None

    during = await purge(engine, older_than_days=30, now=NOW + 3599)
    assert during.replaced_secrets == 0
    assert await _previous_secret(engine) is not None

    after = await purge(engine, older_than_days=30, now=NOW + 3600)
    assert after.replaced_secrets == 1
    assert await _previous_secret(engine) is None
    async with engine.connect() as connection:
        kept = await get_endpoint(connection, "site_r", "ep_r")
    assert kept is not None and kept.secret == rotated.secret  # the current one signs on


async def _previous_secret(engine: AsyncEngine) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(select(endpoints.c.previous_secret))).scalar_one()


async def test_a_run_is_bounded_in_batches(engine: AsyncEngine) -> None:
    for n in range(7):
        await _delivery(engine, f"d{n}", "succeeded", finished_at=OLD + n, conversation="c")
    first = await purge(engine, older_than_days=30, batch_size=2, max_batches=2, now=NOW)
    assert first.deliveries == 4
    assert await _names(engine, deliveries.c.id) == {"d4", "d5", "d6"}  # oldest went first
    rest = await purge(engine, older_than_days=30, batch_size=2, now=NOW)
    assert rest.deliveries == 3


def test_the_worker_deletes_delivered_transcripts_and_closed_chats_within_a_minute(
    database_url: str, receiver: RecordingReceiver
) -> None:
    with running_service(
        database_url, retention_days=0.0001, retention_interval=0.5, retry_schedule=[3600]
    ) as service:
        site, auth = service.create_site()
        good = service.create_endpoint(site, auth, receiver.url)
        dead = service.create_endpoint(site, auth, "http://127.0.0.1:9/unreachable")
        client = service.client
        path = f"/api/v1/sites/{site}"
        started = client.post(
            f"{path}/conversations",
            json={"visitor": {"fullName": "Ann", "emailAddress": "ann@example.com"}},
            headers=auth,
        )
        assert started.status_code == 201, started.text
        chat = started.json()["id"]
        assert client.post(f"{path}/conversations/{chat}/close", headers=auth).status_code == 200
        listed = client.get(f"{path}/deliveries", headers=auth).json()["items"]
        by_endpoint = {d["endpoint_id"]: d["id"] for d in listed}
        service.wait_for_status(site, auth, by_endpoint[good["id"]], "succeeded")
        service.wait_for_status(site, auth, by_endpoint[dead["id"]], "retrying")

        deadline = time.monotonic() + 60
        while True:
            gone = client.get(f"{path}/deliveries/{by_endpoint[good['id']]}", headers=auth)
            chat_gone = client.get(f"{path}/conversations/{chat}", headers=auth)
            if gone.status_code == 404 and chat_gone.status_code == 404:
                break
            assert time.monotonic() < deadline, (gone.text, chat_gone.text)
            time.sleep(0.2)
        # The delivery still to be retried is untouched, payload and all.
        waiting = client.get(f"{path}/deliveries/{by_endpoint[dead['id']]}", headers=auth)
        assert waiting.status_code == 200
        assert waiting.json()["status"] == "retrying" and waiting.json()["payload"]


def test_purge_command_prints_what_it_removed(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'chathooks.db'}"
    upgrade(database_url)
    runner = CliRunner()
    result = runner.invoke(
        cli.app, ["purge", "--older-than", "0.5", "--json", "--database-url", database_url]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["older_than_days"] == 0.5 and report["deliveries"] == 0
    text = runner.invoke(cli.app, ["purge", "--database-url", database_url])
    assert text.exit_code == 0 and "more than 30 days ago" in text.stdout
    bad = runner.invoke(cli.app, ["purge", "--older-than", "0", "--database-url", database_url])
    assert bad.exit_code == 2 and "--older-than" in bad.output
