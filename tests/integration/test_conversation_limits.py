"""A conversation keeps at most 10,000 messages, as Olark's chats do; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import insert, select, update

from chathooks.conversations.rules import MAX_MESSAGES
from chathooks.db.engine import create_engine
from chathooks.db.tables import conversation_lines, conversations
from integration.test_conversations_http import VISITOR
from support.service import running_service


def fill(database_url: str, conversation: str, count: int) -> None:
    """Give the stored chat ``count`` lines (posting 10,000 through the API would take minutes)."""

    async def run() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                site_id = (
                    await connection.execute(
                        select(conversations.c.site_id).where(conversations.c.id == conversation)
                    )
                ).scalar_one()
                line = {
                    "kind": "MessageToOperator",
                    "nickname": "Paul",
                    "timestamp": "1700000000.000000",
                    "body": "hi",
                }
                await connection.execute(
                    insert(conversation_lines),
                    [
                        {
                            "site_id": site_id,
                            "conversation_id": conversation,
                            "seq": seq,
                            "line": json.dumps(line),
                            "created_at": 1700000000.0,
                        }
                        for seq in range(1, count + 1)
                    ],
                )
                await connection.execute(
                    update(conversations)
                    .where(conversations.c.id == conversation)
                    .values(messages=count, lines=count)
                )
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_the_10001st_message_is_refused_naming_the_limit(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        path = f"/api/v1/sites/{site}/conversations"
        started = service.client.post(path, json={"visitor": VISITOR}, headers=auth)
        conversation = started.json()["id"]
        fill(database_url, conversation, MAX_MESSAGES - 1)
        line = {"from": "visitor", "body": "one more"}
        last = service.client.post(f"{path}/{conversation}/messages", json=line, headers=auth)
        over = service.client.post(f"{path}/{conversation}/messages", json=line, headers=auth)
        kept = service.client.get(f"{path}/{conversation}", headers=auth)

    assert last.status_code == 201, last.text
    assert over.status_code == 409, over.text
    assert over.json()["error"] == "conversation_full"
    assert "10000 messages" in over.json()["message"]
    assert len(kept.json()["transcript"]["items"]) == MAX_MESSAGES
