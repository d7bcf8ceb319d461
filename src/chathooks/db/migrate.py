"""Bring a database to the current schema, on SQLite and PostgreSQL alike.

The Alembic scripts live inside the package (``chathooks/db/migrations``) so
an installed wheel can migrate its own database: ``chathooks migrate`` and
``chathooks serve`` call :func:`upgrade`, no ``alembic.ini`` needed.

Several processes may start at once (a service and its workers), so an
upgrade first takes a lock that serialises them: a transaction-scoped
advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` (the database's write lock)
on SQLite. The second process then finds the schema current and does nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from chathooks.db.engine import create_engine, is_sqlite, normalize_url

if TYPE_CHECKING:
    from chathooks.sealing import Keyring

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "current_revision_async",
    "head_revision",
    "make_revision",
    "run_upgrade",
    "upgrade",
    "upgrade_async",
]

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# Any fixed 64-bit number: it names "the chathooks schema migration" among advisory locks.
_PG_MIGRATION_LOCK = 0x636861_7468_6F6F6B

T = TypeVar("T")


def alembic_config(database_url: str | None = None, *, scripts: Path = MIGRATIONS_DIR) -> Config:
    """An Alembic configuration for packaged ``scripts`` (and ``database_url``, if given).

    The sender's scripts by default; the receiver passes its own.
    """
    config = Config()
    config.set_main_option("script_location", str(scripts))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if database_url is not None:
        # ConfigParser interpolates '%', which URL-encoded passwords contain.
        config.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The revision this version of chathooks expects the database to be at."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


async def upgrade_async(database_url: str, keyring: Keyring | None = None) -> None:
    """Upgrade the database at ``database_url`` to the newest schema; a no-op when current.

    ``keyring`` seals the secrets a migration stores (default: the one
    ``CHATHOOKS_SECRET_KEY`` or the SQLite key file gives, see
    :func:`chathooks.sealing.keyring_for`); once current, one stored secret is
    opened with it, so a wrong key stops here rather than at the first delivery.
    """
    # The sender's own: the receiver shares run_upgrade and must not load it.
    from chathooks.sealing import bind_keyring, check_keyring, configured_keyring

    if keyring is None:
        keyring = configured_keyring(database_url)
    config = alembic_config()
    config.attributes["keyring"] = keyring
    await run_upgrade(database_url, config, lock_key=_PG_MIGRATION_LOCK)
    engine = create_engine(database_url)
    bind_keyring(engine, keyring)
    try:
        async with engine.connect() as connection:
            await check_keyring(connection)
    finally:
        await engine.dispose()


async def run_upgrade(database_url: str, config: Config, *, lock_key: int) -> None:
    """Run ``config``'s scripts up to head on ``database_url``, one process at a time.

    Shared by the sender's schema and the receiver's (each with its own
    scripts, version table and ``lock_key``, any fixed 64-bit number).
    """
    engine = _migration_engine(database_url)

    def upgrade_on(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key}
                )
            await connection.run_sync(upgrade_on)
    finally:
        await engine.dispose()


def upgrade(database_url: str, keyring: Keyring | None = None) -> None:
    """Blocking :func:`upgrade_async`, callable from plain code and from inside an event loop."""
    _run_blocking(upgrade_async(database_url, keyring))


async def current_revision_async(database_url: str) -> str | None:
    engine = _migration_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None for an empty database."""
    return _run_blocking(current_revision_async(database_url))


def make_revision(message: str, database_url: str, *, rev_id: str | None = None) -> None:
    """Write a new migration script from the difference between ``tables.py`` and the database.

    For developers changing the schema: upgrade a scratch database to head,
    edit ``chathooks/db/tables.py``, then call this and review the script.
    """
    config = alembic_config(database_url)
    command.revision(config, message=message, autogenerate=True, rev_id=rev_id)


def _migration_engine(database_url: str) -> AsyncEngine:
    engine = create_engine(database_url)
    if is_sqlite(database_url):
        # pysqlite would start the transaction lazily, at the first write; take the
        # write lock at BEGIN instead so concurrent upgrades queue up behind it.
        event.listen(engine.sync_engine, "connect", _no_implicit_begin)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion, even when the caller is already inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # asyncio.run refuses to nest: give the coroutine a loop of its own in a thread.
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(coroutine))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="chathooks-migrate")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]
