"""Async SQLAlchemy engines for SQLite (embedded default) and PostgreSQL.

Users write the URLs they know (``sqlite:///x.db``, ``postgresql://...``);
the async driver is chosen here so the rest of the code never cares.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
}


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


def is_sqlite(url: str) -> bool:
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for ``url``, tuned for the backend.

    SQLite gets WAL (readers never wait for the writer), ``synchronous=NORMAL``
    (durable across a process crash, which is the failure a queue must survive),
    a busy timeout so several processes can share the file, and foreign keys.
    """
    async_url = normalize_url(url)
    if is_sqlite(async_url):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(async_url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(async_url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
