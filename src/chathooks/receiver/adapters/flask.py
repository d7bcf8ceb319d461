"""Flask adapter.

::

    receiver = WebhookReceiver(secrets=[...], allow_cidrs=[...])

    @app.post("/olark")
    def olark():
        hook = receive_webhook(flask.request, receiver)  # aborts with 4xx JSON on rejection
        ...
        return integration_url_response(url)  # or use webhook_view()

Flask is a development extra of chathooks, so it is imported only when these
functions run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from chathooks.receiver.core import (
    ReceivedWebhook,
    WebhookReceiver,
    WebhookRejected,
    WebhookResponse,
    rejection_for,
    reply_for,
)
from chathooks.wire import BodyTooLarge

if TYPE_CHECKING:
    from flask import Request, Response

__all__ = ["error_response", "receive_webhook", "to_response", "webhook_view"]


def receive_webhook(request: Request, receiver: WebhookReceiver) -> ReceivedWebhook:
    """Check and parse ``request`` (normally ``flask.request``).

    A rejected request aborts the view with the rejection's status and JSON
    body (a werkzeug ``HTTPException`` whose ``__cause__`` is the
    :class:`WebhookRejected`), so no error handler needs registering.
    """
    from werkzeug.exceptions import RequestEntityTooLarge

    try:
        remote_addr = request.remote_addr
        headers = dict(request.headers.items())
        receiver.check_source(headers, remote_addr)
        if request.content_length is not None:
            receiver.check_size(request.content_length)
        # A body sent without a Content-Length (chunked) is bounded while it is read,
        # not after: werkzeug stops at the limit. cache=True keeps it readable for the view.
        limit = receiver.max_body_bytes
        request.max_content_length = limit
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge as exc:
            raise rejection_for(BodyTooLarge(limit + 1, limit)) from exc
        return receiver.receive(body, headers, remote_addr)
    except WebhookRejected as exc:
        _abort(exc)


def _abort(exc: WebhookRejected) -> NoReturn:
    from werkzeug.exceptions import HTTPException

    raise HTTPException(response=error_response(exc)) from exc


def to_response(reply: WebhookResponse) -> Response:
    from flask import Response

    return Response(reply.body, status=reply.status, content_type=reply.content_type or None)


def error_response(exc: WebhookRejected) -> Response:
    """The status and ``{"error", "field", "message"}`` body for a rejection."""
    return to_response(exc.response())


def webhook_view(
    receiver: WebhookReceiver,
) -> Callable[[Callable[..., object]], Callable[..., Response]]:
    """Decorate ``view(hook, **url_args)`` into a Flask view that receives the webhook first.

    The view returns a string (answered as ``{"integrationUrl": ...}``), None
    (204), a :class:`WebhookResponse` or a Flask ``Response``.
    """

    def decorate(view: Callable[..., object]) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapper(**url_args: Any) -> Response:
            from flask import Response, request

            result = view(receive_webhook(request, receiver), **url_args)
            reply = reply_for(result)
            if reply is not None:
                return to_response(reply)
            if isinstance(result, Response):
                return result
            raise TypeError(
                "a webhook view must return str, None, WebhookResponse or a Flask Response, "
                f"not {type(result).__name__}"
            )

        return wrapper

    return decorate
