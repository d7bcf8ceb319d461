"""``/api/v1/sites/{site}/conversations``: chathooks keeps the chat and applies Olark's rules.

A chat platform reports what happens (a chat starts, a line is written, an
operator types ``!lead``, the chat ends) and chathooks decides what to POST
and when; see :mod:`chathooks.conversations.rules`. The routes only translate
HTTP to the conversation service and back.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from chathooks.api.auth import SiteId, open_site
from chathooks.api.lean import lean_route
from chathooks.api.schemas import Page, utc
from chathooks.api.state import Cursor, Limit, Services, ServicesDep
from chathooks.conversations import rules
from chathooks.conversations.events import (
    POLL_SECONDS,
    OutcomeSignal,
    backstop_seconds,
    delivery_events,
    event_data,
)
from chathooks.conversations.inputs import (
    ConversationChanges,
    NewConversation,
    NewMessage,
    NewOfflineMessage,
)
from chathooks.conversations.service import (
    CommandOutcome,
    MessageOutcome,
    Queued,
)
from chathooks.conversations.store import CommandLine, ConversationRecord, PostedDelivery

__all__ = ["router"]

_Body = TypeVar("_Body", bound=BaseModel)

router = APIRouter(prefix="/api/v1/sites/{site}", tags=["conversations"])


class DeliveryOut(BaseModel):
    """A delivery an action queued (or, with ``reused``, one that already carried this state)."""

    id: str
    endpoint_id: str
    trigger: str
    status: str
    reused: bool = Field(
        False, description="No new POST: the endpoint already has this exact transcript."
    )
    integration_url: str | None = None

    @classmethod
    def of(cls, queued: Queued) -> DeliveryOut:
        return cls(
            id=queued.id,
            endpoint_id=queued.endpoint_id,
            trigger=queued.trigger,
            status=queued.status,
            reused=queued.reused,
            integration_url=queued.integration_url,
        )


class ConversationSummary(BaseModel):
    id: str
    state: Literal["open", "closed"]
    version: int = Field(description="Goes up with every change to the transcript.")
    messages: int
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    closed_at: datetime | None
    close_reason: str | None = Field(description="'api' (closed by a call) or 'idle'.")

    @classmethod
    def fields_of(cls, record: ConversationRecord) -> dict[str, Any]:
        return {
            "id": record.id,
            "state": record.state,
            "version": record.version,
            "messages": record.messages,
            "tags": list(record.envelope.tags or []),
            "created_at": utc(record.created_at),
            "updated_at": utc(record.updated_at),
            "last_activity_at": utc(record.last_activity_at),
            "closed_at": utc(record.closed_at),
            "close_reason": record.close_reason,
        }

    @classmethod
    def of(cls, record: ConversationRecord) -> ConversationSummary:
        return cls(**cls.fields_of(record))


class ConversationCreated(ConversationSummary):
    deliveries: list[DeliveryOut] = Field(description="Start events queued.")


class IntegrationDelivery(BaseModel):
    """How one endpoint answered one command or completion POST."""

    delivery_id: str
    endpoint_id: str
    status: str
    attempt_count: int
    status_code: int | None
    integration_url: str | None = Field(description="The endpoint's integrationUrl, if any.")
    error: str | None


class Integration(BaseModel):
    """One command (``!lead``...) or completion, and each endpoint's answer to it."""

    trigger: Literal["command", "completion"]
    command: str | None
    operator_id: str | None
    version: int
    at: datetime
    deliveries: list[IntegrationDelivery]


class CommandLineOut(BaseModel):
    """An operator command as typed (``!lead wants a quote``): kept for the console, but not
    one of the transcript's items, since Olark's payload has only the chat."""

    command: str = Field(description="lead, case, webhook or trigger.")
    body: str = Field(description="The whole line as the operator typed it.")
    operator_id: str | None
    nickname: str
    timestamp: str = Field(description="Epoch seconds as a string, as an item's timestamp.")
    after_items: int = Field(description="How many transcript items came before it.")
    at: datetime

    @classmethod
    def of(cls, line: CommandLine) -> CommandLineOut:
        return cls(
            command=line.command,
            body=line.line.body,
            operator_id=line.line.operator_id,
            nickname=line.line.nickname or "",
            timestamp=line.line.timestamp,
            after_items=line.after_items,
            at=utc(line.created_at),
        )


class ConversationOut(ConversationSummary):
    transcript: dict[str, Any] = Field(description="The transcript exactly as it would be posted.")
    integrations: list[Integration]
    commands: list[CommandLineOut] = Field(
        description="The operator commands typed, in order, each placed among the items."
    )


