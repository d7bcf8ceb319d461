"""The operator console's event stream, fed by a scripted list of deliveries."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from chathooks.conversations.events import OutcomeSignal, backstop_seconds, delivery_events
from chathooks.conversations.store import PostedDelivery
from chathooks.queue import Outcome

PENDING = PostedDelivery(
    action_id="act_1",
    trigger="command",
    command="lead",
    operator_id="42",
    version=3,
    posted_at=100.0,
    endpoint_id="ep_1",
    delivery_id="msg_1",
    status="pending",
    attempt_count=0,
    status_code=None,
    error=None,
    integration_url=None,
    updated_at=100.0,
)


class Script:
    """What each successive read of the deliveries returns; the last answer repeats."""

    def __init__(self, *answers: list[PostedDelivery]) -> None:
        self.answers = list(answers)
        self.reads = 0

    async def read(self) -> list[PostedDelivery]:
        self.reads += 1
        return self.answers[min(self.reads, len(self.answers)) - 1]


def events_in(chunks: list[str]) -> list[dict[str, object]]:
    found = []
    for chunk in chunks:
        if chunk.startswith(":"):
            continue
        fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines())
        found.append({"id": fields["id"], "event": fields["event"], **json.loads(fields["data"])})
    return found


async def collect(script: Script, reads: int, **options: object) -> list[str]:
    """Run the stream until ``script`` was read ``reads`` times, then hang up."""

    async def disconnected() -> bool:
        return script.reads >= reads

    return [
        chunk
        async for chunk in delivery_events(
            script.read,
            disconnected=disconnected,
            poll_seconds=0.001,
            **options,  # type: ignore[arg-type]
        )
    ]


async def test_each_outcome_is_reported_once_with_the_integration_url() -> None:
    retrying = replace(PENDING, status="retrying", attempt_count=1, status_code=503, updated_at=101)
    succeeded = replace(
        PENDING,
        status="succeeded",
        attempt_count=2,
        status_code=200,
        integration_url="https://crm.example/leads/1",
        updated_at=102.5,
    )
    script = Script([PENDING], [PENDING], [retrying], [retrying], [succeeded], [succeeded])
    chunks = await collect(script, reads=6)
    assert chunks[0] == ": connected\n\n"
    reported = events_in(chunks)
    assert [(e["status"], e["final"]) for e in reported] == [
        ("retrying", False),
        ("succeeded", True),
    ]
    assert reported[1]["integration_url"] == "https://crm.example/leads/1"
    assert reported[1]["event"] == "delivery"
    assert reported[1]["id"] == "102.500000"
    assert reported[1]["command"] == "lead"


async def test_a_reconnecting_client_only_gets_what_it_missed() -> None:
    old = replace(PENDING, status="succeeded", attempt_count=1, updated_at=101.0)
    new = replace(PENDING, delivery_id="msg_2", status="failed", attempt_count=7, updated_at=205.0)
    script = Script([old, new])
    reported = events_in(await collect(script, reads=2, since=150.0))
    assert [e["delivery_id"] for e in reported] == ["msg_2"]


async def test_a_quiet_stream_sends_keep_alive_comments() -> None:
    script = Script([PENDING])
    chunks = await collect(script, reads=5, keepalive_seconds=0.0)
    assert ": keep-alive\n\n" in chunks
    assert events_in(chunks) == []


async def test_the_stream_stops_when_the_client_has_gone() -> None:
    script = Script([PENDING])
    chunks = await collect(script, reads=1)
    assert chunks == [": connected\n\n"]


async def test_a_worker_outcome_wakes_the_stream_of_its_conversation_only() -> None:
    signal = OutcomeSignal()
    outcome = Outcome(
        delivery_seq=1,
        delivery_id="msg_1",
        site_id="site_1",
        endpoint_id="ep_1",
        conversation_id="chat-1",
        status="succeeded",
        attempt_count=1,
        round_attempts=1,
        next_attempt_at=None,
        attempt_outcome="succeeded",
        started_at=0.0,
    )
    with signal.watch("site_1", "chat-1") as mine, signal.watch("site_1", "chat-2") as other:
        await signal.notify([outcome])
        assert mine.is_set()
        assert not other.is_set()
    # Streams that ended leave nothing behind.
    await signal.notify([outcome])
    assert signal._waiters == {}


async def test_a_wake_up_cuts_the_poll_wait_short() -> None:
    wake = asyncio.Event()
    done = replace(PENDING, status="succeeded", attempt_count=1)
    script = Script([PENDING], [done])

    async def disconnected() -> bool:
        return script.reads >= 2

    stream = delivery_events(script.read, disconnected=disconnected, wake=wake, poll_seconds=60)
    assert await anext(stream) == ": connected\n\n"
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # polling every 60 s, nothing new yet
    wake.set()
    chunk = await asyncio.wait_for(waiting, 5)
    assert '"status":"succeeded"' in chunk


def test_streams_opened_together_do_not_read_on_the_same_beat() -> None:
    periods = [backstop_seconds(30.0) for _ in range(400)]

    assert all(15.0 <= period <= 45.0 for period in periods)
    # Spread over the range: no second of it holds more than a tenth of the streams.
    per_second = [sum(1 for p in periods if s <= p < s + 1) for s in range(15, 45)]
    assert max(per_second) < 40, per_second
