"""``chathooks status`` and ``chathooks purge``: an operator's commands, straight on the database.

``status`` is what an operator checks first: the workers that are alive (and
when each was last seen), the unfinished work by status, how long the oldest
due delivery has waited, and the endpoints that are failing or switched off.
It reads only unfinished work and the small tables, so it answers quickly on a
database with years of history.
``purge`` runs the retention job now, to the end, and says what it removed;
``erase`` erases one conversation or one visitor's data (see :mod:`chathooks.erasure`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.commands.erase_options import checked_subject
from chathooks.commands.service import _DATABASE_URL, _JSON, _fail, _read, _run, _settings
from chathooks.db.engine import create_engine
from chathooks.erasure import ErasureCounts, erase
from chathooks.queue import queue_stats
from chathooks.queue.overview import endpoint_problems
from chathooks.queue.workers import list_workers
from chathooks.repository.sites import get_site
from chathooks.retention import Purged, purge

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("purge")(purge_command)
    app.command("erase")(erase_command)


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
            row["failing_since"] = _iso(row["failing_since"])
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
        typer.echo(
            f"  {e['id']}  {e['url']}  breaker {e['breaker']}, {e['retrying']} retrying, "
            f"{e['consecutive_failures']} failures in a row; last: {e['last_error'] or '-'}"
        )
    typer.echo(f"endpoints disabled: {len(endpoints['disabled'])}")
    for e in endpoints["disabled"]:
        why = e["disabled_reason"] or "switched off"
        typer.echo(f"  {e['id']}  {e['url']}  {why}; {e['held']} held")


def purge_command(
    older_than: float | None = typer.Option(
        None,
        "--older-than",
        help="Days; fractions allowed [default: CHATHOOKS_RETENTION_DAYS, 30].",
        show_default=False,
    ),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Delete finished deliveries and closed conversations older than the retention period now.

    Nothing still to be sent is touched. Prints how many of each were removed.
    """
    if older_than is not None and older_than <= 0:
        raise typer.BadParameter("must be a number of days above 0", param_hint="--older-than")
    settings = _settings(database_url=database_url)
    days = settings.retention_days if older_than is None else older_than

    async def run() -> Purged:
        engine = create_engine(settings.database_url)
        try:
            return await purge(
                engine, older_than_days=days, batch_size=settings.retention_batch_size
            )
        finally:
            await engine.dispose()

    purged = _run(run(), settings)
    if as_json:
        typer.echo(json.dumps({"older_than_days": days, **dataclasses.asdict(purged)}, indent=2))
        return
    typer.echo(f"removed what finished more than {days:g} days ago:")
    for name, count in dataclasses.asdict(purged).items():
        typer.echo(f"  {name.replace('_', ' ')}: {count}")


def erase_command(
    site: str = typer.Argument(..., help="The site id (site_...)."),
    conversation: str | None = typer.Option(
        None, "--conversation", help="Erase this conversation."
    ),
    email: str | None = typer.Option(
        None, "--email", help="Erase every conversation and offline message of this visitor."
    ),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Erase a conversation, or everything of one visitor, and record that it was done."""
    checked_subject(conversation, email)
    settings = _settings(database_url=database_url)

    async def run() -> ErasureCounts:
        engine = create_engine(settings.database_url)
        try:
            async with engine.connect() as connection:
                if await get_site(connection, site) is None:
                    _fail(f"there is no site {site!r}")
            return await erase(
                engine, site, conversation_id=conversation, email=email, requested_by="cli"
            )
        finally:
            await engine.dispose()

    counts = _run(run(), settings)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(counts), indent=2))
        return
    typer.echo("erased:")
    for name, count in dataclasses.asdict(counts).items():
        typer.echo(f"  {name.replace('_', ' ')}: {count}")
