"""The delivery queue's SQL on real SQLite and PostgreSQL, without HTTP.

Times are passed explicitly (``now=``), so leases and schedules are tested
without waiting.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import re
import sqlite3
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Select, event, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import deliveries, endpoints, sites
from chathooks.queue import (
    FAILED,
    HELD,
    PENDING,
    RETRYING,
    SUCCEEDED,
    ClaimedDelivery,
    HealthPolicy,
    InvalidQueueQuery,
    NewDelivery,
    Outcome,
    Transition,
    claim,
    disable_endpoint,
    due_deliveries,
    enqueue,
    get_delivery,
    health_of,
    learn_from,
    list_deliveries,
    open_endpoints,
    queue_alerts,
    queue_stats,
    record_outcomes,
    recover,
    redeliver,
    release,
    write_transaction,
)
from chathooks.queue.claim import claim_statement
from chathooks.repository.endpoints import get_endpoint, set_alert_url
from chathooks.sealing import keyring_of

T0 = 1_700_000_000.0
SITE = "site_q"
OTHER_SITE = "site_other"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(database_url)
    engine = create_engine(database_url, inline=True)  # as the service runs it
    async with engine.begin() as connection:
        for site_id in (SITE, OTHER_SITE):
            await connection.execute(
                insert(sites).values(
                    id=site_id, name=site_id, api_key_hash=f"hash-{site_id}", created_at=T0
                )
            )
        for endpoint_id, site_id in (("ep_a", SITE), ("ep_b", SITE), ("ep_x", OTHER_SITE)):
            await connection.execute(
                insert(endpoints).values(
                    id=endpoint_id,
                    site_id=site_id,
                    url=f"https://{endpoint_id}.example/hook?token=t",
                    secret=keyring_of(connection).seal("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                    format="json",
                    headers=keyring_of(connection).seal_values({"X-Token": "abc"}),
                    created_at=T0,
                    updated_at=T0,
                )
            )
    yield engine
    await engine.dispose()


def new(
    conversation: str | None, endpoint: str = "ep_a", *, site: str = SITE, text: str = "x"
) -> NewDelivery:
    payload = f'{{"kind": "Conversation", "id": "{conversation}", "tags": ["{text}"]}}'
    return NewDelivery(
        site_id=site,
        endpoint_id=endpoint,
        conversation_id=conversation,
        payload_kind="transcript",
        trigger="api",
        payload=payload,
    )


async def put(engine: AsyncEngine, *items: NewDelivery, now: float = T0) -> list[str]:
    async with engine.begin() as connection:
        return [ref.id for ref in await enqueue(connection, items, now=now)]


async def take(
    engine: AsyncEngine, *, now: float, owner: str = "w1", limit: int = 100, lease: float = 1000
) -> list[ClaimedDelivery]:
    async with engine.begin() as connection:
        return await claim(connection, owner=owner, limit=limit, lease_seconds=lease, now=now)


def settled(
    claimed: ClaimedDelivery,
    status: str,
    *,
    now: float,
    code: int | None = 200,
    next_at: float | None = None,
    integration_url: str | None = None,
) -> Outcome:
    return Outcome(
        delivery_seq=claimed.seq,
        delivery_id=claimed.id,
        site_id=claimed.site_id,
        endpoint_id=claimed.endpoint_id,
        conversation_id=claimed.conversation_id,
        status=status,
        attempt_count=claimed.attempt_count + 1,
        round_attempts=claimed.round_attempts + 1,
        next_attempt_at=next_at,
        attempt_outcome="succeeded" if status == SUCCEEDED else "failed",
        started_at=now,
        duration_ms=12.5,
        status_code=code,
        response_body="ok" if status == SUCCEEDED else "boom",
        error=None if status == SUCCEEDED else f"HTTP {code}",
        integration_url=integration_url,
        lease_expires_at=claimed.lease_expires_at,
        trigger=claimed.trigger,
    )


async def settle(engine: AsyncEngine, *outcomes: Outcome, owner: str = "w1", now: float) -> None:
    """Record outcomes as the worker does: stored, then learnt from for their endpoints."""
    async with engine.begin() as connection:
        recorded = await record_outcomes(connection, outcomes, owner=owner, now=now)
        await learn_from(connection, recorded, policy=HealthPolicy(), now=now)


async def status_of(engine: AsyncEngine, delivery_id: str, site: str = SITE) -> str:
    async with engine.connect() as connection:
        delivery = await get_delivery(connection, site, delivery_id)
    assert delivery is not None
    return str(delivery["status"])


# -- enqueue and read back -----------------------------------------------------------------


async def test_enqueued_deliveries_are_pending_with_unique_ids_in_order(
    engine: AsyncEngine,
) -> None:
    ids = await put(engine, new("c1"), new("c1", "ep_b"), new(None))

    assert len(set(ids)) == 3
    assert all(i.startswith("msg_") and len(i) == 30 for i in ids)
    async with engine.connect() as connection:
        first = await get_delivery(connection, SITE, ids[0])
    assert first is not None
    assert first["status"] == PENDING
    assert first["endpoint_id"] == "ep_a"
    assert first["payload"] == new("c1").payload
    assert first["next_attempt_at"] == T0
    assert first["attempts"] == []


async def test_enqueue_takes_part_in_the_callers_transaction(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        [ref] = await enqueue(connection, [new("c1")], now=T0)
        await transaction.rollback()
        assert await get_delivery(connection, SITE, ref.id) is None


async def test_a_site_cannot_see_another_sites_delivery(engine: AsyncEngine) -> None:
    [theirs] = await put(engine, new("c9", "ep_x", site=OTHER_SITE))
    async with engine.connect() as connection:
        assert await get_delivery(connection, SITE, theirs) is None
        assert await redeliver(connection, SITE, theirs) is None
        listed, _ = await list_deliveries(connection, SITE)
    assert listed == []


async def test_listing_is_newest_first_pages_with_a_cursor_and_filters(
    engine: AsyncEngine,
) -> None:
    ids = await put(engine, *(new(f"c{i % 2}", "ep_a" if i < 5 else "ep_b") for i in range(7)))

    async with engine.connect() as connection:
        page1, cursor = await list_deliveries(connection, SITE, limit=3)
        assert cursor is not None
        page2, cursor2 = await list_deliveries(connection, SITE, limit=3, cursor=cursor)
        page3, cursor3 = await list_deliveries(connection, SITE, limit=3, cursor=cursor2)
        by_endpoint, _ = await list_deliveries(connection, SITE, endpoint_id="ep_b")
        by_conversation, _ = await list_deliveries(connection, SITE, conversation_id="c1")
        by_status, _ = await list_deliveries(connection, SITE, status=SUCCEEDED)

    listed = [d["id"] for d in page1 + page2 + page3]
    assert listed == list(reversed(ids))
    assert cursor3 is None
    assert "payload" not in page1[0]
    assert [d["id"] for d in by_endpoint] == [ids[6], ids[5]]
    assert [d["id"] for d in by_conversation] == [ids[5], ids[3], ids[1]]
    assert by_status == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"status": "done"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_a_bad_listing_query_names_the_field(
    engine: AsyncEngine, arguments: dict[str, object], field: str
) -> None:
    async with engine.connect() as connection:
        with pytest.raises(InvalidQueueQuery) as caught:
            await list_deliveries(connection, SITE, **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert caught.value.to_dict()["field"] == field


# -- claiming ------------------------------------------------------------------------------


async def test_a_claim_returns_the_endpoint_settings_and_leases_the_batch(
    engine: AsyncEngine,
) -> None:
    ids = await put(engine, new("c1"), new("c2"))

    batch = await take(engine, now=T0 + 1, lease=30)

    assert [c.id for c in batch] == ids
    destination = batch[0].destination
    assert destination.url == "https://ep_a.example/hook?token=t"
    assert destination.format == "json"
    assert destination.secret == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert destination.headers == {"X-Token": "abc"}
    assert destination.enabled
    assert batch[0].attempt_count == 0
    assert await take(engine, now=T0 + 2, owner="w2") == []
    assert await status_of(engine, ids[0]) == "delivering"


async def test_nothing_is_claimed_before_it_is_due(engine: AsyncEngine) -> None:
    await put(engine, new("c1"), now=T0 + 100)
    assert await take(engine, now=T0 + 99) == []
    assert len(await take(engine, now=T0 + 100)) == 1


async def test_claims_respect_the_batch_limit(engine: AsyncEngine) -> None:
    await put(engine, *(new(f"c{i}") for i in range(5)))
    first = await take(engine, now=T0, limit=3)
    second = await take(engine, now=T0, limit=3, owner="w2")
    assert len(first) == 3
    assert len(second) == 2
    assert {c.seq for c in first}.isdisjoint(c.seq for c in second)


async def test_an_expired_lease_puts_the_delivery_back_in_the_queue(engine: AsyncEngine) -> None:
    [delivery_id] = await put(engine, new("c1"))
    [lost] = await take(engine, now=T0, owner="crashed", lease=30)

    assert await take(engine, now=T0 + 29, owner="w2") == []
    [again] = await take(engine, now=T0 + 31, owner="w2")
    assert again.id == delivery_id

    # The crashed worker's late report does not overwrite the new holder's claim...
    await settle(engine, settled(lost, FAILED, now=T0 + 32, code=500), owner="crashed", now=T0 + 32)
    assert await status_of(engine, delivery_id) == "delivering"
    # ...while the holder's does.
    await settle(engine, settled(again, SUCCEEDED, now=T0 + 33), owner="w2", now=T0 + 33)
    assert await status_of(engine, delivery_id) == SUCCEEDED


async def test_a_stale_outcome_never_overwrites_a_newer_claim_of_the_same_worker(
    engine: AsyncEngine,
) -> None:
    [delivery_id] = await put(engine, new("c1"))
    [first] = await take(engine, now=T0, lease=30)
    [second] = await take(engine, now=T0 + 31, lease=30)  # w1 again, after its lease ran out

    stale = settled(first, RETRYING, now=T0 + 32, code=500, next_at=T0 + 10_000)
    await settle(engine, stale, now=T0 + 32)
    assert await status_of(engine, delivery_id) == "delivering"
    await settle(engine, settled(second, SUCCEEDED, now=T0 + 33), now=T0 + 33)

    async with engine.connect() as connection:
        delivery = await get_delivery(connection, SITE, delivery_id)
    assert delivery is not None
    assert delivery["status"] == SUCCEEDED
    assert [a["status_code"] for a in delivery["attempts"]] == [200]  # the stale one unlogged


async def test_outcomes_survive_an_endpoint_deleted_while_its_delivery_was_in_flight(
    engine: AsyncEngine,
) -> None:
    [gone_id] = await put(engine, new("c1", "ep_a"))
    [kept_id] = await put(engine, new("c2", "ep_b"))
    claimed = await take(engine, now=T0)
    async with engine.begin() as connection:
        await connection.execute(endpoints.delete().where(endpoints.c.id == "ep_a"))

    await settle(engine, *(settled(c, SUCCEEDED, now=T0 + 1) for c in claimed), now=T0 + 1)

    assert await status_of(engine, kept_id) == SUCCEEDED
    async with engine.connect() as connection:
        assert await get_delivery(connection, SITE, gone_id) is None


async def test_a_redelivered_earlier_delivery_waits_for_a_later_one_in_flight(
    engine: AsyncEngine,
) -> None:
    first_id, second_id = await put(engine, new("c1", text="v1"), new("c1", text="v2"))
    [first] = await take(engine, now=T0)
    await settle(engine, settled(first, SUCCEEDED, now=T0 + 1), now=T0 + 1)
    [second] = await take(engine, now=T0 + 2)
    assert second.id == second_id
    async with engine.begin() as connection:
        assert await redeliver(connection, SITE, first_id, now=T0 + 3) is not None

    assert await take(engine, now=T0 + 4, owner="w2") == []  # v2 is being posted right now
    await settle(engine, settled(second, SUCCEEDED, now=T0 + 5), now=T0 + 5)
    assert [c.id for c in await take(engine, now=T0 + 6, owner="w2")] == [first_id]


async def test_released_claims_are_due_again_at_once(engine: AsyncEngine) -> None:
    [delivery_id] = await put(engine, new("c1"))
    [claimed] = await take(engine, now=T0, lease=300)
    async with engine.begin() as connection:
        assert await release(connection, [claimed.seq], owner="someone-else", now=T0 + 1) == 0
        assert await release(connection, [claimed.seq], owner="w1", now=T0 + 1) == 1
    assert await status_of(engine, delivery_id) == PENDING
    assert [c.id for c in await take(engine, now=T0 + 1, owner="w2")] == [delivery_id]


# -- order within a conversation -----------------------------------------------------------


async def test_one_conversation_goes_out_one_delivery_at_a_time_in_order(
    engine: AsyncEngine,
) -> None:
    a1, b1, a2, a_other_endpoint, a3, loose1, loose2 = await put(
        engine,
        new("A"),
        new("B"),
        new("A"),
        new("A", "ep_b"),
        new("A"),
        new(None),
        new(None),
    )

    first = await take(engine, now=T0)
    # One per (endpoint, conversation); deliveries without a conversation are independent.
    assert [c.id for c in first] == [a1, b1, a_other_endpoint, loose1, loose2]

    [claimed_a1] = [c for c in first if c.id == a1]
    assert await take(engine, now=T0 + 1, owner="w2") == []
    await settle(engine, settled(claimed_a1, SUCCEEDED, now=T0 + 1), now=T0 + 1)
    [claimed_a2] = await take(engine, now=T0 + 2, owner="w2")
    assert claimed_a2.id == a2
    assert a3 not in [c.id for c in await take(engine, now=T0 + 3, owner="w3")]


async def test_a_retrying_delivery_holds_back_its_conversation_until_it_fails_for_good(
    engine: AsyncEngine,
) -> None:
    a1, a2, b1 = await put(engine, new("A"), new("A"), new("B"))
    first = await take(engine, now=T0)
    assert [c.id for c in first] == [a1, b1]
    claimed_a1 = first[0]

    # a1 waits for a retry at T0+100: a2 stays behind it even though a2 is due.
    await settle(
        engine, settled(claimed_a1, RETRYING, now=T0 + 1, code=500, next_at=T0 + 100), now=T0 + 1
    )
    assert await take(engine, now=T0 + 50) == []

    [retry] = await take(engine, now=T0 + 100)
    assert retry.id == a1
    assert retry.attempt_count == 1
    await settle(engine, settled(retry, FAILED, now=T0 + 101, code=500), now=T0 + 101)

    # A finally failed delivery releases the rest of its conversation.
    assert [c.id for c in await take(engine, now=T0 + 102)] == [a2]


# -- recording -----------------------------------------------------------------------------


async def test_an_outcome_is_logged_as_an_attempt_and_summarised_on_the_delivery(
    engine: AsyncEngine,
) -> None:
    [delivery_id] = await put(engine, new("c1"))
    [claimed] = await take(engine, now=T0)
    await settle(
        engine,
        settled(claimed, SUCCEEDED, now=T0 + 1, integration_url="https://crm.example/1"),
        now=T0 + 2,
    )

    async with engine.connect() as connection:
        delivery = await get_delivery(connection, SITE, delivery_id)
    assert delivery is not None
    assert delivery["status"] == SUCCEEDED
    assert delivery["attempt_count"] == 1
    assert delivery["last_status_code"] == 200
    assert delivery["integration_url"] == "https://crm.example/1"
    assert delivery["finished_at"] == T0 + 2
    assert delivery["next_attempt_at"] is None
    assert delivery["attempts"] == [
        {
            "number": 1,
            "started_at": T0 + 1,
            "duration_ms": 12.5,
            "outcome": "succeeded",
            "status_code": 200,
            "response_body": "ok",
            "error": None,
            "integration_url": "https://crm.example/1",
            # The outcome was built without the exchange's headers.
            "request_headers": None,
            "response_headers": None,
        }
    ]


async def test_a_gone_endpoint_is_switched_off_with_the_reason_holding_its_deliveries(
    engine: AsyncEngine,
) -> None:
    [first, waiting] = await put(engine, new("c1"), new("c1"))
    [claimed] = await take(engine, now=T0)
    outcome = settled(claimed, HELD, now=T0, code=410)
    gone = dataclasses.replace(outcome, disable_endpoint="the receiver answered 410 Gone")
    await settle(engine, gone, now=T0 + 1)

    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(endpoints.c.enabled, endpoints.c.disabled_reason).where(
                    endpoints.c.id == "ep_a"
                )
            )
        ).one()
    assert row.enabled is False
    assert row.disabled_reason == "the receiver answered 410 Gone"
    # Nothing is failed: both wait for the endpoint to be enabled again.
    assert [await status_of(engine, first), await status_of(engine, waiting)] == [HELD, HELD]


# -- sending again -------------------------------------------------------------------------


async def test_redeliver_sends_the_same_delivery_again_with_a_fresh_schedule(
    engine: AsyncEngine,
) -> None:
    [delivery_id] = await put(engine, new("c1"))
    [claimed] = await take(engine, now=T0)
    await settle(engine, settled(claimed, FAILED, now=T0 + 1, code=500), now=T0 + 1)

    async with engine.begin() as connection:
        delivery = await redeliver(connection, SITE, delivery_id, now=T0 + 10)
    assert delivery is not None
    assert delivery["id"] == delivery_id
    assert delivery["status"] == PENDING
    assert delivery["finished_at"] is None
    assert delivery["next_attempt_at"] == T0 + 10

    [again] = await take(engine, now=T0 + 10)
    assert again.id == delivery_id
    assert again.attempt_count == 1  # numbering continues
    assert again.round_attempts == 0  # the schedule starts afresh


async def test_redeliver_leaves_a_delivery_that_is_being_sent_alone(engine: AsyncEngine) -> None:
    [delivery_id] = await put(engine, new("c1"))
    await take(engine, now=T0)
    async with engine.begin() as connection:
        delivery = await redeliver(connection, SITE, delivery_id, now=T0 + 1)
        assert await redeliver(connection, SITE, "msg_unknown", now=T0 + 1) is None
    assert delivery is not None
    assert delivery["status"] == "delivering"


async def test_recover_redelivers_the_failures_of_one_endpoint_since_a_time(
    engine: AsyncEngine,
) -> None:
    old = await put(engine, new("old"), now=T0)
    recent = await put(engine, new("r1"), new("r2"), new("r3", "ep_b"), now=T0 + 100)
    succeeded_id = (await put(engine, new("ok"), now=T0 + 100))[0]
    batch = await take(engine, now=T0 + 200)
    await settle(
        engine,
        *(
            settled(c, SUCCEEDED if c.id == succeeded_id else FAILED, now=T0 + 201, code=500)
            for c in batch
        ),
        now=T0 + 201,
    )

    async with engine.begin() as connection:
        recovered = await recover(connection, SITE, "ep_a", since=T0 + 50, now=T0 + 300)

    assert recovered == recent[:2]
    assert await status_of(engine, old[0]) == FAILED
    assert await status_of(engine, recent[2]) == FAILED
    assert await status_of(engine, succeeded_id) == SUCCEEDED
    assert [c.id for c in await take(engine, now=T0 + 300)] == recent[:2]


# -- numbers and plans ---------------------------------------------------------------------


async def test_queue_stats_count_by_status_and_measure_the_oldest_wait(
    engine: AsyncEngine,
) -> None:
    await put(engine, new("c1"), new("c2"), now=T0)
    await put(engine, new("c3"), now=T0 + 50)
    [first, *_] = await take(engine, now=T0, limit=1)
    await settle(engine, settled(first, SUCCEEDED, now=T0), now=T0)

    async with engine.connect() as connection:
        stats = await queue_stats(connection, now=T0 + 60)
    # Work not finished only: finished deliveries are history, and counting them costs a scan.
    assert stats["by_status"] == {"pending": 2, "delivering": 0, "retrying": 0, "held": 0}
    assert stats["oldest_pending_age_seconds"] == pytest.approx(60.0)


async def test_the_claim_queries_run_on_the_partial_indexes(engine: AsyncEngine) -> None:
    """Finished deliveries are never read by a claim: both of its lookups use partial indexes."""
    async with engine.connect() as connection:
        opened = await _plan(connection, open_endpoints())
        picked = await _plan(connection, due_deliveries(connection.dialect.name))
    for plan in (opened, picked):
        assert "ix_deliveries_unfinished_endpoint_due" in plan or (
            "ix_deliveries_unfinished_order" in plan
        ), plan
        assert "ix_deliveries_due " not in plan and "ix_deliveries_order " not in plan, plan
    assert "ix_deliveries_in_flight" in opened  # requests in flight are counted off their own
    assert "Seq Scan" not in opened + picked
    if engine.dialect.name == "sqlite":  # PostgreSQL picks among the partial ones by cost
        assert "ix_deliveries_unfinished_order" in picked  # the conversation-order check


async def test_on_sqlite_the_claiming_update_looks_up_the_chosen_rows_only(
    sqlite_url: str,
) -> None:
    """The UPDATE finds the chosen deliveries by key; it never walks every due delivery.

    SQLite once satisfied the UPDATE's own re-check of status and due time by
    reading ``ix_deliveries_due`` from its start, every due row of the whole
    queue, and matched each against the chosen few: a claim's cost grew with
    the backlog. (PostgreSQL keeps that re-check: there it guards against a row
    settled by another worker meanwhile, and it reads the chosen rows by key.)
    """
    await upgrade_async(sqlite_url)
    engine = create_engine(sqlite_url, inline=True)
    try:
        async with engine.connect() as connection:
            compiled = claim_statement("sqlite").compile(dialect=connection.dialect)
            sql = re.sub(r"\(?__\[POSTCOMPILE_claim_open\]\)?", "('ep_a')", str(compiled))
            given = {
                "claim_now": T0,
                "claim_limit": 200,
                "claim_cap": 8,
                "claim_widest": 8,
                "claim_owner": "worker",
                "claim_lease_until": T0 + 120,
            }
            values = tuple(
                given.get(name, compiled.params.get(name))
                for name in compiled.positiontup or ()
                if name != "claim_open"
            )
            rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", values)
            plan = [str(row[-1]) for row in rows]
    finally:
        await engine.dispose()
    assert plan[0] == "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)", plan
    assert not any("ix_deliveries_due " in step for step in plan), plan


async def test_on_sqlite_recording_looks_its_claims_up_by_key(sqlite_url: str) -> None:
    """The lease check reads the recorded claims themselves, not every claim in flight.

    Given ``status = 'delivering'`` and more than a few claims to check, SQLite read
    the check off ``ix_deliveries_due``: every delivery in flight, every worker's,
    matched against the recorded ones, at each recording.
    """
    await upgrade_async(sqlite_url)
    engine = create_engine(sqlite_url, inline=True)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(sites).values(id=SITE, name=SITE, api_key_hash="h", created_at=T0)
            )
            await connection.execute(
                insert(endpoints).values(
                    id="ep_a",
                    site_id=SITE,
                    url="https://a.example/",
                    created_at=T0,
                    updated_at=T0,
                    max_in_flight=64,
                )
            )
        await put(engine, *(new(f"c{n}") for n in range(40)))
        claimed = await take(engine, now=T0)
        assert len(claimed) == 40
        reads: list[tuple[str, Any]] = []

        def note(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
            if sql.lstrip().startswith("SELECT") and "FROM deliveries" in sql:
                reads.append((sql, parameters))

        event.listen(engine.sync_engine, "before_cursor_execute", note)
        await settle(engine, *(settled(c, SUCCEEDED, now=T0 + 1) for c in claimed[:30]), now=T0 + 1)
        event.remove(engine.sync_engine, "before_cursor_execute", note)
        [(sql, parameters)] = reads
        async with engine.connect() as connection:
            rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
            plan = [str(row[-1]) for row in rows]
    finally:
        await engine.dispose()
    assert plan == ["SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)"], plan


async def test_on_a_queue_without_statistics_a_claim_and_a_recording_read_by_key(
    engine: AsyncEngine,
) -> None:
    """A fresh queue (never analyzed) with a backlog: nothing reads every due delivery.

    Before autovacuum's first ANALYZE, PostgreSQL took the claim's "has due work"
    (written as ``EXISTS``) as a semi-join, hashing every due delivery on each
    claim, and met the lease check's status condition on ``ix_deliveries_due``,
    reading every claim in flight: each about 2-3 ms with 8,000 queued.
    """
    async with engine.begin() as connection:
        await enqueue(connection, [new(f"c{n}") for n in range(3000)], now=T0)
    claimed = await take(engine, now=T0, limit=40)
    assert len(claimed) == 8  # ep_a's default cap
    statements: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        statements.append((sql, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        await take(engine, now=T0 + 1, owner="w2")
        await settle(engine, *(settled(c, SUCCEEDED, now=T0 + 1) for c in claimed), now=T0 + 1)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    [opening] = [
        s for s in statements if s[0].lstrip().startswith("SELECT endpoints.id") and "room" in s[0]
    ]
    [lease_check] = [s for s in statements if s[0].lstrip().startswith("SELECT deliveries.seq")]
    explain = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
    plans = []
    async with engine.connect() as connection:
        for sql, parameters in (opening, lease_check):
            rows = await connection.exec_driver_sql(f"{explain} {sql}", parameters)
            plans.append("\n".join(str(row[-1]) for row in rows))
    opened, checked = plans
    assert "Semi Join" not in opened, opened
    assert "ix_deliveries_unfinished_endpoint_due" in opened, opened
    assert "ix_deliveries_due" not in checked, checked
    assert ("pk_deliveries" if engine.dialect.name == "postgresql" else "PRIMARY KEY") in checked


async def _plan(connection: AsyncConnection, query: Select[Any]) -> str:
    """The plan of one of the claim's queries, with the parameters a claim gives it."""
    if connection.dialect.name == "postgresql":
        # A test table is tiny, so PostgreSQL would rightly scan it; forbid that to see the index.
        await connection.exec_driver_sql("SET enable_seqscan = off")
    bound = query.params(
        claim_now=T0,
        claim_limit=200,
        claim_cap=8,
        claim_open=["ep_a", "ep_b"],
        claim_widest=8,
    )
    sql = bound.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    explain = "EXPLAIN QUERY PLAN" if connection.dialect.name == "sqlite" else "EXPLAIN"
    rows = await connection.exec_driver_sql(f"{explain} {sql}")
    return "\n".join(str(row[-1]) for row in rows) + "\n"


