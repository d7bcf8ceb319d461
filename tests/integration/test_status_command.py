"""``chathooks status``: workers, unfinished work and endpoints in trouble, from the database."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import insert
from typer.testing import CliRunner

from chathooks import cli
from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade
from chathooks.db.tables import deliveries, endpoints, sites, workers


def _prepare(database_url: str, now: float) -> None:
    async def run() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(sites).values(id="s", name="s", api_key_hash="s", created_at=now)
                )
                for endpoint_id, enabled, reason in (
                    ("ep_ok", True, None),
                    ("ep_bad", True, None),
                    ("ep_off", False, "the receiver answered 410 Gone"),
                ):
                    await connection.execute(
                        insert(endpoints).values(
                            id=endpoint_id,
                            site_id="s",
                            url=f"https://{endpoint_id}.example/",
                            enabled=enabled,
                            disabled_reason=reason,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                base = {
                    "site_id": "s",
                    "payload_kind": "transcript",
                    "created_at": now - 100,
                    "updated_at": now - 50,
                }
                await connection.execute(
                    insert(deliveries),
                    [
                        {
                            **base,
                            "id": "d1",
                            "endpoint_id": "ep_ok",
                            "status": "pending",
                            "next_attempt_at": now - 42,
                        },
                        {
                            **base,
                            "id": "d2",
                            "endpoint_id": "ep_bad",
                            "status": "retrying",
                            "next_attempt_at": now + 60,
                            "last_status_code": 503,
                        },
                        {
                            **base,
                            "id": "d3",
                            "endpoint_id": "ep_off",
                            "status": "held",
                            "next_attempt_at": now,
                        },
                        {
                            **base,
                            "id": "d4",
                            "endpoint_id": "ep_ok",
                            "status": "succeeded",
                            "next_attempt_at": now,
                            "finished_at": now,
                        },
                    ],
                )
                await connection.execute(
                    insert(workers),
                    [
                        {
                            "id": "w-live",
                            "host": "h",
                            "pid": 1,
                            "kind": "serve",
                            "started_at": now - 600,
                            "last_seen_at": now - 1,
                        },
                        {
                            "id": "w-dead",
                            "host": "h",
                            "pid": 2,
                            "kind": "worker",
                            "started_at": now - 600,
                            "last_seen_at": now - 300,
                        },
                    ],
                )
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def test_status_reports_workers_queue_and_endpoints(database_url: str) -> None:
    upgrade(database_url)
    now = time.time()
    _prepare(database_url, now)
    runner = CliRunner()
    result = runner.invoke(cli.app, ["status", "--json", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    alive = {w["id"]: w["alive"] for w in report["workers"]}
    assert alive == {"w-live": True, "w-dead": False}
    [dead] = [w for w in report["workers"] if w["id"] == "w-dead"]
    assert 290 <= dead["seconds_since_seen"] <= 400
    assert report["queue"]["by_status"] == {"pending": 1, "retrying": 1, "delivering": 0, "held": 1}
    assert 40 <= report["queue"]["oldest_due_age_seconds"] <= 140
    assert [e["id"] for e in report["endpoints"]["failing"]] == ["ep_bad"]
    assert report["endpoints"]["failing"][0]["retrying"] == 1
    [off] = report["endpoints"]["disabled"]
    assert (off["id"], off["held"]) == ("ep_off", 1)
    assert "410" in off["disabled_reason"]

    text = runner.invoke(cli.app, ["status", "--database-url", database_url])
    assert text.exit_code == 0
    assert "workers: 1 alive" in text.stdout
    assert "w-dead" in text.stdout and "NOT SEEN" in text.stdout
    assert "endpoints disabled: 1" in text.stdout


def test_status_on_a_database_never_migrated_says_so(tmp_path: object) -> None:
    result = CliRunner().invoke(
        cli.app, ["status", "--database-url", f"sqlite:///{tmp_path}/empty.db"]
    )
    assert result.exit_code == 1
    assert "chathooks migrate" in result.stderr
