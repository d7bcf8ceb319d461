"""The sender service's commands: run it, migrate it, and manage sites, endpoints, deliveries.

``serve`` and ``worker`` run the service; the admin commands (``site``,
``endpoint``, ``deliveries``) talk to the database directly through the same
repository and queue functions the API uses, so they work before the service
is up and print the same JSON (``--json``) as the API returns. Settings come
from flags or ``CHATHOOKS_*`` environment variables.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, NoReturn, TypeVar

import typer
import uvicorn
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.api.app import create_app, new_worker, require_current_schema
from chathooks.api.schemas import (
    DeliveryDetail,
    DeliveryOut,
    EndpointOut,
    EndpointWithSecret,
    Page,
    SiteCreated,
    SiteOut,
)
from chathooks.commands.log_options import LOG_FORMAT, LOG_LEVEL, setup_logging
from chathooks.db.engine import create_engine, shown_url
from chathooks.db.migrate import head_revision, upgrade
from chathooks.heap import freeze_startup_objects
from chathooks.http_limits.head import GuardedHttpToolsProtocol
from chathooks.liveness import run_worker
from chathooks.queue import (
    STATUSES,
    list_deliveries,
    redeliver,
    release_held,
    site_of_delivery,
    write_transaction,
)
from chathooks.repository.endpoints import create_endpoint, list_endpoints, update_endpoint
from chathooks.repository.sites import create_site, get_site
from chathooks.repository.validation import check_format, check_url
from chathooks.settings import Settings
from chathooks.signing import generate_secret

__all__ = ["register"]

T = TypeVar("T")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700

_DATABASE_URL = typer.Option(
    None,
    "--database-url",
    help="sqlite:///path.db or postgresql://user@host/db [env: CHATHOOKS_DATABASE_URL; "
    "default: sqlite:///./chathooks.db]",
    show_default=False,
)
_JSON = typer.Option(False, "--json", help="Print JSON (the API's shapes) instead of text.")


def register(app: typer.Typer) -> None:
    """Add serve, worker, migrate and the ``site``/``endpoint``/``deliveries`` groups."""
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.command("migrate")(migrate)

    site = typer.Typer(name="site", help="Create sites (each gets its own API key).")
    site.command("create")(site_create)
    app.add_typer(site)

    endpoint = typer.Typer(name="endpoint", help="Add and list the endpoints of a site.")
    endpoint.command("add")(endpoint_add)
    endpoint.command("list")(endpoint_list)
    endpoint.command("enable")(endpoint_enable)
    app.add_typer(endpoint)

    deliveries = typer.Typer(name="deliveries", help="Look at deliveries and send them again.")
    deliveries.command("list")(deliveries_list)
    deliveries.command("redeliver")(deliveries_redeliver)
    app.add_typer(deliveries)


# -- running the service ------------------------------------------------------------------


def serve(
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=0, max=65535, help="Port to listen on."),
    database_url: str | None = _DATABASE_URL,
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Serve the API only; run 'chathooks worker' separately."
    ),
    access_log: bool = typer.Option(
        False, "--access-log/--no-access-log", help="Log every HTTP request (busy: off)."
    ),
    log_format: str = LOG_FORMAT,
    log_level: str = LOG_LEVEL,
) -> None:
    """Migrate the database, then serve the API and deliver in this one process."""
    setup_logging(log_format, log_level)
    settings = _settings(database_url=database_url)
    _migrate(settings.database_url)
    app = create_app(settings, run_worker=not no_worker, freeze_startup=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        # Logging is configured above, one shape for uvicorn's lines and ours.
        log_config=None,
        log_level=log_level.lower(),
        access_log=access_log,
        proxy_headers=False,
        http=GuardedHttpToolsProtocol,  # request line and headers capped (431)
        # An open operator console keeps an event stream open; do not wait on it forever.
        timeout_graceful_shutdown=5,
    )


def worker(
    database_url: str | None = _DATABASE_URL,
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        min=1,
        help="Deliveries in flight at once [env: CHATHOOKS_WORKER_CONCURRENCY; default: 64].",
    ),
    log_format: str = LOG_FORMAT,
    log_level: str = LOG_LEVEL,
) -> None:
    """Deliver queued payloads (add these next to 'serve', on any number of machines).

    SIGTERM or SIGINT stops it gracefully: no new claims, in-flight attempts finish.
    """
    setup_logging(log_format, log_level)
    settings = _settings(database_url=database_url, worker_concurrency=concurrency)
    _run(_work(settings), settings)


async def _work(settings: Settings) -> None:
    await require_current_schema(settings.database_url)
    engine = create_engine(
        settings.database_url, inline=True, synchronous=settings.sqlite_synchronous
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        worker = new_worker(engine, settings)
        freeze_startup_objects()
        await run_worker(worker, stop, kind="worker")
    finally:
        await engine.dispose()


def migrate(database_url: str | None = _DATABASE_URL) -> None:
    """Create or upgrade the database schema (safe to run any number of times)."""
    settings = _settings(database_url=database_url)
    _migrate(settings.database_url)
    typer.echo(f"{shown_url(settings.database_url)} is at schema revision {head_revision()}")


def _migrate(database_url: str) -> None:
    try:
        upgrade(database_url)
    except (SQLAlchemyError, OSError, ValueError) as exc:
        _fail(f"cannot migrate {shown_url(database_url)}: {_reason(exc)}")


# -- admin commands -----------------------------------------------------------------------


def site_create(
    name: str = typer.Argument(..., help="A label for the site, e.g. its domain."),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Create a site and print its API key (shown only this once)."""
    settings = _settings(database_url=database_url)

    async def create(connection: AsyncConnection) -> SiteCreated:
        created = await create_site(connection, name)
        return SiteCreated(**SiteOut.of(created.site).model_dump(), api_key=created.api_key)

    site = _run(_write(settings, create), settings)
    if as_json:
        _print_json(site)
        return
    typer.echo(f"{site.id}  {site.name}")
    typer.echo(f"API key (shown only now, store it): {site.api_key}")