async def test_delivery_rows_survive_only_with_their_endpoint(engine: AsyncEngine) -> None:
    """Deleting an endpoint takes its queue with it, so a claim never meets an orphan."""
    await put(engine, new("c1", "ep_b"))
    async with engine.begin() as connection:
        await connection.execute(endpoints.delete().where(endpoints.c.id == "ep_b"))
        remaining = (await connection.execute(select(deliveries.c.id))).all()
    assert remaining == []


# -- writing ------------------------------------------------------------------------------


async def test_a_write_transaction_rolls_back_when_its_block_raises(engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError):
        async with write_transaction(engine) as connection:
            await enqueue(connection, [new("c1")], now=T0)
            raise RuntimeError("the API failed after queueing")
    async with engine.connect() as connection:
        assert (await list_deliveries(connection, SITE))[0] == []


async def test_a_write_transaction_on_a_broken_connection_opens_no_new_one(
    engine: AsyncEngine,
) -> None:
    """Its clean-up after a cancelled statement never tries to connect again.

    The check for work it made due once read the dead connection's ``info``,
    which made SQLAlchemy open a fresh database connection outside its
    greenlet ("coroutine 'connect' was never awaited"), in the middle of a
    cancelled worker's shutdown.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError):
            async with write_transaction(engine) as connection:
                await enqueue(connection, [new("c1")], now=T0)
                await connection.invalidate()
                raise RuntimeError("the statement was cancelled")
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    async with engine.connect() as connection:
        assert (await list_deliveries(connection, SITE))[0] == []


async def test_on_sqlite_a_write_transaction_holds_the_write_lock_from_its_start(
    sqlite_url: str,
) -> None:
    """Another process cannot write between its reads and its writes ("database is locked")."""
    await upgrade_async(sqlite_url)
    engine = create_engine(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    try:
        async with write_transaction(engine) as connection:
            await list_deliveries(connection, SITE)
            other = sqlite3.connect(path, timeout=0.1)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("DELETE FROM attempts")
            other.close()
        other = sqlite3.connect(path, timeout=5)
        other.execute("DELETE FROM attempts")
        other.commit()
        other.close()
    finally:
        await engine.dispose()


# -- sharing out: the per-endpoint cap, ranks, the breaker --------------------------------


def _distinct(count: int, endpoint: str = "ep_a", *, site: str = SITE) -> list[NewDelivery]:
    return [new(f"{endpoint}-{i}", endpoint, site=site) for i in range(count)]


async def test_a_claim_takes_at_most_the_cap_of_an_endpoint_across_claimers(
    engine: AsyncEngine,
) -> None:
    await put(engine, *_distinct(20, "ep_a"), *_distinct(20, "ep_b"))
    first = await take(engine, now=T0, owner="w1")
    second = await take(engine, now=T0, owner="w2")

    assert Counter(c.endpoint_id for c in first) == {"ep_a": 8, "ep_b": 8}
    assert second == []  # both endpoints have their 8 in flight, whoever claimed them
    # A lease that ran out no longer counts as in flight.
    assert len(await take(engine, now=T0 + 2000, owner="w2")) == 16


async def test_an_endpoints_own_cap_wins_over_the_default(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            endpoints.update().where(endpoints.c.id == "ep_a").values(max_in_flight=3)
        )
    await put(engine, *_distinct(10, "ep_a"))
    assert len(await take(engine, now=T0)) == 3


async def test_a_deep_backlog_does_not_push_another_endpoint_back_in_line(
    engine: AsyncEngine,
) -> None:
    """Ranked within the endpoint: one of A, one of X, one of A... not A's oldest 100 first."""
    await put(engine, *_distinct(100, "ep_a"), now=T0)
    await put(engine, *_distinct(3, "ep_x", site=OTHER_SITE), now=T0 + 10)
    claimed = await take(engine, now=T0 + 20, limit=4)
    assert Counter(c.endpoint_id for c in claimed) == {"ep_a": 2, "ep_x": 2}


