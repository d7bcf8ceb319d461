"""Django adapter.

::

    receiver = WebhookReceiver(secrets=[...], allow_cidrs=[...])

    @webhook_view(receiver)           # csrf-exempt, POST only, rejections answered
    def olark(request, hook):
        ...
        return "https://crm.example.com/leads/42"   # -> {"integrationUrl": ...}

``receive_webhook(request, receiver)`` is the lower-level helper; it raises
:class:`WebhookRejected`, which :func:`error_response` turns into a response.
Django is a development extra of chathooks, so it is imported only when these
functions run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chathooks.receiver.core import (
    ReceivedWebhook,
    WebhookReceiver,
    WebhookRejected,
    WebhookResponse,
    rejection_for,
    reply_for,
)
from chathooks.wire import BodyTooLarge

__all__ = ["error_response", "receive_webhook", "to_response", "webhook_view"]

#: ``view(request, hook, *args, **kwargs)``; returns str, None, WebhookResponse or HttpResponse.
WebhookViewFunc = Callable[..., Any]


def receive_webhook(request: Any, receiver: WebhookReceiver) -> ReceivedWebhook:
    """Check and parse a Django ``HttpRequest``; raises :class:`WebhookRejected`."""
    from django.conf import settings
    from django.core.exceptions import RequestDataTooBig

    remote_addr = request.META.get("REMOTE_ADDR") or None
    headers = request.headers
    receiver.check_source(headers, remote_addr)
    declared = str(request.META.get("CONTENT_LENGTH") or "")
    if declared.isdigit():
        receiver.check_size(int(declared))
    try:
        if declared.isdigit():
            body: bytes = request.body
        else:
            # No Content-Length (chunked): read no more than one byte past the limit.
            body = request.read(receiver.max_body_bytes + 1)
            if len(body) > receiver.max_body_bytes:
                raise rejection_for(BodyTooLarge(len(body), receiver.max_body_bytes))
    except RequestDataTooBig as exc:
        limit = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        error = BodyTooLarge(int(declared) if declared.isdigit() else limit + 1, limit)
        error.message += "; raise DATA_UPLOAD_MAX_MEMORY_SIZE in the Django settings to allow it"
        raise rejection_for(error) from exc
    return receiver.receive(body, headers, remote_addr)


def to_response(reply: WebhookResponse) -> Any:
    from django.http import HttpResponse

    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type or None)


def error_response(exc: WebhookRejected) -> Any:
    """The status and ``{"error", "field", "message"}`` body for a rejection."""
    return to_response(exc.response())


def webhook_view(receiver: WebhookReceiver) -> Callable[[WebhookViewFunc], WebhookViewFunc]:
    """Decorate ``view(request, hook, ...)`` into a csrf-exempt, POST-only Django view.

    CSRF protection is for browsers holding a session; a webhook sender has
    none, and the signature (or allow-list) authenticates it instead. The view
    may return a string (answered as ``{"integrationUrl": ...}``), None (204),
    a :class:`WebhookResponse` or any ``HttpResponse``.
    """
    from django.http import HttpResponseNotAllowed
    from django.views.decorators.csrf import csrf_exempt

    def decorate(view: WebhookViewFunc) -> WebhookViewFunc:
        @functools.wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            try:
                hook = receive_webhook(request, receiver)
            except WebhookRejected as exc:
                return error_response(exc)
            result = view(request, hook, *args, **kwargs)
            reply = reply_for(result)
            return result if reply is None else to_response(reply)

        exempt: WebhookViewFunc = csrf_exempt(wrapper)
        return exempt

    return decorate
