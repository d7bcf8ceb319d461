"""The chat platform's side of the conversations API: whole chats, many at once.

Each chat is what a live-chat service reports as it happens: the visitor
arrives (``POST .../conversations``), twenty lines alternate between visitor
and operator (``POST .../messages``), the operator types ``!lead`` halfway
(the transcript so far is posted), and the chat closes (the full transcript
is posted again, since it went on after the command): 23 API calls and 2
deliveries per chat. The lines come from the same pool as the transcripts of
the throughput phases, seeded, so two runs make the same calls.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.payloads import conversation_id

LINES_PER_CHAT = 20
#: After this many lines the operator types ``!lead``; the chat then goes on.
LEAD_AFTER = LINES_PER_CHAT // 2
CALLS_PER_CHAT = 1 + LINES_PER_CHAT + 1 + 1
DELIVERIES_PER_CHAT = 2

_OPERATOR = {"id": "647563", "username": "maria", "nickname": "Maria"}
_VISITOR_LINES = [
    "Hi, I have a question about your pricing for teams.",
    "We are about forty people, mostly support agents across two time zones.",
    "Does the annual plan include the reporting add-on, or is that billed separately?",
    "Can I export transcripts to our CRM automatically when a chat ends?",
    "ok",
    "Thanks!",
]
_OPERATOR_LINES = [
    "Hello! Happy to help. How large is your team?",
    "Great, the Team plan fits that size; it includes unlimited transcripts & routing.",
    "Yes: add a webhook under Settings > Integrations and every transcript is posted there.",
    "One moment please.",
    "Anything else I can help with?",
]


def chat_line(rng: random.Random, number: int) -> dict[str, Any]:
    """The body of line ``number`` of a chat: visitor and operator take turns."""
    if number % 2 == 0:
        return {"from": "visitor", "body": rng.choice(_VISITOR_LINES)}
    return {"from": "operator", "body": rng.choice(_OPERATOR_LINES), "operator": _OPERATOR}


def visitor(index: int, rng: random.Random) -> dict[str, Any]:
    """The visitor of chat ``index``."""
    return {
        "id": f"v{index:031d}",
        "fullName": "Ana Garcia",
        "emailAddress": "ana.garcia@example.org",
        "city": "Toronto",
        "country": "Canada",
        "countryCode": "CA",
        "ip": f"203.0.113.{rng.randint(1, 254)}",
    }


@dataclass
class ChatRun:
    """What the driver did and what the API answered."""

    chats: int = 0
    calls: int = 0
    #: Deliveries the API said it queued (start events, commands, completions).
    deliveries: int = 0
    failed: int = 0
    first_error: str | None = None
    elapsed: float = 0.0
    ids: list[str] = field(default_factory=list)

    @property
    def calls_rate(self) -> float:
        return self.calls / self.elapsed if self.elapsed > 0 else 0.0


class _Failed(Exception):
    pass


async def run_chats(
    base_url: str, site_id: str, api_key: str, *, chats: int, concurrency: int, prefix: str
) -> ChatRun:
    """``chats`` whole chats, ``concurrency`` of them in progress at any moment."""
    run = ChatRun()
    prefix_url = f"{base_url}/api/v1/sites/{site_id}/conversations"
    headers = {"Authorization": f"Bearer {api_key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    next_index = 0

    async def call(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
        async with session.post(url, json=body) as response:
            run.calls += 1
            if response.status >= 300:
                text = await response.text()
                raise _Failed(f"POST {url}: HTTP {response.status}: {text[:300]}")
            return await response.json()

    async def chat(session: aiohttp.ClientSession, index: int) -> None:
        rng = random.Random(f"chat:{prefix}:{index}")
        chat_id = conversation_id(prefix, index)
        created = await call(
            session,
            prefix_url,
            {"id": chat_id, "visitor": visitor(index, rng)},
        )
        run.deliveries += len(created.get("deliveries", []))
        messages = f"{prefix_url}/{chat_id}/messages"
        for number in range(LINES_PER_CHAT):
            if number == LEAD_AFTER:
                lead: dict[str, Any] = {"from": "operator", "body": "!lead", "operator": _OPERATOR}
                result = await call(session, messages, lead)
                run.deliveries += sum(
                    1 for d in result.get("deliveries", []) if not d.get("reused")
                )
            await call(session, messages, chat_line(rng, number))
        closed = await call(session, f"{prefix_url}/{chat_id}/close", {})
        run.deliveries += len(closed.get("deliveries", []))
        run.chats += 1
        run.ids.append(chat_id)

    async def driver(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < chats:
            index = next_index
            next_index += 1
            try:
                await chat(session, index)
            except (_Failed, aiohttp.ClientError, TimeoutError) as exc:
                run.failed += 1
                if run.first_error is None:
                    run.first_error = str(exc) or type(exc).__name__

    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, chats)):
                group.create_task(driver(session))
        run.elapsed = time.perf_counter() - started
    return run
