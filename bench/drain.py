"""Timing the drain of a filled queue at the sink, and what it cost in CPU.

Shared by every throughput phase — chathooks and its peers alike — so the
figures are computed the same way for all: deliveries/s from the first
arrival to the last, CPU from the first arrival on (start-up is not charged),
the delivering processes apart from their broker or database.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.meters import CpuMeter, read_all, spent_all
from bench.processes import Child
from bench.results import Throughput
from bench.sink_control import Sink, SinkStats

#: Give up on a drain when no new transcript arrived for this long.
STALL_SECONDS = 60.0


class DrainIncomplete(RuntimeError):
    """Not every transcript arrived; the message says how many did."""


async def measure_drain(
    sink: Sink,
    expected: int,
    started: float,
    *,
    delivering: Sequence[CpuMeter],
    broker: Sequence[CpuMeter] = (),
    watch: tuple[Child, ...] = (),
    allow_missing: bool = False,
    stall_seconds: float = STALL_SECONDS,
    requests: bool = False,
) -> Throughput:
    """Wait until the sink has ``expected`` distinct transcripts (or stalls); the figures.

    With ``allow_missing`` a stalled drain is reported with its ``missing``
    count instead of raising: a peer that loses work is shown losing it. With
    ``requests`` every POST counts (several deliveries of one conversation).
    """
    first = await sink.wait_for(1, timeout=stall_seconds, watch=watch)
    cpu_before, broker_before = await read_all(delivering), await read_all(broker)
    sink_before = sink.cpu_seconds()
    stats = await sink.wait_for(expected, timeout=stall_seconds, watch=watch, requests=requests)
    cpu_after, broker_after = await read_all(delivering), await read_all(broker)
    sink_after = sink.cpu_seconds()
    arrived = stats.requests if requests else stats.distinct
    if arrived < expected and not allow_missing:
        raise DrainIncomplete(
            f"only {arrived} of {expected} deliveries arrived; nothing new for "
            f"{stall_seconds:.0f} s"
        )
    counted = arrived - (first.requests if requests else first.distinct)
    return throughput_from(
        expected,
        stats,
        started,
        cpu_ms=_per_item(spent_all(cpu_before, cpu_after), counted) if delivering else None,
        sink_cpu_ms=(
            None
            if sink_before is None or sink_after is None
            else _per_item(sink_after - sink_before, counted)
        ),
        broker_cpu_ms=_per_item(spent_all(broker_before, broker_after), counted)
        if broker
        else None,
        requests=requests,
    )


def throughput_from(
    expected: int,
    stats: SinkStats,
    started: float,
    *,
    cpu_ms: float | None,
    sink_cpu_ms: float | None,
    broker_cpu_ms: float | None = None,
    requests: bool = False,
) -> Throughput:
    first, last = stats.first_at or started, stats.last_at or started
    delivered = stats.requests - stats.unreadable if requests else stats.distinct
    duplicates = (
        max(0, delivered - expected)
        if requests
        else stats.requests - stats.distinct - stats.unreadable
    )
    return Throughput(
        expected=expected,
        delivered=delivered,
        duplicates=duplicates,
        drain_seconds=last - first,
        rate=stats.drain_rate(requests=requests),
        start_to_last_seconds=last - started,
        cpu_ms_per_delivery=cpu_ms,
        sink_cpu_ms_per_delivery=sink_cpu_ms,
        broker_cpu_ms_per_delivery=broker_cpu_ms,
        missing=max(0, expected - delivered),
    )


def _per_item(seconds: float, items: int) -> float | None:
    return seconds * 1000 / items if items > 0 else None