class MessageResult(BaseModel):
    """A chat line added (``item``), or a command carried out (``command``, ``deliveries``)."""

    conversation_id: str
    version: int
    command: str | None = None
    item: dict[str, Any] | None = None
    line: CommandLineOut | None = Field(None, description="A command: the line as kept.")
    deliveries: list[DeliveryOut] = Field(default_factory=list)


class Closed(BaseModel):
    id: str
    state: Literal["closed"] = "closed"
    deliveries: list[DeliveryOut] = Field(description="Completion POSTs queued.")


class OfflineAccepted(BaseModel):
    id: str = Field(description="The offline message's own id (its payload's id).")
    deliveries: list[DeliveryOut]


def _integrations(posts: list[PostedDelivery]) -> list[Integration]:
    grouped: dict[str, Integration] = {}
    for post in posts:
        if post.trigger not in ("command", "completion"):
            continue
        entry = grouped.get(post.action_id)
        if entry is None:
            entry = grouped[post.action_id] = Integration(
                trigger="command" if post.trigger == "command" else "completion",
                command=post.command,
                operator_id=post.operator_id,
                version=post.version,
                at=utc(post.posted_at),
                deliveries=[],
            )
        data = event_data(post)
        entry.deliveries.append(
            IntegrationDelivery(**{k: data[k] for k in IntegrationDelivery.model_fields})
        )
    return list(grouped.values())


async def start(body: NewConversation, site: SiteId, services: ServicesDep) -> ConversationCreated:
    """Begin a conversation with a visitor; endpoints with ``send_events`` get a start event."""
    return await _started(services, site, body)


async def _started(services: Services, site: str, body: NewConversation) -> ConversationCreated:
    outcome = await services.conversations.start(site, body)
    return ConversationCreated(
        **ConversationSummary.fields_of(outcome.conversation),
        deliveries=[DeliveryOut.of(q) for q in outcome.deliveries],
    )


async def _fast_start(request: Request) -> Response | None:
    """``POST .../conversations``, once per chat, answered as :func:`_fast_message` answers."""
    body = await _valid(request, NewConversation)
    if body is None:
        return None
    site = await open_site(request, request.path_params["site"])
    created = await _started(request.app.state.services, site, body)
    return _json(created, status.HTTP_201_CREATED)


router.add_api_route(
    "/conversations",
    start,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationCreated,
    route_class_override=lean_route(_fast_start),
)