async def test_the_breaker_opens_after_failures_and_lets_one_probe_through_at_a_time(
    engine: AsyncEngine,
) -> None:
    await put(engine, *_distinct(12, "ep_a"))
    batch = await take(engine, now=T0)
    assert len(batch) == 8
    await settle(
        engine, *(settled(c, RETRYING, now=T0, code=500, next_at=T0) for c in batch), now=T0
    )

    async with engine.connect() as connection:
        health = (await health_of(connection, {"ep_a": True}, now=T0))["ep_a"]
    assert health["state"] == "failing"
    assert health["consecutive_failures"] == 8
    assert health["next_probe_at"] == pytest.approx(T0 + 5.0, abs=1e-3)
    assert await take(engine, now=T0 + 1) == []  # its deliveries wait, unattempted
    [probe] = await take(engine, now=T0 + 6)
    assert await take(engine, now=T0 + 6, owner="w2") == []  # one probe at a time

    await settle(engine, settled(probe, SUCCEEDED, now=T0 + 7), now=T0 + 7)
    assert len(await take(engine, now=T0 + 7)) == 8  # closed: the backlog flows at the cap
    async with engine.connect() as connection:
        health = (await health_of(connection, {"ep_a": True}, now=T0 + 7))["ep_a"]
    assert health["state"] == "healthy"
    assert health["success_rate_24h"] == pytest.approx(1 / 9, abs=1e-4)