def endpoint_add(
    site: str = typer.Argument(..., help="The site id (site_...)."),
    url: str = typer.Argument(..., help="Where to POST payloads (http or https)."),
    auto_send: bool = typer.Option(
        True, "--auto-send/--no-auto-send", help="Send every transcript automatically."
    ),
    offline: bool = typer.Option(True, "--offline/--no-offline", help="Send offline messages."),
    events: bool = typer.Option(False, "--events/--no-events", help="Send start events."),
    body_format: str = typer.Option(
        "form", "--format", help="form (Olark's data=... body) or json."
    ),
    no_secret: bool = typer.Option(
        False, "--no-secret", help="Do not sign requests (no webhook-signature header)."
    ),
    description: str = typer.Option("", "--description", help="A note for people."),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Add an endpoint to a site; prints its signing secret."""
    try:
        checked_url = check_url(url)
        checked_format = check_format(body_format)
    except ValueError as exc:
        _fail(str(exc))
    settings = _settings(database_url=database_url)

    async def add(connection: AsyncConnection) -> EndpointWithSecret:
        if await get_site(connection, site) is None:
            _fail(f"there is no site {site!r}; 'chathooks site create NAME' makes one")
        endpoint = await create_endpoint(
            connection,
            site,
            url=checked_url,
            auto_send=auto_send,
            send_offline=offline,
            send_events=events,
            secret=None if no_secret else generate_secret(),
            format=checked_format,
            description=description,
        )
        return EndpointWithSecret.of(endpoint)

    endpoint = _run(_write(settings, add), settings)
    if as_json:
        _print_json(endpoint)
        return
    typer.echo(_endpoint_line(endpoint))
    typer.echo(f"signing secret: {endpoint.secret}" if endpoint.secret else "unsigned")


def endpoint_list(
    site: str = typer.Argument(..., help="The site id (site_...)."),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """List a site's endpoints and their switches."""
    settings = _settings(database_url=database_url)

    async def read(connection: AsyncConnection) -> list[EndpointOut]:
        await _require_site(connection, site)
        items, _ = await list_endpoints(connection, site, limit=10_000)
        return [EndpointOut.of(e) for e in items]

    endpoints = _run(_read(settings, read), settings)
    if as_json:
        _print_json_list(endpoints)
        return
    for endpoint in endpoints:
        typer.echo(_endpoint_line(endpoint))
    if not endpoints:
        typer.echo("no endpoints; add one with 'chathooks endpoint add SITE URL'", err=True)


def deliveries_list(
    site: str = typer.Argument(..., help="The site id (site_...)."),
    status: str | None = typer.Option(None, "--status", help=f"One of {', '.join(STATUSES)}."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="How many, newest first."),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """List a site's deliveries, newest first."""
    if status is not None and status not in STATUSES:
        _fail(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    settings = _settings(database_url=database_url)

    async def read(connection: AsyncConnection) -> list[DeliveryOut]:
        await _require_site(connection, site)
        items, _ = await list_deliveries(connection, site, status=status, limit=limit)
        return [DeliveryOut.of(item) for item in items]

    deliveries = _run(_read(settings, read), settings)
    if as_json:
        _print_json_list(deliveries)
        return
    for d in deliveries:
        code = d.last_status_code if d.last_status_code is not None else "-"
        typer.echo(
            f"{d.id}  {d.status:<10}  {d.payload_kind:<15}  attempts={d.attempt_count}  "
            f"http={code}  {d.created_at.isoformat()}  {d.endpoint_id}"
            + (f"  error: {d.last_error}" if d.last_error else "")
        )


def endpoint_enable(
    site: str = typer.Argument(..., help="The site id (site_...)."),
    endpoint: str = typer.Argument(..., help="The endpoint id (ep_...)."),
    database_url: str | None = _DATABASE_URL,
) -> None:
    """Switch an endpoint back on; what was held while it was off is sent, in order."""
    settings = _settings(database_url=database_url)

    async def enable(connection: AsyncConnection) -> int:
        await _require_site(connection, site)
        if await update_endpoint(connection, site, endpoint, {"enabled": True}) is None:
            _fail(f"site {site!r} has no endpoint {endpoint!r}")
        return await release_held(connection, endpoint)

    held = _run(_write(settings, enable), settings)
    typer.echo(f"{endpoint} enabled; {held} held deliveries will be sent now")


def deliveries_redeliver(
    delivery: str = typer.Argument(..., help="The delivery id (msg_...)."),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Send a delivery again now, with the same webhook-id, whatever its status."""
    settings = _settings(database_url=database_url)

    async def send_again(connection: AsyncConnection) -> DeliveryDetail:
        site = await site_of_delivery(connection, delivery)
        found = None if site is None else await redeliver(connection, site, delivery)
        if found is None:
            _fail(f"there is no delivery {delivery!r}")
        return DeliveryDetail.of(found)

    detail = _run(_write(settings, send_again), settings)
    if as_json:
        _print_json(detail)
        return
    typer.echo(f"{detail.id}  {detail.status}: it will be sent again now")


# -- helpers ------------------------------------------------------------------------------


def _settings(**flags: Any) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    try:
        return Settings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "_".join(str(part) for part in first["loc"]).upper()
        _fail(f"CHATHOOKS_{name}: {first['msg'].removeprefix('Value error, ')}")


async def _require_site(connection: AsyncConnection, site: str) -> None:
    if await get_site(connection, site) is None:
        _fail(f"there is no site {site!r}")


async def _read(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            return await work(connection)
    finally:
        await engine.dispose()


async def _write(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    engine = create_engine(settings.database_url, synchronous=settings.sqlite_synchronous)
    try:
        async with write_transaction(engine) as connection:
            return await work(connection)
    finally:
        await engine.dispose()


def _event_loop_run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, on uvloop when it is installed (uvicorn[standard] brings it):
    the delivery worker's HTTP client spends markedly less time in the event loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _run(coroutine: Coroutine[Any, Any, T], settings: Settings) -> T:
    """Run a database command; database trouble becomes a message and exit status 1."""
    try:
        return _event_loop_run(coroutine)
    except typer.Exit:
        raise
    except (SQLAlchemyError, OSError) as exc:
        _fail(
            f"cannot use the database {shown_url(settings.database_url)}: {_reason(exc)} "
            "(has 'chathooks migrate' been run on it?)"
        )
    except (RuntimeError, ValueError) as exc:
        _fail(str(exc))


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    return str(original if original is not None else exc).splitlines()[0]


def _endpoint_line(endpoint: EndpointOut) -> str:
    switches = [
        name
        for name, on in (
            ("auto-send", endpoint.auto_send),
            ("offline", endpoint.send_offline),
            ("events", endpoint.send_events),
        )
        if on
    ]
    state = "enabled" if endpoint.enabled else "disabled"
    return (
        f"{endpoint.id}  {endpoint.url}  {state}  format={endpoint.format}  "
        f"sends: {', '.join(switches) or 'nothing automatically'}"
    )


def _print_json(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


def _print_json_list(models: Sequence[BaseModel]) -> None:
    """A list in the API's shape: ``{"items": [...], "next_cursor": null}``."""
    typer.echo(Page[BaseModel](items=list(models)).model_dump_json(indent=2, serialize_as_any=True))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
