"""Migrations: the packaged Alembic scripts build exactly the schema in ``tables.py``."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.engine import create_engine
from chathooks.db.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
    upgrade_async,
)
from chathooks.db.tables import metadata


async def insert_site(connection: AsyncConnection) -> None:
    """Site ``s``, written in SQL so that it works at any revision."""
    await connection.execute(
        text("INSERT INTO sites (id, name, api_key_hash, created_at) VALUES ('s', 'S', 'h', 0)")
    )


def test_upgrade_builds_the_schema_and_is_idempotent(database_url: str) -> None:
    assert current_revision(database_url) is None

    upgrade(database_url)
    upgrade(database_url)

    assert current_revision(database_url) == head_revision()


async def test_the_migrated_schema_matches_tables_py(database_url: str) -> None:
    """Fails when ``tables.py`` changed without a migration (see ``make_revision``)."""
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    assert differences == []
    assert {"deliveries", "attempts", "endpoints", "sites", "alembic_version"} <= set(tables)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def test_processes_starting_together_upgrade_one_after_the_other(database_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            upgrade(database_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert current_revision(database_url) == head_revision()


async def test_the_blocking_upgrade_works_inside_a_running_event_loop(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    assert current_revision(sqlite_url) == head_revision()


def test_a_url_that_is_not_a_database_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        upgrade("mysql://db.example/chathooks")


def test_moving_payloads_to_their_own_table_keeps_every_payload(database_url: str) -> None:
    """A queue filled under r0001 is delivered unchanged after r0002."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "r0001")

    async def fill_and_read() -> list[tuple[str, str]]:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                await insert_site(connection)
                await connection.execute(
                    text(
                        "INSERT INTO endpoints (id, site_id, url, description, enabled,"
                        " auto_send, send_offline, send_events, format, headers, created_at,"
                        " updated_at) VALUES ('e', 's', 'http://x', '', true, true, true,"
                        " false, 'form', '{}', 0, 0)"
                    )
                )
                for number in range(3):
                    await connection.execute(
                        text(
                            "INSERT INTO deliveries (id, site_id, endpoint_id, payload_kind,"
                            " trigger, payload, status, attempt_count, round_attempts,"
                            " next_attempt_at, created_at, updated_at) VALUES (:id, 's', 'e',"
                            " 'transcript', 'api', :payload, 'pending', 0, 0, 0, 0, 0)"
                        ),
                        {"id": f"msg_{number}", "payload": f'{{"id": "c{number}"}}'},
                    )
            await upgrade_async(database_url)
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text("SELECT delivery_id, payload FROM delivery_payloads ORDER BY delivery_id")
                )
                return [(row[0], row[1]) for row in rows]
        finally:
            await engine.dispose()

    import asyncio

    assert asyncio.run(fill_and_read()) == [(f"msg_{n}", f'{{"id": "c{n}"}}') for n in range(3)]
