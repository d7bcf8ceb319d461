"""The figures of one benchmark run, and how they are printed (table or JSON)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: What the issue asks of a single SQLite ``chathooks serve``.
TARGET_RATE = 2000.0
TARGET_P99_MS = 100.0
#: The offered load the p99 target is defined at (enqueue requests per second).
TARGET_OFFERED_RATE = 500.0

#: The performance issue's targets, all ratios or costs measured in one run.
CPU_VS_BARE_AT_MOST = 1.6
RATE_VS_BARE_AT_LEAST = 0.6
INGEST_CPU_MS_AT_MOST = 0.30
CALL_CPU_MS_AT_MOST = 0.30
PEER_CPU_SHARE_AT_MOST = 0.10
HISTORY_RATIO_AT_MOST = 1.2
#: A /metrics scrape with many finished rows takes no longer than with 1,000: the same
#: allowance for noise as the CPU ratio (a scrape takes a few milliseconds).
SCRAPE_RATIO_AT_MOST = 1.2
SERVE_P99_MS_BELOW = 50.0
NOISY_RATIO_AT_MOST = 1.5
#: The hostile-input issue's: a chat line deep into a chat, and ingest beside open consoles.
GROWTH_RATIO_AT_MOST = 1.5
STREAMS_RATIO_AT_MOST = 1.5
#: The number the hostile-input issue's targets are listed under.
HOSTILE_INPUT_ISSUE = 12


@dataclass(frozen=True)
class Check:
    """One target: what is compared, the figure measured, the bound, and whether it holds."""

    number: int
    what: str
    value: float | None
    target: str
    met: bool | None

    def line(self) -> str:
        verdict = "not measured" if self.met is None else "met" if self.met else "MISSED"
        shown = "-" if self.value is None else f"{self.value:,.3g}"
        return f"target {self.number}: {self.what}: {shown} (target {self.target}): {verdict}"


def _check(
    number: int,
    what: str,
    value: float | None,
    target: str,
    bound: float,
    *,
    at_most: bool = True,
    strict: bool = False,
) -> Check:
    if value is None:
        return Check(number, what, None, target, None)
    met = (value < bound if strict else value <= bound) if at_most else value >= bound
    return Check(number, what, value, target, met)


def _scrape_ratio(history: Scenario | None, backend: str) -> float | None:
    """The history phase's /metrics scrape time at its large size over its small, or None."""
    figures = history.details.get(backend) if history else None
    if not isinstance(figures, dict):
        return None
    ratio = figures.get("metrics_scrape_ratio")
    return float(ratio) if isinstance(ratio, int | float) else None


def _ratio_check(what: str, scenario: Scenario | None, bound: float) -> Check:
    """One of the hostile-input issue's targets: a phase's ratio within ``bound``."""
    ratio = scenario.ratio if scenario else None
    return _check(HOSTILE_INPUT_ISSUE, what, ratio, f"within {bound}x", bound)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Throughput:
    """Deliveries of a pre-filled queue, timed from the first arrival to the last."""

    expected: int
    delivered: int
    duplicates: int
    drain_seconds: float
    rate: float
    #: From starting the delivering process(es) to the last arrival (start-up included).
    start_to_last_seconds: float | None = None
    #: CPU of the delivering process(es) per delivery: robust on a shared machine.
    cpu_ms_per_delivery: float | None = None
    #: CPU of the sink per delivery (what receiving costs, for comparison).
    sink_cpu_ms_per_delivery: float | None = None
    #: CPU of the broker or database server the delivering processes rely on (Redis for
    #: Celery, the PostgreSQL backends for procrastinate and chathooks on PostgreSQL); None
    #: where there is no such process (SQLite is inside the delivering process).
    broker_cpu_ms_per_delivery: float | None = None
    #: Transcripts that never arrived (only a peer's drain is allowed to lose some).
    missing: int = 0
    #: The drain was cut off at its deadline while still moving: ``missing`` were not lost,
    #: only not yet delivered, and the figures are those up to the cut.
    cut_off: bool = False


