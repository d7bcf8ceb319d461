"""Olark's chat rules as pure functions over a conversation's transcript.

Nothing here touches a database or the network: the service loads a
conversation, asks these functions what the new transcript is and who must be
sent what, and stores and enqueues the answer in one transaction. Keeping the
rules pure makes each one testable on its own and keeps the API, the idle
check and any future importer deciding the same way.

The rules (Olark's webhook guide; ``olark-webhook-spec.md`` §2):

* a chat starts with a visitor; endpoints with "Send all events" get a start
  event at once (``eventType: "start"``, no items, ``operators: {}``);
* an operator line that starts with ``!lead``, ``!case``, ``!webhook`` (or
  ``!trigger``, which Olark's code also knows) is a command: it is not part of
  the transcript (it is kept as typed for the console, :func:`command_line`) and
  POSTs the transcript so far, ``manuallySubmitted: true``, to every enabled
  endpoint;
* when the chat completes, the full transcript goes to endpoints with
  "Send all transcripts automatically", and again to endpoints that got a
  command POST if the chat went on after it (same ``id``; receivers upsert);
* an endpoint never gets the same version of a transcript twice.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from chathooks.conversations.errors import ConversationFull
from chathooks.conversations.ids import new_conversation_id
from chathooks.conversations.inputs import (
    ConversationChanges,
    NewConversation,
    NewMessage,
    NewOfflineMessage,
    VisitorIn,
)
from chathooks.routing import RoutingSwitches, select_endpoints, takes_deliveries
from chathooks.wire import (
    ChatFeedback,
    Item,
    MessageToOperator,
    MessageToVisitor,
    OfflineMessage,
    OfflineMessageTranscript,
    Operator,
    StartEvent,
    Transcript,
    Visitor,
    format_timestamp,
)

__all__ = [
    "COMMANDS",
    "Endpoint",
    "PriorPost",
    "Trigger",
    "add_message",
    "apply_changes",
    "begin",
    "chat_item",
    "command_line",
    "command_recipients",
    "completion_recipients",
    "join_operator",
    "offline_message",
    "parse_command",
    "start_event",
    "transcript_payload",
    "visitor_label",
]

#: Operator commands that post the transcript so far. Olark documents the first
#: three; its example receivers also name ``!trigger``.
COMMANDS = ("lead", "case", "webhook", "trigger")
_COMMAND = re.compile(r"^\s*!(" + "|".join(COMMANDS) + r")(?=\s|$)", re.IGNORECASE)

#: Why a payload of a conversation was posted.
Trigger = Literal["start", "command", "completion"]


class Endpoint(RoutingSwitches, Protocol):
    """What the rules read of an endpoint: its id and Olark's switches."""

    @property
    def id(self) -> str: ...


EndpointT = TypeVar("EndpointT", bound=Endpoint)


@dataclass(frozen=True)
class PriorPost:
    """A payload of this conversation an endpoint was already given."""

    endpoint_id: str
    trigger: str
    #: The conversation version the posted payload showed.
    version: int


def parse_command(body: str) -> str | None:
    """The command an operator line gives (``"lead"``...), or ``None`` for a chat line.

    Any letter case, optionally followed by text: ``"!LEAD wants a quote"`` is
    ``"lead"``. ``"!leads"`` is a chat line. Only operator lines are commands;
    the caller decides who wrote it.
    """
    match = _COMMAND.match(body)
    return match.group(1).lower() if match else None


def begin(conversation_id: str, request: NewConversation) -> Transcript:
    """The transcript of a chat that has just begun: the visitor, no messages yet."""
    fields: dict[str, Any] = {
        "kind": "Conversation",
        "id": conversation_id,
        "tags": list(request.tags or []),
        "items": [],
        "visitor": _conversation_visitor(request.visitor),
        "operators": {},
    }
    if request.groups:
        fields["groups"] = [group.to_wire() for group in request.groups]
    return Transcript(**fields)


def start_event(transcript: Transcript) -> StartEvent:
    """Olark's start event for a chat: the same envelope, no items, ``operators: {}``."""
    fields: dict[str, Any] = {
        "kind": transcript.kind,
        "id": transcript.id,
        "tags": list(transcript.tags or []),
        "items": [],
        "operators": {},
        "visitor": transcript.visitor,
        "manually_submitted": False,
        "event_type": "start",
    }
    if transcript.groups is not None:
        fields["groups"] = transcript.groups
    return StartEvent(**fields)


