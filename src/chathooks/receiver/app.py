"""The ready receiver behind ``chathooks receive``: a FastAPI app that stores transcripts.

``POST /webhook`` takes Olark's POSTs through the receiver toolkit
(allow-list 403, signature 401, body 400/413/415, all as JSON naming the
field), stores each one as a version of its conversation and answers the
``integrationUrl`` of the conversation's page, which Olark shows to the
operator who typed ``!lead``. The pages and ``/api/transcripts`` show what
arrived; everything a visitor typed is untrusted and is escaped on output.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError

from chathooks import __version__
from chathooks.db.outage import database_refused_value, database_unavailable
from chathooks.http_limits.body import RequestLimits
from chathooks.receiver.adapters.starlette import error_response, receive_webhook
from chathooks.receiver.core import WebhookReceiver, WebhookRejected, header_value
from chathooks.receiver.ipcheck import ForbiddenSource, SourceFilter
from chathooks.receiver.retention import purge_received
from chathooks.receiver.store import (
    DEFAULT_DATABASE_URL,
    ConversationDetail,
    InvalidCursor,
    ReceivedStore,
)
from chathooks.wire import (
    DEFAULT_MAX_BODY_BYTES,
    Event,
    MessageToOperator,
    MessageToVisitor,
    OfflineMessage,
    Payload,
    Transcript,
    WireError,
    readable_timestamp,
    validate_document,
)

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ReceiverConfig", "create_app"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8701
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_HERE = Path(__file__).resolve().parent
_log = logging.getLogger("chathooks.receiver")


@dataclass(frozen=True)
class ReceiverConfig:
    """How ``chathooks receive`` runs: where it listens, stores, and whom it accepts."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: Networks that may POST; empty means everyone.
    allow_cidrs: tuple[str, ...] = ()
    #: Reverse proxies whose ``X-Forwarded-For`` is believed.
    trusted_proxies: tuple[str, ...] = ()
    #: Standard Webhooks secrets; with any, unsigned POSTs are refused.
    secrets: tuple[str, ...] = ()
    #: Base of the ``integrationUrl`` answered; default ``http://host:port``.
    public_url: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Conversations last received longer ago than this many days are deleted; None keeps all.
    retention_days: float | None = None

    def webhook_receiver(self) -> WebhookReceiver:
        """The toolkit's checks for these settings (raises ValueError for bad ones)."""
        return WebhookReceiver(
            secrets=list(self.secrets) or None,
            allow_cidrs=list(self.allow_cidrs) or None,
            trusted_proxies=self.trusted_proxies,
            max_body_bytes=self.max_body_bytes,
        )

    def listening_url(self) -> str:
        """The public URL, else ``http://host:port`` (an IPv6 host in brackets)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return f"http://{self.host}:{self.port}"
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"http://{host}:{self.port}"

    def base_url(self, request: Request) -> str:
        """Where people reach this receiver: :meth:`listening_url`, or the request's own.

        Bound to every interface (``0.0.0.0``), the host says nothing about how
        the sender reached us, so the request's own base URL is used instead.
        """
        if not self.public_url and _is_unspecified(self.host):
            return str(request.base_url).rstrip("/")
        return self.listening_url()


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


#: Sent with every page. The pages show what any sender posted (names, messages, links),
#: so the browser is told to run no script at all and to load only this receiver's styles.
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

#: How often the receiver deletes what is past ``retention_days`` (seconds).
RETENTION_INTERVAL_SECONDS = 60.0


async def _keep_for(store: ReceivedStore, days: float) -> None:
    """Delete conversations older than ``days``, now and every minute, until cancelled."""
    while True:
        try:
            removed, _ = await purge_received(store, older_than_days=days)
            if removed:
                _log.info("retention: removed %d conversation(s)", removed)
        except Exception:
            _log.exception("the retention job failed; trying again in a minute")
        await asyncio.sleep(RETENTION_INTERVAL_SECONDS)


def create_app(config: ReceiverConfig, store: ReceivedStore | None = None) -> FastAPI:
    """The receiver app; without ``store``, it opens and migrates ``config.database_url``."""
    receiver = config.webhook_receiver()
    # Only used to name the client (for the versions list), never to refuse one.
    addresses = SourceFilter(["0.0.0.0/0", "::/0"], trusted_proxies=config.trusted_proxies)
    templates = _templates()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        app.state.store = store or ReceivedStore.open(config.database_url)
        if owned:
            await app.state.store.migrate()
        retention = (
            None
            if config.retention_days is None
            else asyncio.create_task(_keep_for(app.state.store, config.retention_days))
        )
        try:
            yield
        finally:
            if retention is not None:
                retention.cancel()
                await asyncio.gather(retention, return_exceptions=True)
            if owned:
                await app.state.store.close()

    app = FastAPI(
        title="chathooks receiver",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(RequestLimits, limit_for=lambda _path: receiver.max_body_bytes)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(InvalidCursor, _invalid_cursor)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(OSError, _database_error)

    def stored(request: Request) -> ReceivedStore:
        result: ReceivedStore = request.app.state.store
        return result

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(request=request, **context)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    @app.post("/webhook")
    async def webhook(request: Request) -> Response:
        try:
            received = await receive_webhook(request, receiver)
            recorded = await stored(request).record(
                received.payload,
                received.document,
                webhook_id=received.webhook_id,
                remote_addr=_client_address(addresses, request),
            )
        except WebhookRejected as exc:
            return error_response(exc)
        except WireError as exc:
            return JSONResponse(exc.to_dict(), status_code=400)
        except SQLAlchemyError as exc:
            if database_refused_value(exc):
                _log.warning("the database refused a value of a webhook: %s", exc)
                return JSONResponse(
                    {
                        "error": "unstorable_payload",
                        "field": "data",
                        "message": "the payload holds a value the database cannot store",
                    },
                    status_code=422,
                )
            _log.exception("could not store a webhook")
            return _storage_unavailable()
        if recorded.duplicate:
            _log.info("repeated webhook-id %s: already stored", received.webhook_id)
        else:
            _log.info("stored version %d of %s", recorded.version, recorded.conversation_id)
        url = f"{config.base_url(request)}/transcripts/{quote(recorded.conversation_id, safe='')}"
        return JSONResponse({"integrationUrl": url})

    @app.get("/", response_class=HTMLResponse)
    async def conversation_list(
        request: Request,
        q: str | None = Query(None, max_length=200),
        cursor: str | None = Query(None, max_length=40),
    ) -> HTMLResponse:
        listing = await stored(request).list_conversations(query=q, limit=PAGE_SIZE, cursor=cursor)
        return page(
            request,
            "list.html",
            conversations=listing.items,
            next_cursor=listing.next_cursor,
            q=q or "",
        )

    @app.get("/transcripts/{conversation_id:path}", response_class=HTMLResponse)
    async def conversation_page(request: Request, conversation_id: str) -> HTMLResponse:
        detail = await stored(request).get_conversation(conversation_id)
        if detail is None:
            return page(request, "not_found.html", status=404, conversation_id=conversation_id)
        return page(request, "transcript.html", c=detail, chat=ChatView.of(detail))

    @app.get("/api/transcripts")
    async def api_list(
        request: Request,
        q: str | None = Query(None, max_length=200),
        cursor: str | None = Query(None, max_length=40),
        limit: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    ) -> dict[str, Any]:
        listing = await stored(request).list_conversations(query=q, limit=limit, cursor=cursor)
        return {
            "items": [item.to_json() for item in listing.items],
            "next_cursor": listing.next_cursor,
        }

    @app.get("/api/transcripts/{conversation_id:path}")
    async def api_detail(request: Request, conversation_id: str) -> Response:
        detail = await stored(request).get_conversation(conversation_id)
        if detail is None:
            return JSONResponse(
                {
                    "error": "not_found",
                    "field": "id",
                    "message": f"no conversation with id {conversation_id!r} was received",
                },
                status_code=404,
            )
        return JSONResponse(detail.to_json())

    @app.get("/healthz")
    async def healthz(request: Request) -> Response:
        try:
            await stored(request).ping()
        except SQLAlchemyError as exc:
            return JSONResponse({"status": "unavailable", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app


def _client_address(addresses: SourceFilter, request: Request) -> str | None:
    """The client as the allow-list sees it (``X-Forwarded-For`` from trusted proxies only)."""
    peer = request.client.host if request.client else None
    try:
        client, _ = addresses.client_address(peer, header_value(request.headers, "x-forwarded-for"))
    except ForbiddenSource:
        return peer
    return str(client)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """FastAPI's validation errors in this app's shape: ``{"error", "field", "message"}``."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
    return JSONResponse(
        {
            "error": "invalid_request",
            "field": ".".join(location) or "request",
            "message": str(first.get("msg", "invalid request")),
        },
        status_code=400,
    )


