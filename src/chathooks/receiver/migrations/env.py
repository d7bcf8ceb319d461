"""Alembic environment of the receiver's schema (async engines, own version table).

``chathooks receive`` applies these migrations itself, handing over an open
connection in ``config.attributes["connection"]`` (from ``connection.run_sync``).
Run from the ``alembic`` command line instead, it opens an async engine on
``sqlalchemy.url`` and does the same through ``run_sync``.

Only the receiver's own tables are considered, so the receiver can share a
database with the sender's schema without either touching the other.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from chathooks.db.engine import create_engine
from chathooks.receiver.store import VERSION_TABLE, metadata

config = context.config


def _own_objects(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate sees only the receiver's tables, never the sender's."""
    del obj, reflected, compare_to
    return type_ != "table" or name in metadata.tables


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=_own_objects,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or pass a connection in config.attributes")
    asyncio.run(_run_with_engine(url))


mode: Literal["offline", "online"] = "offline" if context.is_offline_mode() else "online"
if mode == "offline":
    _offline()
else:
    _online()
