"""A declared route, answered by a plain handler where it can be: the hot routes' lean path.

FastAPI's dependency solving, validation and response serialisation are a
large share of a small request's CPU. A route made with :func:`lean_route`
keeps its declaration (and so its OpenAPI operation, and FastAPI's own
handler) but first offers the request to a plain ``fast`` handler, which
makes the same checks and raises the same errors (answered by the app's
handlers); when ``fast`` answers None, FastAPI's handler answers instead.
Used by ``POST .../transcripts`` and ``POST .../messages``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

__all__ = ["FastHandler", "lean_route"]

#: Answers a request itself, or None to leave it to FastAPI's handler.
FastHandler = Callable[[Request], Awaitable[Response | None]]


def lean_route(fast: FastHandler) -> type[APIRoute]:
    """An :class:`APIRoute` class whose requests go to ``fast`` first."""

    class LeanRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            full = super().get_route_handler()

            async def handle(request: Request) -> Response:
                answer = await fast(request)
                return answer if answer is not None else await full(request)

            return handle

    return LeanRoute
