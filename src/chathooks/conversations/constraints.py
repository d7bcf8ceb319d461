"""What strict consumers of Olark payloads enforce, as one checkable list.

Snowplow's Olark adapter and its ``com.olark`` schemas (``transcript`` and
``offline_message``, ``additionalProperties: false``, string timestamps, an
IPv4 ``ip``, 64-character nicknames) are the strictest consumer known; a
payload that passes here is accepted by every consumer the wire spec lists.
The conversation engine only builds payloads that pass, and tests hold it to
that.

Only the schemas' rules that real Olark payloads also satisfy are encoded: the
offline schema's 64-character ``body`` and the ``format: email`` of an empty
``emailAddress`` are broken by Olark itself, so holding chathooks to them would
make it less compatible, not more.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from chathooks.wire import FORM_CONTENT_TYPE, is_wire_timestamp

__all__ = ["TOP_LEVEL_KEYS", "consumer_problems"]

#: Every top-level key Olark ever sends; anything else breaks strict consumers.
TOP_LEVEL_KEYS = frozenset(
    {"kind", "id", "tags", "items", "visitor", "operators", "groups", "manuallySubmitted"}
)
_EVENT_KEYS = TOP_LEVEL_KEYS | {"eventType"}


#: Keys of an item object, as Snowplow's transcript schema lists them (after it
#: turns ``visitor_nickname`` into ``visitorNickname``).
_ITEM_KEYS = frozenset({"kind", "body", "timestamp", "operatorId", "nickname", "visitor_nickname"})
_OFFLINE_ITEM_KEYS = frozenset({"kind", "body", "timestamp"})
_GROUP_KEYS = frozenset({"kind", "id", "name"})
_OPERATOR_KEYS = frozenset({"kind", "id", "username", "nickname", "emailAddress"})
_FEEDBACK_KEYS = frozenset(
    {"overall_chat", "responsiveness", "friendliness", "knowledge", "comments"}
)
#: The longest string each schema allows, per key.
_ITEM_LIMITS = {"kind": 64, "operatorId": 64, "nickname": 64, "visitor_nickname": 64}
_GROUP_LIMITS = {"kind": 64, "id": 128, "name": 128}
_OPERATOR_LIMITS = {"kind": 64, "id": 128, "username": 128, "nickname": 64, "emailAddress": 256}
_VISITOR_LIMITS = {
    "kind": 64,
    "id": 64,
    "fullName": 256,
    "emailAddress": 256,
    "phoneNumber": 64,
    "city": 128,
    "region": 8,
    "country": 128,
    "countryCode": 8,
    "organization": 128,
    "browser": 128,
    "operatingSystem": 128,
    "conversationBeginPage": 8192,
}


def consumer_problems(document: dict[str, Any], content_type: str | None = None) -> list[str]:
    """Why a strict consumer would reject ``document`` (empty when it would accept it).

    ``content_type``, when given, is the request's Content-Type header, which
    must be exactly Olark's (no ``; charset=`` suffix).
    """
    problems: list[str] = []
    if content_type is not None and content_type != FORM_CONTENT_TYPE:
        problems.append(f"content type {content_type!r} is not exactly {FORM_CONTENT_TYPE!r}")
    allowed = _EVENT_KEYS if "eventType" in document else TOP_LEVEL_KEYS
    extra = sorted(set(document) - allowed)
    if extra:
        problems.append(f"unexpected top-level keys: {', '.join(extra)}")
    if document.get("kind") != "Conversation":
        problems.append(f"kind is {document.get('kind')!r}, not 'Conversation'")
    # Snowplow tells an offline message by its missing ``operators``; its schema is stricter.
    offline = "operators" not in document
    identifier = document.get("id")
    if not isinstance(identifier, str) or not identifier:
        problems.append("id is missing or not a string")
    elif len(identifier) > (64 if offline else 128):
        problems.append(f"id is longer than {64 if offline else 128} characters")
    tags = document.get("tags")
    if tags is not None and not (
        isinstance(tags, list) and all(isinstance(t, str) and len(t) <= 128 for t in tags)
    ):
        problems.append("tags is not a list of strings of at most 128 characters")
    for index, item in enumerate(document.get("items") or []):
        if not isinstance(item, dict):
            problems.append(f"items.{index} is not an object")
            continue
        if not is_wire_timestamp(item.get("timestamp")):
            problems.append(
                f"items.{index}.timestamp {item.get('timestamp')!r} is not a string of seconds"
            )
        keys = _OFFLINE_ITEM_KEYS if offline else _ITEM_KEYS
        problems += _object_problems(f"items.{index}", item, keys, _ITEM_LIMITS)
    visitor = document.get("visitor")
    if visitor is not None:
        problems += _visitor_problems(visitor)
    for index, group in enumerate(document.get("groups") or []):
        problems += _object_problems(f"groups.{index}", group, _GROUP_KEYS, _GROUP_LIMITS)
    operators = document.get("operators")
    if operators is not None and not isinstance(operators, dict):
        problems.append("operators is not an object")
    elif operators:
        for key, operator in operators.items():
            problems += _object_problems(
                f"operators.{key}", operator, _OPERATOR_KEYS, _OPERATOR_LIMITS
            )
    if "manuallySubmitted" in document and not isinstance(document["manuallySubmitted"], bool):
        problems.append("manuallySubmitted is not a boolean")
    return problems


def _visitor_problems(visitor: Any) -> list[str]:
    if not isinstance(visitor, dict):
        return ["visitor is not an object"]
    # The visitor allows extra keys (customFields, referrer...); the known ones are limited.
    problems = _object_problems("visitor", visitor, frozenset(visitor), _VISITOR_LIMITS)
    if "ip" in visitor:
        try:
            ipaddress.IPv4Address(visitor["ip"])
        except (ValueError, TypeError):
            problems.append(f"visitor.ip {visitor['ip']!r} is not an IPv4 address")
    feedback = visitor.get("chat_feedback")
    if feedback is not None:
        if not isinstance(feedback, dict):
            return [*problems, "visitor.chat_feedback is not an object"]
        extra = sorted(set(feedback) - _FEEDBACK_KEYS)
        if extra:
            problems.append(f"visitor.chat_feedback has unexpected keys: {', '.join(extra)}")
        for key in _FEEDBACK_KEYS - {"comments"}:
            value = feedback.get(key)
            if key in feedback and not (
                isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 32767
            ):
                problems.append(f"visitor.chat_feedback.{key} {value!r} is not a small integer")
    return problems


def _object_problems(
    where: str, value: Any, keys: frozenset[str], limits: dict[str, int]
) -> list[str]:
    """Unknown keys, and strings over their schema's ``maxLength``, of one object."""
    if not isinstance(value, dict):
        return [f"{where} is not an object"]
    problems = []
    extra = sorted(set(value) - keys)
    if extra:
        problems.append(f"{where} has unexpected keys: {', '.join(extra)}")
    for key, limit in limits.items():
        text = value.get(key)
        if key not in value:
            continue
        if not isinstance(text, str):
            problems.append(f"{where}.{key} is not a string")
        elif len(text) > limit:
            problems.append(f"{where}.{key} is longer than {limit} characters ({len(text)})")
    return problems