@dataclass(frozen=True)
class Latency:
    """Enqueue (API request sent) to arrival at the sink, at a steady offered load."""

    target_rate: float
    achieved_rate: float
    #: How fast the API answered 2xx meanwhile; below ``target_rate`` means requests queued.
    accepted_rate: float
    sent: int
    accepted: int
    received: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    api_p50_ms: float | None
    api_p99_ms: float | None
    first_error: str | None = None

    @classmethod
    def measure(
        cls,
        *,
        target_rate: float,
        achieved_rate: float,
        accepted_rate: float,
        sent_at: dict[str, float],
        accepted: int,
        arrivals: dict[str, float],
        response_seconds: Sequence[float],
        first_error: str | None,
        missing_are_late: bool = False,
    ) -> Latency:
        """With ``missing_are_late`` an accepted transcript that never arrived counts as
        infinitely late: a percentile that falls among them is None (unknown, beyond the
        wait), never a figure computed over the lucky ones alone."""
        waits = [(arrivals[tid] - sent) * 1000 for tid, sent in sent_at.items() if tid in arrivals]
        received = len(waits)
        ranked = waits + [math.inf] * (max(0, accepted - received) if missing_are_late else 0)
        api_ms = [seconds * 1000 for seconds in response_seconds]
        return cls(
            target_rate=target_rate,
            achieved_rate=achieved_rate,
            accepted_rate=accepted_rate,
            sent=len(sent_at),
            accepted=accepted,
            received=received,
            p50_ms=_finite(percentile(ranked, 0.50)),
            p99_ms=_finite(percentile(ranked, 0.99)),
            max_ms=_finite(max(ranked)) if ranked else None,
            api_p50_ms=percentile(api_ms, 0.50),
            api_p99_ms=percentile(api_ms, 0.99),
            first_error=first_error,
        )


