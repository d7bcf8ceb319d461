"""``make bench``: how fast chathooks delivers, next to what bare Python manages.

One run, one sink process on loopback, the same realistic transcripts:

(a) a bare aiohttp loop posting the bodies straight to the sink — the ceiling;
(b) one ``chathooks serve`` on SQLite;
(c) ``chathooks serve --no-worker`` plus one, then two, ``chathooks worker``
    processes on a fresh PostgreSQL database.

For (b) and (c) the transcripts are first enqueued through the API with no
worker running (which also gives the API's ingest rate), then delivery
starts and the sink times the drain from the first arrival to the last. Then a
steady offered load through the API measures enqueue-to-arrival latency.

The processes it starts inherit ``CHATHOOKS_*`` settings from the environment
(e.g. ``CHATHOOKS_WORKER_CONCURRENCY``), with ``CHATHOOKS_ALLOWED_DESTINATIONS``
set to ``127.0.0.0/8`` so they may post to the sink.

Run ``python -m bench.delivery --quick`` to check it works, ``--help`` for options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bench import chats, growth, history, loop
from bench.baseline import post_all
from bench.cpu import per_item_ms, process_cpu_seconds
from bench.drain import DrainIncomplete, measure_drain, throughput_from
from bench.load import offer_steadily
from bench.meters import CpuMeter, PostgresBackends, ProcessTree
from bench.payloads import MESSAGES_PER_TRANSCRIPT, Sample, generate, size_range
from bench.peers import phases as peers
from bench.postgres import DEFAULT_ADMIN_URL, Databases, PostgresUnavailable
from bench.processes import Child, ChildFailed, Children
from bench.profiling import Profiler, ProfilerMissing
from bench.results import Latency, Report, Scenario, Throughput, percentile
from bench.service import (
    ENDPOINT_IN_FLIGHT,
    Api,
    Deployment,
    add_site,
    prepare,
    start_api,
    start_worker,
)
from bench.sink_control import Sink
from chathooks.heap import freeze_startup_objects
from chathooks.sealing import new_key

T = TypeVar("T")

DEFAULT_COUNT = 20_000
QUICK_COUNT = 1_000
BASELINE_CONCURRENCY = 64
INGEST_CONCURRENCY = 32
#: The chat-API phase makes one chat per this many transcripts of the throughput phases.
CHATS_PER_TRANSCRIPTS = 20
CHAT_CONCURRENCY = 64
#: The chat-growth phase measures this many chats (fewer, and not as deep, with ``--quick``).
GROWTH_CHATS = 4
QUICK_GROWTH_CHATS = 2
QUICK_GROWTH_FAR = 1_000
#: The streams phase opens this many consoles' event streams beside the ingest load...
OPEN_STREAMS = 400
QUICK_OPEN_STREAMS = 100
#: ...offered at this rate, for this many requests each time (fewer with ``--quick``).
STREAMS_RATE = 100.0
STREAMS_REQUESTS = 1_500
#: ...in this many alternating rounds of each condition (one with ``--quick``).
STREAMS_ROUNDS = 3
QUICK_STREAMS_REQUESTS = 300
#: The history phase compares a queue with this many finished deliveries...
HISTORY_SMALL = 1_000
#: ...with this many (``--history-rows``; fewer with ``--quick``).
HISTORY_LARGE = 1_000_000
QUICK_HISTORY_LARGE = 20_000
#: Each history run delivers this fraction of the throughput phases' transcripts.
HISTORY_BATCH_DIVISOR = 4
#: ...but at least this many, so that the drain lasts long enough for CPU time to be read.
HISTORY_MIN_BATCH = 1_000
METRICS_SCRAPES = 51
#: The hanging site's backlog is this fraction of the throughput phases' transcripts...
NOISY_BACKLOG_DIVISOR = 10
#: ...and the load starts once it holds this many requests (a worker's default concurrency).
NOISY_HELD_AT_LEAST = 64
NOISY_HOLD_WAIT_SECONDS = 30.0
#: ...or once the number held has not grown for this long (a per-endpoint cap is reached).
NOISY_HELD_STEADY = 3.0
#: How long after the last request the healthy site's transcripts are waited for.
NOISY_SETTLE_SECONDS = 30.0
DEFAULT_OFFERED_RATE = 500.0
DEFAULT_LATENCY_SECONDS = 10.0
QUICK_LATENCY_SECONDS = 2.0
INGEST_CONTENT_TYPE = "application/json"

#: Environment the benchmark sets or that may hold secrets: not echoed in the results.
_PRIVATE_ENV = frozenset(
    {
        "CHATHOOKS_ADMIN_KEY",
        "CHATHOOKS_DATABASE_URL",
        "CHATHOOKS_SECRET_KEY",
        "CHATHOOKS_TEST_POSTGRES_URL",
    }
)

_started = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr, so ``--json`` output on stdout stays clean."""
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