def transcript_payload(transcript: Transcript, *, manually_submitted: bool) -> Transcript:
    """The transcript as posted: ``manuallySubmitted`` says whether an operator command asked."""
    return transcript.model_copy(update={"manually_submitted": manually_submitted})


def join_operator(transcript: Transcript, operator: Operator) -> Transcript:
    """The transcript with ``operator`` among its ``operators`` (details refreshed)."""
    operator_id = operator.id or ""
    operators = dict(transcript.operators or {})
    if operators.get(operator_id) == operator:
        return transcript
    operators[operator_id] = operator
    return transcript.model_copy(update={"operators": operators})


#: The most chat lines one conversation keeps (as Olark: 10,000); a transcript of that
#: many 100 KB lines would be a gigabyte no receiver takes.
MAX_MESSAGES = 10_000


def add_message(transcript: Transcript, message: NewMessage, *, now: float) -> Transcript:
    """The transcript with one more chat line (not for commands: see :func:`parse_command`).

    Refused (:class:`ConversationFull`) once it holds :data:`MAX_MESSAGES`.
    """
    transcript, item = chat_item(transcript, message, now=now, messages=len(transcript.items))
    return transcript.model_copy(update={"items": [*transcript.items, item]})


def chat_item(
    transcript: Transcript, message: NewMessage, *, now: float, messages: int
) -> tuple[Transcript, Item]:
    """The item a chat line adds to a transcript of ``messages`` items, and the transcript
    with its writer among the ``operators`` (the items themselves are not touched).

    Refused (:class:`ConversationFull`) once ``messages`` reaches :data:`MAX_MESSAGES`.
    """
    if messages >= MAX_MESSAGES:
        raise ConversationFull(transcript.id, MAX_MESSAGES)
    timestamp = message.timestamp or format_timestamp(now)
    item: Item
    if message.sender == "operator":
        transcript, item = _operator_line(transcript, message, timestamp)
    else:
        visitor = transcript.visitor or Visitor()
        item = MessageToOperator(
            body=message.body,
            timestamp=timestamp,
            nickname=clip_nickname(message.nickname or visitor_label(visitor)),
            visitor_nickname=clip_nickname(
                visitor.full_name or message.nickname or visitor_label(visitor)
            ),
        )
    return transcript, item


def command_line(
    transcript: Transcript, message: NewMessage, *, now: float
) -> tuple[Transcript, MessageToVisitor]:
    """An operator's command line (``!lead`` and the text after it) as the console keeps it.

    The same shape as an operator's chat line, but never one of the transcript's
    items: Olark's payload has only the chat (``olark-webhook-spec.md`` §3.2).
    """
    return _operator_line(transcript, message, message.timestamp or format_timestamp(now))


def _operator_line(
    transcript: Transcript, message: NewMessage, timestamp: str
) -> tuple[Transcript, MessageToVisitor]:
    assert message.operator is not None  # the input model guarantees it
    operator = message.operator.to_wire()
    transcript = join_operator(transcript, operator)
    line = MessageToVisitor(
        body=message.body,
        timestamp=timestamp,
        nickname=clip_nickname(
            message.nickname or operator.nickname or operator.username or f"Operator {operator.id}"
        ),
        operator_id=operator.id,
    )
    return transcript, line


def apply_changes(transcript: Transcript, changes: ConversationChanges) -> Transcript:
    """The transcript with tags, visitor details, custom fields, feedback or groups changed."""
    given = changes.model_fields_set
    update: dict[str, Any] = {}
    if "tags" in given:
        update["tags"] = list(changes.tags or [])
    if "groups" in given:
        update["groups"] = [group.to_wire() for group in changes.groups or []]
    visitor = (transcript.visitor or Visitor()).to_wire()
    if changes.visitor is not None:
        details = changes.visitor.model_dump(by_alias=True, exclude_unset=True)
        for key, value in details.items():
            if value is None:
                visitor.pop(key, None)
            else:
                visitor[key] = value
    if "custom_fields" in given:
        custom = dict(visitor.get("customFields") or {})
        for key, value in (changes.custom_fields or {}).items():
            if value is None:
                custom.pop(key, None)
            else:
                custom[key] = value
        if custom:
            visitor["customFields"] = custom
        else:
            visitor.pop("customFields", None)
    if "chat_feedback" in given:
        feedback = changes.chat_feedback.to_wire() if changes.chat_feedback else ChatFeedback()
        visitor["chat_feedback"] = feedback.to_wire()
    visitor["kind"] = "Visitor"
    update["visitor"] = Visitor.model_validate(visitor)
    changed = transcript.model_copy(update=update)
    return transcript if changed.to_wire() == transcript.to_wire() else changed


