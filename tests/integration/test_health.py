"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work) over real HTTP."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text

from chathooks.api.app import create_app
from chathooks.db.engine import create_engine
from chathooks.db.migrate import head_revision, upgrade
from support.service import running_service, serving, test_settings
from support.services import ADMIN_URL


def _wait_for(client: httpx.Client, path: str, status: int, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response.json()
        time.sleep(0.1)


def _sql(database_url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def test_readyz_checks_database_schema_and_worker(database_url: str) -> None:
    with running_service(database_url, heartbeat_interval=0.2) as service:
        assert service.client.get("/healthz").json() == {"status": "ok"}
        ready = _wait_for(service.client, "/readyz", 200)
        assert ready == {
            "status": "ok",
            "database": "ok",
            "schema_revision": head_revision(),
            "worker": "ok",
        }
        _sql(database_url, "UPDATE alembic_version SET version_num = 'r0001'")
        behind = _wait_for(service.client, "/readyz", 503)
        assert behind["error"] == "not_ready" and behind["field"] == "schema"
        assert "r0001" in behind["message"]
        assert service.client.get("/healthz").status_code == 200  # alive all the same
        _sql(database_url, f"UPDATE alembic_version SET version_num = '{head_revision()}'")
        _wait_for(service.client, "/readyz", 200)


def test_readyz_without_a_worker_does_not_ask_for_one(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        assert _wait_for(service.client, "/readyz", 200)["worker"] == "none"


def test_readyz_is_503_while_the_worker_is_not_running(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    app = create_app(test_settings(sqlite_url))
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        _wait_for(client, "/readyz", 200)
        app.state.heartbeat.running = False  # as when the worker's task has ended
        stopped = _wait_for(client, "/readyz", 503)
        assert stopped["field"] == "worker"
        assert "not running" in stopped["message"]


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _postgres_admin(statement: str) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(statement)).result()


def test_readyz_is_503_while_postgres_refuses_connections_and_200_when_back(
    postgres_url: str,
) -> None:
    name = postgres_url.rpartition("/")[2]
    with running_service(postgres_url, heartbeat_interval=0.2) as service:
        _wait_for(service.client, "/readyz", 200)
        try:
            _postgres_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            _postgres_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            down = _wait_for(service.client, "/readyz", 503)
            assert down["field"] == "database"
            assert "not reachable" in down["message"]
            assert service.client.get("/healthz").status_code == 200
        finally:
            _postgres_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        _wait_for(service.client, "/readyz", 200)
