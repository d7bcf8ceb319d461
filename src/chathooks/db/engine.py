"""Async SQLAlchemy engines for SQLite (embedded default) and PostgreSQL.

Users write the URLs they know (``sqlite:///x.db``, ``postgresql://...``);
the async driver is chosen here so the rest of the code never cares.

SQLite can run *inline*: inside a transaction, each statement runs at once
on the event loop's thread instead of being handed to aiosqlite's thread.
That is what the service wants. SQLite has a single write lock, and with a
thread hop per statement a write transaction yields to the event loop
between its statements, so every other task in the process runs while the
lock is held: under load, a transaction that needs half a millisecond held
the lock for 3-5 ms, and writers queued behind it. Inline, a transaction
holds the lock (and the loop) only while SQLite works, which on a local file
is well under a millisecond. Everything outside a transaction still runs on
aiosqlite's thread: reads, however large, and the ``BEGIN`` that may wait
for another process's lock never stall the loop.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
}


#: Set on each PostgreSQL connection of the service when it opens. ``jit``: PostgreSQL
#: compiles a query to machine code once its estimated cost passes ``jit_above_cost``. A
#: claim's estimate passes it on an analysed queue of a few thousand deliveries (its
#: order checks are costed per candidate), and compiling took about 37 ms of a claim
#: that ran in 2: every claim paid it. chathooks' statements are all short; none gains.
#: Sent as a ``SET`` once the connection is open, not as a startup parameter, which
#: connection poolers such as PgBouncer refuse unless told to ignore it.
POSTGRES_SETTINGS = {"jit": "off"}


def normalize_url(url: str) -> str:
    """The async form of a database URL, e.g. ``sqlite:///a.db`` → ``sqlite+aiosqlite:///a.db``."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ValueError(
            f"{url!r} is not a database URL; use sqlite:///path.db or postgresql://host/db"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql")
        backend = "postgresql"
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}; use SQLite or PostgreSQL")
    if parsed.drivername in ("sqlite", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[backend])
    return parsed.render_as_string(hide_password=False)


def shown_url(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the database"


def is_sqlite(url: str) -> bool:
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file ``url`` names; None for PostgreSQL or memory.

    A relative ``sqlite:///./chathooks.db`` depends on the working directory, so
    messages about a missing or empty database name this absolute path.
    """
    if not is_sqlite(url):
        return None
    database = make_url(normalize_url(url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


#: How long SQLite waits for another connection's write lock before "database is locked".
BUSY_TIMEOUT_SECONDS = 30.0


#: SQLite's ``synchronous`` settings chathooks offers (``CHATHOOKS_SQLITE_SYNCHRONOUS``).
SQLITE_SYNCHRONOUS = ("normal", "full")


def create_engine(
    url: str, *, inline: bool = False, synchronous: str = "normal", **kwargs: Any
) -> AsyncEngine:
    """An engine for ``url``, tuned for the backend.

    SQLite gets WAL (readers never wait for the writer), ``synchronous=NORMAL``
    by default (a commit survives the process crashing, which is the failure a
    queue must survive, but the last commits before a power cut or an OS crash
    may be lost) or ``FULL`` with ``synchronous="full"`` (every commit is on
    disk before it returns, at the price of an fsync per commit), a busy
    timeout so several processes can share the file, and foreign keys.
    With ``inline`` the statements of a transaction run on the event loop's
    thread (see the module's docstring). PostgreSQL ignores ``inline``; its connections
    run with :data:`POSTGRES_SETTINGS`.
    """
    async_url = normalize_url(url)
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}")
    if is_sqlite(async_url):
        parsed = make_url(async_url)
        if inline and not parsed.query:
            database = parsed.database or ":memory:"
            kwargs.setdefault("async_creator", partial(_inline_connection, database))
        else:
            kwargs.setdefault("connect_args", {"timeout": BUSY_TIMEOUT_SECONDS})
        engine = create_async_engine(async_url, **kwargs)
        event.listen(engine.sync_engine, "connect", partial(_sqlite_pragmas, synchronous))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(async_url, **kwargs)
    event.listen(engine.sync_engine, "connect", _postgres_settings)
    return engine


def _postgres_settings(dbapi_connection: Any, _record: Any) -> None:
    # On the driver's connection itself: through the adapter's cursor the SET would open
    # a transaction that is then rolled back (undoing it), and a listener's LISTEN would
    # wait inside it for a commit that never comes.
    statement = "; ".join(f"SET {name} = {value}" for name, value in POSTGRES_SETTINGS.items())
    dbapi_connection.run_async(lambda connection: connection.execute(statement))


def _sqlite_pragmas(synchronous: str, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    _use_wal(cursor)
    cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted content is overwritten, not left in free pages: an erasure leaves no trace.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (a no-op once it is).

    The switch needs a moment when no other connection is inside a
    transaction, and SQLite answers "database is locked" at once rather than
    wait for it, whatever the busy timeout: several processes opening a new
    file together would fail. So wait here, in steps of 10 ms.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs calls at once while a transaction is open.

    Outside a transaction calls go to aiosqlite's thread as usual; from the
    statement that opens one until its commit or rollback they run where they
    are awaited, without yielding to the event loop. A ``BEGIN`` is first
    tried inline without waiting: only when another connection holds the
    lock does it wait, on the thread.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        connection = self._connection
        if not self._running or connection is None:
            raise ValueError("Connection closed")
        if connection.in_transaction or fn == connection.cursor:
            return fn(*args, **kwargs)
        if fn == connection.rollback:
            return None  # no transaction is open: nothing to roll back
        if _opens_transaction(fn, args) and _begin_without_waiting(connection, fn, args, kwargs):
            return None
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    def try_begin_immediate(self) -> bool:
        """``BEGIN IMMEDIATE`` at once; False, with nothing begun, while another connection
        holds the lock (then begin through SQLAlchemy, which waits for it on the thread,
        wraps the driver's errors and finishes the BEGIN before a cancellation takes
        effect). Any other refusal is raised as SQLAlchemy raises it."""
        connection = self._connection
        if not self._running or connection is None:
            raise ValueError("Connection closed")
        sql = "BEGIN IMMEDIATE"
        try:
            return _begin_without_waiting(connection, connection.execute, (sql,), {})
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(sql, (), error, sqlite3.Error) from error

    def open_transaction(self) -> sqlite3.Connection | None:
        """The ``sqlite3`` connection while a transaction is open (a statement run on it runs
        here, as every call does then); None outside one."""
        connection = self._connection
        if self._running and connection is not None and connection.in_transaction:
            return connection
        return None


def _opens_transaction(fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    return (
        getattr(fn, "__name__", "") == "execute"
        and bool(args)
        and isinstance(args[0], str)
        and args[0].lstrip()[:5].upper() == "BEGIN"
    )


def _begin_without_waiting(
    connection: sqlite3.Connection,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> bool:
    """Run a ``BEGIN`` at once; False, with nothing begun, when the lock is held elsewhere."""
    connection.execute("PRAGMA busy_timeout=0")
    try:
        fn(*args, **kwargs)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        return False
    finally:
        connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    return True


def _inline_connection(database: str) -> InlineConnection:
    connector = partial(
        sqlite3.connect,
        database,
        timeout=BUSY_TIMEOUT_SECONDS,
        # Opened on aiosqlite's thread, used on the event loop's: one at a time, never both.
        check_same_thread=False,
    )
    connection = InlineConnection(connector, iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for its own aiosqlite connections
    return connection