def offline_message(
    request: NewOfflineMessage, *, now: float, message_id: str | None = None
) -> OfflineMessageTranscript:
    """Olark's offline message: its own ``id``, one ``OfflineMessage``, never ``operators``."""
    fields: dict[str, Any] = {
        "kind": "Conversation",
        "id": message_id or new_conversation_id(),
        "tags": [],
        "items": [
            OfflineMessage(body=request.body, timestamp=request.timestamp or format_timestamp(now))
        ],
        "visitor": _with_visitor_id(request.visitor.to_wire()),
        "manually_submitted": False,
    }
    if request.groups:
        fields["groups"] = [group.to_wire() for group in request.groups]
    return OfflineMessageTranscript(**fields)


def command_recipients(
    endpoints: Sequence[EndpointT],
    prior: Iterable[PriorPost],
    transcript: Transcript,
    version: int,
) -> tuple[list[EndpointT], list[EndpointT]]:
    """Who a command posts to: ``(to_post, already_have_it)``.

    Every enabled endpoint gets a command's transcript, whatever its automatic
    switch says; one that already got this exact version (an operator typing
    ``!lead`` twice with nothing in between) is not posted to again.
    """
    wanted = select_endpoints(transcript_payload(transcript, manually_submitted=True), endpoints)
    have = _have_version(prior, version)
    to_post = [e for e in wanted if e.id not in have]
    already = [e for e in wanted if e.id in have]
    return to_post, already


def completion_recipients(
    endpoints: Sequence[EndpointT],
    prior: Iterable[PriorPost],
    transcript: Transcript,
    version: int,
) -> list[EndpointT]:
    """Who the completed transcript goes to.

    Endpoints with "Send all transcripts automatically", and endpoints that got
    a command POST when the chat went on after it; never one that already has
    this exact version.
    """
    prior = list(prior)
    automatic = {
        e.id
        for e in select_endpoints(
            transcript_payload(transcript, manually_submitted=False), endpoints
        )
    }
    commanded = {p.endpoint_id for p in prior if p.trigger == "command"}
    have = _have_version(prior, version)
    return [
        endpoint
        for endpoint in endpoints
        if takes_deliveries(endpoint)
        and (endpoint.id in automatic or endpoint.id in commanded)
        and endpoint.id not in have
    ]


#: Snowplow's ``com.olark/transcript`` schema allows item nicknames of 64 characters.
MAX_NICKNAME = 64


def clip_nickname(text: str, limit: int = MAX_NICKNAME) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when cut.

    A nickname is a label for people; a long one is shortened rather than
    refused, since the chat line it labels must still be delivered.
    """
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "\u2026"


def visitor_label(visitor: Visitor) -> str:
    """How operators see a visitor, as Olark labels them.

    ``"Paul (paul@example.com)"`` for a named visitor with an e-mail address,
    ``"Paul"`` with a name only, else a location label such as
    ``"Visitor | United States (Buffalo Grove, IL) #7617"`` whose number is
    stable for the visitor.
    """
    name = (visitor.full_name or "").strip()
    email = (visitor.email_address or "").strip()
    if name and email and len(name) + len(email) + 3 <= MAX_NICKNAME:
        return f"{name} ({email})"
    if name or email:
        return clip_nickname(name or email)
    place = ", ".join(part for part in (visitor.city, visitor.region) if part)
    where = visitor.country or visitor.country_code or "Unknown location"
    if place:
        where = f"{where} ({place})"
    number = zlib.crc32((visitor.id or "").encode("utf-8")) % 10_000
    suffix = f" #{number}"  # kept whole: it tells visitors from the same place apart
    return clip_nickname(f"Visitor | {where}", MAX_NICKNAME - len(suffix)) + suffix


def _have_version(prior: Iterable[PriorPost], version: int) -> set[str]:
    return {
        p.endpoint_id
        for p in prior
        if p.trigger in ("command", "completion") and p.version == version
    }


def _with_visitor_id(visitor: Visitor) -> Visitor:
    if visitor.id:
        return visitor
    return visitor.model_copy(update={"id": new_conversation_id()})


def _conversation_visitor(request: VisitorIn) -> Visitor:
    """A chat's visitor: an id (Olark always has one) and ``chat_feedback: {}`` until rated."""
    visitor = _with_visitor_id(request.to_wire())
    if visitor.chat_feedback is None:
        visitor = visitor.model_copy(update={"chat_feedback": ChatFeedback()})
    return visitor
