"""What strict consumers of Olark payloads enforce, as one checkable list.

Snowplow's ``com.olark`` schemas (``additionalProperties: false``, string
timestamps, an IPv4 ``ip``) are the strictest consumer known; a payload that
passes here is accepted by every consumer the wire spec lists. The
conversation engine only builds payloads that pass, and tests hold it to that.
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
    if not isinstance(document.get("id"), str) or not document.get("id"):
        problems.append("id is missing or not a string")
    for index, item in enumerate(document.get("items") or []):
        timestamp = item.get("timestamp") if isinstance(item, dict) else None
        if not is_wire_timestamp(timestamp):
            problems.append(f"items.{index}.timestamp {timestamp!r} is not a string of seconds")
    visitor = document.get("visitor")
    if isinstance(visitor, dict) and "ip" in visitor and visitor["ip"] != "":
        try:
            ipaddress.IPv4Address(visitor["ip"])
        except (ValueError, TypeError):
            problems.append(f"visitor.ip {visitor['ip']!r} is neither IPv4 nor empty")
    operators = document.get("operators")
    if operators is not None and not isinstance(operators, dict):
        problems.append("operators is not an object")
    return problems
