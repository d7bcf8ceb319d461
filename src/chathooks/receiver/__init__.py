"""Receiver toolkit for endpoint owners: accept Olark-style webhooks safely.

Framework-free: build one :class:`WebhookReceiver` at start-up and call
:meth:`WebhookReceiver.receive` with the raw body, the headers and the peer
address; it returns a :class:`ReceivedWebhook` or raises
:class:`WebhookRejected` carrying the HTTP status and JSON body to answer.
Thin adapters for Starlette/FastAPI, Flask and Django live in
``chathooks.receiver.adapters`` and are imported explicitly, so this package
never needs those frameworks installed.
"""

from chathooks.receiver.core import (
    ReceivedWebhook,
    WebhookReceiver,
    WebhookRejected,
    WebhookResponse,
    header_value,
    integration_url_response,
    parse_webhook,
    rejection_for,
)
from chathooks.receiver.dedupe import SeenIds
from chathooks.receiver.ipcheck import ForbiddenSource, SourceFilter, parse_address, parse_networks
from chathooks.signing import (
    MalformedSignatureHeader,
    MissingSignatureHeaders,
    SignatureError,
    SignatureMismatch,
    TimestampOutOfTolerance,
    Verifier,
)

__all__ = [
    "ForbiddenSource",
    "MalformedSignatureHeader",
    "MissingSignatureHeaders",
    "ReceivedWebhook",
    "SeenIds",
    "SignatureError",
    "SignatureMismatch",
    "SourceFilter",
    "TimestampOutOfTolerance",
    "Verifier",
    "WebhookReceiver",
    "WebhookRejected",
    "WebhookResponse",
    "header_value",
    "integration_url_response",
    "parse_address",
    "parse_networks",
    "parse_webhook",
    "rejection_for",
]
