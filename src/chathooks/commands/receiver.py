"""``chathooks send-test`` and ``chathooks receive [export]``: the endpoint owner's tools.

``send-test`` is Olark's **Send test** button from a terminal; ``receive`` is a
ready endpoint that stores every transcript it is sent and shows them, and
``receive export`` writes them out. Every option of ``receive`` can also come
from a ``CHATHOOKS_RECEIVER_*`` environment variable (lists: comma- or
space-separated), which keeps secrets out of the process list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer
from sqlalchemy.exc import SQLAlchemyError

from chathooks.commands.erase_options import checked_subject
from chathooks.commands.log_options import LOG_FORMAT, LOG_LEVEL, setup_logging
from chathooks.commands.toolkit import BadArgument, prepare_send_test, run_send_test
from chathooks.db.engine import normalize_url, shown_url
from chathooks.receiver.defaults import DEFAULT_HOST, DEFAULT_PORT
from chathooks.receiver.export import ExportFormat, export
from chathooks.receiver.readaccess import generate_read_key
from chathooks.receiver.retention import erase_received
from chathooks.receiver.sendtest import DEFAULT_TIMEOUT_SECONDS
from chathooks.receiver.store import (
    DEFAULT_DATABASE_URL,
    MissingSchema,
    ReceivedStore,
    sqlite_file_exists,
)
from chathooks.urls import check_url

if TYPE_CHECKING:
    from chathooks.receiver.app import ReceiverConfig

__all__ = ["register"]

_ENV = "CHATHOOKS_RECEIVER_"


def register(app: typer.Typer) -> None:
    """Add ``send-test`` and the ``receive`` group (with ``export``) to ``app``."""
    app.command("send-test")(send_test_command)
    receive = typer.Typer(
        name="receive",
        invoke_without_command=True,
        rich_markup_mode=None,
        help="Run a receiver that stores every transcript POSTed to /webhook and shows them.",
    )
    receive.callback()(receive_command)
    receive.command("export")(export_command)
    receive.command("erase")(erase_command)
    app.add_typer(receive)


# -- send-test ---------------------------------------------------------------------------


def send_test_command(
    url: str = typer.Argument(
        ..., help="The endpoint to POST to, e.g. http://127.0.0.1:8701/webhook."
    ),
    file: Path | None = typer.Option(
        None,
        "--file",
        "-f",
        help="Send this payload instead of the test transcript: a .json document (sent "
        "form-encoded) or a .body.txt wire body (sent byte for byte).",
    ),
    secret: str | None = typer.Option(
        None,
        "--secret",
        envvar="CHATHOOKS_SEND_TEST_SECRET",
        help="Sign the POST with this Standard Webhooks secret (whsec_...).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as one JSON object."),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT_SECONDS, "--timeout", min=0.1, help="Seconds to wait for the answer."
    ),
) -> None:
    """POST Olark's test transcript (or --file) to URL, like Olark's Send test button.

    Prints the status, the time taken, the response and the integrationUrl;
    exits 1 when the endpoint failed (refused, timeout, DNS, non-2xx).
    """
    try:
        post = prepare_send_test(url, file, secret)
    except BadArgument as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.param) from exc
    what = str(file) if file is not None else "Olark's test transcript"
    status = run_send_test(url, post, what=what, secret=secret, as_json=as_json, timeout=timeout)
    if status:
        raise typer.Exit(status)


# -- receive -----------------------------------------------------------------------------


def _receive_option(default: Any, flag: str, help: str, **more: Any) -> Any:
    """An option of ``receive``, also read from ``CHATHOOKS_RECEIVER_<FLAG>``."""
    env = _ENV + flag.removeprefix("--").replace("-", "_").upper()
    return typer.Option(default, flag, envvar=env, help=help, **more)


def receive_command(
    ctx: typer.Context,
    host: str = _receive_option(DEFAULT_HOST, "--host", "Interface to listen on."),
    port: int = _receive_option(DEFAULT_PORT, "--port", "Port to listen on.", min=0, max=65535),
    database_url: str = _receive_option(
        DEFAULT_DATABASE_URL, "--database-url", "sqlite:///path.db or postgresql://user@host/db."
    ),
    allow_cidr: list[str] = _receive_option(
        [],
        "--allow-cidr",
        "Accept POSTs only from this network (repeatable); default: from anyone.",
    ),
    trust_proxy: list[str] = _receive_option(
        [],
        "--trust-proxy",
        "Believe X-Forwarded-For from this reverse proxy network (repeatable).",
    ),
    secret: list[str] = _receive_option(
        [],
        "--secret",
        "Require a Standard Webhooks signature with this secret (repeatable, for rotation).",
    ),
    public_url: str | None = _receive_option(
        None,
        "--public-url",
        "Base of the integrationUrl answered to Olark; default http://HOST:PORT.",
    ),
    read_key: str | None = _receive_option(
        None,
        "--read-key",
        "The key that reads the pages and /api/transcripts (Bearer or the sign-in "
        "form); default: one generated at the first start and kept in the database.",
        show_default=False,
    ),
    public: bool = _receive_option(
        False,
        "--public",
        "Let anyone who reaches the port read every stored transcript (no read key).",
    ),
    retention_days: float | None = _receive_option(
        None,
        "--retention-days",
        "Delete conversations last received longer ago than this (fractions allowed); "
        "default: keep forever.",
    ),
    log_format: str = LOG_FORMAT,
    log_level: str = LOG_LEVEL,
) -> None:
    """Store every transcript POSTed to /webhook; browse them at / and /api/transcripts.

    Reading needs the read key (visitors' names, e-mail addresses and messages are
    stored); POST /webhook has its own checks: --secret and --allow-cidr.
    """
    if ctx.invoked_subcommand is not None:
        return
    setup_logging(log_format, log_level)
    from chathooks.receiver.app import ReceiverConfig

    if public and read_key:
        raise typer.BadParameter("give --read-key or --public, not both", param_hint="--public")
    if read_key is not None and len(read_key.strip()) < 16:
        raise typer.BadParameter(
            "a read key needs at least 16 characters; omit it to have one generated",
            param_hint="--read-key",
        )
    generated = not public and read_key is None
    # A generated key is kept in the database at the first start (see _serve).
    key = read_key.strip() if read_key else None
    config = ReceiverConfig(
        database_url=database_url,
        host=host,
        port=port,
        allow_cidrs=_split(allow_cidr),
        trusted_proxies=_split(trust_proxy),
        secrets=_split(secret),
        public_url=public_url.rstrip("/") if public_url else None,
        read_key=key,
        retention_days=retention_days,
    )
    _check_database_url(database_url)
    if retention_days is not None and not retention_days > 0:
        raise typer.BadParameter("must be a number of days above 0", param_hint="--retention-days")
    if public_url is not None:
        try:
            check_url(public_url, example="https://hooks.example.com")
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--public-url") from exc
    try:
        config.webhook_receiver()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(asyncio.run(_serve(config, keep_generated_key=generated)))


async def _serve(config: ReceiverConfig, *, keep_generated_key: bool) -> int:
    import uvicorn

    from chathooks.http_limits.head import GuardedHttpToolsProtocol
    from chathooks.receiver.app import create_app

    store = ReceivedStore.open(config.database_url)
    try:
        try:
            await store.migrate()
        except (SQLAlchemyError, OSError) as exc:
            typer.echo(
                f"error: cannot prepare the database {shown_url(config.database_url)}: {exc}",
                err=True,
            )
            return 1
        made_now = False
        if keep_generated_key:
            key, made_now = await store.kept_read_key(generate_read_key)
            config = dataclasses.replace(config, read_key=key)
        base = config.listening_url()
        typer.echo(f"storing in {shown_url(config.database_url)}", err=True)
        typer.echo(f"POST Olark webhooks to {base}/webhook; read them at {base}/", err=True)
        if config.read_key is None:
            typer.echo(
                "warning: --public: anyone who can reach this port can read every stored "
                "transcript (visitors' names, e-mail addresses, IP addresses, messages)",
                err=True,
            )
        elif keep_generated_key:
            kept = "generated now" if made_now else "generated at the first start"
            typer.echo(
                f"read key ({kept}, kept in the database for later starts; --read-key "
                f"overrides it): {config.read_key}",
                err=True,
            )
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config, store),
                host=config.host,
                port=config.port,
                # The toolkit decides which X-Forwarded-For to believe (--trust-proxy);
                # uvicorn must not rewrite the peer address before it looks.
                proxy_headers=False,
                http=GuardedHttpToolsProtocol,  # request line and headers capped (431)
                server_header=False,
                log_config=None,  # configured by setup_logging: one shape for every line
            )
        )
        await server.serve()
        return 0 if server.started else 1
    finally:
        await store.close()


# -- receive export ----------------------------------------------------------------------


def export_command(
    database_url: str = typer.Option(
        DEFAULT_DATABASE_URL, envvar=_ENV + "DATABASE_URL", help="The receiver's database."
    ),
    format: ExportFormat = typer.Option(
        ExportFormat.JSONL,
        "--format",
        case_sensitive=False,
        help="jsonl: one Olark document per line; csv: one row per conversation.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of standard output."
    ),
    all_versions: bool = typer.Option(
        False, "--all-versions", help="jsonl: every POST of each conversation, not only the latest."
    ),
) -> None:
    """Write the received conversations out as JSON Lines or CSV."""
    if all_versions and format is not ExportFormat.JSONL:
        raise typer.BadParameter(
            "--all-versions applies to --format jsonl only", param_hint="--all-versions"
        )
    _check_database_url(database_url)
    try:
        if output is None:
            count = asyncio.run(_export(database_url, sys.stdout, format, all_versions))
        else:
            with output.open("w", encoding="utf-8", newline="") as stream:
                count = asyncio.run(_export(database_url, stream, format, all_versions))
    except (MissingSchema, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (SQLAlchemyError, OSError) as exc:
        typer.echo(f"error: cannot read {shown_url(database_url)}: {exc}", err=True)
        raise typer.Exit(1) from exc
    unit = "version" if all_versions else "conversation"
    where = f" to {output}" if output else ""
    typer.echo(f"exported {count} {unit}{'' if count == 1 else 's'}{where}", err=True)


async def _export(url: str, output: TextIO, format: ExportFormat, all_versions: bool) -> int:
    if not sqlite_file_exists(url):
        raise FileNotFoundError(f"there is no receiver database at {shown_url(url)}")
    store = ReceivedStore.open(url)
    try:
        await store.require_schema()
        return await export(store, output, format=format, all_versions=all_versions)
    finally:
        await store.close()


# -- receive erase -----------------------------------------------------------------------


def erase_command(
    conversation: str | None = typer.Option(
        None, "--conversation", help="Erase this conversation (its id) and every version of it."
    ),
    email: str | None = typer.Option(
        None, "--email", help="Erase every conversation of the visitor with this email address."
    ),
    database_url: str = typer.Option(
        DEFAULT_DATABASE_URL, envvar=_ENV + "DATABASE_URL", help="The receiver's database."
    ),
) -> None:
    """Erase received conversations of one visitor (or one conversation) from the database."""
    checked_subject(conversation, email)
    _check_database_url(database_url)

    async def run() -> tuple[int, int]:
        if not sqlite_file_exists(database_url):
            raise FileNotFoundError(f"there is no receiver database at {shown_url(database_url)}")
        store = ReceivedStore.open(database_url)
        try:
            await store.require_schema()
            return await erase_received(store, conversation_id=conversation, email=email)
        finally:
            await store.close()

    try:
        conversations, versions = asyncio.run(run())
    except (MissingSchema, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (SQLAlchemyError, OSError) as exc:
        typer.echo(f"error: cannot use {shown_url(database_url)}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"erased {conversations} conversation(s) and {versions} stored version(s)")


# -- helpers -----------------------------------------------------------------------------


def _split(values: list[str]) -> tuple[str, ...]:
    """Repeated options and comma-separated environment values, as one list."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _check_database_url(url: str) -> None:
    try:
        normalize_url(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database-url") from exc
