"""``chathooks endpoint enable``: an endpoint chathooks switched off is back, with what it held."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from chathooks import cli
from chathooks.db.engine import create_engine
from chathooks.db.tables import deliveries
from chathooks.queue import NewDelivery, disable_endpoint, enqueue, write_transaction


def _hold_two(database_url: str, site: str, endpoint: str) -> list[str]:
    """Queue two deliveries and switch the endpoint off as a 410 would: both are held."""

    async def run() -> list[str]:
        engine = create_engine(database_url)
        try:
            async with write_transaction(engine) as connection:
                refs = await enqueue(
                    connection,
                    [
                        NewDelivery(site, endpoint, f"c{i}", "transcript", "api", '{"id": "c"}')
                        for i in range(2)
                    ],
                )
                await disable_endpoint(connection, endpoint, "the receiver answered 410 Gone")
        finally:
            await engine.dispose()
        return [ref.id for ref in refs]

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _statuses(database_url: str) -> list[str]:
    async def run() -> list[str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(deliveries.c.status).order_by(deliveries.c.seq)
                )
                return [row.status for row in rows]
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_enable_switches_the_endpoint_on_and_sends_what_it_held(tmp_path: Path) -> None:
    runner = CliRunner()
    database_url = f"sqlite:///{tmp_path / 'chathooks.db'}"

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(cli.app, [*args, "--database-url", database_url])
        return result.exit_code, result.stdout, result.stderr

    assert run("migrate")[0] == 0
    site = json.loads(run("site", "create", "s", "--json")[1])["id"]
    endpoint = json.loads(run("endpoint", "add", site, "https://crm.example/", "--json")[1])["id"]
    _hold_two(database_url, site, endpoint)
    assert _statuses(database_url) == ["held", "held"]

    code, out, err = run("endpoint", "enable", site, endpoint)
    assert code == 0, err
    assert "2 held deliveries" in out
    assert _statuses(database_url) == ["pending", "pending"]
    [listed] = json.loads(run("endpoint", "list", site, "--json")[1])["items"]
    assert listed["enabled"] is True
    assert listed["disabled_reason"] is None

    code, _, err = run("endpoint", "enable", site, "ep_nope")
    assert code != 0
    assert "no endpoint" in err
