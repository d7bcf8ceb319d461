"""What a chat platform sends to report a conversation, checked at the door.

Keys use Olark's wire spelling (``fullName``, ``emailAddress``,
``customFields``, but ``chat_feedback``), so a platform that already knows the
Olark payload writes the same words. Unknown keys are refused rather than
passed on: an extra key could end up in a payload that strict consumers
(Snowplow's schemas have ``additionalProperties: false``) reject, and a typo
such as ``fullname`` should be caught here, not discovered in a CRM.

Decisions a platform should know about:

* **Visitor IP.** Snowplow's ``com.olark`` schemas declare ``ip`` as
  ``format: ipv4``: an ``"ip": ""`` makes a bad row there, while a payload
  without the key passes. So ``ip`` is written only when it is IPv4, and left
  out otherwise. Junk (``"not-an-ip"``) is refused with a 422 naming
  ``visitor.ip``: it is a bug in the caller. A well-formed IPv6 address is
  *not* refused, because a platform cannot choose its visitors' address family
  and refusing would lose the chat; the key is left out (an IPv4-mapped IPv6
  address such as ``::ffff:203.0.113.7`` is written as its IPv4 form).
* **``kind``.** Every object that has a ``kind`` on the wire (``Visitor``,
  ``Group``, ``Operator``) accepts it here, so a payload's pieces can be sent
  as they are; another value is refused.
* **Timestamps** are strings of epoch seconds (``"1473774819.263083"``), as
  Olark writes them; any other shape (a JSON number, ISO-8601) is refused.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from chathooks.conversations.ids import CONVERSATION_ID_PATTERN
from chathooks.wire import (
    ChatFeedback,
    Group,
    Operator,
    Visitor,
    VisitorDetails,
    ipv4_form,
    is_wire_timestamp,
)

__all__ = [
    "ChatFeedbackIn",
    "ConversationChanges",
    "GroupIn",
    "NewConversation",
    "NewMessage",
    "NewOfflineMessage",
    "OperatorIn",
    "VisitorChanges",
    "VisitorIn",
    "normalize_ip",
]

MAX_TEXT = 2048
MAX_BODY = 100_000
MAX_TAGS = 100
MAX_GROUPS = 50


def normalize_ip(value: str) -> str | None:
    """The visitor ``ip`` as strict consumers accept it: IPv4, or None to leave it out."""
    return ipv4_form(value)


def _check_timestamp(value: Any) -> Any:
    if value is None or is_wire_timestamp(value):
        return value
    raise ValueError(
        'must be a string of epoch seconds as Olark writes it, e.g. "1473774819.263083" '
        f"(got {value!r}); omit it to use the time the event arrives"
    )


class _Input(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        str_max_length=MAX_TEXT,
    )


class ChatFeedbackIn(_Input):
    """The visitor's rating: 1 (worst) to 5 (best) for each question, and a comment."""

    overall_chat: int | None = Field(default=None, alias="overall_chat", ge=1, le=5)
    responsiveness: int | None = Field(default=None, ge=1, le=5)
    friendliness: int | None = Field(default=None, ge=1, le=5)
    knowledge: int | None = Field(default=None, ge=1, le=5)
    comments: str | None = Field(default=None, max_length=MAX_BODY)

    def to_wire(self) -> ChatFeedback:
        return ChatFeedback.model_validate(self.model_dump(by_alias=True, exclude_unset=True))


class _VisitorFields(_Input, VisitorDetails):
    """The visitor details Olark sends (the wire's list); each may be missing."""

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        return None if value is None else normalize_ip(value)


class VisitorIn(_VisitorFields):
    """A visitor as a conversation or an offline message begins with it."""

    kind: Literal["Visitor"] = "Visitor"
    custom_fields: dict[str, Any] | None = None
    chat_feedback: ChatFeedbackIn | None = Field(default=None, alias="chat_feedback")

    def to_wire(self) -> Visitor:
        document = self.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)
        document["kind"] = "Visitor"
        return Visitor.model_validate(document)


