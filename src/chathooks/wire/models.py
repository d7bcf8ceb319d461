"""Typed models of Olark's webhook payloads.

Reading is tolerant and writing is faithful: every key is optional unless
Olark always sends it, unknown keys and unknown item kinds are kept, and
:func:`to_wire` writes back exactly the keys that were read (or set), so a
payload that passes through chathooks reaches a strict consumer unchanged.

Python names are snake_case; on the wire they keep Olark's spelling
(``emailAddress``, ``operatorId``, but ``visitor_nickname`` and
``chat_feedback``, which Olark writes in snake_case).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    model_serializer,
)
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base of every wire model: camelCase aliases, unknown keys kept."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        serialize_by_alias=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    #: Keys written even when they were never set (Olark always sends them).
    always_written: ClassVar[frozenset[str]] = frozenset()

    def model_post_init(self, context: Any, /) -> None:
        self.model_fields_set.update(self.always_written)

    @model_serializer(mode="wrap")
    def _omit_null_known_keys(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Olark never sends ``null`` for a key it knows: a ``None`` is an absent key.

        (``"operators": null`` is not the same as no ``operators``: consumers tell
        offline messages apart by that key.) Unknown keys keep their ``null``.
        """
        data = handler(self)
        if isinstance(data, dict):
            for name, field in type(self).model_fields.items():
                if getattr(self, name) is None:
                    data.pop(field.alias or name, None)
                    data.pop(name, None)
        return data

    def to_wire(self) -> dict[str, Any]:
        """The JSON object Olark would send: set keys only, unknown keys kept."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class ChatFeedback(WireModel):
    """The visitor's rating at the end of a chat; ``{}`` when there is none."""

    overall_chat: int | None = Field(default=None, alias="overall_chat")
    responsiveness: int | None = None
    friendliness: int | None = None
    knowledge: int | None = None
    comments: str | None = None


class VisitorDetails(BaseModel):
    """The visitor details Olark sends, each of them optional: the one list of them.

    No configuration of its own: :class:`Visitor` reads them tolerantly, and
    the conversations API's inputs (``chathooks.conversations.inputs``) check
    them strictly, each with its own base's rules.
    """

    #: Each model narrows it: always written on the wire, optional in a change.
    kind: str | None = "Visitor"
    id: str | None = None
    full_name: str | None = None
    email_address: str | None = None
    phone_number: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    country_code: str | None = None
    organization: str | None = None
    ip: str | None = None
    browser: str | None = None
    operating_system: str | None = None
    conversation_begin_page: str | None = None
    referrer: str | None = None


class Visitor(WireModel, VisitorDetails):
    always_written = frozenset({"kind"})

    kind: str = "Visitor"

    custom_fields: dict[str, Any] | None = None
    chat_feedback: ChatFeedback | None = Field(default=None, alias="chat_feedback")


class Operator(WireModel):
    always_written = frozenset({"kind"})

    kind: str = "Operator"
    id: str | None = None
    username: str | None = None
    nickname: str | None = None
    email_address: str | None = None


class Group(WireModel):
    always_written = frozenset({"kind"})

    kind: str = "Group"
    id: str | None = None
    name: str | None = None


class MessageToVisitor(WireModel):
    """A message an operator sent to the visitor."""

    always_written = frozenset({"kind"})

    kind: Literal["MessageToVisitor"] = "MessageToVisitor"
    body: str = ""
    timestamp: str | None = None
    nickname: str | None = None
    operator_id: str | None = None


class MessageToOperator(WireModel):
    """A message the visitor sent to the operators."""

    always_written = frozenset({"kind"})

    kind: Literal["MessageToOperator"] = "MessageToOperator"
    body: str = ""
    timestamp: str | None = None
    nickname: str | None = None
    visitor_nickname: str | None = Field(default=None, alias="visitor_nickname")


class OfflineMessage(WireModel):
    """A message the visitor left while no operator was available."""

    always_written = frozenset({"kind"})

    kind: Literal["OfflineMessage"] = "OfflineMessage"
    body: str = ""
    timestamp: str | None = None


class UnknownItem(WireModel):
    """An item of a kind chathooks does not know; kept and written back as it came."""

    kind: str | None = None


KNOWN_ITEM_KINDS = frozenset({"MessageToVisitor", "MessageToOperator", "OfflineMessage"})


def _item_tag(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in KNOWN_ITEM_KINDS else "unknown"


Item = Annotated[
    Annotated[MessageToVisitor, Tag("MessageToVisitor")]
    | Annotated[MessageToOperator, Tag("MessageToOperator")]
    | Annotated[OfflineMessage, Tag("OfflineMessage")]
    | Annotated[UnknownItem, Tag("unknown")],
    Discriminator(_item_tag),
]


class Envelope(WireModel):
    """What every Olark payload shares: ``kind``, ``id``, ``items``, ``visitor``..."""

    always_written = frozenset({"kind", "id", "items"})

    kind: str = "Conversation"
    id: str
    tags: list[str] | None = None
    items: list[Item] = Field(default_factory=list)
    visitor: Visitor | None = None
    groups: list[Group] | None = None
    manually_submitted: bool | None = None


class Transcript(Envelope):
    """A chat transcript: sent when a chat completes or an operator types ``!lead``."""

    operators: dict[str, Operator] | None = None


class OfflineMessageTranscript(Envelope):
    """An offline message: one ``OfflineMessage`` item and never an ``operators`` key."""


class Event(Transcript):
    """An extra event (Olark's "Send all events"): ``eventType`` is ``"start"`` today."""

    always_written = frozenset({"kind", "id", "items", "event_type"})

    event_type: str


class StartEvent(Event):
    """Sent when a chat begins: no items, no operators, the conversation's ``id``."""

    always_written = frozenset({"kind", "id", "items", "operators", "event_type"})

    event_type: str = "start"
    operators: dict[str, Operator] | None = Field(default_factory=dict)


Payload = Transcript | OfflineMessageTranscript | Event


def payload_from_dict(document: dict[str, Any]) -> Payload:
    """The typed payload for a decoded JSON object, chosen as consumers choose it.

    ``eventType`` marks an event; a payload with no ``operators`` key whose
    items are all ``OfflineMessage`` is an offline message (this is how
    Snowplow tells the two apart); anything else is a transcript.
    """
    if "eventType" in document:
        if document.get("eventType") == "start":
            return StartEvent.model_validate(document)
        return Event.model_validate(document)
    items = document.get("items")
    if (
        "operators" not in document
        and isinstance(items, list)
        and items
        and all(isinstance(i, dict) and i.get("kind") == "OfflineMessage" for i in items)
    ):
        return OfflineMessageTranscript.model_validate(document)
    return Transcript.model_validate(document)


__all__ = [
    "KNOWN_ITEM_KINDS",
    "ChatFeedback",
    "Envelope",
    "Event",
    "Group",
    "Item",
    "MessageToOperator",
    "MessageToVisitor",
    "OfflineMessage",
    "OfflineMessageTranscript",
    "Operator",
    "Payload",
    "StartEvent",
    "Transcript",
    "UnknownItem",
    "Visitor",
    "VisitorDetails",
    "payload_from_dict",
]