class BenchFailed(RuntimeError):
    """A phase could not produce an honest figure; the message says why."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2; got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0; got {text}")
    return value


#: Every phase, in the order a run goes through them.
PHASES = (
    "a",
    "b",
    "c",
    "conversations",
    "chat-growth",
    "streams",
    "history",
    "noisy-neighbour",
    "celery",
    "procrastinate",
)


def phase_list(text: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(names - set(PHASES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown phase {', '.join(unknown) or '(none given)'}; choose from {', '.join(PHASES)}"
        )
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.delivery",
        description="Delivery benchmark: bare aiohttp vs chathooks on SQLite and PostgreSQL.",
    )
    parser.add_argument(
        "--count",
        type=positive_int,
        default=None,
        help=f"transcripts per throughput phase (default {DEFAULT_COUNT}, {QUICK_COUNT} with "
        "--quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small run that only checks everything works"
    )
    parser.add_argument(
        "--skip-postgres", action="store_true", help="leave out (c), the PostgreSQL runs"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the results as JSON on stdout instead of a table"
    )
    parser.add_argument(
        "--json-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the JSON results to FILE (with the table on stdout)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CHATHOOKS_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="a loopback PostgreSQL role that may create databases (default: %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=peers.DEFAULT_REDIS_URL,
        help="the loopback Redis server Celery uses as its broker (default: %(default)s); "
        "the benchmark takes an empty database on it and flushes that database afterwards",
    )
    parser.add_argument(
        "--peer-seconds",
        type=positive_float,
        default=peers.PEER_DRAIN_SECONDS,
        help="cut a peer's drain off this long after its first arrival and report the "
        "figures up to then (default: %(default)s)",
    )
    parser.add_argument(
        "--phases",
        type=phase_list,
        default=None,
        help=f"run only these phases, comma-separated, from: {', '.join(PHASES)} (default: all)",
    )
    parser.add_argument(
        "--history-rows",
        type=positive_int,
        default=None,
        help=f"finished deliveries in the tables for the history phase's second run (default "
        f"{HISTORY_LARGE:,}, {QUICK_HISTORY_LARGE:,} with --quick; the first has "
        f"{HISTORY_SMALL:,})",
    )
    parser.add_argument(
        "--offered-rate",
        type=positive_float,
        default=DEFAULT_OFFERED_RATE,
        help="enqueue requests per second in the latency phases (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=positive_float,
        default=None,
        help=f"length of each latency phase (default {DEFAULT_LATENCY_SECONDS:g} s, "
        f"{QUICK_LATENCY_SECONDS:g} s with --quick)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="write py-spy flame graphs of the chathooks processes during each measured phase "
        "to DIR (needs py-spy installed; figures of a profiled run are a little lower)",
    )
    parser.add_argument(
        "--profile-format",
        choices=("flamegraph", "speedscope", "raw"),
        default="flamegraph",
        help="py-spy's output format for --profile: SVG flame graphs, speedscope JSON, or raw "
        "collapsed stacks to read or diff as text (default: %(default)s)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="keep the logs of the started processes here (by default they are kept, in a "
        "temporary directory, only when something failed)",
    )
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = QUICK_COUNT if args.quick else DEFAULT_COUNT
    if args.history_rows is None:
        args.history_rows = QUICK_HISTORY_LARGE if args.quick else HISTORY_LARGE
    if args.latency_seconds is None:
        args.latency_seconds = QUICK_LATENCY_SECONDS if args.quick else DEFAULT_LATENCY_SECONDS
    return args


def with_prefix(samples: Sequence[Sample], prefix: str) -> list[Sample]:
    """The same documents under fresh conversation ids (one id space per phase)."""
    renamed = []
    for index, sample in enumerate(samples):
        new_id = f"{prefix}{index:09d}{sample.id[len(prefix) + 9 :]}"[: len(sample.id)]
        renamed.append(Sample(id=new_id, document={**sample.document, "id": new_id}))
    return renamed


@dataclass(frozen=True)
class Workload:
    """The transcripts of a run, built before any process starts (it takes a few seconds)."""

    samples: list[Sample]
    latency_samples: list[Sample]
    #: ``samples`` in Olark's wire form, for the baseline.
    form_bodies: list[bytes]
    json_sizes: tuple[int, int, int]

    @classmethod
    def build(cls, count: int, latency_count: int) -> Workload:
        log(
            f"generating {count} + {latency_count} transcripts "
            f"of {MESSAGES_PER_TRANSCRIPT} messages"
        )
        samples = generate(count, prefix="T")
        return cls(
            samples=samples,
            latency_samples=generate(latency_count, prefix="L"),
            form_bodies=[sample.form_body() for sample in samples],
            json_sizes=size_range([sample.json_body() for sample in samples[:2000]]),
        )


class Benchmark:
    """One run: the sink, the scenarios in order, and everything they started."""

    def __init__(
        self,
        args: argparse.Namespace,
        children: Children,
        databases: Databases,
        scratch: Path,
        profiler: Profiler,
    ) -> None:
        self.args = args
        self.profiler = profiler
        self.children = children
        self.databases = databases
        #: Where SQLite databases go; removed with the run.
        self.scratch = scratch
        self.failed = False
        self.report = Report(config=self._config(), method=self._method())

    async def run(self, session: aiohttp.ClientSession, workload: Workload) -> Report:
        self.report.config["json_bytes_min_median_max"] = workload.json_sizes
        self.report.config["form_bytes_min_median_max"] = size_range(workload.form_bodies)
        samples, latency_samples = workload.samples, workload.latency_samples

        sink = Sink.start(self.children, session)
        log(f"sink listening on {sink.webhook_url} (pid {sink.child.pid})")

        if self._wanted("a"):
            baseline = partial(self._baseline, sink, workload.form_bodies)
            await self._guarded("a", "bare aiohttp loop", baseline)
        if self._wanted("b"):
            sqlite = partial(self._sqlite, sink, session, samples, latency_samples)
            await self._guarded("b", "serve, SQLite", sqlite)
        if self._wanted("c") and not self.args.skip_postgres:
            await self._postgres(sink, session, samples, latency_samples)
        if self._wanted("conversations"):
            chats = partial(self._conversations, sink, session)
            await self._guarded("conversations", "chat API, SQLite", chats)
        if self._wanted("chat-growth"):
            growing = partial(self._chat_growth, sink, session)
            await self._guarded("chat-growth", "chat line cost as it grows", growing)
        if self._wanted("streams"):
            streams = partial(self._streams, sink, session, latency_samples)
            await self._guarded("streams", "ingest beside open event streams", streams)
        if self._wanted("history"):
            past = partial(self._history, sink, session, samples)
            title = f"{self.args.history_rows:,} finished rows vs {HISTORY_SMALL:,}"
            await self._guarded("history", title, past)
        if self._wanted("noisy-neighbour"):
            noisy = partial(self._noisy_neighbour, sink, session, samples, latency_samples)
            await self._guarded("noisy-neighbour", "SQLite, another site hangs", noisy)
        if self._wanted("celery"):
            await self._peer(
                "celery",
                partial(
                    peers.celery_phase,
                    children=self.children,
                    sink=sink,
                    bodies=workload.form_bodies,
                    scratch=self.scratch,
                    redis_url=self.args.redis_url,
                    log=log,
                    drain_seconds=self.args.peer_seconds,
                ),
            )
        if self._wanted("procrastinate") and not self.args.skip_postgres:
            await self._peer(
                "procrastinate",
                partial(
                    peers.procrastinate_phase,
                    children=self.children,
                    sink=sink,
                    bodies=workload.form_bodies,
                    scratch=self.scratch,
                    databases=self.databases,
                    log=log,
                    drain_seconds=self.args.peer_seconds,
                ),
            )
        return self.report

    def _wanted(self, key: str) -> bool:
        return self.args.phases is None or key in self.args.phases

    async def _peer(self, key: str, phase: Callable[[], Awaitable[Scenario]]) -> None:
        """A peer's phase; a failure becomes a note on its row, and the run goes on."""
        try:
            scenario = await phase()
        except (
            ChildFailed,
            BenchFailed,
            PostgresUnavailable,
            peers.PeerUnavailable,
            aiohttp.ClientError,
        ) as exc:
            scenario = Scenario(key=key, title=key, notes=[f"FAILED: {exc}"])
            log(f"({key}) FAILED: {exc}")
        if any(note.startswith("FAILED") for note in scenario.notes):
            self.failed = True
        self.report.scenarios.append(scenario)

    async def _guarded(
        self, key: str, title: str, phase: Callable[[Scenario], Awaitable[None]]
    ) -> None:
        """Run a scenario; a failure becomes a note on its row, and the run goes on."""
        scenario = Scenario(key=key, title=title)
        self.report.scenarios.append(scenario)
        try:
            await phase(scenario)
        except (ChildFailed, BenchFailed, aiohttp.ClientError) as exc:
            self.failed = True
            scenario.notes.append(f"FAILED: {exc}")
            log(f"({key}) FAILED: {exc}")

    # -- (a) -------------------------------------------------------------------------
    async def _baseline(self, sink: Sink, bodies: list[bytes], scenario: Scenario) -> None:
        await sink.reset()
        log(f"(a) posting {len(bodies)} bodies to the sink, {BASELINE_CONCURRENCY} in flight")
        started = time.time()
        client_before, sink_before = process_cpu_seconds(os.getpid()), sink.cpu_seconds()
        run = await post_all(sink.webhook_url, bodies, concurrency=BASELINE_CONCURRENCY)
        client_after = process_cpu_seconds(os.getpid())
        if run.failed:
            raise BenchFailed(f"{run.failed} posts to the sink failed: {run.first_error}")
        stats = await sink.wait_for(len(bodies), timeout=10)
        scenario.throughput = throughput_from(
            len(bodies),
            stats,
            started,
            cpu_ms=per_item_ms(client_before, client_after, len(bodies)),
            sink_cpu_ms=per_item_ms(sink_before, sink.cpu_seconds(), len(bodies)),
        )
        log(f"(a) {scenario.throughput.rate:,.0f} deliveries/s")

    # -- (b) -------------------------------------------------------------------------
    async def _sqlite(
        self,
        sink: Sink,
        session: aiohttp.ClientSession,
        samples: list[Sample],
        latency_samples: list[Sample],
        scenario: Scenario,
    ) -> None:
        database = self.scratch / "bench-sqlite.db"
        deployment = prepare(self.children, f"sqlite:///{database}", sink.webhook_url)
        log(f"(b) site {deployment.site_id} on {deployment.database_url}")
        api = await start_api(self.children, deployment, session, worker=False)
        await self._ingest(scenario, sink, api, deployment, samples)
        self.children.stop(api.child)

        await sink.reset()
        log("(b) starting `chathooks serve` (API + worker) on the filled queue")
        started = time.time()
        api = await start_api(self.children, deployment, session, worker=True)
        delivering = (api.child,)
        scenario.throughput = await self._drain(
            scenario, sink, len(samples), started, delivering, delivering
        )
        log(f"(b) {scenario.throughput.rate:,.0f} deliveries/s")
        batch = with_prefix(latency_samples, "Lb")
        scenario.latency = await self._latency(scenario, sink, api, deployment, batch, (api.child,))
        self.children.stop(api.child)

    async def _sqlite_api(
        self, name: str, sink: Sink, session: aiohttp.ClientSession, *, worker: bool
    ) -> tuple[Deployment, Api]:
        """A fresh SQLite database of the phase's own, and ``chathooks serve`` on it."""
        database = self.scratch / f"bench-{name}.db"
        deployment = prepare(self.children, f"sqlite:///{database}", sink.webhook_url)
        return deployment, await start_api(self.children, deployment, session, worker=worker)

    async def _measured(self, api: Api, measurement: Awaitable[T]) -> T:
        """``measurement``'s figures; ``serve`` is stopped after it, whatever happened."""
        try:
            return await measurement
        except growth.GrowthFailed as exc:
            raise BenchFailed(str(exc)) from exc
        finally:
            self.children.stop(api.child)

    # -- the chat API ----------------------------------------------------------------
    async def _conversations(
        self, sink: Sink, session: aiohttp.ClientSession, scenario: Scenario
    ) -> None:
        """Whole chats through the conversations API, then the posts they made, drained."""
        deployment, api = await self._sqlite_api("conversations", sink, session, worker=False)
        count = max(2, self.args.count // CHATS_PER_TRANSCRIPTS)
        await sink.reset()
        log(
            f"(conversations) {count} chats of {chats.CALLS_PER_CHAT} API calls, "
            f"{CHAT_CONCURRENCY} in progress at once"
        )
        cpu_before = process_cpu_seconds(api.child.pid)
        with self.profiler.recording("conversations-api", [api.child]):
            run = await chats.run_chats(
                api.base_url,
                deployment.site_id,
                deployment.api_key,
                chats=count,
                concurrency=CHAT_CONCURRENCY,
                prefix="H",
            )
        cpu_ms = per_item_ms(cpu_before, process_cpu_seconds(api.child.pid), run.calls)
        self.children.stop(api.child)
        if run.failed:
            raise BenchFailed(f"{run.failed} of {count} chats failed: {run.first_error}")
        scenario.calls_rate = run.calls_rate
        scenario.cpu_ms_per_call = cpu_ms
        scenario.details = {
            "chats": run.chats,
            "calls": run.calls,
            "deliveries_queued": run.deliveries,
            "chat_concurrency": CHAT_CONCURRENCY,
        }
        log(
            f"(conversations) {run.calls_rate:,.0f} calls/s, "
            f"{cpu_ms or 0:.2f} CPU ms per call; {run.deliveries} deliveries queued"
        )
        await self._expect_nothing_delivered(sink, scenario)
        await sink.reset()
        started = time.time()
        api = await start_api(self.children, deployment, session, worker=True)
        with self.profiler.recording("conversations-drain", [api.child]):
            try:
                scenario.throughput = await measure_drain(
                    sink,
                    run.deliveries,
                    started,
                    delivering=[ProcessTree([api.child.pid])],
                    watch=(api.child,),
                    requests=True,
                )
            except DrainIncomplete as exc:
                raise BenchFailed(str(exc)) from exc
        log(f"(conversations) {scenario.throughput.rate:,.0f} deliveries/s")
        self.children.stop(api.child)

    # -- chat growth -------------------------------------------------------------
    async def _chat_growth(
        self, sink: Sink, session: aiohttp.ClientSession, scenario: Scenario
    ) -> None:
        """CPU of one chat line early in a chat and deep into it (see :mod:`bench.growth`)."""
        deployment, api = await self._sqlite_api("growth", sink, session, worker=False)
        chats_count = QUICK_GROWTH_CHATS if self.args.quick else GROWTH_CHATS
        far = QUICK_GROWTH_FAR if self.args.quick else growth.FAR_LINE
        log(
            f"(chat-growth) {chats_count} chats filled to line {far:,}; lines "
            f"{growth.NEAR_LINE} and {far:,} timed, {growth.WINDOW} of each per chat"
        )
        costs = await self._measured(
            api,
            growth.line_costs(
                api.base_url,
                deployment.site_id,
                deployment.api_key,
                pid=api.child.pid,
                chats=chats_count,
                far=far,
            ),
        )
        scenario.ratio = costs.ratio
        scenario.cpu_ms_per_call = costs.far_median_ms
        scenario.details = {
            "chats": costs.chats,
            "near_line": costs.near,
            "far_line": costs.far,
            "calls_per_position": len(costs.near_ms),
            "near_cpu_ms_median": costs.near_median_ms,
            "far_cpu_ms_median": costs.far_median_ms,
            "near_cpu_ms_p90": percentile(costs.near_ms, 0.9),
            "far_cpu_ms_p90": percentile(costs.far_ms, 0.9),
            "fill_seconds": costs.fill_seconds,
        }
        log(
            f"(chat-growth) line {costs.near}: {_cpu_ms(costs.near_median_ms)}, line "
            f"{costs.far:,}: {_cpu_ms(costs.far_median_ms)} CPU per call (medians)"
        )

    # -- open event streams ------------------------------------------------------
    async def _streams(
        self,
        sink: Sink,
        session: aiohttp.ClientSession,
        latency_samples: list[Sample],
        scenario: Scenario,
    ) -> None:
        """Ingest p99 at a fixed rate with no console open, then with many open."""
        deployment, api = await self._sqlite_api("streams", sink, session, worker=True)
        streams = QUICK_OPEN_STREAMS if self.args.quick else OPEN_STREAMS
        requests = QUICK_STREAMS_REQUESTS if self.args.quick else STREAMS_REQUESTS
        rounds = 1 if self.args.quick else STREAMS_ROUNDS
        each = max(1, requests // rounds)
        pool = latency_samples * (2 * requests // max(1, len(latency_samples)) + 1)
        alone = [
            with_prefix(pool[2 * r * each : (2 * r + 1) * each], f"Sa{r}") for r in range(rounds)
        ]
        beside = [
            with_prefix(pool[(2 * r + 1) * each : (2 * r + 2) * each], f"Sb{r}")
            for r in range(rounds)
        ]
        log(
            f"(streams) {rounds} rounds of {each} transcripts at {STREAMS_RATE:g}/s alone, "
            f"then as many beside {streams} open event streams"
        )
        run = await self._measured(
            api,
            growth.ingest_beside_streams(
                api.base_url,
                deployment.site_id,
                deployment.api_key,
                pid=api.child.pid,
                alone=alone,
                beside=beside,
                streams=streams,
                rate=STREAMS_RATE,
            ),
        )
        if run.failed:
            raise BenchFailed("; ".join(run.failed))
        scenario.ratio = run.ratio
        scenario.details = {
            "streams": run.streams,
            "rate": run.rate,
            "rounds": run.rounds,
            "requests_each": len(run.alone_ms),
            "alone_p50_ms": percentile(run.alone_ms, 0.5),
            "alone_p99_ms": run.alone_p99_ms,
            "beside_p50_ms": percentile(run.beside_ms, 0.5),
            "beside_p99_ms": run.beside_p99_ms,
            "alone_cpu_ms_per_ingest": run.alone_cpu_ms,
            "beside_cpu_ms_per_ingest": run.beside_cpu_ms,
        }
        log(
            f"(streams) ingest p99 {_ms(run.alone_p99_ms)} alone, {_ms(run.beside_p99_ms)} "
            f"beside {run.streams} open streams; API CPU per ingest {_cpu_ms(run.alone_cpu_ms)} "
            f"alone, {_cpu_ms(run.beside_cpu_ms)} beside"
        )

    # -- history -----------------------------------------------------------------
    async def _history(
        self,
        sink: Sink,
        session: aiohttp.ClientSession,
        samples: list[Sample],
        scenario: Scenario,
    ) -> None:
        """Drain cost and a /metrics scrape with few and with many finished deliveries."""
        small, large = HISTORY_SMALL, self.args.history_rows
        batch_size = min(
            len(samples), max(HISTORY_MIN_BATCH, len(samples) // HISTORY_BATCH_DIVISOR)
        )
        backends = ["sqlite"] if self.args.skip_postgres else ["sqlite", "postgresql"]
        for backend in backends:
            figures: dict[str, Any] = {}
            for rows in (small, large):
                batch = with_prefix(samples[:batch_size], f"P{backend[0]}{rows % 10_000:04d}")
                figures[str(rows)] = await self._history_run(
                    scenario, sink, session, backend, rows, batch
                )
            cost_small = figures[str(small)]["cpu_ms_per_delivery"]
            cost_large = figures[str(large)]["cpu_ms_per_delivery"]
            ratio = cost_large / cost_small if cost_small and cost_large else None
            figures["ratio"] = ratio
            # The fastest scrape of each: what the queries cost, less what a busy machine adds.
            scrape_small = figures[str(small)]["metrics_scrape_fastest_ms"]
            scrape_large = figures[str(large)]["metrics_scrape_fastest_ms"]
            figures["metrics_scrape_ratio"] = (
                scrape_large / scrape_small if scrape_small and scrape_large else None
            )
            scenario.details[backend] = figures
            if backend == "sqlite":
                scenario.ratio = ratio
        scenario.details["rows"] = [small, large]
        scenario.details["deliveries_per_run"] = batch_size

    async def _history_run(
        self,
        scenario: Scenario,
        sink: Sink,
        session: aiohttp.ClientSession,
        backend: str,
        rows: int,
        batch: list[Sample],
    ) -> dict[str, Any]:
        label = f"(history) {backend}, {rows:,} finished"
        async with AsyncExitStack() as stack:
            if backend == "sqlite":
                path = self.scratch / f"bench-history-{rows}.db"
                deployment = prepare(self.children, f"sqlite:///{path}", sink.webhook_url)
                log(f"{label}: writing the rows")
                filled = history.fill_sqlite(
                    str(path),
                    site_id=deployment.site_id,
                    endpoint_id=deployment.endpoint_id,
                    count=rows,
                )
            else:
                url = await stack.enter_async_context(self.databases.fresh())
                deployment = prepare(self.children, url, sink.webhook_url)
                log(f"{label}: writing the rows")
                filled = await history.fill_postgres(
                    url,
                    site_id=deployment.site_id,
                    endpoint_id=deployment.endpoint_id,
                    count=rows,
                )
            log(f"{label}: written in {filled:.1f} s; enqueueing {len(batch)}")
            api = await start_api(self.children, deployment, session, worker=False)
            run = await post_all(
                api.transcripts_url(deployment),
                [sample.json_body() for sample in batch],
                concurrency=INGEST_CONCURRENCY,
                content_type=INGEST_CONTENT_TYPE,
                headers={"Authorization": f"Bearer {deployment.api_key}"},
                expect=202,
            )
            self.children.stop(api.child)
            if run.failed:
                raise BenchFailed(f"the API refused {run.failed} of {run.sent}: {run.first_error}")
            await sink.reset()
            started = time.time()
            api = await start_api(self.children, deployment, session, worker=True)
            key = f"history-{backend}-{rows}"
            with self.profiler.recording(key, [api.child]):
                try:
                    throughput = await measure_drain(
                        sink,
                        len(batch),
                        started,
                        delivering=[ProcessTree([api.child.pid])],
                        watch=(api.child,),
                    )
                except DrainIncomplete as exc:
                    raise BenchFailed(f"{label}: {exc}") from exc
            scrape_ms, scrape_fastest_ms = await self._scrape_ms(session, api, scenario)
            self.children.stop(api.child)
        log(
            f"{label}: {throughput.rate:,.0f} deliveries/s, "
            f"{throughput.cpu_ms_per_delivery or 0:.3f} CPU ms each; "
            f"/metrics {scrape_ms or 0:.1f} ms (fastest {scrape_fastest_ms or 0:.1f} ms)"
        )
        if backend == "sqlite" and rows == self.args.history_rows:
            scenario.throughput = throughput
        return {
            "fill_seconds": filled,
            "rate": throughput.rate,
            "cpu_ms_per_delivery": throughput.cpu_ms_per_delivery,
            "metrics_scrape_ms": scrape_ms,
            "metrics_scrape_fastest_ms": scrape_fastest_ms,
        }

    async def _scrape_ms(
        self, session: aiohttp.ClientSession, api: Api, scenario: Scenario
    ) -> tuple[float | None, float | None]:
        """The median and the fastest time of a few ``GET /metrics``; None when not answered."""
        times = []
        for _ in range(METRICS_SCRAPES):
            began = time.perf_counter()
            async with session.get(f"{api.base_url}/metrics") as response:
                await response.read()
                if response.status != 200:
                    scenario.notes.append(f"GET /metrics answered HTTP {response.status}")
                    return None, None
            times.append((time.perf_counter() - began) * 1000)
        return percentile(times, 0.5), min(times)

    # -- noisy neighbour ---------------------------------------------------------------
    async def _noisy_neighbour(
        self,
        sink: Sink,
        session: aiohttp.ClientSession,
        samples: list[Sample],
        latency_samples: list[Sample],
        scenario: Scenario,
    ) -> None:
        """Latency of a healthy site, alone and beside a site whose endpoint hangs."""
        database = self.scratch / "bench-noisy.db"
        healthy = prepare(self.children, f"sqlite:///{database}", sink.webhook_url)
        neighbour = add_site(self.children, healthy.database_url, sink.hanging_url, "neighbour")
        api = await start_api(self.children, healthy, session, worker=True)
        watch = (api.child,)
        quiet = await self._latency(
            scenario, sink, api, healthy, with_prefix(latency_samples, "Nq"), watch
        )
        backlog = with_prefix(samples[: max(2, len(samples) // NOISY_BACKLOG_DIVISOR)], "Nb")
        await sink.release()
        log(f"(noisy-neighbour) {len(backlog)} transcripts queued for the hanging endpoint")
        run = await post_all(
            api.transcripts_url(neighbour),
            [sample.json_body() for sample in backlog],
            concurrency=INGEST_CONCURRENCY,
            content_type=INGEST_CONTENT_TYPE,
            headers={"Authorization": f"Bearer {neighbour.api_key}"},
            expect=202,
        )
        if run.failed:
            raise BenchFailed(f"the API refused {run.failed} of {run.sent}: {run.first_error}")
        held = await self._wait_for_held(sink, min(len(backlog), NOISY_HELD_AT_LEAST), watch)
        log(f"(noisy-neighbour) the hanging endpoint holds {held} requests; offering load")
        try:
            scenario.latency = await self._latency(
                scenario,
                sink,
                api,
                healthy,
                with_prefix(latency_samples, "Nn"),
                watch,
                settle_seconds=NOISY_SETTLE_SECONDS,
            )
            held_at_end = (await sink.stats()).held
        finally:
            await sink.release()  # so serve can stop without waiting on them
            self.children.stop(api.child)
        noisy_p99, quiet_p99 = scenario.latency.p99_ms, quiet.p99_ms
        scenario.ratio = noisy_p99 / quiet_p99 if noisy_p99 and quiet_p99 else None
        scenario.details = {
            "backlog": len(backlog),
            "held_when_load_started": held,
            "held_when_load_ended": held_at_end,
            "settle_seconds": NOISY_SETTLE_SECONDS,
            "without_hanging_endpoint": asdict(quiet),
        }
        if noisy_p99 is None:
            scenario.notes.append(
                f"with the hanging endpoint, more than 1% of the healthy site's transcripts "
                f"took longer than {NOISY_SETTLE_SECONDS:.0f} s: p99 and the ratio are unknown, "
                "and far beyond the target"
            )
        log(
            f"(noisy-neighbour) p99 {_ms(quiet_p99)} alone, {_ms(noisy_p99)} beside the hanging "
            "endpoint"
        )

    async def _wait_for_held(self, sink: Sink, count: int, watch: tuple[Child, ...]) -> int:
        """Until the hanging endpoint holds ``count`` requests, or as many as it will get.

        A worker that caps each endpoint's requests in flight gives the hanging one only
        its share: once the held count has stopped growing for a while, the load starts.
        """
        deadline = time.monotonic() + NOISY_HOLD_WAIT_SECONDS
        held, changed_at = 0, time.monotonic()
        while time.monotonic() < deadline:
            for child in watch:
                child.check_alive()
            now_held = (await sink.stats()).held
            if now_held != held:
                held, changed_at = now_held, time.monotonic()
            if held >= count or (held and time.monotonic() - changed_at > NOISY_HELD_STEADY):
                break
            await asyncio.sleep(0.1)
        return held

    # -- (c) -------------------------------------------------------------------------
    async def _postgres(
        self,
        sink: Sink,
        session: aiohttp.ClientSession,
        samples: list[Sample],
        latency_samples: list[Sample],
    ) -> None:
        one = Scenario(key="c1", title="PostgreSQL, 1 worker")
        two = Scenario(key="c2", title="PostgreSQL, 2 workers")
        self.report.scenarios.extend([one, two])
        current = one
        try:
            version = await self.databases.check()
            async with self.databases.fresh() as url:
                deployment = prepare(self.children, url, sink.webhook_url)
                log(f"(c) PostgreSQL {version}, database {url.rsplit('/', 1)[1]}")
                api = await start_api(self.children, deployment, session, worker=False)
                for scenario, workers in ((one, 1), (two, 2)):
                    current = scenario
                    batch = with_prefix(samples, f"C{workers}")
                    await self._ingest(scenario, sink, api, deployment, batch)
                    await sink.reset()
                    log(f"(c) starting {workers} `chathooks worker` on the filled queue")
                    started = time.time()
                    running = [
                        start_worker(self.children, deployment, f"worker-{n}")
                        for n in range(1, workers + 1)
                    ]
                    watch = (api.child, *running)
                    database = PostgresBackends(self.databases.admin_url, url.rsplit("/", 1)[1])
                    scenario.throughput = await self._drain(
                        scenario, sink, len(batch), started, tuple(running), watch, [database]
                    )
                    log(f"({scenario.key}) {scenario.throughput.rate:,.0f} deliveries/s")
                    if workers == 2:
                        scenario.latency = await self._latency(
                            scenario,
                            sink,
                            api,
                            deployment,
                            with_prefix(latency_samples, "Lc"),
                            watch,
                        )
                    for child in running:
                        self.children.stop(child)
                self.children.stop(api.child)
        except (ChildFailed, BenchFailed, PostgresUnavailable, aiohttp.ClientError) as exc:
            self.failed = True
            current.notes.append(f"FAILED: {exc}")
            log(f"({current.key}) FAILED: {exc}")

    # -- shared steps ----------------------------------------------------------------
    async def _ingest(
        self,
        scenario: Scenario,
        sink: Sink,
        api: Api,
        deployment: Deployment,
        samples: list[Sample],
    ) -> None:
        """Enqueue every sample through the API with no worker running; note rate and CPU."""
        bodies = [sample.json_body() for sample in samples]
        await sink.reset()
        log(
            f"({scenario.key}) enqueueing {len(bodies)} via the API, {INGEST_CONCURRENCY} in flight"
        )
        cpu_before = process_cpu_seconds(api.child.pid)
        with self.profiler.recording(f"{scenario.key}-ingest", [api.child]):
            run = await post_all(
                api.transcripts_url(deployment),
                bodies,
                concurrency=INGEST_CONCURRENCY,
                content_type=INGEST_CONTENT_TYPE,
                headers={"Authorization": f"Bearer {deployment.api_key}"},
                expect=202,
            )
        if run.failed:
            raise BenchFailed(f"the API refused {run.failed} of {run.sent}: {run.first_error}")
        scenario.ingest_rate = run.rate
        scenario.ingest_cpu_ms = per_item_ms(
            cpu_before, process_cpu_seconds(api.child.pid), run.sent
        )
        log(f"({scenario.key}) ingest {run.rate:,.0f} transcripts/s")
        await self._expect_nothing_delivered(sink, scenario)

    async def _expect_nothing_delivered(self, sink: Sink, scenario: Scenario) -> None:
        stats = await sink.stats()
        if stats.requests:
            scenario.notes.append(
                f"{stats.requests} deliveries arrived while no worker was meant to run; "
                "the throughput figure is of the remainder"
            )

    async def _drain(
        self,
        scenario: Scenario,
        sink: Sink,
        expected: int,
        started: float,
        delivering: tuple[Child, ...],
        watch: tuple[Child, ...],
        broker: Sequence[CpuMeter] = (),
    ) -> Throughput:
        """Wait until the sink has every transcript; the drain rate it saw.

        CPU is counted from the first arrival on, so the ``delivering``
        processes' start-up (imports, schema check) is not charged to deliveries.
        """
        with self.profiler.recording(f"{scenario.key}-drain", delivering):
            try:
                return await measure_drain(
                    sink,
                    expected,
                    started,
                    delivering=[ProcessTree(child.pid for child in delivering)],
                    broker=broker,
                    watch=watch,
                )
            except DrainIncomplete as exc:
                raise BenchFailed(str(exc)) from exc

    async def _latency(
        self,
        scenario: Scenario,
        sink: Sink,
        api: Api,
        deployment: Deployment,
        samples: list[Sample],
        watch: tuple[Child, ...],
        *,
        settle_seconds: float | None = None,
    ) -> Latency:
        """Offer ``samples`` at the set rate; enqueue-to-arrival latency at the sink.

        With ``settle_seconds`` the arrivals are awaited at most that long after
        the last request, and transcripts still missing then count as late (the
        noisy-neighbour phase, where they may be stuck behind a hanging endpoint);
        without it, a missing transcript is a failure of the run.
        """
        rate = self.args.offered_rate
        await sink.reset()
        log(f"({scenario.key}) latency: {len(samples)} enqueued at {rate:g}/s through the API")
        load = await offer_steadily(
            api.transcripts_url(deployment),
            samples,
            rate=rate,
            headers={"Authorization": f"Bearer {deployment.api_key}"},
            content_type=INGEST_CONTENT_TYPE,
            expect=202,
        )
        deadline = None if settle_seconds is None else time.monotonic() + settle_seconds
        await sink.wait_for(load.accepted, timeout=30, watch=watch, deadline=deadline)
        latency = Latency.measure(
            target_rate=rate,
            achieved_rate=load.achieved_rate,
            accepted_rate=load.accepted_rate,
            sent_at=load.sent_at,
            accepted=load.accepted,
            arrivals=await sink.arrivals(),
            response_seconds=load.response_seconds,
            first_error=load.first_error,
            missing_are_late=settle_seconds is not None,
        )
        if latency.accepted_rate < 0.95 * rate:
            scenario.notes.append(
                f"the API accepted only {latency.accepted_rate:.0f} of the {rate:g} requests/s "
                "offered, so requests queued in front of it: the latency is mostly that wait"
            )
        if latency.accepted < latency.sent:
            scenario.notes.append(
                f"{latency.sent - latency.accepted} enqueue requests failed: {latency.first_error}"
            )
            self.failed = True
        if latency.received < latency.accepted:
            missing = latency.accepted - latency.received
            if settle_seconds is None:
                scenario.notes.append(f"{missing} accepted transcripts never reached the sink")
                self.failed = True
            else:
                scenario.notes.append(
                    f"{missing} accepted transcripts had not reached the sink "
                    f"{settle_seconds:.0f} s after the last request; they count as later than that"
                )
        log(
            f"({scenario.key}) latency p50 {latency.p50_ms or 0:.1f} ms, "
            f"p99 {latency.p99_ms or 0:.1f} ms ({latency.received}/{latency.sent} arrived)"
        )
        return latency

    # -- description -----------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "count": self.args.count,
            "messages_per_transcript": MESSAGES_PER_TRANSCRIPT,
            "offered_rate": self.args.offered_rate,
            "latency_seconds": self.args.latency_seconds,
            "baseline_concurrency": BASELINE_CONCURRENCY,
            "ingest_concurrency": INGEST_CONCURRENCY,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "event_loop": loop.loop_name(),
            "platform": platform.platform(),
            #: Other work on the machine skews every figure; recorded so a reader can tell.
            "load_average_at_start": round(os.getloadavg()[0], 2),
            #: Settings inherited by the chathooks processes (secrets and URLs left out).
            "chathooks_env": {
                name: value
                for name, value in sorted(os.environ.items())
                if name.startswith("CHATHOOKS_") and name not in _PRIVATE_ENV
            },
        }

    def _method(self) -> list[str]:
        rate, seconds = self.args.offered_rate, self.args.latency_seconds
        return [
            "sink: its own process (aiohttp on "
            f"{loop.loop_name()}), answers 200 with an integrationUrl, notes each transcript id's "
            "arrival time",
            f"(a): one aiohttp ClientSession, {BASELINE_CONCURRENCY} requests in flight, the Olark "
            "form bodies posted straight to the sink; no persistence",
            "throughput (b, c): all transcripts enqueued through POST /api/v1/sites/{site}/"
            "transcripts with no worker running, then delivery started; deliveries/s = "
            "(arrived - 1) / (last arrival - first arrival) at the sink, so process start-up "
            "is excluded (the time from process start is shown too)",
            "(b): `chathooks serve --no-worker` on SQLite fills the queue and stops; one "
            "`chathooks serve` (API + worker) delivers",
            f"endpoint: the benchmark's endpoint allows {ENDPOINT_IN_FLIGHT} requests in flight "
            f"(`--max-in-flight`), as many as (a) and the peers keep; the neighbour's hanging "
            "endpoint keeps the default cap (CHATHOOKS_ENDPOINT_CONCURRENCY, 8)",
            "(c): `chathooks serve --no-worker` (API) + 1 or 2 `chathooks worker` processes on a "
            "fresh PostgreSQL database, dropped afterwards",
            f"ingest/s: JSON bodies through the API, {INGEST_CONCURRENCY} requests in flight, "
            "202s per second on the client",
            f"latency: open loop, {rate:g} enqueue requests/s for {seconds:g} s through the API; "
            "p50/p99 of (arrival at the sink - request sent), matched by transcript id; it "
            "includes the API's own time; the benchmark's workload is frozen out of its own "
            "garbage collector, whose pauses would otherwise count as latency",
            "CPU ms: user + system time of the measured processes (and their children) from "
            "the first arrival at the sink to the last, per delivery; +broker is the Redis "
            "server's (INFO cpu) or the PostgreSQL backends' serving the database",
            f"conversations: count/{CHATS_PER_TRANSCRIPTS} chats, {CHAT_CONCURRENCY} at once, "
            f"each {chats.CALLS_PER_CHAT} calls (start, {chats.LINES_PER_CHAT} lines from both "
            "sides, !lead halfway, close) to `chathooks serve --no-worker` on SQLite; CPU per "
            "call is the API process's; then `chathooks serve` drains the posts they queued, "
            "every POST counted at the sink",
            f"chat-growth: {GROWTH_CHATS} chats ({QUICK_GROWTH_CHATS} with --quick) filled "
            f"through POST .../messages on `chathooks serve --no-worker` (SQLite); "
            f"{growth.WINDOW} consecutive lines from line {growth.NEAR_LINE} and from line "
            f"{growth.FAR_LINE:,} ({QUICK_GROWTH_FAR:,} with --quick) of each chat sent one at "
            "a time, the API process's CPU (all threads, /proc/<pid>/task/*/schedstat) read "
            "around each call; ratio = median far / median near",
            f"streams: `chathooks serve` on SQLite, POST .../transcripts offered at "
            f"{STREAMS_RATE:g}/s ({STREAMS_REQUESTS:,} requests, {QUICK_STREAMS_REQUESTS} with "
            f"--quick, for each condition), p99 of the API's 202, in {STREAMS_ROUNDS} "
            f"alternating rounds (one with --quick) with no console open and with "
            f"{OPEN_STREAMS} ({QUICK_OPEN_STREAMS} with --quick) event streams of as many chats "
            "open; ratio = p99 beside the streams / p99 alone; the API process's CPU per "
            "ingest under each condition is noted too",
            f"history: finished deliveries (with payload and attempt rows) written in bulk SQL, "
            f"{HISTORY_SMALL:,} and then {self.args.history_rows:,}; the same batch (count/"
            f"{HISTORY_BATCH_DIVISOR}, at least {HISTORY_MIN_BATCH:,}) ingested and drained by "
            "`chathooks serve`; ratio = CPU ms per delivery at the large size over the small "
            "(claim, post and record: the post is the same at both sizes); GET /metrics timed "
            f"{METRICS_SCRAPES} times after the drain on each backend (median shown); the "
            "ratio of the fastest at the large size over the small is held to target 5",
            "noisy-neighbour: one `chathooks serve` on SQLite, a healthy site posting to the "
            "sink and a second site whose endpoint holds every request (past the sender's "
            f"timeout) with a backlog of count/{NOISY_BACKLOG_DIVISOR}; the latency phase runs "
            "for the healthy site alone, then again once the neighbour's requests hang; "
            f"transcripts not arrived {NOISY_SETTLE_SECONDS:.0f} s after the load count as "
            "later than that; ratio = p99 beside / p99 alone",
            "celery: Celery 5, Redis broker on loopback (an empty database of its own, flushed "
            "after), task_acks_late, no result backend, one urllib3 PoolManager per process, "
            "worker --without-gossip --without-mingle --without-heartbeat; pools prefork x2 "
            "with prefetch 1, threads x64 and gevent x64 (prefetch 4); the fastest is the row, "
            "the others are its notes",
            "procrastinate: procrastinate 3 with psycopg on a fresh PostgreSQL database (dropped "
            "after), its async worker with concurrency 64, the task posting with one aiohttp "
            "session; jobs deferred in batches of 1,000",
            "peers: every body enqueued first by a process of the peer's own, then the worker "
            "started; duplicates and missing counted at the sink (a peer is allowed to lose "
            "work and is shown losing it)",
        ]


async def _main(
    args: argparse.Namespace,
    workload: Workload,
    children: Children,
    databases: Databases,
    scratch: Path,
    profiler: Profiler,
) -> Report:
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        benchmark = Benchmark(args, children, databases, scratch, profiler)
        try:
            report = await benchmark.run(session, workload)
        finally:
            children.stop_all()
            await databases.drop_all()
        report.config["complete"] = not benchmark.failed
        if profiler.written:
            report.config["profiles"] = [str(path) for path in profiler.written]
            report.method.append(
                f"profiled with py-spy ({len(profiler.written)} profiles in {args.profile})"
            )
        return report


def _ms(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} ms"


def _cpu_ms(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f} ms"


def warn_if_busy() -> None:
    """Say so when other processes already keep the CPUs busy: the figures will be low."""
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > cpus / 2:
        log(
            f"warning: the machine is busy (load average {load:.1f} on {cpus} CPUs); "
            "figures will be lower and noisier than on an idle machine"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        databases = Databases(args.postgres_url)
    except ValueError as exc:
        print(f"error: --postgres-url: {exc}", file=sys.stderr)
        return 2
    try:
        profiler = Profiler(args.profile, fmt=args.profile_format)
    except ProfilerMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.skip_postgres:
        try:
            loop.run(databases.check())
        except PostgresUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    warn_if_busy()
    latency_count = max(2, round(args.offered_rate * args.latency_seconds))
    try:
        workload = Workload.build(args.count, latency_count)
    except KeyboardInterrupt:
        return 130
    # The workload (tens of thousands of transcripts) lives as long as the run. Left to the
    # collector, each full collection of this process paused the load generator for up to
    # 200 ms in the middle of a latency phase, which the figures then charged to chathooks.
    freeze_startup_objects()
    keep_logs = args.log_dir is not None
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="chathooks-bench-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chathooks-bench-") as scratch:
        env = {**os.environ, "CHATHOOKS_ALLOWED_DESTINATIONS": "127.0.0.0/8"}
        # The fresh PostgreSQL databases need a service key; one for the run serves all of them.
        env.setdefault("CHATHOOKS_SECRET_KEY", new_key())
        children = Children(log_dir, env)
        try:
            report = loop.run(_main(args, workload, children, databases, Path(scratch), profiler))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted: stopped every process and dropped the databases", file=sys.stderr)
            if not keep_logs:
                shutil.rmtree(log_dir, ignore_errors=True)
            return 130
        except Exception:
            log(f"the benchmark failed; the logs of the processes it started are in {log_dir}")
            raise
        finally:
            children.stop_all()
            if databases.created:
                with suppress(Exception):
                    loop.run(databases.drop_all())
    complete = bool(report.config.get("complete"))
    if complete and not keep_logs:
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        # Something failed (or the logs were asked for): keep what the processes said.
        report.config["logs"] = str(log_dir)
    if args.json_file is not None:
        args.json_file.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print()
        print(report.table())
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
