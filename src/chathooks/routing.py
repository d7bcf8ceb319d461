"""Which endpoints of a site get a payload: Olark's three checkboxes, as a pure function.

Olark's settings page has "Send all transcripts automatically", "Send offline
messages" and "Send all events"; each endpoint carries the same three switches
(``auto_send``, ``send_offline``, ``send_events``). A transcript an operator
asked for (``!lead``, ``!case``, ``!webhook``: ``manuallySubmitted`` is true)
goes to every enabled endpoint, since the operator wants it posted whatever
the automatic setting says. Kept free of I/O so the API and the conversation
engine route the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, TypeVar

from chathooks.wire import Event, OfflineMessageTranscript, Payload

__all__ = [
    "PayloadKind",
    "RoutingSwitches",
    "payload_kind",
    "select_endpoints",
    "takes_deliveries",
]

#: The ``payload_kind`` stored on a delivery.
PayloadKind = Literal["transcript", "offline_message", "event"]


class RoutingSwitches(Protocol):
    """What routing reads of an endpoint (a table row or any object with these attributes)."""

    @property
    def enabled(self) -> bool: ...

    @property
    def auto_send(self) -> bool: ...

    @property
    def send_offline(self) -> bool: ...

    @property
    def send_events(self) -> bool: ...


EndpointT = TypeVar("EndpointT", bound=RoutingSwitches)


def payload_kind(payload: Payload) -> PayloadKind:
    """The kind of ``payload`` as deliveries record it."""
    if isinstance(payload, Event):
        return "event"
    if isinstance(payload, OfflineMessageTranscript):
        return "offline_message"
    return "transcript"


def select_endpoints(payload: Payload, endpoints: Iterable[EndpointT]) -> list[EndpointT]:
    """The endpoints that should receive ``payload``, in the order given."""
    kind = payload_kind(payload)
    manual = bool(payload.manually_submitted)
    return [
        endpoint
        for endpoint in endpoints
        if takes_deliveries(endpoint) and _wants(endpoint, kind, manually_submitted=manual)
    ]


def takes_deliveries(endpoint: RoutingSwitches) -> bool:
    """Whether new payloads are queued for ``endpoint``.

    An enabled one, and one chathooks switched off itself (it answered 410
    Gone, or failed for too long; its ``disabled_reason`` says so): nothing
    meant for it is lost, its deliveries are held until it is enabled again.
    One switched off by hand gets nothing, as its owner asked.
    """
    return endpoint.enabled or getattr(endpoint, "disabled_reason", None) is not None


def _wants(endpoint: RoutingSwitches, kind: PayloadKind, *, manually_submitted: bool) -> bool:
    if kind == "event":
        return endpoint.send_events
    if kind == "offline_message":
        return endpoint.send_offline
    return endpoint.auto_send or manually_submitted
