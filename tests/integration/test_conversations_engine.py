"""The conversation engine on real SQLite and PostgreSQL: what gets queued, and exactly once.

These tests drive :class:`ConversationService` directly and read the queued
deliveries back from the database; the HTTP tests cover the same rules end to
end through a real server and receiver.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.conversations import rules, store
from chathooks.conversations.constraints import consumer_problems
from chathooks.conversations.errors import (
    ConversationClosed,
    ConversationExists,
    ConversationNotFound,
)
from chathooks.conversations.inputs import (
    ConversationChanges,
    NewConversation,
    NewMessage,
    NewOfflineMessage,
)
from chathooks.conversations.retention import delete_conversations
from chathooks.conversations.service import CommandOutcome, ConversationService
from chathooks.db import create_engine
from chathooks.db.migrate import upgrade_async
from chathooks.db.tables import conversation_lines, deliveries, delivery_payloads
from chathooks.repository.endpoints import create_endpoint
from chathooks.repository.sites import create_site
from chathooks.wire import dumps

VISITOR = {"fullName": "Paul", "emailAddress": "paul@example.com", "ip": "203.0.113.10"}
OPERATOR = {"id": "1029431", "username": "paul-clinic", "nickname": "Paul"}


class Clock:
    """A clock the test moves by hand, so idle timeouts need no waiting."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    engine: AsyncEngine
    site: str
    clock: Clock
    service: ConversationService
    endpoints: dict[str, str]

    async def queued(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        query = (
            select(deliveries, delivery_payloads.c.payload)
            .join(delivery_payloads, delivery_payloads.c.delivery_id == deliveries.c.id)
            .order_by(deliveries.c.seq)
        )
        if conversation_id is not None:
            query = query.where(deliveries.c.conversation_id == conversation_id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        names = {v: k for k, v in self.endpoints.items()}
        return [
            {
                "endpoint": names[row["endpoint_id"]],
                "trigger": row["trigger"],
                "kind": row["payload_kind"],
                "document": json.loads(row["payload"]),
            }
            for row in rows
        ]


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    await upgrade_async(database_url)
    # As the service runs it: on SQLite, a transaction's statements on the event loop's thread.
    engine = create_engine(database_url, inline=True)
    clock = Clock()
    async with engine.begin() as connection:
        site = (await create_site(connection, "example.com")).site.id
        auto = await create_endpoint(connection, site, url="http://127.0.0.1:9/auto")
        manual = await create_endpoint(
            connection, site, url="http://127.0.0.1:9/manual", auto_send=False, send_offline=False
        )
        events = await create_endpoint(
            connection, site, url="http://127.0.0.1:9/events", auto_send=False, send_events=True
        )
    try:
        yield World(
            engine=engine,
            site=site,
            clock=clock,
            service=ConversationService(engine, clock=clock),
            endpoints={"auto": auto.id, "manual": manual.id, "events": events.id},
        )
    finally:
        await engine.dispose()


async def start(world: World, conversation_id: str | None = None) -> str:
    body: dict[str, Any] = {"visitor": VISITOR}
    if conversation_id:
        body["id"] = conversation_id
    outcome = await world.service.start(world.site, NewConversation.model_validate(body))
    return outcome.conversation.id


async def say(world: World, conversation_id: str, who: str, body: str) -> Any:
    message: dict[str, Any] = {"from": who, "body": body}
    if who == "operator":
        message["operator"] = OPERATOR
    return await world.service.add_message(
        world.site, conversation_id, NewMessage.model_validate(message)
    )


async def test_a_start_event_goes_only_to_endpoints_with_send_events(world: World) -> None:
    conversation = await start(world)
    (queued,) = await world.queued(conversation)
    assert queued["endpoint"] == "events"
    assert queued["kind"] == "event"
    assert queued["document"]["eventType"] == "start"
    assert queued["document"]["id"] == conversation


async def test_a_command_posts_the_transcript_so_far_to_every_endpoint(world: World) -> None:
    conversation = await start(world)
    await say(world, conversation, "visitor", "I want a quote")
    outcome = await say(world, conversation, "operator", "!Lead hot prospect")
    assert isinstance(outcome, CommandOutcome)
    assert outcome.command == "lead"
    commands = [q for q in await world.queued(conversation) if q["trigger"] == "command"]
    assert sorted(q["endpoint"] for q in commands) == ["auto", "events", "manual"]
    for queued in commands:
        document = queued["document"]
        assert document["manuallySubmitted"] is True
        assert [item["body"] for item in document["items"]] == ["I want a quote"]
        assert consumer_problems(document) == []


async def test_completion_reposts_only_where_the_chat_went_on(world: World) -> None:
    conversation = await start(world)
    await say(world, conversation, "visitor", "hello")
    await say(world, conversation, "operator", "!case")
    await say(world, conversation, "operator", "a case is open")
    await world.service.close(world.site, conversation)
    completions = [q for q in await world.queued(conversation) if q["trigger"] == "completion"]
    # auto_send gets it anyway; the commanded endpoints get it because the chat went on.
    assert sorted(q["endpoint"] for q in completions) == ["auto", "events", "manual"]
    for queued in completions:
        assert queued["document"]["manuallySubmitted"] is False
        assert [i["body"] for i in queued["document"]["items"]] == ["hello", "a case is open"]


async def test_nothing_is_posted_twice_for_the_same_state(world: World) -> None:
    conversation = await start(world)
    await say(world, conversation, "visitor", "hello")
    await say(world, conversation, "operator", "!lead")
    repeated = await say(world, conversation, "operator", "!LEAD again")
    assert isinstance(repeated, CommandOutcome)
    assert {d.reused for d in repeated.deliveries} == {True}
    assert await world.service.close(world.site, conversation) == []
    triggers = [q["trigger"] for q in await world.queued(conversation)]
    assert triggers.count("command") == 3  # one per endpoint, once
    assert "completion" not in triggers


async def test_an_idle_conversation_completes_once(world: World) -> None:
    idle = await start(world)
    await say(world, idle, "visitor", "anyone there?")
    world.clock.now += 100
    busy = await start(world)
    await say(world, busy, "visitor", "hi")
    world.clock.now += 50
    assert await world.service.close_idle(120) == 1
    assert await world.service.close_idle(120) == 0
    view = await world.service.view(world.site, idle)
    assert (view.conversation.state, view.conversation.close_reason) == ("closed", "idle")
    assert (await world.service.view(world.site, busy)).conversation.state == "open"
    completions = [q for q in await world.queued(idle) if q["trigger"] == "completion"]
    assert [q["endpoint"] for q in completions] == ["auto"]


async def test_closed_conversations_refuse_changes(world: World) -> None:
    conversation = await start(world)
    await world.service.close(world.site, conversation)
    with pytest.raises(ConversationClosed):
        await say(world, conversation, "visitor", "one more thing")
    with pytest.raises(ConversationClosed):
        await world.service.close(world.site, conversation)
    with pytest.raises(ConversationClosed):
        await world.service.change(
            world.site, conversation, ConversationChanges.model_validate({"tags": ["x"]})
        )


async def test_ids_are_unique_within_a_site(world: World) -> None:
    await start(world, "chat-1")
    with pytest.raises(ConversationExists):
        await start(world, "chat-1")
    with pytest.raises(ConversationNotFound):
        await say(world, "chat-2", "visitor", "hello")


async def test_changes_appear_in_what_is_posted_after(world: World) -> None:
    conversation = await start(world)
    await say(world, conversation, "visitor", "hello")
    changes = ConversationChanges.model_validate(
        {"tags": ["sales"], "customFields": {"plan": "pro"}, "chat_feedback": {"overall_chat": 5}}
    )
    record = await world.service.change(world.site, conversation, changes)
    assert record.version == 3
    await world.service.close(world.site, conversation)
    (completion,) = [q for q in await world.queued(conversation) if q["trigger"] == "completion"]
    visitor = completion["document"]["visitor"]
    assert completion["document"]["tags"] == ["sales"]
    assert visitor["customFields"] == {"plan": "pro"}
    assert visitor["chat_feedback"] == {"overall_chat": 5}


async def test_a_posted_transcript_is_the_text_its_models_write(world: World) -> None:
    """Lines are posted as they were stored; that must be, byte for byte, what reading the
    transcript into models and writing it out gives (key order, escapes, operators, tags)."""
    conversation = await start(world)
    await say(world, conversation, "visitor", 'Ça coûte combien? 💬 "quoted" <b>&amp;</b>')
    await say(world, conversation, "operator", "Line one\nline two\ttabbed")
    changes = ConversationChanges.model_validate(
        {"tags": ["sales", "vip"], "customFields": {"plan": "pro", "seats": 40}}
    )
    await world.service.change(world.site, conversation, changes)
    await say(world, conversation, "operator", "!lead wants a quote")
    await say(world, conversation, "visitor", "thanks")
    await world.service.close(world.site, conversation)
    async with world.engine.connect() as connection:
        record = await store.get_conversation(connection, world.site, conversation)
        assert record is not None
        transcript = await store.read_transcript(connection, record)
        payloads = (
            await connection.execute(
                select(deliveries.c.trigger, delivery_payloads.c.payload)
                .join(delivery_payloads, delivery_payloads.c.delivery_id == deliveries.c.id)
                .where(deliveries.c.conversation_id == conversation)
                .order_by(deliveries.c.seq)
            )
        ).all()
    completions = {payload for trigger, payload in payloads if trigger == "completion"}
    expected = rules.transcript_payload(transcript, manually_submitted=False)
    assert completions == {dumps(expected.to_wire())}
    (command,) = {payload for trigger, payload in payloads if trigger == "command"}
    assert json.loads(command)["items"] == json.loads(next(iter(completions)))["items"][:2]


async def test_an_offline_message_goes_to_send_offline_endpoints(world: World) -> None:
    request = NewOfflineMessage.model_validate({"visitor": VISITOR, "body": "call me back"})
    outcome = await world.service.offline_message(world.site, request)
    queued = await world.queued(outcome.id)
    assert sorted(q["endpoint"] for q in queued) == ["auto", "events"]
    for item in queued:
        assert item["kind"] == "offline_message"
        assert "operators" not in item["document"]
        assert consumer_problems(item["document"]) == []


async def test_concurrent_messages_are_all_kept(world: World) -> None:
    conversation = await start(world)
    await asyncio.gather(*(say(world, conversation, "visitor", f"line {n}") for n in range(10)))
    view = await world.service.view(world.site, conversation)
    bodies = sorted(item.to_wire()["body"] for item in view.transcript.items)
    assert bodies == sorted(f"line {n}" for n in range(10))
    assert view.conversation.version == 11


async def test_racing_idle_checks_complete_each_conversation_once(postgres_url: str) -> None:
    await upgrade_async(postgres_url)
    engines = [create_engine(postgres_url) for _ in range(3)]
    clock = Clock()
    try:
        async with engines[0].begin() as connection:
            site = (await create_site(connection, "race.example")).site.id
            await create_endpoint(connection, site, url="http://127.0.0.1:9/auto")
        services = [ConversationService(engine, clock=clock) for engine in engines]
        request = NewConversation.model_validate({"visitor": VISITOR})
        for _ in range(30):
            await services[0].start(site, request)
        clock.now += 3600
        closed = await asyncio.gather(*(service.close_idle(60) for service in services))
        assert sum(closed) == 30
        async with engines[0].connect() as connection:
            rows = (
                await connection.execute(
                    select(deliveries.c.conversation_id).where(deliveries.c.trigger == "completion")
                )
            ).all()
        assert len(rows) == 30
        assert len({row.conversation_id for row in rows}) == 30
    finally:
        for engine in engines:
            await engine.dispose()


async def test_lines_sent_at_once_are_committed_in_order_before_each_answer(
    world: World, database_url: str
) -> None:
    """Concurrent chat lines share transactions; each is answered only once it is committed,
    the lines of a conversation keep the order they were sent in, and a line the rules
    refuse fails alone."""
    first, second, closed = await start(world), await start(world), await start(world)
    await world.service.close(world.site, closed)
    reader = create_engine(database_url)  # another connection sees only what was committed

    async def line(conversation_id: str, text: str) -> int:
        outcome = await say(world, conversation_id, "visitor", text)
        async with reader.connect() as connection:
            rows = await connection.execute(
                select(conversation_lines.c.seq).where(
                    conversation_lines.c.conversation_id == conversation_id,
                    conversation_lines.c.seq == outcome.conversation.lines,
                )
            )
            assert rows.first() is not None, f"{text!r} answered before it was committed"
        return int(outcome.conversation.version)

    try:
        answers = await asyncio.gather(
            *(line(c, f"{c[:4]} {n}") for n in range(8) for c in (first, second)),
            line(closed, "too late"),
            line("nope", "nobody"),
            return_exceptions=True,
        )
    finally:
        await reader.dispose()
    assert isinstance(answers[-2], ConversationClosed)
    assert isinstance(answers[-1], ConversationNotFound)
    assert sorted(a for a in answers[:-2] if isinstance(a, int)) == sorted([*range(2, 10)] * 2)
    for conversation in (first, second):
        view = await world.service.view(world.site, conversation)
        bodies = [item.to_wire()["body"] for item in view.transcript.items]
        assert bodies == [f"{conversation[:4]} {n}" for n in range(8)]


async def test_a_line_sees_what_another_process_did_to_its_conversation(
    world: World, database_url: str
) -> None:
    """A process starts a line from the conversation as it last wrote it; whatever another
    process did since (lines, a change, an erasure and a new chat with the same id, a close)
    is what the line is written on."""
    other_engine = create_engine(database_url)
    other = ConversationService(other_engine, clock=world.clock)

    async def elsewhere(text: str) -> None:
        body = NewMessage.model_validate({"from": "visitor", "body": text})
        await other.add_message(world.site, conversation, body)

    async def renamed(name: str) -> None:
        changes = ConversationChanges.model_validate({"visitor": {"fullName": name}})
        await other.change(world.site, conversation, changes)

    async def bodies() -> list[str]:
        view = await world.service.view(world.site, conversation)
        return [item.to_wire()["body"] for item in view.transcript.items]

    try:
        conversation = await start(world, "chat-0001")
        await say(world, conversation, "visitor", "one")
        await elsewhere("two")
        await renamed("Ana")
        three = await say(world, conversation, "visitor", "three")
        assert (three.conversation.lines, three.conversation.version) == (3, 5)
        assert three.item.to_wire()["visitor_nickname"] == "Ana"
        assert await bodies() == ["one", "two", "three"]

        # Erased, and a new chat under the same id grows to the same version and line count.
        async with other_engine.begin() as connection:
            await delete_conversations(connection, [(world.site, conversation)])
        request = NewConversation.model_validate({"id": conversation, "visitor": VISITOR})
        world.clock.now += 1
        await other.start(world.site, request)
        await elsewhere("a")
        await elsewhere("b")
        await renamed("Bea")
        await elsewhere("c")
        d = await say(world, conversation, "visitor", "d")
        assert (d.conversation.lines, d.conversation.version) == (4, 6)
        assert d.item.to_wire()["visitor_nickname"] == "Bea"
        assert await bodies() == ["a", "b", "c", "d"]

        await other.close(world.site, conversation)
        with pytest.raises(ConversationClosed):
            await say(world, conversation, "visitor", "too late")
    finally:
        await other_engine.dispose()
