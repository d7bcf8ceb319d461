"""The webhook sink: a minimal aiohttp receiver, run in its own process.

It answers every POST with ``200`` and an ``integrationUrl`` (what a real
Olark receiver does) and notes when each transcript ``id`` arrived. It runs
as a separate process so that receiving never competes for the event loop
of whatever is being measured. The benchmark reads its notes over loopback:

* ``GET /stats`` → ``{"requests", "distinct", "unreadable", "first_at", "last_at"}``
* ``GET /arrivals`` → ``{"<id>": <epoch seconds of first arrival>, ...}``
* ``POST /reset`` → forget the arrivals (between benchmark phases)
* ``POST /hang`` → a hanging endpoint: the request is held until ``POST /release`` (or
  :data:`HANG_SECONDS`), far past any sender's timeout; held requests are counted in
  ``stats`` as ``held`` and are not arrivals
* ``POST /release`` → let go of every held request and zero ``held``

Run ``python -m bench.sink --port 0``: it prints ``listening <port>`` once it accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field

from aiohttp import web
from yarl import URL

from bench.loop import run

WEBHOOK_PATH = "/webhook"
HANG_PATH = "/hang"
#: Longest a request to :data:`HANG_PATH` is held when no reset comes.
HANG_SECONDS = 300.0
READY_PREFIX = "listening "
_QUERY_BASE = "http://sink/?"
_INTEGRATION_REPLY = json.dumps({"integrationUrl": "https://crm.example/leads/bench"})


@dataclass
class Arrivals:
    """What reached the sink since the last reset."""

    requests: int = 0
    unreadable: int = 0
    first_at: float | None = None
    last_at: float | None = None
    by_id: dict[str, float] = field(default_factory=dict)

    def note(self, transcript_id: str | None, at: float) -> None:
        self.requests += 1
        if self.first_at is None:
            self.first_at = at
        self.last_at = at
        if transcript_id is None:
            self.unreadable += 1
        elif transcript_id not in self.by_id:
            self.by_id[transcript_id] = at

    def stats(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "distinct": len(self.by_id),
            "unreadable": self.unreadable,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


def transcript_id(body: bytes) -> str | None:
    """The top-level ``id`` of a form (``data=...``) or raw JSON body, or None.

    The form is decoded with yarl's C unquoter: ``urllib.parse.unquote_plus``
    costs ~0.3 ms per 7 KB body, which made the sink the bottleneck of (a).
    """
    try:
        text = body.decode("utf-8")
        if not text.lstrip().startswith("{"):
            text = URL(_QUERY_BASE + text, encoded=True).query["data"]
        value = json.loads(text).get("id")
    except (UnicodeDecodeError, ValueError, KeyError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def make_app() -> web.Application:
    """The sink's routes; each app keeps its own :class:`Arrivals`."""
    current = [Arrivals()]
    #: Set to let held requests go; ``held[0]`` counts requests held since the last release.
    release = [asyncio.Event()]
    held = [0]

    async def hang(request: web.Request) -> web.Response:
        held[0] += 1
        with suppress(TimeoutError):
            await asyncio.wait_for(release[0].wait(), timeout=HANG_SECONDS)
        return web.Response(text=_INTEGRATION_REPLY, content_type="application/json")

    async def let_go(_request: web.Request) -> web.Response:
        release[0].set()
        release[0] = asyncio.Event()
        held[0] = 0
        return web.json_response({"held": 0})

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        current[0].note(transcript_id(body), time.time())
        return web.Response(text=_INTEGRATION_REPLY, content_type="application/json")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({**current[0].stats(), "held": held[0]})

    async def listing(_request: web.Request) -> web.Response:
        return web.json_response(current[0].by_id)

    async def reset(_request: web.Request) -> web.Response:
        current[0] = Arrivals()
        return web.json_response(current[0].stats())

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post(WEBHOOK_PATH, webhook)
    app.router.add_post(HANG_PATH, hang)
    app.router.add_post("/release", let_go)
    app.router.add_get("/stats", stats)
    app.router.add_get("/arrivals", listing)
    app.router.add_post("/reset", reset)
    return app


async def serve(host: str, port: int) -> None:
    """Serve until cancelled, printing the bound port once ready."""
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"{READY_PREFIX}{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("::1", "localhost"):
        parser.error("the sink listens on loopback only (127.0.0.0/8 or ::1)")
    with suppress(KeyboardInterrupt):
        run(serve(args.host, args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
