"""``chathooks status``: what an operator checks first, straight from the database.

The workers that are alive (and when each was last seen), the unfinished
work by status, how long the oldest due delivery has waited, and the
endpoints that are failing or switched off. Reads only unfinished work and
the small tables, so it answers quickly on a database with years of history.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.commands.service import _DATABASE_URL, _JSON, _read, _run, _settings
from chathooks.queue import queue_stats
from chathooks.queue.overview import endpoint_problems
from chathooks.queue.workers import list_workers

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def status(database_url: str | None = _DATABASE_URL, as_json: bool = _JSON) -> None:
    """Show the workers, the queue and the endpoints in trouble."""
    settings = _settings(database_url=database_url)

    async def read(connection: AsyncConnection) -> dict[str, Any]:
        now = time.time()
        workers = [
            {
                "id": row.id,
                "kind": row.kind,
                "host": row.host,
                "pid": row.pid,
                "started_at": _iso(row.started_at),
                "last_seen_at": _iso(row.last_seen_at),
                "seconds_since_seen": round(max(0.0, now - row.last_seen_at), 1),
                "alive": now - row.last_seen_at <= settings.worker_timeout,
            }
            for row in await list_workers(connection)
        ]
        stats = await queue_stats(connection, now=now)
        problems = await endpoint_problems(connection)
        for row in problems["failing"]:
            row["last_failed_at"] = _iso(row["last_failed_at"])
        return {
            "workers": workers,
            "queue": {
                "by_status": stats["by_status"],
                "oldest_due_age_seconds": round(stats["oldest_pending_age_seconds"], 1),
            },
            "endpoints": problems,
        }

    report = _run(_read(settings, read), settings)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    alive = [w for w in report["workers"] if w["alive"]]
    typer.echo(f"workers: {len(alive)} alive")
    for w in report["workers"]:
        state = "alive" if w["alive"] else "NOT SEEN"
        typer.echo(
            f"  {w['id']}  {w['kind']:<6}  {state:<8}  last seen {w['seconds_since_seen']}s ago"
            f"  (host {w['host']}, pid {w['pid']}, since {w['started_at']})"
        )
    queue = report["queue"]
    counts = ", ".join(f"{status} {count}" for status, count in queue["by_status"].items())
    typer.echo(f"queue: {counts}")
    typer.echo(f"oldest due delivery waiting: {queue['oldest_due_age_seconds']}s")
    endpoints = report["endpoints"]
    typer.echo(f"endpoints failing: {len(endpoints['failing'])}")
    for e in endpoints["failing"]:
        typer.echo(f"  {e['id']}  {e['url']}  {e['retrying']} retrying  last: {e['last_error']}")
    typer.echo(f"endpoints disabled: {len(endpoints['disabled'])}")
    for e in endpoints["disabled"]:
        typer.echo(f"  {e['id']}  {e['url']}  {e['disabled_reason'] or 'switched off'}")
