"""The sender service's commands: run it, migrate it, and manage sites, endpoints, deliveries.

``serve`` and ``worker`` run the service, each built by :mod:`chathooks.runtime`
(``worker`` never imports the web app). The admin commands (``site``,
``endpoint``, ``deliveries``) work on the database directly, through the same
functions the API's routes call (:mod:`chathooks.manage`), with the API's
request models checking their input; so they work before the service is up,
refuse what the API refuses, and print the API's JSON (``--json``). Settings
come from flags or ``CHATHOOKS_*`` environment variables.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks import manage
from chathooks.api.schemas import (
    DEFAULT_GRACE_SECONDS,
    DeliveryOut,
    DeliveryRef,
    EndpointCreate,
    EndpointOut,
    EndpointSecret,
    EndpointUpdate,
    EndpointWithSecret,
    IngestAccepted,
    Page,
    RecoverRequest,
    RotateSecretRequest,
    SiteCreate,
    TestRequest,
    TestResult,
)
from chathooks.commands.log_options import LOG_FORMAT, LOG_LEVEL, setup_logging
from chathooks.db.engine import shown_url, sqlite_file
from chathooks.db.migrate import current_revision_async, head_revision, upgrade
from chathooks.errors import FieldError
from chathooks.heap import freeze_startup_objects
from chathooks.liveness import run_worker
from chathooks.queue import STATUSES
from chathooks.runtime import (
    build_app,
    new_worker,
    open_engine,
    open_service_engine,
)
from chathooks.sender import Sender
from chathooks.settings import Settings
from chathooks.wire import TEST_PAYLOAD_KINDS

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
#: Plain help, as click writes it: ``--auto-send / --no-auto-send``, no ``<bool>`` metavar.
_GROUP: dict[str, Any] = {"no_args_is_help": True, "rich_markup_mode": None}
#: Said where the service first runs: why a receiver on this machine gets no deliveries.
LOOPBACK_NOTE = (
    "note: deliveries to loopback and private addresses (127.0.0.1, 10.x, 192.168.x...) are "
    "refused; to reach a receiver on this machine set CHATHOOKS_ALLOWED_DESTINATIONS="
    "127.0.0.0/8 ('make run' does)"
)


def register(app: typer.Typer) -> None:
    """Add serve, worker, migrate and the ``site``/``endpoint``/``deliveries`` groups."""
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.command("migrate")(migrate)

    site = typer.Typer(
        name="site", help="Create and list sites (each gets its own API key).", **_GROUP
    )
    site.command("create")(site_create)
    site.command("list")(site_list)
    app.add_typer(site)

    endpoint = typer.Typer(
        name="endpoint", help="Add, change, test and remove the endpoints of a site.", **_GROUP
    )
    endpoint.command("add")(endpoint_add)
    endpoint.command("list")(endpoint_list)
    endpoint.command("update")(endpoint_update)
    endpoint.command("disable")(endpoint_disable)
    endpoint.command("enable")(endpoint_enable)
    endpoint.command("test")(endpoint_test)
    endpoint.command("delete")(endpoint_delete)
    endpoint.command("secret")(endpoint_secret)
    endpoint.command("rotate-secret")(endpoint_rotate_secret)
    app.add_typer(endpoint)

    deliveries = typer.Typer(
        name="deliveries", help="Look at deliveries and send them again.", **_GROUP
    )
    deliveries.command("list")(deliveries_list)
    deliveries.command("redeliver")(deliveries_redeliver)
    deliveries.command("recover")(deliveries_recover)
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
    import uvicorn

    from chathooks.http_limits.head import GuardedHttpToolsProtocol

    setup_logging(log_format, log_level)
    settings = _settings(database_url=database_url)
    _migrate(settings)
    _explain_destinations(settings)
    app = build_app(settings, run_worker=not no_worker, freeze_startup=True)
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
    _explain_destinations(settings)
    _require_database_file(settings)
    _run(_work(settings), settings)


def _explain_destinations(settings: Settings) -> None:
    if not settings.allowed_destinations:
        typer.echo(LOOPBACK_NOTE, err=True)


async def _work(settings: Settings) -> None:
    engine = await open_service_engine(settings)
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
    _migrate(settings)
    typer.echo(f"{shown_url(settings.database_url)} is at schema revision {head_revision()}")


def _migrate(settings: Settings) -> None:
    database_url = settings.database_url
    try:
        upgrade(database_url, settings.keyring())
    except (SQLAlchemyError, OSError, ValueError) as exc:
        _fail(f"cannot migrate {shown_url(database_url)}: {_reason(exc)}")


# -- admin commands -----------------------------------------------------------------------

_LIMIT = typer.Option(50, "--limit", min=1, max=500, help="How many rows (1-500).")
_CURSOR = typer.Option(
    None, "--cursor", help="Where the previous list stopped: the next_cursor it printed."
)
_SITE = typer.Argument(..., metavar="SITE", help="The site id (site_...).")
_ENDPOINT = typer.Argument(..., metavar="ENDPOINT", help="The endpoint id (ep_...).")


def site_create(
    name: str = typer.Argument(..., help="A label for the site, e.g. its domain."),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Create a site and print its API key (shown only this once)."""
    checked = _checked(SiteCreate, {"name": name})
    settings = _settings(database_url=database_url)
    site = _run(
        _with_engine(settings, lambda engine: manage.create_site(engine, checked.name)), settings
    )
    if as_json:
        _print_json(site)
        return
    typer.echo(f"{site.id}  {site.name}")
    typer.echo(f"API key (shown only now, store it): {site.api_key}")


