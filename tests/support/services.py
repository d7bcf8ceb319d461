"""Access to the real services tests use, failing loudly in CI when one is missing.

Set ``CHATHOOKS_REQUIRE_SERVICES=1`` (CI does) to turn a missing PostgreSQL
into a test failure instead of a visible skip.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import asyncpg
import pytest

ADMIN_URL = os.environ.get(
    "CHATHOOKS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def services_required() -> bool:
    return os.environ.get("CHATHOOKS_REQUIRE_SERVICES", "") not in ("", "0", "false")


def unavailable(reason: str) -> None:
    """Fail in CI, skip (with the reason shown) elsewhere."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _run_admin(sql: str) -> None:
    """On a thread of its own: Playwright's sync API keeps an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(sql)).result()


def environment_without_settings() -> dict[str, str]:
    """This process's environment without its CHATHOOKS_* settings, for a chathooks process
    a test starts; except the service key a PostgreSQL test database needs (see below)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CHATHOOKS_") or name == "CHATHOOKS_SECRET_KEY"
    }


#: The service key of test databases on PostgreSQL, which needs one (CHATHOOKS_SECRET_KEY).
POSTGRES_SECRET_KEY = "dGVzdHMtb2YtY2hhdGhvb2tzLW9uLXBvc3RncmVzcWw="


@contextmanager
def postgres_secret_key() -> Iterator[None]:
    """``CHATHOOKS_SECRET_KEY`` set (for this process and the ones it starts) unless it is."""
    before = os.environ.get("CHATHOOKS_SECRET_KEY")
    os.environ.setdefault("CHATHOOKS_SECRET_KEY", POSTGRES_SECRET_KEY)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CHATHOOKS_SECRET_KEY", None)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, with the service key it needs; dropped
    afterwards."""
    name = "chathooks_test_" + secrets.token_hex(6)
    try:
        _run_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable(f"PostgreSQL at {ADMIN_URL} is not reachable: {exc}")
    try:
        with postgres_secret_key():
            yield _with_database(ADMIN_URL, name)
    finally:
        _run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
