"""``chathooks receive``: retention of received conversations, and erasure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from chathooks import cli
from chathooks.receiver.retention import DAY, erase_received, purge_received
from chathooks.receiver.store import ReceivedStore
from chathooks.wire import validate_document

NOW = 1_800_000_000.0
EMAIL = "Quinn.Erase@Example.org"
SECRET = "the door code is 5512-ERASE"


def _transcript(chat: str, email: str, line: str) -> dict[str, Any]:
    return {
        "kind": "Conversation",
        "id": chat,
        "visitor": {"kind": "Visitor", "id": f"v-{chat}", "emailAddress": email},
        "items": [{"kind": "MessageToOperator", "body": line, "timestamp": "1700000000.1"}],
    }


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ReceivedStore]:
    received = ReceivedStore.open(database_url)
    await received.migrate()
    yield received
    await received.close()


async def _receive(store: ReceivedStore, document: dict[str, Any], at: float, hook: str) -> None:
    await store.record(validate_document(document), document, webhook_id=hook, received_at=at)


async def test_retention_deletes_conversations_last_received_before_the_cutoff(
    store: ReceivedStore,
) -> None:
    await _receive(store, _transcript("old", "a@example.com", "x"), NOW - 10 * DAY, "h1")
    await _receive(store, _transcript("old", "a@example.com", "x y"), NOW - 9 * DAY, "h2")
    await _receive(store, _transcript("new", "b@example.com", "z"), NOW - 1 * DAY, "h3")
    assert await purge_received(store, older_than_days=5, batch_size=1, now=NOW) == (1, 2)
    page = await store.list_conversations()
    assert [c.id for c in page.items] == ["new"]


async def test_erasure_by_email_leaves_no_trace_in_the_file(
    store: ReceivedStore, database_url: str
) -> None:
    await _receive(store, _transcript("c1", EMAIL, SECRET), NOW, "h1")
    await _receive(store, _transcript("c1", EMAIL, SECRET + " again"), NOW, "h2")
    await _receive(store, _transcript("c2", "kept@example.net", "hello"), NOW, "h3")
    assert await erase_received(store, email=EMAIL.upper()) == (1, 2)
    assert await store.get_conversation("c1") is None
    assert await store.get_conversation("c2") is not None
    if database_url.startswith("sqlite"):
        stored = _file_bytes(database_url)
        assert b"kept@example.net" in stored
        assert EMAIL.encode() not in stored and SECRET.encode() not in stored


def _file_bytes(database_url: str) -> bytes:
    """The SQLite database file and its write-ahead log, as bytes."""
    database = Path(make_url(database_url).database or "")
    wal = database.with_name(database.name + "-wal")
    return database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_receive_erase_command(database_url: str) -> None:
    async def prepare() -> None:
        store = ReceivedStore.open(database_url)
        try:
            await store.migrate()
            await _receive(store, _transcript("c9", EMAIL, SECRET), NOW, "h9")
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, prepare()).result()
    runner = CliRunner()
    done = runner.invoke(
        cli.app, ["receive", "erase", "--conversation", "c9", "--database-url", database_url]
    )
    assert done.exit_code == 0, done.output
    assert "erased 1 conversation(s) and 1 stored version(s)" in done.stdout
    refused = runner.invoke(cli.app, ["receive", "erase", "--database-url", database_url])
    assert refused.exit_code == 2 and "--conversation" in refused.output
    bad = runner.invoke(cli.app, ["receive", "--retention-days", "0"])
    assert bad.exit_code == 2 and "--retention-days" in bad.output