def site_list(
    limit: int = _LIMIT,
    cursor: str | None = _CURSOR,
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """List the sites, oldest first."""
    settings = _settings(database_url=database_url)
    page = _run(
        _with_engine(settings, lambda e: manage.site_page(e, limit=limit, cursor=cursor)),
        settings,
    )
    _show_page(
        page,
        as_json=as_json,
        line=lambda site: f"{site.id}  {site.name}  created {site.created_at.isoformat()}",
        empty=None if cursor else "no sites; create one with 'chathooks site create NAME'",
    )


#: Validated by the API's schema, so the CLI says the same as a 422 would.
_MAX_IN_FLIGHT = typer.Option(
    None,
    "--max-in-flight",
    help="Requests in flight to this endpoint at most, across all workers (1-64; default "
    "CHATHOOKS_ENDPOINT_CONCURRENCY).",
)


def endpoint_add(
    site: str = _SITE,
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
    max_in_flight: int | None = _MAX_IN_FLIGHT,
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Add an endpoint to a site; prints its signing secret."""
    fields: dict[str, Any] = {
        "url": url,
        "auto_send": auto_send,
        "send_offline": offline,
        "send_events": events,
        "format": body_format,
        "description": description,
    }
    if max_in_flight is not None:
        fields["max_in_flight"] = max_in_flight
    if no_secret:
        fields["secret"] = None
    body = _checked(EndpointCreate, fields)
    settings = _settings(database_url=database_url)

    async def add(engine: AsyncEngine) -> EndpointWithSecret:
        await _require_site(engine, site)
        return await manage.create_endpoint(engine, site, body)

    endpoint = _run(_with_engine(settings, add), settings)
    if as_json:
        _print_json(endpoint)
        return
    typer.echo(_endpoint_line(endpoint))
    typer.echo(f"signing secret: {endpoint.secret}" if endpoint.secret else "unsigned")


def endpoint_list(
    site: str = _SITE,
    limit: int = _LIMIT,
    cursor: str | None = _CURSOR,
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """List a site's endpoints and their switches."""
    settings = _settings(database_url=database_url)

    async def read(engine: AsyncEngine) -> Page[EndpointOut]:
        await _require_site(engine, site)
        return await manage.endpoint_page(engine, site, limit=limit, cursor=cursor)

    page = _run(_with_engine(settings, read), settings)
    _show_page(
        page,
        as_json=as_json,
        line=_endpoint_line,
        empty=None if cursor else "no endpoints; add one with 'chathooks endpoint add SITE URL'",
    )


def endpoint_update(
    site: str = _SITE,
    endpoint: str = _ENDPOINT,
    url: str | None = typer.Option(None, "--url", help="A new destination URL."),
    auto_send: bool | None = typer.Option(
        None, "--auto-send/--no-auto-send", help="Send every transcript automatically."
    ),
    offline: bool | None = typer.Option(
        None, "--offline/--no-offline", help="Send offline messages."
    ),
    events: bool | None = typer.Option(None, "--events/--no-events", help="Send start events."),
    body_format: str | None = typer.Option(None, "--format", help="form or json."),
    description: str | None = typer.Option(None, "--description", help="A note for people."),
    max_in_flight: int | None = _MAX_IN_FLIGHT,
    new_secret: bool = typer.Option(
        False,
        "--new-secret",
        help="Sign with a new secret from now on (printed; 'endpoint secret' shows it again).",
    ),
    no_secret: bool = typer.Option(False, "--no-secret", help="Stop signing requests."),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Change an endpoint's settings; only the options given change."""
    if new_secret and no_secret:
        _fail("give --new-secret or --no-secret, not both")
    given = {
        "url": url,
        "auto_send": auto_send,
        "send_offline": offline,
        "send_events": events,
        "format": body_format,
        "description": description,
        "max_in_flight": max_in_flight,
    }
    fields: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    secret = None
    if new_secret:
        from chathooks.signing import generate_secret

        secret = fields["secret"] = generate_secret()
    elif no_secret:
        fields["secret"] = None
    if not fields:
        _fail("nothing to change: give at least one option (see --help)")
    _change_endpoint(site, endpoint, fields, database_url, as_json, secret=secret)


def _endpoint_switch(enabled: bool, doc: str) -> Callable[..., None]:
    """``endpoint disable`` or ``endpoint enable``: one command that sets ``enabled``."""

    def command(
        site: str = _SITE,
        endpoint: str = _ENDPOINT,
        database_url: str | None = _DATABASE_URL,
        as_json: bool = _JSON,
    ) -> None:
        _change_endpoint(site, endpoint, {"enabled": enabled}, database_url, as_json)

    command.__doc__ = doc
    return command


endpoint_disable = _endpoint_switch(
    False, "Stop delivering to an endpoint; its deliveries are held until it is enabled."
)
endpoint_enable = _endpoint_switch(
    True, "Deliver to an endpoint again, starting with what was held, in order."
)


def _change_endpoint(
    site: str,
    endpoint: str,
    fields: dict[str, Any],
    database_url: str | None,
    as_json: bool,
    *,
    secret: str | None = None,
) -> None:
    body = _checked(EndpointUpdate, fields)
    settings = _settings(database_url=database_url)

    async def change(engine: AsyncEngine) -> tuple[EndpointOut, int]:
        await _require_site(engine, site)
        return await manage.change_endpoint(engine, site, endpoint, body)

    changed, released = _run(_with_engine(settings, change), settings)
    if as_json:
        _print_json(changed)
        return
    typer.echo(_endpoint_line(changed))
    if released:
        typer.echo(f"sending {released} held deliveries again, in order")
    if secret is not None:
        typer.echo(f"signing secret: {secret}")


def endpoint_delete(
    site: str = _SITE,
    endpoint: str = _ENDPOINT,
    database_url: str | None = _DATABASE_URL,
) -> None:
    """Delete an endpoint together with its deliveries."""
    settings = _settings(database_url=database_url)

    async def delete(engine: AsyncEngine) -> None:
        await _require_site(engine, site)
        await manage.delete_endpoint(engine, site, endpoint)

    _run(_with_engine(settings, delete), settings)
    typer.echo(f"deleted {endpoint} and its deliveries")


def endpoint_secret(
    site: str = _SITE,
    endpoint: str = _ENDPOINT,
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Print an endpoint's signing secret (and, during a rotation, the previous one)."""
    settings = _settings(database_url=database_url)

    async def reveal(engine: AsyncEngine) -> EndpointSecret:
        await _require_site(engine, site)
        return await manage.reveal_secret(engine, site, endpoint)

    _print_secret(_run(_with_engine(settings, reveal), settings), as_json=as_json)


def endpoint_rotate_secret(
    site: str = _SITE,
    endpoint: str = _ENDPOINT,
    grace_seconds: int = typer.Option(
        DEFAULT_GRACE_SECONDS,
        "--grace-seconds",
        help="How long the old secret signs too, next to the new one (0 to 30 days).",
    ),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Give an endpoint a new signing secret; the old one also signs for a grace period."""
    body = _checked(RotateSecretRequest, {"grace_seconds": grace_seconds})
    settings = _settings(database_url=database_url)

    async def rotate(engine: AsyncEngine) -> EndpointSecret:
        await _require_site(engine, site)
        return await manage.rotate_secret(engine, site, endpoint, body)

    _print_secret(_run(_with_engine(settings, rotate), settings), as_json=as_json)


def _print_secret(secret: EndpointSecret, *, as_json: bool) -> None:
    if as_json:
        _print_json(secret)
        return
    typer.echo(f"signing secret: {secret.secret}" if secret.secret else "unsigned")
    if secret.previous_secret is not None and secret.previous_secret_expires_at is not None:
        until = secret.previous_secret_expires_at.isoformat(timespec="seconds")
        typer.echo(f"previous secret (also signs until {until}): {secret.previous_secret}")


def endpoint_test(
    site: str = _SITE,
    endpoint: str = _ENDPOINT,
    kind: str = typer.Option(
        "transcript",
        "--kind",
        help=f"Which test payload to post: {', '.join(TEST_PAYLOAD_KINDS)}.",
    ),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Olark's Send test for a configured endpoint: POST the test transcript (or --kind) now.

    Nothing is queued or retried; the destination guard applies as for any
    delivery (CHATHOOKS_ALLOWED_DESTINATIONS opens loopback and private ranges).
    Exits 1 when the endpoint did not accept it.
    """
    body = _checked(TestRequest, {"kind": kind})
    settings = _settings(database_url=database_url)

    async def send(engine: AsyncEngine) -> TestResult:
        await _require_site(engine, site)
        async with Sender.from_settings(settings) as sender:
            return await manage.test_endpoint(engine, sender, site, endpoint, body)

    result = _run(_with_engine(settings, send), settings)
    if as_json:
        _print_json(result)
    else:
        status = result.status_code if result.status_code is not None else "no response"
        typer.echo(f"status: {status}")
        typer.echo(f"time: {result.duration_ms:.0f} ms")
        if result.response_body:
            typer.echo(f"response: {result.response_body.strip()}")
        if result.integration_url:
            typer.echo(f"integrationUrl: {result.integration_url}")
        if result.error:
            typer.echo(f"failed: {result.error}", err=True)
    if not result.ok:
        raise typer.Exit(1)


def deliveries_list(
    site: str = _SITE,
    status: str | None = typer.Option(None, "--status", help=f"One of {', '.join(STATUSES)}."),
    limit: int = _LIMIT,
    cursor: str | None = _CURSOR,
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """List a site's deliveries, newest first."""
    if status is not None and status not in STATUSES:
        _fail(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    settings = _settings(database_url=database_url)

    async def read(engine: AsyncEngine) -> Page[DeliveryOut]:
        await _require_site(engine, site)
        return await manage.delivery_page(engine, site, status=status, limit=limit, cursor=cursor)

    page = _run(_with_engine(settings, read), settings)
    _show_page(page, as_json=as_json, line=_delivery_line)


def deliveries_redeliver(
    delivery: str = typer.Argument(..., help="The delivery id (msg_...)."),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """Send a delivery again now, with the same webhook-id, whatever its status."""
    settings = _settings(database_url=database_url)
    detail = _run(
        _with_engine(settings, lambda engine: manage.redeliver_delivery(engine, None, delivery)),
        settings,
    )
    if as_json:
        _print_json(detail)
        return
    typer.echo(f"{detail.id}  {detail.status}: it will be sent again now")


def deliveries_recover(
    site: str = _SITE,
    since: datetime = typer.Option(
        ...,
        "--since",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"],
        help="Failed deliveries made since this time (ISO-8601; UTC without an offset).",
    ),
    endpoint: list[str] = typer.Option(
        [], "--endpoint", help="Only this endpoint (repeatable); default: every endpoint."
    ),
    database_url: str | None = _DATABASE_URL,
    as_json: bool = _JSON,
) -> None:
    """After an outage: send again every failed delivery made since --since."""
    body = _checked(RecoverRequest, {"since": since})
    settings = _settings(database_url=database_url)

    async def recover_all(engine: AsyncEngine) -> list[tuple[str, str]]:
        await _require_site(engine, site)
        targets = list(endpoint)
        if not targets:
            cursor: str | None = None
            while True:
                page = await manage.endpoint_page(engine, site, limit=500, cursor=cursor)
                targets += [e.id for e in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        queued: list[tuple[str, str]] = []
        for target in targets:
            accepted = await manage.recover_failed(engine, site, target, body)
            queued += [(ref.id, ref.endpoint_id) for ref in accepted.deliveries]
        return queued

    queued = _run(_with_engine(settings, recover_all), settings)
    if as_json:
        _print_json(
            IngestAccepted(deliveries=[DeliveryRef(id=i, endpoint_id=e) for i, e in queued])
        )
        return
    for delivery_id, endpoint_id in queued:
        typer.echo(f"{delivery_id}  {endpoint_id}")
    typer.echo(
        f"{len(queued)} failed deliver{'y' if len(queued) == 1 else 'ies'} will be sent again",
        err=True,
    )


# -- helpers ------------------------------------------------------------------------------


def _settings(**flags: Any) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    try:
        return Settings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "_".join(str(part) for part in first["loc"]).upper()
        _fail(f"CHATHOOKS_{name}: {first['msg'].removeprefix('Value error, ')}")


async def _require_site(engine: AsyncEngine, site: str) -> None:
    from chathooks.repository.sites import get_site

    async with engine.connect() as connection:
        if await get_site(connection, site) is None:
            _fail(f"there is no site {site!r}; 'chathooks site list' shows them")


ModelT = TypeVar("ModelT", bound=BaseModel)
_Item = TypeVar("_Item")


def _checked(model: type[ModelT], fields: dict[str, Any]) -> ModelT:
    """``fields`` as the API's request model, or the API's complaint and exit 1."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "input"
        _fail(f"{name}: {first['msg'].removeprefix('Value error, ')}")


def _require_database_file(settings: Settings) -> None:
    """Stop, naming its absolute path, if the SQLite file is not there (never create it)."""
    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        _fail(
            f"there is no chathooks database at {path}; run 'chathooks migrate' (or "
            "'chathooks serve') there first, or give --database-url / CHATHOOKS_DATABASE_URL"
        )


async def _with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``work`` on the database, once it is known to exist and be migrated.

    A SQLite file that is not there is reported with its absolute path (the
    default ``./chathooks.db`` depends on the working directory) and is not
    created: opening it would leave an empty file behind.
    """
    url = settings.database_url
    _require_database_file(settings)
    path = sqlite_file(url)
    where = str(path) if path is not None else shown_url(url)
    revision = await current_revision_async(url)
    if revision != head_revision():
        state = "empty" if revision is None else f"at schema revision {revision}"
        _fail(
            f"the database {where} is {state}, not {head_revision()}; "
            "run 'chathooks migrate' on it first"
        )
    engine = open_engine(settings)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


async def _read(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``work`` on one connection of the (existing, migrated) database."""

    async def on(engine: AsyncEngine) -> T:
        async with engine.connect() as connection:
            return await work(connection)

    return await _with_engine(settings, on)


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
    except manage.NotFound as exc:
        _fail(f"there is no {exc.field} {exc.identifier!r}")
    except FieldError as exc:
        _fail(exc.message)
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


def _show_page(
    page: Page[_Item],
    *,
    as_json: bool,
    line: Callable[[_Item], str],
    empty: str | None = None,
) -> None:
    """A list command's output: the API's page as JSON, or a line per item; ``empty`` is
    said (on stderr) when there is nothing, and a list that stopped before its end says
    how to go on."""
    if as_json:
        _print_json(page)
        return
    for item in page.items:
        typer.echo(line(item))
    if not page.items and empty:
        typer.echo(empty, err=True)
    if page.next_cursor is not None:
        typer.echo(f"more rows: add --cursor {page.next_cursor}", err=True)


def _delivery_line(d: DeliveryOut) -> str:
    code = d.last_status_code if d.last_status_code is not None else "-"
    return (
        f"{d.id}  {d.status:<10}  {d.payload_kind:<15}  attempts={d.attempt_count}  "
        f"http={code}  {d.created_at.isoformat()}  {d.endpoint_id}"
        + (f"  error: {d.last_error}" if d.last_error else "")
    )


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
