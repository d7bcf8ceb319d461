"""A declared route, answered by a plain handler where it can be: the hot routes' lean path.

FastAPI's routing, dependency solving, validation and response serialisation
are a large share of a small request's CPU. A route made with
:func:`lean_route` keeps its declaration (and so its OpenAPI operation, and
FastAPI's own handler), and also names a plain ``fast`` handler, which makes
the same checks and raises the same errors (answered by the app's handlers).

:class:`LeanRoutes` takes the router's place in the app: it recognises a
lean route's requests by method and path and offers them to ``fast`` at
once, without the router walking every route of every included router and
without FastAPI's per-request set-up. When ``fast`` answers None, or for any
other request, the router answers as usual (a lean route's request with the
body ``fast`` read handed on). It sits inside all the app's middleware (body
limits, the key gate, ``Idempotency-Key``) and inside its error handlers, so
those apply to both paths alike. Used by ``POST .../transcripts`` and
``POST .../messages``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from re import Pattern
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.convertors import Convertor
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from chathooks.idempotency.middleware import replaying

__all__ = ["FastHandler", "LeanRoutes", "lean_route"]

#: Answers a request itself, or None to leave it to FastAPI's handler.
FastHandler = Callable[[Request], Awaitable[Response | None]]


class _LeanRoute(APIRoute):
    """An :class:`APIRoute` that also has a :data:`FastHandler` (see :func:`lean_route`)."""

    handlers: ClassVar[tuple[FastHandler]]


def lean_route(fast: FastHandler) -> type[APIRoute]:
    """An :class:`APIRoute` class whose requests :class:`LeanRoutes` offers to ``fast`` first."""

    class LeanRoute(_LeanRoute):
        handlers = (fast,)

    return LeanRoute


@dataclass(frozen=True)
class _Entry:
    route: APIRoute
    fast: FastHandler
    methods: frozenset[str]
    path: Pattern[str]
    convertors: dict[str, Convertor[Any]]


class LeanRoutes:
    """An ASGI app in front of ``router``: the lean routes among ``routes`` answered directly."""

    def __init__(self, router: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self._router = router
        self._entries = [
            _Entry(
                route=route,
                fast=route.handlers[0],
                methods=frozenset(route.methods or ()),
                path=route.path_regex,
                convertors=route.param_convertors,
            )
            for route in routes
            if isinstance(route, _LeanRoute)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            for entry in self._entries:
                if method not in entry.methods:
                    continue
                match = entry.path.match(path)
                if match is not None:
                    await self._lean(entry, match.groupdict(), scope, receive, send)
                    return
        await self._router(scope, receive, send)

    async def _lean(
        self, entry: _Entry, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        # What the router would have put in the scope for this route.
        scope["path_params"] = {
            name: entry.convertors[name].convert(value) for name, value in params.items()
        }
        scope["route"] = entry.route
        scope["endpoint"] = entry.route.endpoint
        request = Request(scope, receive, send)
        response = await entry.fast(request)
        if response is not None:
            await response(scope, receive, send)
            return
        # FastAPI's own handler answers; ``fast`` may have read the body already.
        body = await request.body()
        await self._router(scope, replaying(body, receive), send)
