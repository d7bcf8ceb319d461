"""Prometheus metrics of one service process.

Counters and the latency histogram are fed by the worker's ``on_outcome``
callback as attempts finish; queue gauges are read from the database at
scrape time, so they are right even when the deliveries are made by workers
in other processes. Each app has its own registry: two apps in one process
(as in tests) do not share or clash over metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from chathooks.queue import WAITING, Outcome

__all__ = ["CONTENT_TYPE", "ServiceMetrics"]

#: The Prometheus text exposition format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# From a fast local receiver (milliseconds) to the request timeout (15 s).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "chathooks_deliveries",
            "Deliveries that reached a final state, by outcome (succeeded, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "chathooks_attempts",
            "Delivery attempts made by this process, by outcome (succeeded, failed, refused).",
            ["outcome"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "chathooks_attempt_duration_seconds",
            "Time from sending a delivery attempt to reading its response.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "chathooks_queue_depth",
            "Deliveries not finished, by status (pending, retrying, delivering, held).",
            ["status"],
            registry=self.registry,
        )
        self.oldest_pending_age = Gauge(
            "chathooks_oldest_pending_age_seconds",
            "Age of the oldest delivery not yet finished (0 when none is waiting).",
            registry=self.registry,
        )

    def observe(self, outcomes: Iterable[Outcome]) -> None:
        """Count recorded outcomes (from the worker's ``on_outcome``): attempts and final states."""
        for outcome in outcomes:
            if outcome.attempt_outcome is not None:
                self.attempts.labels(outcome=outcome.attempt_outcome).inc()
                self.attempt_seconds.observe(outcome.duration_ms / 1000.0)
            if outcome.finished:
                self.deliveries.labels(outcome=outcome.status).inc()

    def set_queue(
        self, depth_by_status: Mapping[str, int], oldest_pending_age: float | None
    ) -> None:
        for status in {*WAITING, *depth_by_status}:
            self.queue_depth.labels(status=status).set(depth_by_status.get(status, 0))
        self.oldest_pending_age.set(oldest_pending_age or 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