def _storage_unavailable() -> JSONResponse:
    return JSONResponse(
        {
            "error": "storage_unavailable",
            "field": "database",
            "message": "the receiver's database is not available; retry later",
        },
        status_code=503,
        headers={"retry-after": "5"},
    )


async def _database_error(request: Request, exc: Exception) -> Response:
    """The database is away (starting, stopping, unreachable): 503 with Retry-After, not 500."""
    if database_unavailable(exc):
        _log.error("database unavailable: %s", exc)
        return _storage_unavailable()
    _log.error("database error", exc_info=exc)
    return JSONResponse(
        {"error": "internal_error", "field": None, "message": "the receiver failed; see its log"},
        status_code=500,
    )


async def _invalid_cursor(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidCursor)
    return JSONResponse(exc.to_dict(), status_code=400)


# -- the transcript page ---------------------------------------------------------------


@dataclass(frozen=True)
class Bubble:
    """One message as the page draws it."""

    #: ``operator``, ``visitor``, ``offline`` or ``other`` (an item kind we do not know).
    side: str
    author: str
    body: str
    timestamp: str | None


@dataclass(frozen=True)
class ChatView:
    """The current document of a conversation, arranged for reading."""

    payload: Payload | None
    bubbles: list[Bubble]
    visitor_facts: list[tuple[str, str]]
    custom_fields: list[tuple[str, str]]
    feedback: list[tuple[str, str]]
    operators: list[str]
    groups: list[str]

    @classmethod
    def of(cls, detail: ConversationDetail) -> ChatView:
        try:
            payload: Payload | None = validate_document(detail.document)
        except WireError:
            payload = None
        if payload is None:
            return cls(None, [], [], [], [], [], [])
        return cls(
            payload,
            _bubbles(payload),
            _visitor_facts(payload),
            _custom_fields(payload),
            _feedback(payload),
            [_operator_name(o) for o in _operators(payload).values()],
            [g.name or g.id or "?" for g in payload.groups or []],
        )