async def test_a_failed_probe_pushes_the_next_one_further_out(engine: AsyncEngine) -> None:
    await put(engine, *_distinct(8, "ep_a"))
    batch = await take(engine, now=T0)
    await settle(
        engine, *(settled(c, RETRYING, now=T0, code=503, next_at=T0) for c in batch), now=T0
    )
    for probe_at, wait in ((T0 + 5, 10.0), (T0 + 15, 20.0), (T0 + 35, 40.0)):
        assert await take(engine, now=probe_at - 0.5) == []
        [probe] = await take(engine, now=probe_at)
        failed = settled(probe, RETRYING, now=probe_at, code=503, next_at=probe_at)
        await settle(engine, failed, now=probe_at)
        async with engine.connect() as connection:
            health = (await health_of(connection, {"ep_a": True}, now=probe_at))["ep_a"]
        # The failures in flight when it opened did not count; each failed probe doubles.
        assert health["next_probe_at"] == pytest.approx(probe_at + wait, abs=1e-3)


async def test_an_endpoint_disabled_between_its_read_and_its_healths_is_shown_as_read(
    engine: AsyncEngine,
) -> None:
    """The API reads an endpoint, then its health: a worker that disables it in between must
    not make it read as ``enabled`` and ``disabled`` at once (nor one deleted, a 500)."""
    async with engine.connect() as reader:
        found = await get_endpoint(reader, SITE, "ep_a")
        assert found is not None and found.enabled
        async with write_transaction(engine) as worker:
            assert await disable_endpoint(worker, "ep_a", "failing for 3 days", now=T0)
        health = await health_of(reader, {found.id: found.enabled, "ep_gone": True}, now=T0)
    assert health["ep_a"]["state"] == "healthy"
    assert health["ep_gone"]["state"] == "healthy"  # no health row yet: a fresh one
    async with engine.connect() as connection:
        again = await get_endpoint(connection, SITE, "ep_a")
        assert again is not None and not again.enabled
        health = await health_of(connection, {again.id: again.enabled}, now=T0)
    assert health["ep_a"]["state"] == "disabled"


