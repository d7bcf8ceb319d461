"""The framework-free receiving pipeline: check, verify, parse, answer.

Adapters for web frameworks only move bytes and headers in and out; every
decision lives here so it behaves the same under every framework and can be
tested without one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from chathooks.errors import FieldError
from chathooks.receiver.dedupe import SeenIds
from chathooks.receiver.ipcheck import ForbiddenSource, SourceFilter
from chathooks.signing import DEFAULT_TOLERANCE_SECONDS, SignatureError, Verifier
from chathooks.wire import (
    DEFAULT_MAX_BODY_BYTES,
    JSON_CONTENT_TYPE,
    BodyTooLarge,
    Payload,
    WireError,
    decode_body,
    decode_document,
    validate_document,
)

__all__ = [
    "NO_CONTENT",
    "ReceivedWebhook",
    "WebhookReceiver",
    "WebhookRejected",
    "WebhookResponse",
    "header_value",
    "integration_url_response",
    "parse_webhook",
    "rejection_for",
    "reply_for",
]

#: A rejection reason: any of the typed errors the pipeline raises.
RejectionReason = WireError | SignatureError | ForbiddenSource


class WebhookResponse(NamedTuple):
    """An HTTP answer as plain data, for an adapter to hand to its framework."""

    status: int
    body: bytes
    content_type: str


def integration_url_response(url: str) -> WebhookResponse:
    """The 200 answer ``{"integrationUrl": url}`` that Olark shows to the operator.

    Olark displays the URL as a link to the operator who typed ``!lead`` (or
    ``!case``, ``!webhook``), so it must be absolute to be useful there.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(
            f"integrationUrl must be an absolute URL such as https://crm.example.com/leads/42, "
            f"got {url!r}; Olark shows it to the operator as a link"
        )
    body = json.dumps({"integrationUrl": url}).encode("utf-8")
    return WebhookResponse(200, body, JSON_CONTENT_TYPE)


#: The answer to a view that returns None: 204, no body, no content type ("").
NO_CONTENT = WebhookResponse(204, b"", "")


