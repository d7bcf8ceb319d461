"""The worker against a real receiver over loopback HTTP, on SQLite and PostgreSQL.

Each test queues deliveries the way the API does, runs a :class:`Worker`
and checks both what the receiver got and what the delivery log says.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import endpoints, sites
from chathooks.queue import (
    NewDelivery,
    Outcome,
    claim,
    enqueue,
    get_delivery,
    recover,
    redeliver,
    write_transaction,
)
from chathooks.sealing import keyring_of
from chathooks.settings import Settings
from chathooks.signing import Verifier, generate_secret
from chathooks.worker import Worker
from support.receiver import RecordingReceiver

SITE = "site_w"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(
            insert(sites).values(id=SITE, name="w", api_key_hash="h", created_at=time.time())
        )
    yield engine
    await engine.dispose()


def settings_for(engine: AsyncEngine, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "allowed_destinations": ["127.0.0.0/8"],
        "retry_schedule": [0.1, 0.1, 0.1],
        "poll_interval": 0.05,
        "total_timeout": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


async def add_endpoint(engine: AsyncEngine, endpoint_id: str, url: str, **fields: Any) -> str:
    now = time.time()
    async with engine.begin() as connection:
        if fields.get("secret") is not None:  # stored sealed, as the service stores it
            fields["secret"] = keyring_of(connection).seal(fields["secret"])
        if fields.get("headers"):
            fields["headers"] = keyring_of(connection).seal_values(fields["headers"])
        await connection.execute(
            insert(endpoints).values(
                id=endpoint_id, site_id=SITE, url=url, created_at=now, updated_at=now, **fields
            )
        )
    return endpoint_id


def _transcript(endpoint_id: str, conversation: str) -> NewDelivery:
    return NewDelivery(
        site_id=SITE,
        endpoint_id=endpoint_id,
        conversation_id=conversation,
        payload_kind="transcript",
        trigger="api",
        payload=json.dumps({"kind": "Conversation", "id": conversation}),
    )


async def put(
    engine: AsyncEngine,
    endpoint_id: str,
    *conversations: str | None,
    now: float | None = None,
) -> list[str]:
    """Queue one transcript per conversation id given; their delivery ids, in order."""
    items = [
        NewDelivery(
            site_id=SITE,
            endpoint_id=endpoint_id,
            conversation_id=conversation,
            payload_kind="transcript",
            trigger="api",
            payload=json.dumps({"kind": "Conversation", "id": conversation or f"loose{i}"}),
        )
        for i, conversation in enumerate(conversations)
    ]
    async with engine.begin() as connection:
        return [ref.id for ref in await enqueue(connection, items, now=now)]


async def delivery(engine: AsyncEngine, delivery_id: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        found = await get_delivery(connection, SITE, delivery_id)
    assert found is not None
    return found


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


async def wait_for_status(
    engine: AsyncEngine, delivery_id: str, status: str, timeout: float = 20.0
) -> dict[str, Any]:
    async def reached() -> bool:
        return bool((await delivery(engine, delivery_id))["status"] == status)

    try:
        await eventually(reached, f"{delivery_id} is {status}", timeout)
    except AssertionError:
        raise AssertionError(f"not {status}: {await delivery(engine, delivery_id)}") from None
    return await delivery(engine, delivery_id)


@asynccontextmanager
async def working(worker: Worker) -> AsyncIterator[Worker]:
    """``worker.run()`` in the background for the duration of the block; stopped gracefully."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- success -------------------------------------------------------------------------------


