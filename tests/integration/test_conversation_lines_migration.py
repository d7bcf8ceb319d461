"""r0007: the chats stored before it keep every line, in order, and go on from there."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from alembic import command
from sqlalchemy import select, text

from chathooks.conversations.inputs import NewMessage
from chathooks.conversations.service import ConversationService
from chathooks.db.engine import create_engine
from chathooks.db.migrate import alembic_config, upgrade_async
from chathooks.db.tables import conversations
from integration.test_queue_migrations import insert_site

ITEMS = [
    {
        "kind": "MessageToOperator",
        "body": "Hi, is the annual plan billed per seat?",
        "timestamp": "1700000000.100000",
        "nickname": "Ana Garcia (ana@example.org)",
        "visitor_nickname": "Ana Garcia",
    },
    {
        "kind": "MessageToVisitor",
        "body": "It is, with a discount from 20 seats.",
        "timestamp": "1700000010.200000",
        "nickname": "Maria",
        "operatorId": "647563",
    },
]
DOCUMENT = {
    "kind": "Conversation",
    "id": "c" * 32,
    "tags": ["sales"],
    "items": ITEMS,
    "visitor": {"kind": "Visitor", "id": "v" * 32, "emailAddress": "ana@example.org"},
    "operators": {
        "647563": {"kind": "Operator", "id": "647563", "username": "maria", "nickname": "Maria"}
    },
}


async def _store_at_r0006(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await insert_site(connection)
            await connection.execute(
                text(
                    "INSERT INTO conversations (site_id, id, state, document, version,"
                    " created_at, updated_at, last_activity_at)"
                    " VALUES ('s', :id, 'open', :document, 3, 1700000000, 1700000010, 1700000010)"
                ),
                {"id": DOCUMENT["id"], "document": json.dumps(DOCUMENT)},
            )
    finally:
        await engine.dispose()


async def _upgrade_then_chat(database_url: str) -> tuple[dict[str, Any], int, dict[str, Any]]:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        service = ConversationService(engine, clock=lambda: 1700000020.0)
        migrated = await service.view("s", str(DOCUMENT["id"]))
        await service.add_message(
            "s", str(DOCUMENT["id"]), NewMessage.model_validate({"from": "visitor", "body": "ok"})
        )
        after = await service.view("s", str(DOCUMENT["id"]))
    finally:
        await engine.dispose()
    assert migrated.conversation.version == 3
    assert after.conversation.version == 4
    assert after.conversation.messages == 3
    return (
        migrated.transcript.to_wire(),
        migrated.conversation.messages,
        after.transcript.to_wire(),
    )


async def _document(database_url: str) -> dict[str, Any]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            value = (await connection.execute(select(conversations.c.document))).scalar_one()
    finally:
        await engine.dispose()
    return value if isinstance(value, dict) else json.loads(value)


def test_a_chat_stored_before_r0007_keeps_its_lines_and_goes_on(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "r0006")
    asyncio.run(_store_at_r0006(database_url))

    migrated, messages, after = asyncio.run(_upgrade_then_chat(database_url))

    assert migrated["items"] == ITEMS
    assert {k: v for k, v in migrated.items() if k != "manuallySubmitted"} == DOCUMENT
    assert messages == 2
    assert [item["body"] for item in after["items"]] == [*(i["body"] for i in ITEMS), "ok"]
    assert "items" not in asyncio.run(_document(database_url))

    command.downgrade(alembic_config(database_url), "r0006")

    restored = asyncio.run(_document(database_url))
    assert restored["items"] == after["items"]
    assert restored["operators"] == DOCUMENT["operators"]