async def test_4xx_answers_do_not_open_the_breaker(engine: AsyncEngine) -> None:
    await put(engine, *_distinct(8, "ep_a"))
    batch = await take(engine, now=T0)
    await settle(
        engine, *(settled(c, RETRYING, now=T0, code=404, next_at=T0) for c in batch), now=T0
    )
    async with engine.connect() as connection:
        health = (await health_of(connection, {"ep_a": True}, now=T0))["ep_a"]
    assert health["state"] == "healthy"
    assert health["consecutive_failures"] == 8  # still counted, towards disabling


# -- commands and superseded deliveries -----------------------------------------------------


async def test_a_command_overtakes_a_retrying_delivery_which_its_success_supersedes(
    engine: AsyncEngine,
) -> None:
    [start] = await put(engine, new("c1", text="start"))
    [claimed] = await take(engine, now=T0)
    await settle(engine, settled(claimed, RETRYING, now=T0, code=500, next_at=T0 + 300), now=T0)
    [between] = await put(engine, new("c1", text="between"), now=T0 + 1)
    command = dataclasses.replace(new("c1", text="lead"), trigger="command")
    [lead] = await put(engine, command, now=T0 + 2)
    [later] = await put(engine, new("c1", text="completion"), now=T0 + 2)

    [taken] = await take(engine, now=T0 + 3)
    assert taken.id == lead  # not the others, which wait their turn
    await settle(engine, settled(taken, SUCCEEDED, now=T0 + 4), now=T0 + 4)

    # Older states of the chat are not sent after the newer one; the newer still is.
    assert await status_of(engine, start) == "superseded"
    assert await status_of(engine, between) == "superseded"
    assert await status_of(engine, later) == PENDING
    async with engine.begin() as connection:
        superseded = await get_delivery(connection, SITE, start)
        assert superseded is not None
        assert "newer delivery" in superseded["last_error"]
        assert await recover(connection, SITE, "ep_a", since=0, now=T0 + 5) == []
    [after] = await take(engine, now=T0 + 5)
    assert after.id == later