def reply_for(result: object) -> WebhookResponse | None:
    """The answer for what a webhook view returned, the same in every adapter.

    None is a 204, a string the ``{"integrationUrl": ...}`` Olark shows the
    operator, a :class:`WebhookResponse` itself; anything else gives None, for
    the adapter to pass on (its framework's own response) or refuse.
    """
    if result is None:
        return NO_CONTENT
    if isinstance(result, str):
        return integration_url_response(result)
    if isinstance(result, WebhookResponse):
        return result
    return None


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, found case-insensitively; repeated headers are joined with ``", "``.

    Works on plain dicts as well as framework header objects, whose ``items()``
    may yield a repeated header once per occurrence.
    """
    wanted = name.lower()
    values = [value for key, value in headers.items() if key.lower() == wanted]
    return ", ".join(values) if values else None


def parse_webhook(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    content_type: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Payload:
    """The typed payload of a request: the Olark form body (or a raw JSON body).

    ``content_type`` wins over the ``Content-Type`` in ``headers``. Raises a
    :class:`~chathooks.wire.WireError` subclass that says what is wrong.
    """
    kind = content_type if content_type is not None else _content_type(headers)
    return decode_body(body, kind, max_body_bytes=max_body_bytes)


def _content_type(headers: Mapping[str, str] | None) -> str | None:
    return header_value(headers, "content-type") if headers is not None else None


class WebhookRejected(FieldError):
    """A request the receiver refuses, with the HTTP status and JSON body to answer.

    ``reason`` is the typed error behind it (a :class:`~chathooks.wire.WireError`,
    :class:`~chathooks.signing.SignatureError` or :class:`ForbiddenSource`), for
    callers that want to branch on the cause.
    """

    def __init__(self, status: int, reason: RejectionReason) -> None:
        super().__init__(reason.message, field=reason.field)
        self.status_code = status
        self.reason = reason
        self.code = reason.code

    @property
    def status(self) -> int:
        """The HTTP status to answer with."""
        return self.status_code

    def response(self) -> WebhookResponse:
        body = json.dumps(self.to_dict()).encode("utf-8")
        return WebhookResponse(self.status, body, JSON_CONTENT_TYPE)


def rejection_for(error: RejectionReason) -> WebhookRejected:
    """The HTTP rejection for a typed error: 400/413/415 wire, 401 signature, 403 source."""
    return WebhookRejected(error.status_code, error)


@dataclass(frozen=True)
class ReceivedWebhook:
    """An accepted request: the typed payload and what came with it."""

    payload: Payload
    #: The ``webhook-id`` header (verified when secrets are configured), or None.
    webhook_id: str | None
    #: The decoded JSON object exactly as sent, unknown keys included.
    document: dict[str, Any] = field(repr=False)
    #: True when ``webhook-id`` was seen before: answer 2xx again, but skip the work.
    duplicate: bool = False


class WebhookReceiver:
    """Everything an endpoint checks, in one object built once at start-up.

    Checks run cheapest and least revealing first: source address (403), body
    size (413), signature (401), then the body itself (415/400), so nobody
    learns how bodies are parsed without a valid signature. Any of the checks
    can be left off by leaving its setting as None.
    """

    def __init__(
        self,
        *,
        secrets: str | Sequence[str] | None = None,
        allow_cidrs: Iterable[str] | None = None,
        trusted_proxies: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        seen_ids: SeenIds | None = None,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self.verifier = (
            Verifier(secrets, tolerance_seconds=tolerance_seconds) if secrets is not None else None
        )
        self.source_filter = (
            SourceFilter(allow_cidrs, trusted_proxies=trusted_proxies)
            if allow_cidrs is not None
            else None
        )
        self.max_body_bytes = max_body_bytes
        self.seen_ids = seen_ids

    def check_size(self, size: int) -> None:
        """Refuse a body (or a ``Content-Length``) over the limit before reading it all."""
        if size > self.max_body_bytes:
            raise rejection_for(BodyTooLarge(size, self.max_body_bytes))

    def check_source(self, headers: Mapping[str, str], remote_addr: str | None) -> None:
        """Refuse (403) a client outside the allow-list; a no-op when none is configured."""
        if self.source_filter is None:
            return
        try:
            self.source_filter.check(remote_addr, header_value(headers, "x-forwarded-for"))
        except ForbiddenSource as exc:
            raise rejection_for(exc) from exc

    def receive(
        self,
        body: bytes,
        headers: Mapping[str, str],
        remote_addr: str | None = None,
        *,
        now: float | None = None,
    ) -> ReceivedWebhook:
        """Check and parse one request; raises :class:`WebhookRejected` to refuse it.

        ``body`` must be the raw bytes as received (the signature covers them),
        ``remote_addr`` the TCP peer's address.
        """
        self.check_source(headers, remote_addr)
        self.check_size(len(body))
        webhook_id = self._verified_id(headers, body, now)
        try:
            document = decode_document(
                body, _content_type(headers), max_body_bytes=self.max_body_bytes
            )
            payload = validate_document(document)
        except WireError as exc:
            raise rejection_for(exc) from exc
        duplicate = False
        if webhook_id is not None and self.seen_ids is not None:
            duplicate = not self.seen_ids.check_and_add(webhook_id)
        return ReceivedWebhook(payload, webhook_id, document, duplicate)

    def forget(self, received: ReceivedWebhook) -> None:
        """Un-remember a delivery whose processing failed, so its retry is processed."""
        if self.seen_ids is not None and received.webhook_id is not None:
            self.seen_ids.discard(received.webhook_id)

    def _verified_id(
        self, headers: Mapping[str, str], body: bytes, now: float | None
    ) -> str | None:
        if self.verifier is None:
            return header_value(headers, "webhook-id") or None
        try:
            return self.verifier.verify(headers, body, now=now)
        except SignatureError as exc:
            raise rejection_for(exc) from exc