async def test_a_delivery_is_posted_signed_and_logged(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    secret = generate_secret()
    await add_endpoint(
        engine, "ep_1", receiver.url + "?token=abc", secret=secret, headers={"X-Tenant": "t1"}
    )
    [delivery_id] = await put(engine, "ep_1", "conv1")

    assert await Worker(engine, settings_for(engine)).run_once() == 1

    [received] = receiver.wait_for(1)
    assert received.method == "POST"
    assert received.query == "token=abc"
    assert received.content_type == "application/x-www-form-urlencoded"
    assert received.document() == {"kind": "Conversation", "id": "conv1"}
    assert received.header("webhook-id") == delivery_id
    assert received.header("x-tenant") == "t1"
    assert Verifier(secret).verify(received.headers, received.body) == delivery_id

    logged = await delivery(engine, delivery_id)
    assert logged["status"] == "succeeded"
    assert logged["integration_url"] == "https://crm.example/leads/conv1"
    [attempt] = logged["attempts"]
    assert attempt["number"] == 1
    assert attempt["outcome"] == "succeeded"
    assert attempt["status_code"] == 200
    assert attempt["integration_url"] == "https://crm.example/leads/conv1"
    assert json.loads(attempt["response_body"]) == {
        "integrationUrl": "https://crm.example/leads/conv1"
    }
    assert attempt["duration_ms"] > 0
    assert attempt["started_at"] <= logged["finished_at"]


async def test_only_the_first_20_kb_of_a_response_are_kept(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    receiver.reply(200, "x" * 100_000)
    [delivery_id] = await put(engine, "ep_1", "conv1")

    await Worker(engine, settings_for(engine)).run_once()

    [attempt] = (await delivery(engine, delivery_id))["attempts"]
    assert attempt["response_body"] == "x" * 20 * 1024


# -- failures and retries ------------------------------------------------------------------


async def test_errors_and_timeouts_are_retried_until_the_receiver_answers(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    receiver.reply(500, "database down")
    receiver.reply(200, delay=3.0)  # longer than total_timeout
    [delivery_id] = await put(engine, "ep_1", "conv1")

    async with working(Worker(engine, settings_for(engine, total_timeout=0.5))):
        logged = await wait_for_status(engine, delivery_id, "succeeded")

    assert [a["outcome"] for a in logged["attempts"]] == ["failed", "failed", "succeeded"]
    first, second, third = logged["attempts"]
    assert (first["status_code"], first["error"], first["response_body"]) == (
        500,
        "HTTP 500",
        "database down",
    )
    assert second["status_code"] is None
    assert "timed out" in second["error"]
    assert third["status_code"] == 200
    assert [a["number"] for a in logged["attempts"]] == [1, 2, 3]
    assert {r.header("webhook-id") for r in receiver.requests} == {delivery_id}


async def test_a_refused_connection_is_retried_until_the_receiver_is_up(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    await add_endpoint(engine, "ep_1", f"http://127.0.0.1:{closed_port()}/hook")
    [delivery_id] = await put(engine, "ep_1", "conv1")
    settings = settings_for(engine, retry_schedule=[0.2] * 50)

    async with working(Worker(engine, settings)):

        async def refused_once() -> bool:
            return len((await delivery(engine, delivery_id))["attempts"]) >= 1

        await eventually(refused_once, "the first attempt is refused")
        # The receiver comes up at its new address; the next retry goes there.
        async with engine.begin() as connection:
            await connection.execute(
                update(endpoints).where(endpoints.c.id == "ep_1").values(url=receiver.url)
            )
        logged = await wait_for_status(engine, delivery_id, "succeeded")

    assert logged["attempts"][0]["error"] == "connection refused"
    assert logged["attempts"][0]["outcome"] == "failed"
    assert logged["attempts"][-1]["status_code"] == 200
    assert len(receiver.requests) == 1


async def test_a_destination_the_guard_refuses_is_logged_with_the_reason_and_retried(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    [delivery_id] = await put(engine, "ep_1", "conv1")
    settings = settings_for(engine, allowed_destinations=[], retry_schedule=[300])

    await Worker(engine, settings).run_once()

    logged = await delivery(engine, delivery_id)
    assert logged["status"] == "retrying"
    [attempt] = logged["attempts"]
    assert attempt["outcome"] == "refused"
    assert "127.0.0.1" in attempt["error"]
    assert logged["last_error"] == attempt["error"]
    assert receiver.requests == []


async def test_retry_after_is_honoured(engine: AsyncEngine, receiver: RecordingReceiver) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    receiver.reply(503, "busy", headers={"Retry-After": "1"})
    [delivery_id] = await put(engine, "ep_1", "conv1")

    async with working(Worker(engine, settings_for(engine, retry_schedule=[0.05]))):
        logged = await wait_for_status(engine, delivery_id, "succeeded")

    first, second = receiver.wait_for(2)
    assert second.at - first.at >= 1.0
    assert [a["status_code"] for a in logged["attempts"]] == [503, 200]


async def test_the_last_failure_fails_the_delivery_and_redeliver_sends_it_again(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    receiver.reply(500, times=2)
    [delivery_id] = await put(engine, "ep_1", "conv1")
    worker = Worker(engine, settings_for(engine, retry_schedule=[0.05]))

    async with working(worker):
        failed = await wait_for_status(engine, delivery_id, "failed")
        assert [a["status_code"] for a in failed["attempts"]] == [500, 500]
        assert failed["last_error"] == "HTTP 500"

        async with engine.begin() as connection:
            await redeliver(connection, SITE, delivery_id)
        worker.wake()
        logged = await wait_for_status(engine, delivery_id, "succeeded")

    assert [a["number"] for a in logged["attempts"]] == [1, 2, 3]
    assert [r.header("webhook-id") for r in receiver.wait_for(3)] == [delivery_id] * 3


async def test_recover_sends_what_an_endpoint_missed_since_a_time(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    receiver.reply(500, times=3)
    since = time.time()
    [old] = await put(engine, "ep_1", "old", now=since - 3600)
    missed = await put(engine, "ep_1", "m1", "m2")
    worker = Worker(engine, settings_for(engine, retry_schedule=[]))

    async with working(worker):
        for delivery_id in (old, *missed):
            await wait_for_status(engine, delivery_id, "failed")
        async with engine.begin() as connection:
            assert await recover(connection, SITE, "ep_1", since=since) == missed
        worker.wake()
        for delivery_id in missed:
            await wait_for_status(engine, delivery_id, "succeeded")

    assert (await delivery(engine, old))["status"] == "failed"
    assert [r.document()["id"] for r in receiver.wait_for(5)[3:]] == ["m1", "m2"]


# -- 410 Gone and disabled endpoints -------------------------------------------------------


async def test_410_gone_switches_the_endpoint_off_and_holds_what_is_sent_to_it(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    receiver.reply(410, "no such hook")
    [first] = await put(engine, "ep_1", "conv1")
    worker = Worker(engine, settings_for(engine))

    async with working(worker):
        gone = await wait_for_status(engine, first, "held")
        [later] = await put(engine, "ep_1", "conv2")
        worker.wake()
        held = await wait_for_status(engine, later, "held")

    assert gone["attempts"][0]["status_code"] == 410
    assert len(gone["attempts"]) == 1  # not retried
    assert held["last_error"] == "endpoint disabled"
    assert held["attempts"] == []
    assert len(receiver.requests) == 1
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(endpoints.c.enabled, endpoints.c.disabled_reason).where(
                    endpoints.c.id == "ep_1"
                )
            )
        ).one()
    assert row.enabled is False
    assert row.disabled_reason == "the receiver answered 410 Gone"


# -- order ---------------------------------------------------------------------------------


async def test_a_conversation_waits_for_its_retrying_delivery_while_others_flow(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    with RecordingReceiver() as other:
        await add_endpoint(engine, "ep_slow", receiver.url)
        await add_endpoint(engine, "ep_fine", other.url)
        receiver.reply(500, times=2)
        a1, a2, a3 = await put(engine, "ep_slow", "A", "A", "A")
        b1, b2 = await put(engine, "ep_fine", "B", "B")
        settings = settings_for(engine, retry_schedule=[0.3, 0.3])

        async with working(Worker(engine, settings)):
            b_done = await wait_for_status(engine, b2, "succeeded")
            # B finished while A's first delivery was still being retried...
            assert all(r.header("webhook-id") == a1 for r in receiver.requests)
            for delivery_id in (a1, a2, a3):
                await wait_for_status(engine, delivery_id, "succeeded")

        a_first_done = await delivery(engine, a1)
        assert b_done["finished_at"] < a_first_done["finished_at"]
        # ...and A went out strictly in order, a2 only after a1 finally succeeded.
        assert [r.header("webhook-id") for r in receiver.wait_for(5)] == [a1, a1, a1, a2, a3]
        assert [r.header("webhook-id") for r in other.wait_for(2)] == [b1, b2]


# -- crashes and several workers -----------------------------------------------------------


async def test_a_dead_workers_claim_comes_back_when_its_lease_expires(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    [delivery_id] = await put(engine, "ep_1", "conv1")
    async with engine.begin() as connection:
        [claimed] = await claim(connection, owner="killed-worker", limit=10, lease_seconds=0.5)
    assert claimed.id == delivery_id

    async with working(Worker(engine, settings_for(engine))):
        logged = await wait_for_status(engine, delivery_id, "succeeded")

    assert len(logged["attempts"]) == 1
    assert [r.header("webhook-id") for r in receiver.wait_for(1)] == [delivery_id]


async def test_two_workers_on_postgresql_never_send_the_same_delivery_twice(
    postgres_url: str, receiver: RecordingReceiver
) -> None:
    await upgrade_async(postgres_url)
    engines = [create_engine(postgres_url), create_engine(postgres_url)]
    engine = engines[0]
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(sites).values(id=SITE, name="w", api_key_hash="h", created_at=time.time())
            )
        # Room for both: an endpoint's cap on requests in flight is shared by all workers,
        # and a worker that frees a slot takes it again with the same transaction. Each
        # worker holds at most about 50 here (16 posting, its backlog, a batch of 20).
        conversations = [f"c{i % 40}" if i % 3 else None for i in range(200)]
        ids: list[str] = []
        for n in range(3):
            await add_endpoint(engine, f"ep_{n}", receiver.url, max_in_flight=64)
            ids += await put(engine, f"ep_{n}", *conversations)
        sent_by: Counter[str] = Counter()

        def counting(name: str) -> Callable[[list[Outcome]], Awaitable[None]]:
            async def count(outcomes: list[Outcome]) -> None:
                sent_by[name] += len(outcomes)

            return count

        settings = settings_for(engine, claim_batch_size=20, worker_concurrency=16)
        workers = [
            Worker(each, settings, worker_id=f"w{n}", on_outcome=counting(f"w{n}"))
            for n, each in enumerate(engines)
        ]
        # 16 posts at a time of 50 ms each: one worker alone would need about 2 s for the
        # 600, so the second one, started just after, takes its share (and the claims
        # overlap, which is what this test is about). With instant answers the first
        # worker sometimes sent them all before the second had made its first claim.
        receiver.answer_all(200, delay=0.05)
        async with working(workers[0]), working(workers[1]):

            async def all_sent() -> bool:
                return len(receiver.requests) >= len(ids)

            await eventually(all_sent, "every delivery arrived", timeout=60)
            for delivery_id in ids[-5:]:
                await wait_for_status(engine, delivery_id, "succeeded")

        received = Counter(r.header("webhook-id") for r in receiver.requests)
        assert set(received) == set(ids)
        assert max(received.values()) == 1
        assert sent_by["w0"] > 0
        assert sent_by["w1"] > 0
    finally:
        for each in engines:
            await each.dispose()


# -- the loop itself -----------------------------------------------------------------------


async def test_stopping_finishes_what_is_in_flight_and_gives_back_the_rest(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    await add_endpoint(engine, "ep_1", receiver.url)
    receiver.reply(200, {"integrationUrl": "https://crm.example/slow"}, delay=1.0)
    first, *rest = await put(engine, "ep_1", None, None, None)
    reported: list[Outcome] = []

    async def listen(outcomes: list[Outcome]) -> None:
        reported.extend(outcomes)

    settings = settings_for(engine, worker_concurrency=1, claim_batch_size=10)
    stop = asyncio.Event()
    run = asyncio.create_task(Worker(engine, settings, on_outcome=listen).run(stop))
    await receiver.wait_for_async(1)
    stop.set()
    await asyncio.wait_for(run, 30)

    finished = await delivery(engine, first)
    assert finished["status"] == "succeeded"
    assert finished["integration_url"] == "https://crm.example/slow"
    for delivery_id in rest:
        given_back = await delivery(engine, delivery_id)
        assert given_back["status"] == "pending"
        assert given_back["attempts"] == []
    assert [(o.delivery_id, o.status) for o in reported] == [(first, "succeeded")]


async def test_a_recording_transaction_that_found_nothing_due_is_the_workers_look(
    engine: AsyncEngine, receiver: RecordingReceiver
) -> None:
    """The transaction recording outcomes claims what is due next; finding nothing, it
    was the worker's look at the queue: no claim of its own follows before the next poll.

    With two workers on one busy endpoint, the one whose outcomes freed no room for
    it would otherwise follow each of its recording transactions with an empty claim.
    """
    await add_endpoint(engine, "ep_1", receiver.url)
    # Queued the way the service queues (its announcement goes out at this commit).
    async with write_transaction(engine) as connection:
        [queued] = await enqueue(connection, [_transcript("ep_1", "c1")])
    delivery_id = queued.id
    looks: list[str] = []

    def count_looks(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # A claim's first statement: the endpoints with due work and room for it.
        if statement.startswith("SELECT endpoints.id,") and " AS room" in statement:
            looks.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count_looks)
    recorded = asyncio.Event()

    async def on_outcome(_outcomes: list[Outcome]) -> None:
        recorded.set()

    worker = Worker(engine, settings_for(engine, poll_interval=30.0), on_outcome=on_outcome)
    try:
        async with working(worker):
            await asyncio.wait_for(recorded.wait(), 20)
            # Whatever the worker was told to do once its outcome was recorded has begun.
            await wait_for_status(engine, delivery_id, "succeeded")
            await delivery(engine, delivery_id)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count_looks)

    # Its first claim, and the one made with the outcome.
    assert len(looks) == 2


async def test_periodic_jobs_run_alongside_deliveries(engine: AsyncEngine) -> None:
    ticks: list[float] = []

    async def tick() -> None:
        ticks.append(time.monotonic())

    async def broken() -> None:
        raise RuntimeError("a failing job must not stop the worker")

    worker = Worker(engine, settings_for(engine), periodic=[(0.05, tick), (0.05, broken)])
    async with working(worker):

        async def ticked() -> bool:
            return len(ticks) >= 3

        await eventually(ticked, "the periodic job ran three times")


async def test_on_postgresql_work_queued_by_another_process_wakes_an_idle_worker(
    postgres_url: str, receiver: RecordingReceiver
) -> None:
    """The worker polls only every 30 s here: the delivery arrives sooner only if announced."""
    await upgrade_async(postgres_url)
    api, workers = create_engine(postgres_url), create_engine(postgres_url)
    try:
        async with api.begin() as connection:
            await connection.execute(
                insert(sites).values(id=SITE, name="w", api_key_hash="h", created_at=time.time())
            )
        await add_endpoint(api, "ep_1", receiver.url)
        worker = Worker(workers, settings_for(workers, poll_interval=30.0))
        async with working(worker):
            await asyncio.sleep(0.5)  # its first look found nothing; now it waits
            started = time.monotonic()
            [first] = await put(api, "ep_1", "c1")
            await wait_for_status(api, first, "succeeded", timeout=5)
            # A redelivery made elsewhere wakes it too.
            async with api.begin() as connection:
                await redeliver(connection, SITE, first)
            await eventually(lambda: _arrived(receiver, 2), "the redelivery arrived", timeout=5)
            assert time.monotonic() - started < 10
        assert [r.header("webhook-id") for r in receiver.requests] == [first, first]
    finally:
        await api.dispose()
        await workers.dispose()


async def _arrived(receiver: RecordingReceiver, count: int) -> bool:
    return len(receiver.requests) >= count
