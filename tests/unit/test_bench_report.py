"""The benchmark's verdicts: what the report says is met or missed, and late transcripts."""

from __future__ import annotations

from bench.results import Latency, Report, Scenario, Throughput
from bench.sink_control import SinkStats


def throughput(rate: float, cpu: float, broker: float | None = None) -> Throughput:
    return Throughput(
        expected=1000,
        delivered=1000,
        duplicates=0,
        drain_seconds=1.0,
        rate=rate,
        cpu_ms_per_delivery=cpu,
        broker_cpu_ms_per_delivery=broker,
    )


def latency(sent_at: dict[str, float], arrivals: dict[str, float], *, late: bool) -> Latency:
    return Latency.measure(
        target_rate=500.0,
        achieved_rate=500.0,
        accepted_rate=500.0,
        sent_at=sent_at,
        accepted=len(sent_at),
        arrivals=arrivals,
        response_seconds=[0.001] * len(sent_at),
        first_error=None,
        missing_are_late=late,
    )


def verdicts(report: Report) -> dict[str, bool | None]:
    return {check.what: check.met for check in report.checks()}


def test_missing_transcripts_count_as_late_when_asked() -> None:
    sent = {f"t{i}": 0.0 for i in range(100)}
    arrived = {f"t{i}": 0.010 for i in range(98)}  # two never arrive
    stuck = latency(sent, arrived, late=True)
    assert stuck.received == 98
    assert stuck.p50_ms is not None and abs(stuck.p50_ms - 10.0) < 1e-6
    # The 99th percentile falls among the two missing: unknown, not 10 ms.
    assert stuck.p99_ms is None
    assert stuck.max_ms is None
    lucky = latency(sent, arrived, late=False)
    assert lucky.p99_ms is not None and abs(lucky.p99_ms - 10.0) < 1e-6


def test_every_target_is_stated_with_its_figure() -> None:
    report = Report(config={"offered_rate": 500.0}, method=[])
    bare = Scenario(key="a", title="bare", throughput=throughput(10_000, 0.10))
    serve = Scenario(key="b", title="serve", throughput=throughput(7_000, 0.15), ingest_cpu_ms=0.5)
    serve.latency = latency({"x": 0.0}, {"x": 0.020}, late=False)
    celery = Scenario(key="celery", title="celery", throughput=throughput(500, 2.0, 0.2))
    procrastinate = Scenario(
        key="procrastinate", title="procrastinate", throughput=throughput(400, 1.4, 1.3)
    )
    history = Scenario(key="history", title="history", ratio=1.3)
    history.details["sqlite"] = {"metrics_scrape_ratio": 0.98}
    history.details["postgresql"] = {"metrics_scrape_ratio": 22.5}
    report.scenarios.extend([bare, serve, celery, procrastinate, history])

    found = verdicts(report)
    assert found["(b) CPU ms per delivery / (a)'s"] is True  # 1.5 <= 1.6
    assert found["(b) deliveries/s / (a)'s"] is True  # 0.7 >= 0.6
    assert found["(b) CPU ms per POST .../transcripts"] is False  # 0.5 > 0.30
    # The leanest peer with its broker: Celery at 2.2 (procrastinate is 2.7); 0.15 / 2.2 < 0.1.
    assert found["(b) CPU per delivery / the leanest peer's (its broker included)"] is True
    assert found["CPU per delivery with many finished rows / with 1,000"] is False
    assert found["(b) p99 ms at 500/s"] is True  # 20 ms < 50
    sqlite, postgresql = (
        "/metrics scrape with many finished rows / with 1,000, sqlite",
        "/metrics scrape with many finished rows / with 1,000, postgresql",
    )
    assert (found[sqlite], found[postgresql]) == (True, False)
    assert (
        f"target 5: {postgresql}: 22.5 (target <= 1.2: no longer than with 1,000): MISSED"
        in report.table()
    )
    # Phases that did not run are said to be unmeasured, never met.
    assert found["chat API CPU ms per call"] is None
    assert found["(c2) CPU ms per delivery / (c1)'s, database included"] is None
    assert "target 3: chat API CPU ms per call: - (target <= 0.3): not measured" in report.table()


def test_an_unknown_p99_beside_a_hanging_endpoint_is_a_miss() -> None:
    report = Report(config={"offered_rate": 500.0}, method=[])
    noisy = Scenario(key="noisy-neighbour", title="noisy")
    noisy.latency = latency({"x": 0.0, "y": 0.0}, {"x": 0.01}, late=True)
    report.scenarios.append(noisy)
    assert verdicts(report)["p99 beside a hanging endpoint / p99 without it"] is False


def test_the_drain_rate_can_count_every_post() -> None:
    # A chat is posted after !lead and again at its close: two requests, one id.
    stats = SinkStats(
        requests=201, distinct=101, unreadable=0, held=0, first_at=100.0, last_at=102.0
    )
    assert stats.drain_rate() == 50.0
    assert stats.drain_rate(requests=True) == 100.0


def test_a_chats_growth_and_open_streams_are_held_to_one_and_a_half_times() -> None:
    report = Report(config={}, method=[])
    report.scenarios += [
        Scenario(key="chat-growth", title="", ratio=1.09, details={"far_line": 5000}),
        Scenario(key="streams", title="", ratio=2.75, details={"streams": 400}),
    ]

    found = verdicts(report)
    lines = report.table()

    assert found["CPU of a chat's line 5,000 / of its line 10"] is True
    assert found["ingest p99 beside 400 open event streams / with none"] is False
    assert "line 5,000 / of its line 10: 1.09 (target within 1.5x): met" in lines
    assert "streams / with none: 2.75 (target within 1.5x): MISSED" in lines


def test_growth_and_streams_not_run_are_not_measured() -> None:
    found = verdicts(Report(config={}, method=[]))

    assert found["CPU of a chat's line 5,000 / of its line 10"] is None
    assert found["ingest p99 beside 400 open event streams / with none"] is None
