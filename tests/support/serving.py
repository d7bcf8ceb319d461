"""A test server's event loop in a thread of its own: started, serving, stopped.

The recording receiver, the faulty receiver and the TCP proxy all run this
way, so a synchronous test can use them while the service under test runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from aiohttp import web

__all__ = ["ServingThread", "start_aiohttp"]

State = TypeVar("State")


class ServingThread(Generic[State]):
    """``start()`` runs in a new loop in a daemon thread, which then serves until :meth:`stop`.

    ``finish(state)`` runs in the loop once it has stopped; ``state`` is what
    ``start()`` returned (a runner, a server...).
    """

    def __init__(
        self,
        name: str,
        start: Callable[[], Awaitable[State]],
        finish: Callable[[State], Awaitable[None]],
    ) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._start = start
        self._finish = finish
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._failed: BaseException | None = None
        self._state: State | None = None

    def run(self) -> State:
        """Start the thread; returns ``start()``'s result once the server is up."""
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"the {self.name} did not start")
        if self._failed is not None:
            raise self._failed
        assert self._state is not None
        return self._state

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            state = self.loop.run_until_complete(self._start())
        except BaseException as exc:
            self._failed = exc
            self._started.set()
            self.loop.close()
            return
        self._state = state
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._finish(state))
        self.loop.close()


async def start_aiohttp(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, int]:
    """An aiohttp app answering every method and path with ``handler``, on a free loopback port."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port: int = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, port
