"""What Olark's **Send test** button does, for an endpoint owner's own server.

POST the fixed test transcript (or a payload from a file) in Olark's exact
wire form and report what came back: status, time taken, the response body,
and the ``integrationUrl`` Olark would show to the operator. Every way the
POST can fail (refused, timeout, DNS, TLS, a non-2xx answer) is a
:class:`SendTestResult` with a reason a person can act on, not a traceback.

This is a person testing their own server, so unlike the sender service there
is no destination guard: ``localhost`` and private addresses are the point.

It is part of the receiver toolkit, so it runs on the standard library alone
(``http.client``): an endpoint owner with ``pip install chathooks`` and no
server extra can still press Send test from a terminal.
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chathooks import __version__
from chathooks.signing import signature_headers
from chathooks.urls import check_url
from chathooks.wire import FORM_CONTENT_TYPE, encode_form, integration_url_of, send_test_transcript

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_RESPONSE_BYTES",
    "OutgoingPost",
    "PayloadFileError",
    "SendTestResult",
    "load_payload_file",
    "send_test",
    "test_transcript_post",
]

DEFAULT_TIMEOUT_SECONDS = 15.0
#: How much of a response body is read and shown.
MAX_RESPONSE_BYTES = 64 * 1024


class PayloadFileError(ValueError):
    """A ``--file`` that cannot be sent: unreadable, or not JSON nor a form body."""


@dataclass(frozen=True)
class OutgoingPost:
    """The exact bytes and content type to POST."""

    body: bytes
    content_type: str = FORM_CONTENT_TYPE


@dataclass(frozen=True)
class SendTestResult:
    """What happened to one test POST."""

    url: str
    ok: bool
    elapsed_seconds: float
    status: int | None = None
    response_body: str = ""
    response_content_type: str | None = None
    integration_url: str | None = None
    #: ``refused``, ``timeout``, ``dns``, ``tls``, ``connection`` or ``http_status``; None if ok.
    error: str | None = None
    #: A sentence saying what went wrong; None if ok.
    reason: str | None = None
    webhook_id: str | None = None

    @property
    def status_text(self) -> str:
        if self.status is None:
            return "no response"
        try:
            return f"{self.status} {HTTPStatus(self.status).phrase}"
        except ValueError:
            return str(self.status)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "status": self.status,
            "elapsed_ms": round(self.elapsed_seconds * 1000, 1),
            "response": {"content_type": self.response_content_type, "body": self.response_body},
            "integrationUrl": self.integration_url,
            "error": self.error,
            "reason": self.reason,
            "webhook_id": self.webhook_id,
        }


def test_transcript_post() -> OutgoingPost:
    """Olark's test transcript, form-encoded exactly as Olark sends it."""
    return OutgoingPost(encode_form(send_test_transcript()))


def load_payload_file(path: Path) -> OutgoingPost:
    """The POST for a payload file.

    A ``.json`` file is a decoded ``data`` value and is form-encoded like
    Olark's; a ``.body.txt`` file is an exact wire body and goes out byte for
    byte (so deliberately broken bodies can be tested too). Other names are
    read by their first character: ``{`` is JSON, anything else a form body.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PayloadFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    is_json = path.name.endswith(".json") or (
        not path.name.endswith(".body.txt") and raw.lstrip().startswith(b"{")
    )
    if not is_json:
        return OutgoingPost(raw)
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadFileError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise PayloadFileError(
            f"{path} must hold one JSON object (an Olark payload), found {type(document).__name__}"
        )
    return OutgoingPost(encode_form(document))


def send_test(
    url: str,
    post: OutgoingPost,
    *,
    secret: str | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> SendTestResult:
    """POST ``post`` to ``url`` once (no retries, no redirects) and describe the outcome.

    With ``secret``, Standard Webhooks headers (``webhook-id``,
    ``webhook-timestamp``, ``webhook-signature``) are added over the exact body.
    ``timeout_seconds`` bounds the connection and each wait for the answer.
    """
    headers = {
        "Content-Type": post.content_type,
        "User-Agent": f"chathooks/{__version__} send-test",
    }
    webhook_id = None
    if secret is not None:
        webhook_id = "msg_test_" + secrets.token_hex(12)
        headers.update(signature_headers(secret, webhook_id, post.body))
    started = time.perf_counter()

    def failed(error: str, reason: str) -> SendTestResult:
        elapsed = time.perf_counter() - started
        return SendTestResult(
            url, False, elapsed, error=error, reason=reason, webhook_id=webhook_id
        )

    parts = urlsplit(check_url(url))
    host = parts.netloc
    connection_type = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_type(parts.hostname or "", parts.port, timeout=timeout_seconds)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=post.body, headers=headers)
        response = connection.getresponse()
        raw = response.read(MAX_RESPONSE_BYTES)
        elapsed = time.perf_counter() - started
        text = raw.decode(response.headers.get_content_charset() or "utf-8", errors="replace")
        status = response.status
        content_type = response.headers.get("Content-Type")
    except TimeoutError:
        return failed("timeout", f"no answer from {host} within {timeout_seconds:g} seconds")
    except socket.gaierror:
        return failed("dns", f"the host name {parts.hostname!r} could not be resolved (DNS)")
    except ssl.SSLError as exc:
        return failed("tls", f"the TLS handshake with {host} failed: {exc}")
    except ConnectionRefusedError:
        return failed(
            "refused",
            f"connection refused by {host}: is the server running and listening there?",
        )
    except (OSError, http.client.HTTPException) as exc:
        return failed("connection", f"the request to {host} failed: {exc or type(exc).__name__}")
    finally:
        connection.close()

    integration_url = integration_url_of(text)
    ok = 200 <= status < 300
    result = SendTestResult(
        url,
        ok,
        elapsed,
        status=status,
        response_body=text,
        response_content_type=content_type,
        integration_url=integration_url,
        webhook_id=webhook_id,
    )
    if ok:
        return result
    return replace(
        result,
        error="http_status",
        reason=f"the endpoint answered {result.status_text}; Olark would retry a non-2xx "
        "answer a few times, then give up",
    )
