"""Replies no database can store, and a database that goes away, do not loop deliveries.

A receiver controls everything the delivery log keeps of its answer. Before,
one reply with a NUL byte (PostgreSQL) or a lone surrogate (both backends)
failed the write of the whole batch of outcomes, and every delivery in it,
other sites' too, was posted again with every lease, forever. And outcomes
that could not be written during a database outage were dropped, so their
deliveries were posted again after the lease.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import sites
from chathooks.outcomes import OutcomeWriter
from chathooks.queue import claim
from chathooks.sender import AttemptResult
from chathooks.worker import Worker, decide
from integration.test_worker_delivery import (
    SITE,
    add_endpoint,
    delivery,
    engine,  # noqa: F401  (the fixture)
    put,
    settings_for,
    wait_for_status,
    working,
)
from support.receiver import RecordingReceiver
from support.tcp_proxy import TcpProxy

HOSTILE_REPLIES = [
    b'{"ok": true}\x00',  # NUL: PostgreSQL refuses it in text
    b'{"integrationUrl": "https://crm.example/\\ud800"}',  # a lone surrogate once decoded
    b"\xff\xfe\x00 not UTF-8 \xc3",
    b'{"integrationUrl": "https://crm.example/\x00/lead"}',
]


async def test_unstorable_replies_are_stored_cleaned_and_their_neighbours_record(
    engine: AsyncEngine,  # noqa: F811
    receiver: RecordingReceiver,
) -> None:
    with RecordingReceiver() as healthy:
        await add_endpoint(engine, "ep_hostile", receiver.url)
        await add_endpoint(engine, "ep_healthy", healthy.url)
        for body in HOSTILE_REPLIES:
            receiver.reply(200, body)
        hostile = await put(engine, "ep_hostile", *[None] * len(HOSTILE_REPLIES))
        good = await put(engine, "ep_healthy", *[None] * 40)
        settings = settings_for(engine, lease_seconds=3.0, total_timeout=1.0)

        async with working(Worker(engine, settings)):
            for delivery_id in [*hostile, *good]:
                await wait_for_status(engine, delivery_id, "succeeded")
            await asyncio.sleep(3.5)  # a lease: a looping batch would have come back by now

        assert Counter(r.header("webhook-id") for r in healthy.requests) == Counter(good)
        assert Counter(r.header("webhook-id") for r in receiver.requests) == Counter(hostile)
        bodies = []
        for delivery_id in hostile:
            logged = await delivery(engine, delivery_id)
            [attempt] = logged["attempts"]
            assert attempt["status_code"] == 200
            assert "\x00" not in attempt["response_body"]
            bodies.append(attempt["response_body"])
            # No link made of a damaged URL is offered to an operator.
            assert logged["integration_url"] is None
        assert bodies[0] == '{"ok": true}\ufffd'
        assert "\ufffd" in bodies[2]


async def test_an_outcome_the_database_refuses_fails_alone_with_the_reason(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    await add_endpoint(engine, "ep_1", "http://127.0.0.1:9/hook")
    ids = await put(engine, "ep_1", None, None, None)
    async with engine.begin() as connection:
        claimed = await claim(connection, owner="w1", limit=10, lease_seconds=60)
    started = time.time()
    ok = AttemptResult(ok=True, status_code=200, response_body="ok")
    # A status no column can hold stands for any value the database refuses.
    refused = AttemptResult(ok=True, status_code=2**70, response_body="ok")
    outcomes = [
        decide(each, refused if each.id == ids[1] else ok, started_at=started, schedule=[1.0])
        for each in claimed
    ]

    recorded = await OutcomeWriter(engine, "w1").write(outcomes)

    assert sorted(o.delivery_id for o in recorded) == sorted(ids)
    assert (await delivery(engine, ids[0]))["status"] == "succeeded"
    assert (await delivery(engine, ids[2]))["status"] == "succeeded"
    failed = await delivery(engine, ids[1])
    assert failed["status"] == "failed"
    assert failed["last_error"].startswith("the outcome could not be stored: ")


async def test_a_batch_written_row_by_row_claims_no_more_than_one_batch_with_it(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    """Each row's transaction claims only while the backlog has room, counting the claims of
    the rows before it: those join the backlog as soon as their transaction commits.

    Before, claims reached the backlog only after the last row, so every row of a refused
    batch claimed a whole batch again, and the surplus waited out its lease.
    """
    await add_endpoint(engine, "ep_1", "http://127.0.0.1:9/hook", max_in_flight=64)
    ids = await put(engine, "ep_1", *[None] * 4)
    await put(engine, "ep_1", *[None] * 40)  # due, for the claims made with the outcomes
    async with engine.begin() as connection:
        claimed = await claim(connection, owner="w1", limit=4, lease_seconds=60)
    assert sorted(each.id for each in claimed) == sorted(ids)
    started = time.time()
    ok = AttemptResult(ok=True, status_code=200, response_body="ok")
    refused = AttemptResult(ok=True, status_code=2**70, response_body="ok")  # no column holds it
    outcomes = [
        decide(each, refused if each.id == ids[0] else ok, started_at=started, schedule=[1.0])
        for each in claimed
    ]
    settings = settings_for(engine, claim_batch_size=5, worker_concurrency=2)
    worker = Worker(engine, settings, worker_id="w1")
    worker._claiming = True  # as while it runs: recording transactions claim too

    await worker._record(outcomes)

    assert (await delivery(engine, ids[1]))["status"] == "succeeded"
    assert (await delivery(engine, ids[0]))["status"] == "failed"
    assert 0 < worker._backlog.qsize() <= settings.claim_batch_size


@pytest.mark.parametrize("url", ["javascript:alert(document.cookie)", "data:text/html,<b>x</b>"])
async def test_only_an_http_integration_url_is_kept_as_a_link(
    engine: AsyncEngine,  # noqa: F811
    receiver: RecordingReceiver,
    url: str,
) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    receiver.reply(200, {"integrationUrl": url})
    [delivery_id] = await put(engine, "ep_1", "conv1")

    await Worker(engine, settings_for(engine)).run_once()

    logged = await delivery(engine, delivery_id)
    assert logged["status"] == "succeeded"
    assert logged["integration_url"] is None
    assert logged["attempts"][0]["integration_url"] is None
    assert url in logged["attempts"][0]["response_body"]  # what the receiver said stays readable


async def test_outcomes_are_held_through_a_database_outage_and_nothing_is_sent_twice(
    postgres_url: str, receiver: RecordingReceiver
) -> None:
    await upgrade_async(postgres_url)
    direct = create_engine(postgres_url)
    with TcpProxy.for_url(postgres_url) as proxy:
        through = create_engine(proxy.url_through(postgres_url))
        try:
            async with direct.begin() as connection:
                await connection.execute(
                    insert(sites).values(
                        id=SITE, name="w", api_key_hash="h", created_at=time.time()
                    )
                )
            await add_endpoint(direct, "ep_1", receiver.url)
            receiver.reply(200, {"ok": True}, delay=1.0, times=30)
            ids = await put(direct, "ep_1", *[None] * 30)
            settings = settings_for(
                direct,
                lease_seconds=6.0,
                total_timeout=2.0,
                worker_concurrency=30,
                endpoint_concurrency=30,
            )
            async with working(Worker(through, settings)):
                await receiver.wait_for_async(1)
                proxy.cut()  # the database goes away while 30 posts are in flight
                await receiver.wait_for_async(30)
                await asyncio.sleep(2.0)  # every reply is in; none can be written
                proxy.restore()
                for delivery_id in ids:
                    await wait_for_status(direct, delivery_id, "succeeded", timeout=30)
                # Absence takes time to show: a dropped outcome's delivery would be
                # posted again once its lease (6 s) ran out.
                await asyncio.sleep(7.0)

            assert Counter(r.header("webhook-id") for r in receiver.requests) == Counter(ids)
        finally:
            await through.dispose()
            await direct.dispose()