@dataclass
class Scenario:
    """One row of the results: (a), (b), (c) with one worker, (c) with two."""

    key: str
    title: str
    throughput: Throughput | None = None
    #: Transcripts accepted per second by ``POST .../transcripts`` at concurrency 32.
    ingest_rate: float | None = None
    #: CPU of the API process per accepted transcript during the ingest.
    ingest_cpu_ms: float | None = None
    latency: Latency | None = None
    notes: list[str] = field(default_factory=list)
    #: Conversation API calls answered per second, and the API process's CPU per call.
    calls_rate: float | None = None
    cpu_ms_per_call: float | None = None
    #: The phase's headline ratio (history: cost at 1,000,000 finished rows over 1,000;
    #: noisy-neighbour: p99 with the hanging endpoint over p99 without it).
    ratio: float | None = None
    #: Figures particular to the phase (each history size, each /metrics scrape...).
    details: dict[str, Any] = field(default_factory=dict)
    #: Other configurations of the same system measured in the run (a peer's other pools).
    variants: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    """Every scenario of the run, plus how it was measured."""

    config: dict[str, Any]
    method: list[str]
    scenarios: list[Scenario] = field(default_factory=list)

    def scenario(self, key: str) -> Scenario | None:
        return next((s for s in self.scenarios if s.key == key), None)

    def ratio_to_baseline(self, scenario: Scenario) -> float | None:
        baseline = self.scenario("a")
        if not (baseline and baseline.throughput and scenario.throughput):
            return None
        if baseline.throughput.rate <= 0:
            return None
        return scenario.throughput.rate / baseline.throughput.rate

    def targets(self) -> dict[str, Any]:
        """The issue's targets for (b), with the measured values."""
        serve = self.scenario("b")
        rate = serve.throughput.rate if serve and serve.throughput else None
        p99 = serve.latency.p99_ms if serve and serve.latency else None
        if self.config.get("offered_rate") != TARGET_OFFERED_RATE:
            p99 = None  # measured at another load: the target says nothing about it
        return {
            "b_rate_at_least": TARGET_RATE,
            "b_rate": rate,
            "b_rate_met": rate is not None and rate >= TARGET_RATE,
            "b_p99_ms_below": TARGET_P99_MS,
            "b_p99_ms": p99,
            "b_p99_met": p99 is not None and p99 < TARGET_P99_MS,
            "checks": [asdict(check) for check in self.checks()],
        }

    def _throughput(self, key: str) -> Throughput | None:
        scenario = self.scenario(key)
        return scenario.throughput if scenario else None

    def _cpu(self, key: str) -> float | None:
        throughput = self._throughput(key)
        return throughput.cpu_ms_per_delivery if throughput else None

    def _total_cpu(self, key: str) -> float | None:
        """CPU per delivery of the delivering processes plus their broker or database."""
        throughput = self._throughput(key)
        if throughput is None or throughput.cpu_ms_per_delivery is None:
            return None
        return throughput.cpu_ms_per_delivery + (throughput.broker_cpu_ms_per_delivery or 0.0)

    def checks(self) -> list[Check]:
        """The issue's targets 1-6 against this run's figures."""
        bare, serve = self._cpu("a"), self._cpu("b")
        cpu_ratio = serve / bare if serve and bare else None
        b = self.scenario("b")
        rate_ratio = self.ratio_to_baseline(b) if b else None
        one, two = self._total_cpu("c1"), self._total_cpu("c2")
        workers_ratio = two / one if one and two else None
        chat = self.scenario("conversations")
        chat_cpu = chat.cpu_ms_per_call if chat else None
        peers = [
            cost for cost in (self._total_cpu("celery"), self._total_cpu("procrastinate")) if cost
        ]
        serve_total = self._total_cpu("b")
        peer_share = serve_total / min(peers) if peers and serve_total else None
        history = self.scenario("history")
        noisy = self.scenario("noisy-neighbour")
        p99 = b.latency.p99_ms if b and b.latency else None
        if self.config.get("offered_rate") != TARGET_OFFERED_RATE:
            p99 = None
        noisy_ratio = noisy.ratio if noisy and noisy.latency else None
        noisy_unknown = bool(noisy and noisy.latency and noisy.latency.p99_ms is None)
        growth = self.scenario("chat-growth")
        streams = self.scenario("streams")
        return [
            _check(
                1,
                "(b) CPU ms per delivery / (a)'s",
                cpu_ratio,
                f"<= {CPU_VS_BARE_AT_MOST}",
                CPU_VS_BARE_AT_MOST,
            ),
            _check(
                1,
                "(b) deliveries/s / (a)'s",
                rate_ratio,
                f">= {RATE_VS_BARE_AT_LEAST}",
                RATE_VS_BARE_AT_LEAST,
                at_most=False,
            ),
            _check(
                1,
                "(c2) CPU ms per delivery / (c1)'s, database included",
                workers_ratio,
                "<= 1.0",
                1.0,
            ),
            _check(
                2,
                "(b) CPU ms per POST .../transcripts",
                b.ingest_cpu_ms if b else None,
                f"<= {INGEST_CPU_MS_AT_MOST}",
                INGEST_CPU_MS_AT_MOST,
            ),
            _check(
                3,
                "chat API CPU ms per call",
                chat_cpu,
                f"<= {CALL_CPU_MS_AT_MOST}",
                CALL_CPU_MS_AT_MOST,
            ),
            _check(
                4,
                "(b) CPU per delivery / the leanest peer's (its broker included)",
                peer_share,
                f"<= {PEER_CPU_SHARE_AT_MOST}",
                PEER_CPU_SHARE_AT_MOST,
            ),
            _check(
                5,
                "CPU per delivery with many finished rows / with 1,000",
                history.ratio if history else None,
                f"<= {HISTORY_RATIO_AT_MOST}",
                HISTORY_RATIO_AT_MOST,
            ),
            *(
                _check(
                    5,
                    f"/metrics scrape with many finished rows / with 1,000, {backend}",
                    _scrape_ratio(history, backend),
                    f"<= {SCRAPE_RATIO_AT_MOST}: no longer than with 1,000",
                    SCRAPE_RATIO_AT_MOST,
                )
                for backend in ("sqlite", "postgresql")
            ),
            _check(
                6,
                f"(b) p99 ms at {TARGET_OFFERED_RATE:.0f}/s",
                p99,
                f"< {SERVE_P99_MS_BELOW:.0f}",
                SERVE_P99_MS_BELOW,
                strict=True,
            ),
            Check(
                6,
                "p99 beside a hanging endpoint / p99 without it",
                None,
                f"<= {NOISY_RATIO_AT_MOST}",
                False,
            )
            if noisy_unknown
            else _check(
                6,
                "p99 beside a hanging endpoint / p99 without it",
                noisy_ratio,
                f"<= {NOISY_RATIO_AT_MOST}",
                NOISY_RATIO_AT_MOST,
            ),
            _ratio_check(
                f"CPU of a chat's line {growth.details.get('far_line', 0):,} / of its line 10"
                if growth
                else "CPU of a chat's line 5,000 / of its line 10",
                growth,
                GROWTH_RATIO_AT_MOST,
            ),
            _ratio_check(
                f"ingest p99 beside {streams.details.get('streams', 0)} open event streams "
                "/ with none"
                if streams
                else "ingest p99 beside 400 open event streams / with none",
                streams,
                STREAMS_RATIO_AT_MOST,
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        scenarios = []
        for scenario in self.scenarios:
            row = asdict(scenario)
            row["ratio_to_a"] = self.ratio_to_baseline(scenario)
            scenarios.append(row)
        return {
            "config": self.config,
            "method": self.method,
            "scenarios": scenarios,
            "targets": self.targets(),
        }

    def table(self) -> str:
        """The human summary printed at the end of a run."""
        header = (
            "scenario",
            "deliveries/s",
            "vs (a)",
            "CPU ms/delivery",
            "+broker",
            "ingest/s",
            "CPU ms/ingest",
            "lat. p50 ms",
            "p99 ms",
            "max ms",
        )
        rows = [header]
        for scenario in self.scenarios:
            throughput = scenario.throughput
            latency = scenario.latency
            ratio = self.ratio_to_baseline(scenario)
            rows.append(
                (
                    f"({scenario.key}) {scenario.title}",
                    _number(throughput.rate if throughput else None),
                    "-" if ratio is None else f"{ratio:.2f}",
                    _number(throughput.cpu_ms_per_delivery if throughput else None, 2),
                    _number(throughput.broker_cpu_ms_per_delivery if throughput else None, 2),
                    _number(scenario.ingest_rate),
                    _number(scenario.ingest_cpu_ms, 2),
                    _number(latency.p50_ms if latency else None, 1),
                    _number(latency.p99_ms if latency else None, 1),
                    _number(latency.max_ms if latency else None, 1),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = self._header()
        for index, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])] + [
                cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells))
            if index == 0:
                lines.append("  ".join("-" * width for width in widths))
        lines.append("")
        lines.extend(self._details())
        return "\n".join(lines)

    def _header(self) -> list[str]:
        config = self.config
        sizes = config.get("json_bytes_min_median_max")
        size_text = f", JSON {sizes[0]}/{sizes[1]}/{sizes[2]} bytes min/median/max" if sizes else ""
        return [
            f"{config.get('count')} transcripts of {config.get('messages_per_transcript')} "
            f"messages{size_text}",
            f"{config.get('cpus')} CPUs, Python {config.get('python')}, "
            f"{config.get('event_loop')}, load average at start "
            f"{config.get('load_average_at_start')}",
            *(f"{name}={value}" for name, value in config.get("chathooks_env", {}).items()),
            "",
        ]

    def _details(self) -> list[str]:
        lines = []
        for scenario in self.scenarios:
            throughput, latency = scenario.throughput, scenario.latency
            if throughput:
                lines.append(
                    f"({scenario.key}) {throughput.delivered}/{throughput.expected} delivered in "
                    f"{throughput.drain_seconds:.2f} s first→last arrival"
                    + (
                        f", {throughput.start_to_last_seconds:.2f} s from process start"
                        if throughput.start_to_last_seconds is not None
                        else ""
                    )
                    + (f", {throughput.duplicates} duplicates" if throughput.duplicates else "")
                    + (
                        f"; the sink used {throughput.sink_cpu_ms_per_delivery:.2f} CPU ms each"
                        if throughput.sink_cpu_ms_per_delivery is not None
                        else ""
                    )
                )
            if latency:
                lines.append(
                    f"({scenario.key}) latency: {latency.sent} sent at "
                    f"{latency.achieved_rate:.0f}/s (target {latency.target_rate:.0f}/s), "
                    f"{latency.accepted} accepted ({latency.accepted_rate:.0f}/s), "
                    f"{latency.received} received; "
                    f"API 202 p50 {_number(latency.api_p50_ms, 1)} ms, "
                    f"p99 {_number(latency.api_p99_ms, 1)} ms"
                    + (f"; first error: {latency.first_error}" if latency.first_error else "")
                )
            if scenario.calls_rate is not None:
                lines.append(
                    f"({scenario.key}) {scenario.calls_rate:,.0f} API calls/s, "
                    f"{_number(scenario.cpu_ms_per_call, 3)} CPU ms per call"
                )
            if scenario.ratio is not None:
                lines.append(f"({scenario.key}) ratio {scenario.ratio:.2f}")
            if throughput and (throughput.missing or throughput.duplicates):
                lines.append(
                    f"({scenario.key}) {throughput.duplicates} duplicates, "
                    + (
                        f"{throughput.missing} not yet delivered when the drain was cut off"
                        if throughput.cut_off
                        else f"{throughput.missing} missing at the sink"
                    )
                )
            lines.extend(f"({scenario.key}) {note}" for note in scenario.notes)
        lines.append("")
        lines.extend(check.line() for check in self.checks())
        targets = self.targets()
        if targets["b_rate"] is not None or targets["b_p99_ms"] is not None:
            lines.append(
                f"target (b) ≥ {TARGET_RATE:.0f} deliveries/s: "
                f"{_verdict(targets['b_rate_met'], targets['b_rate'])}; "
                f"p99 < {TARGET_P99_MS:.0f} ms at {TARGET_OFFERED_RATE:.0f}/s: "
                f"{_verdict(targets['b_p99_met'], targets['b_p99_ms'])}"
            )
        if self.config.get("logs"):
            lines.append(f"logs of the processes started: {self.config['logs']}")
        lines.append("")
        lines.append("method:")
        lines.extend(f"  - {line}" for line in self.method)
        return lines


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else value


def _number(value: float | None, decimals: int = 0) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def _verdict(met: bool, value: float | None) -> str:
    if value is None:
        return "not measured"
    return f"{'met' if met else 'MISSED'} ({value:,.1f})"
