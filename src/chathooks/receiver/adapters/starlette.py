"""Starlette and FastAPI adapter.

FastAPI::

    receiver = WebhookReceiver(secrets=[...], allow_cidrs=[...])
    app = FastAPI()
    install_error_handler(app)  # WebhookRejected -> its status + JSON body

    @app.post("/olark")
    async def olark(hook: ReceivedWebhook = Depends(webhook_dependency(receiver))):
        ...

Plain Starlette: ``Route("/olark", webhook_endpoint(receiver, handler), methods=["POST"])``,
which answers rejections itself.

Behind a proxy, configure ``trusted_proxies`` on the receiver and start uvicorn
with ``proxy_headers=False``; otherwise uvicorn rewrites the peer address from
``X-Forwarded-For`` itself before the allow-list sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from chathooks.receiver.core import (
    ReceivedWebhook,
    WebhookReceiver,
    WebhookRejected,
    WebhookResponse,
    reply_for,
)

__all__ = [
    "error_response",
    "install_error_handler",
    "receive_webhook",
    "to_response",
    "webhook_dependency",
    "webhook_endpoint",
]

#: What a handler returns: an integrationUrl, a ready response, or None (204).
HandlerResult = str | Response | WebhookResponse | None
Handler = Callable[[ReceivedWebhook], Awaitable[HandlerResult]]


async def receive_webhook(request: Request, receiver: WebhookReceiver) -> ReceivedWebhook:
    """Check and parse ``request``; raises :class:`WebhookRejected` to refuse it.

    The body is read in chunks and abandoned as soon as it passes
    ``max_body_bytes``, so an oversized POST is never held in memory whole.
    """
    remote_addr = request.client.host if request.client else None
    receiver.check_source(request.headers, remote_addr)
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        receiver.check_size(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        receiver.check_size(size)
        chunks.append(chunk)
    return receiver.receive(b"".join(chunks), request.headers, remote_addr)


def to_response(reply: WebhookResponse) -> Response:
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type or None)


def error_response(exc: WebhookRejected) -> Response:
    """The status and ``{"error", "field", "message"}`` body for a rejection."""
    return to_response(exc.response())


async def _handle_rejection(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, WebhookRejected):  # pragma: no cover - registered for it only
        raise exc
    return error_response(exc)


def install_error_handler(app: Starlette) -> None:
    """Make ``app`` answer any uncaught :class:`WebhookRejected` with its status and JSON."""
    app.add_exception_handler(WebhookRejected, _handle_rejection)


def webhook_dependency(
    receiver: WebhookReceiver,
) -> Callable[[Request], Awaitable[ReceivedWebhook]]:
    """A FastAPI dependency yielding the :class:`ReceivedWebhook`; pair with
    :func:`install_error_handler`, which turns its rejections into responses."""

    async def dependency(request: Request) -> ReceivedWebhook:
        return await receive_webhook(request, receiver)

    return dependency


def webhook_endpoint(
    receiver: WebhookReceiver, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint: receive, call ``handler``, answer; rejections answered here."""

    async def endpoint(request: Request) -> Response:
        try:
            received = await receive_webhook(request, receiver)
        except WebhookRejected as exc:
            return error_response(exc)
        return _result_response(await handler(received))

    return endpoint


def _result_response(result: HandlerResult) -> Response:
    if isinstance(result, Response):
        return result
    reply = reply_for(result)
    if reply is None:
        raise TypeError(
            "a webhook handler must return str, None, WebhookResponse or a Starlette Response, "
            f"not {type(result).__name__}"
        )
    return to_response(reply)