class VisitorChanges(_VisitorFields):
    """Visitor details to change: each given key replaces the old value; ``null`` removes it.

    ``customFields`` and ``chat_feedback`` have their own top-level keys in a
    change, since they are merged and replaced differently.
    """

    kind: Literal["Visitor"] | None = None


class GroupIn(_Input):
    """An Olark group (department) the chat was routed to."""

    kind: Literal["Group"] = "Group"
    id: str = Field(min_length=1)
    name: str | None = None

    def to_wire(self) -> Group:
        document = self.model_dump(by_alias=True, exclude_none=True)
        document["kind"] = "Group"
        return Group.model_validate(document)


class OperatorIn(_Input):
    """The operator account that wrote a message."""

    kind: Literal["Operator"] = "Operator"
    id: str = Field(min_length=1, max_length=200)
    username: str | None = None
    nickname: str | None = None
    email_address: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # Olark's operator ids are digit strings; a platform may hold them as numbers.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def to_wire(self) -> Operator:
        document = self.model_dump(by_alias=True, exclude_none=True)
        document["kind"] = "Operator"
        return Operator.model_validate(document)


def _check_tags(tags: list[str] | None) -> list[str] | None:
    if tags is None:
        return None
    cleaned: list[str] = []
    for tag in tags:
        text = tag.strip()
        if not text:
            raise ValueError("tags must not be empty strings")
        if text not in cleaned:
            cleaned.append(text)
    return cleaned


class NewConversation(_Input):
    """``POST /conversations``: a chat begins with a visitor."""

    id: str | None = Field(default=None, max_length=128)
    visitor: VisitorIn
    groups: list[GroupIn] | None = Field(default=None, max_length=MAX_GROUPS)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str | None) -> str | None:
        if value is not None and not CONVERSATION_ID_PATTERN.match(value):
            raise ValueError(
                "a conversation id is 1-128 letters, digits, '_', '.' or '-', starting with "
                "a letter or digit (omit it to have an Olark-style id generated)"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return _check_tags(value)


class NewMessage(_Input):
    """``POST /conversations/{id}/messages``: a line of chat, or an operator command."""

    sender: Literal["visitor", "operator"] = Field(alias="from")
    body: str = Field(min_length=1, max_length=MAX_BODY)
    #: Checked even when omitted, so a missing operator is reported under its own name.
    operator: OperatorIn | None = Field(default=None, validate_default=True)
    nickname: str | None = None
    timestamp: str | None = None

    @field_validator("operator")
    @classmethod
    def _operator_matches_sender(
        cls, value: OperatorIn | None, info: ValidationInfo
    ) -> OperatorIn | None:
        sender = info.data.get("sender")
        if sender == "operator" and value is None:
            raise ValueError("an operator message needs 'operator' with at least its 'id'")
        if sender == "visitor" and value is not None:
            raise ValueError("'operator' is only for messages from an operator")
        return value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        return _check_timestamp(value)


class NewOfflineMessage(_Input):
    """``POST /offline-messages``: a message left while no operator was available.

    Olark puts the whole offline form in ``body``, flattened as
    ``"name: Paul\\nemail: paul@example.com\\nMessage: ..."``; send it the same way.
    """

    visitor: VisitorIn
    body: str = Field(min_length=1, max_length=MAX_BODY)
    groups: list[GroupIn] | None = Field(default=None, max_length=MAX_GROUPS)
    timestamp: str | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        return _check_timestamp(value)


class ConversationChanges(_Input):
    """``PATCH /conversations/{id}``: only the keys given change.

    ``tags`` and ``groups`` replace the lists; ``visitor`` replaces the given
    details; ``customFields`` merges key by key (``null`` removes a key);
    ``chat_feedback`` replaces the rating (``{}`` clears it).
    """

    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    visitor: VisitorChanges | None = None
    custom_fields: dict[str, Any] | None = None
    chat_feedback: ChatFeedbackIn | None = Field(default=None, alias="chat_feedback")
    groups: list[GroupIn] | None = Field(default=None, max_length=MAX_GROUPS)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return _check_tags(value)