@router.get("/conversations", response_model=Page[ConversationSummary])
async def list_all(
    site: SiteId,
    services: ServicesDep,
    state: Annotated[
        Literal["open", "closed"] | None, Query(description="Only open or only closed ones.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ConversationSummary]:
    """A site's conversations, newest first."""
    records, next_cursor = await services.conversations.page(
        site, state=state, limit=limit, cursor=cursor
    )
    return Page(items=[ConversationSummary.of(r) for r in records], next_cursor=next_cursor)


@router.get("/conversations/{conversation}", response_model=ConversationOut)
async def read(conversation: str, site: SiteId, services: ServicesDep) -> ConversationOut:
    """The conversation, its transcript as it would be posted now, and each endpoint's answers."""
    view = await services.conversations.view(site, conversation)
    record = view.conversation
    return ConversationOut(
        **ConversationSummary.fields_of(record),
        transcript=rules.transcript_payload(view.transcript, manually_submitted=False).to_wire(),
        integrations=_integrations(view.posts),
        commands=[CommandLineOut.of(line) for line in view.commands],
    )


async def add_message(
    conversation: str, body: NewMessage, site: SiteId, services: ServicesDep
) -> MessageResult:
    """Add a line of chat. An operator line starting with ``!lead``, ``!case`` or
    ``!webhook`` is a command instead: it posts the transcript so far to every endpoint."""
    outcome = await services.conversations.add_message(site, conversation, body)
    return _message_result(outcome)


async def _fast_message(request: Request) -> Response | None:
    """``POST .../messages``, one call per chat line: its usual request, answered here.

    A JSON body that is a valid :class:`NewMessage` goes straight to the
    service: the same key and site checks as :data:`SiteId`, the same errors
    raised (and answered by the same handlers), and the same bytes as FastAPI
    would answer, without its dependency solving and response validation.
    Anything else (another content type, a body that is not JSON or not
    valid) is left to FastAPI's own handler (None), so its answer is
    unchanged. The middleware (body limit, key gate, Idempotency-Key) runs
    for both.
    """
    body = await _valid(request, NewMessage)
    if body is None:
        return None
    params = request.path_params
    site = await open_site(request, params["site"])
    services: Services = request.app.state.services
    outcome = await services.conversations.add_message(site, params["conversation"], body)
    return _json(_message_result(outcome), status.HTTP_201_CREATED)


async def _valid(request: Request, model: type[_Body]) -> _Body | None:
    """The body as a ``model``, read as FastAPI reads it; None if it is not one."""
    content_type = request.headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    try:
        return model.model_validate(json.loads(await request.body()))
    except (ValueError, RecursionError):  # not JSON, or not a valid body
        return None


def _json(answer: BaseModel, status_code: int) -> Response:
    """``answer`` as FastAPI would send it for a route with ``answer``'s model."""
    return Response(
        answer.model_dump_json(by_alias=True),
        status_code=status_code,
        media_type="application/json",
    )


router.add_api_route(
    "/conversations/{conversation}/messages",
    add_message,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    response_model=MessageResult,
    route_class_override=lean_route(_fast_message),
)


def _message_result(outcome: MessageOutcome | CommandOutcome) -> MessageResult:
    record = outcome.conversation
    if isinstance(outcome, CommandOutcome):
        return MessageResult(
            conversation_id=record.id,
            version=record.version,
            command=outcome.command,
            line=_command_out(outcome, record),
            deliveries=[DeliveryOut.of(q) for q in outcome.deliveries],
        )
    return MessageResult(
        conversation_id=record.id,
        version=record.version,
        item=outcome.item.to_wire(),
    )


def _command_out(outcome: CommandOutcome, record: ConversationRecord) -> CommandLineOut:
    line = CommandLine(
        command=outcome.command,
        line=outcome.line,
        after_items=record.messages,
        created_at=record.last_activity_at,
    )
    return CommandLineOut.of(line)


@router.patch("/conversations/{conversation}", response_model=ConversationSummary)
async def change(
    conversation: str, body: ConversationChanges, site: SiteId, services: ServicesDep
) -> ConversationSummary:
    """Change tags, visitor details, ``customFields``, ``chat_feedback`` or groups."""
    record = await services.conversations.change(site, conversation, body)
    return ConversationSummary.of(record)


async def close(conversation: str, site: SiteId, services: ServicesDep) -> Closed:
    """Complete the conversation: the transcript goes to endpoints that should get it."""
    return await _closed(services, site, conversation)


async def _closed(services: Services, site: str, conversation: str) -> Closed:
    queued = await services.conversations.close(site, conversation)
    return Closed(id=conversation, deliveries=[DeliveryOut.of(q) for q in queued])


async def _fast_close(request: Request) -> Response:
    """``POST .../close``, once per chat: it takes no body, so it is always answered here."""
    params = request.path_params
    site = await open_site(request, params["site"])
    closed = await _closed(request.app.state.services, site, params["conversation"])
    return _json(closed, status.HTTP_200_OK)


router.add_api_route(
    "/conversations/{conversation}/close",
    close,
    methods=["POST"],
    response_model=Closed,
    route_class_override=lean_route(_fast_close),
)


@router.get(
    "/conversations/{conversation}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    conversation: str,
    request: Request,
    site: SiteId,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header(alias="last-event-id")] = None,
) -> StreamingResponse:
    """Server-Sent Events: a ``delivery`` event each time a delivery of this conversation
    succeeds or fails, with the endpoint's ``integration_url``."""
    service = services.conversations
    await service.record(site, conversation)  # 404 before the stream starts
    since = _since(last_event_id)
    signal: OutcomeSignal | None = getattr(request.app.state, "conversation_outcomes", None)

    # The process's one poll wakes the stream; its own reads are then only a backstop.
    shared = signal is not None and signal.polls_for_streams

    async def stream() -> AsyncIterator[str]:
        with contextlib.ExitStack() as stack:
            wake = stack.enter_context(signal.watch(site, conversation)) if signal else None
            async for chunk in delivery_events(
                lambda: service.posts(site, conversation),
                disconnected=request.is_disconnected,
                wake=wake,
                since=since,
                poll_seconds=backstop_seconds() if shared else POLL_SECONDS,
            ):
                yield chunk

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


@router.post(
    "/offline-messages", status_code=status.HTTP_202_ACCEPTED, response_model=OfflineAccepted
)
async def offline_message(
    body: NewOfflineMessage, site: SiteId, services: ServicesDep
) -> OfflineAccepted:
    """A visitor's message left while no operator was available: posted at once to
    endpoints with ``send_offline``, with its own ``id`` and no ``operators``."""
    outcome = await services.conversations.offline_message(site, body)
    return OfflineAccepted(
        id=outcome.id, deliveries=[DeliveryOut.of(q) for q in outcome.deliveries]
    )


def _since(last_event_id: str | None) -> float | None:
    if not last_event_id:
        return None
    try:
        return float(last_event_id)
    except ValueError:
        return None  # not one of ours: replay everything
