"""The exact request of one delivery attempt: body bytes and complete headers.

Built apart from the HTTP client so the bytes that are signed are, provably,
the bytes that are sent, and so the worker can log or inspect a request
without a network. The body is Olark's wire form unless the endpoint asked for
raw JSON; metadata travels in headers only, because an extra top-level key in
the document breaks strict consumers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chathooks import __version__
from chathooks.signing import signature_headers
from chathooks.wire import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE
from chathooks.wire.quoting import form_quote_bytes

__all__ = [
    "FORMATS",
    "USER_AGENT",
    "OutgoingRequest",
    "build_request",
    "check_extra_headers",
    "logged_headers",
]

USER_AGENT = f"chathooks/{__version__}"
#: Body formats an endpoint can choose: Olark's form (default) or a raw JSON body.
FORMATS = ("form", "json")

# Headers an endpoint's extras may not set: they would misdescribe the body,
# break framing, or forge the signature metadata receivers trust.
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "transfer-encoding", "host", "connection"}
)
_RESERVED_PREFIX = "webhook-"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One POST, ready to send as is."""

    #: Sent as ``webhook-id``; the same on every retry so receivers can dedupe.
    delivery_id: str
    url: str
    body: bytes
    #: Complete headers: content-type, user-agent, webhook-*, endpoint extras.
    headers: dict[str, str]

    @property
    def content_type(self) -> str:
        return self.headers["Content-Type"]


def is_reserved_header(name: str) -> bool:
    """True for headers chathooks always sets itself (extras cannot replace them)."""
    lowered = name.lower()
    return lowered in _RESERVED_HEADERS or lowered.startswith(_RESERVED_PREFIX)


def check_extra_headers(headers: Mapping[str, str]) -> None:
    """Raise :class:`ValueError` naming the first extra header that cannot be used.

    For validating an endpoint's configuration when it is saved; at send time
    :func:`build_request` skips reserved names rather than failing a delivery.
    """
    for name, value in headers.items():
        _check_header_text(name, value)
        if is_reserved_header(name):
            raise ValueError(
                f"header {name!r} is set by chathooks itself and cannot be overridden "
                "(Content-Type, Content-Length, Host, Connection, Transfer-Encoding "
                "and webhook-* are reserved)"
            )


def _check_header_text(name: str, value: str) -> None:
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"header name {name!r} is not a valid HTTP header name")
    if _FORBIDDEN_IN_VALUE.search(value):
        raise ValueError(f"header {name!r} has a line break or NUL in its value")


def build_request(
    *,
    delivery_id: str,
    url: str,
    document_json: str,
    fmt: str = "form",
    secret: str | Sequence[str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
    timestamp: int | None = None,
) -> OutgoingRequest:
    """The request for one attempt of a delivery.

    ``fmt="form"`` gives Olark's body, ``data=`` + the URL-encoded JSON, with a
    Content-Type of exactly ``application/x-www-form-urlencoded`` (strict
    consumers compare the whole string); ``fmt="json"`` gives the JSON as UTF-8.
    With a ``secret`` the body is signed (Standard Webhooks ``webhook-signature``;
    several secrets, one signature each);
    ``webhook-id`` and ``webhook-timestamp`` are always sent. ``extra_headers``
    are added, except reserved names, which are skipped so a bad endpoint setting
    cannot forge the signature headers or misdescribe the body. Raises
    :class:`ValueError` for an unknown format, a bad delivery id or secret, or an
    extra header that cannot be sent at all (line breaks, invalid name).
    """
    if fmt == "form":
        body = b"data=" + form_quote_bytes(document_json)
        content_type = FORM_CONTENT_TYPE
    elif fmt == "json":
        body = document_json.encode("utf-8")
        content_type = JSON_CONTENT_TYPE
    else:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if not delivery_id or _FORBIDDEN_IN_VALUE.search(delivery_id):
        raise ValueError(f"delivery_id must be a non-empty single line; got {delivery_id!r}")

    headers = {"Content-Type": content_type, "User-Agent": USER_AGENT}
    if extra_headers:
        for name, value in extra_headers.items():
            _check_header_text(name, value)
            if is_reserved_header(name):
                continue
            if name.lower() == "user-agent":
                headers.pop("User-Agent", None)
            headers[name] = value
    headers.update(signature_headers(secret, delivery_id, body, timestamp))
    return OutgoingRequest(delivery_id=delivery_id, url=url, body=body, headers=headers)


#: Headers the attempt log keeps as sent: they carry nothing secret.
_LOGGED_AS_SENT = frozenset({"content-type", "user-agent", "webhook-id", "webhook-timestamp"})
MASK = "••••••"


def logged_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a request as the attempt log keeps them: secrets masked.

    The signature (derived from the endpoint's secret) and every header of the
    endpoint's own (often a receiver's token) keep their name only; what the
    sender itself sets is kept as sent, so a receiver's owner can compare.
    """
    return {
        name: value if name.lower() in _LOGGED_AS_SENT else MASK for name, value in headers.items()
    }