def _operators(payload: Payload) -> dict[str, Any]:
    if isinstance(payload, Transcript | Event) and payload.operators:
        return dict(payload.operators)
    return {}


def _operator_name(operator: Any) -> str:
    name = operator.nickname or operator.username or operator.id or "operator"
    return f"{name} <{operator.email_address}>" if operator.email_address else str(name)


def _bubbles(payload: Payload) -> list[Bubble]:
    operators = _operators(payload)
    visitor_name = (payload.visitor.full_name if payload.visitor else None) or "Visitor"
    bubbles = []
    for item in payload.items:
        if isinstance(item, MessageToVisitor):
            known = operators.get(item.operator_id or "")
            author = item.nickname or (known.nickname if known else None) or "Operator"
            bubbles.append(Bubble("operator", author, item.body, item.timestamp))
        elif isinstance(item, MessageToOperator):
            author = item.visitor_nickname or visitor_name
            bubbles.append(Bubble("visitor", author, item.body, item.timestamp))
        elif isinstance(item, OfflineMessage):
            bubbles.append(Bubble("offline", visitor_name, item.body, item.timestamp))
        else:
            extra = item.model_extra or {}
            body = extra.get("body")
            text = body if isinstance(body, str) else json.dumps(item.to_wire(), indent=2)
            stamp = extra.get("timestamp")
            bubbles.append(
                Bubble(
                    "other",
                    str(item.kind or "item"),
                    text,
                    stamp if isinstance(stamp, str) else None,
                )
            )
    return bubbles


def _visitor_facts(payload: Payload) -> list[tuple[str, str]]:
    visitor = payload.visitor
    if visitor is None:
        return []
    place = ", ".join(p for p in (visitor.city, visitor.region, visitor.country) if p)
    facts = [
        ("Email", visitor.email_address),
        ("Phone", visitor.phone_number),
        ("Organization", visitor.organization),
        ("Location", place),
        ("IP address", visitor.ip),
        ("Browser", visitor.browser),
        ("Operating system", visitor.operating_system),
        ("Began on", visitor.conversation_begin_page),
        ("Referrer", visitor.referrer),
        ("Visitor id", visitor.id),
    ]
    return [(label, value) for label, value in facts if value]


def _custom_fields(payload: Payload) -> list[tuple[str, str]]:
    fields = (payload.visitor.custom_fields if payload.visitor else None) or {}
    return [
        (str(key), value if isinstance(value, str) else json.dumps(value))
        for key, value in fields.items()
    ]


def _feedback(payload: Payload) -> list[tuple[str, str]]:
    feedback = payload.visitor.chat_feedback if payload.visitor else None
    if feedback is None:
        return []
    ratings = [
        ("Overall", feedback.overall_chat),
        ("Responsiveness", feedback.responsiveness),
        ("Friendliness", feedback.friendliness),
        ("Knowledge", feedback.knowledge),
    ]
    shown = [(label, f"{value} / 5") for label, value in ratings if value is not None]
    if feedback.comments:
        shown.append(("Comments", feedback.comments))
    return shown


def _date(value: float | str | None) -> str:
    """An epoch float or an Olark timestamp string as ``2016-09-13 13:53:39 UTC``."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        moment = readable_timestamp(value)
        if moment is None:
            return value  # shown as it came
    else:
        moment = datetime.fromtimestamp(value, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: float | str | None) -> str:
    """The same moment as ISO-8601, for ``<time datetime=...>``."""
    if value is None:
        return ""
    moment = (
        readable_timestamp(value)
        if isinstance(value, str)
        else datetime.fromtimestamp(value, tz=UTC)
    )
    return moment.isoformat() if moment is not None else ""


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _pretty_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False)


def _templates() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["date"] = _date
    environment.filters["iso"] = _iso
    environment.filters["yes_no"] = _yes_no
    environment.filters["pretty_json"] = _pretty_json
    environment.filters["urlquote"] = lambda text: quote(str(text), safe="")
    environment.globals["version"] = __version__
    return environment