async def test_a_command_still_waits_for_a_delivery_of_its_chat_in_flight(
    engine: AsyncEngine,
) -> None:
    await put(engine, new("c1"))
    [in_flight] = await take(engine, now=T0)
    await put(engine, dataclasses.replace(new("c1"), trigger="command"), now=T0 + 1)
    assert await take(engine, now=T0 + 2) == []
    assert in_flight.trigger == "api"


async def test_a_command_waits_for_an_earlier_delivery_about_to_be_sent(
    engine: AsyncEngine,
) -> None:
    """Only one waiting for a retry is overtaken: a start event not yet tried goes first."""
    [start] = await put(engine, new("c1"))
    await put(engine, dataclasses.replace(new("c1"), trigger="command"), now=T0 + 1)
    assert [c.id for c in await take(engine, now=T0 + 2)] == [start]


# -- alerts ---------------------------------------------------------------------------------


async def test_alerts_are_rate_limited_and_never_about_the_alert_endpoint(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        alerts = await set_alert_url(connection, SITE, "https://owner.example/alerts")
        assert alerts is not None
    await put(engine, *_distinct(8, "ep_a"))
    batch = await take(engine, now=T0)
    await settle(
        engine, *(settled(c, RETRYING, now=T0, code=500, next_at=T0) for c in batch), now=T0
    )
    opened = Transition("ep_a", SITE, "endpoint.failing", "HTTP 500", T0)
    about_alerts = Transition(alerts.id, SITE, "endpoint.failing", "HTTP 500", T0)
    async with engine.begin() as connection:
        first = await queue_alerts(connection, [opened, about_alerts], min_interval=900, now=T0)
        again = await queue_alerts(connection, [opened], min_interval=900, now=T0 + 60)
        later = await queue_alerts(connection, [opened], min_interval=900, now=T0 + 1000)
        sent = await get_delivery(connection, SITE, first[0].id)
    assert [ref.endpoint_id for ref in first] == [alerts.id]
    assert again == []
    assert len(later) == 1
    assert sent is not None
    assert sent["payload_kind"] == "alert"
    assert json.loads(sent["payload"]) == {
        "type": "endpoint.failing",
        "timestamp": "2023-11-14T22:13:20Z",
        "data": {
            "site_id": SITE,
            "endpoint_id": "ep_a",
            "url": "https://ep_a.example/hook?token=t",
            "reason": "HTTP 500",
        },
    }
