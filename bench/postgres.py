"""Fresh PostgreSQL databases for one benchmark run, always dropped again.

The server must be on loopback (the benchmark never talks to anything else).
Created names are remembered so that the run's last ``finally`` can drop
whatever an interrupted phase left behind.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresUnavailable(RuntimeError):
    """The server cannot be reached or used; the message says why and what to do."""


def check_loopback(admin_url: str) -> None:
    """Raise ValueError unless ``admin_url`` names a loopback host."""
    host = make_url(admin_url).host or "127.0.0.1"
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"the benchmark only talks to loopback; {host!r} is not 127.0.0.0/8 or ::1"
        )


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` pointing at database ``name`` (plain ``postgresql://`` for the CLI)."""
    url = make_url(admin_url).set(database=name, drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Databases:
    """Creates databases on one server and drops every one it created."""

    def __init__(self, admin_url: str = DEFAULT_ADMIN_URL) -> None:
        check_loopback(admin_url)
        self.admin_url = database_url(admin_url, make_url(admin_url).database or "postgres")
        self.created: list[str] = []

    async def check(self) -> str:
        """The server version, or :class:`PostgresUnavailable`."""
        connection = await self._connect()
        try:
            version: str = await connection.fetchval("SHOW server_version")
            can_create = await connection.fetchval(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            )
        finally:
            await connection.close()
        if not can_create:
            raise PostgresUnavailable(f"the role in {self.admin_url} may not create databases")
        return version

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        """A new empty database for the duration of the block; yields its URL."""
        name = "chathooks_bench_" + secrets.token_hex(5)
        await self._execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        try:
            yield database_url(self.admin_url, name)
        finally:
            await self.drop(name)

    async def drop(self, name: str) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    async def drop_all(self) -> None:
        for name in list(self.created):
            await self.drop(name)

    async def _execute(self, sql: str) -> None:
        connection = await self._connect()
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def _connect(self) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(self.admin_url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise PostgresUnavailable(
                f"PostgreSQL at {self.admin_url} is not reachable ({exc}); start it, point "
                "--postgres-url at it, or pass --skip-postgres"
            ) from exc
