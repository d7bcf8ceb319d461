"""The peers' phases: Celery on Redis in several pool configurations, procrastinate on PostgreSQL.

Each phase is the same as chathooks' (b): every body enqueued first, with no
worker running, then the worker started and the drain timed at the sink.
Broker and database state is made fresh for each run and removed after it:
Celery gets an empty Redis database of its own (flushed afterwards),
procrastinate a new PostgreSQL database (dropped afterwards).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from bench.drain import measure_drain
from bench.meters import PostgresBackends, ProcessTree, RedisServer
from bench.peers import bodies as body_file
from bench.postgres import Databases
from bench.processes import Children, python_module
from bench.results import Scenario, Throughput
from bench.sink_control import Sink

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
#: A peer that loses work is reported with what it lost, after this long with no arrival.
PEER_STALL_SECONDS = 20.0
ENQUEUE_TIMEOUT = 900.0
#: Concurrency for I/O-bound work, as procrastinate's and Celery's documentation suggest.
IO_CONCURRENCY = 64


@dataclass(frozen=True)
class CeleryConfig:
    name: str
    pool_args: tuple[str, ...]
    prefetch: int


CELERY_CONFIGS = (
    CeleryConfig("prefork x2, prefetch 1", ("--pool", "prefork", "--concurrency", "2"), 1),
    CeleryConfig("threads x64", ("--pool", "threads", "--concurrency", str(IO_CONCURRENCY)), 4),
    CeleryConfig("gevent x64", ("--pool", "gevent", "--concurrency", str(IO_CONCURRENCY)), 4),
)

Log = Callable[[str], None]


class PeerUnavailable(RuntimeError):
    """A peer's broker cannot be used; the message says why."""


def _repo_env() -> dict[str, str]:
    """Lets the peers' processes import ``bench.peers`` from the checkout."""
    here = str(Path.cwd())
    current = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": here if not current else f"{here}{os.pathsep}{current}"}


def _free_redis_db(url: str) -> tuple[str, redis.Redis]:
    """An empty Redis database (15 down to 1), so flushing it afterwards touches nobody else."""
    for number in range(15, 0, -1):
        candidate = f"{url.rstrip('/')}/{number}"
        client = redis.Redis.from_url(candidate)
        try:
            if client.dbsize() == 0:
                return candidate, client
        except redis.RedisError as exc:
            raise PeerUnavailable(f"Redis at {url} is not usable ({exc})") from exc
    raise PeerUnavailable(f"no empty database on the Redis server at {url}")


async def celery_phase(
    *,
    children: Children,
    sink: Sink,
    bodies: Sequence[bytes],
    scratch: Path,
    redis_url: str,
    log: Log,
) -> Scenario:
    """Every configuration in turn; the scenario is the fastest, the others are its variants."""
    path = scratch / "celery-bodies.jsonl"
    body_file.write(path, bodies)
    runs: list[tuple[CeleryConfig, Throughput]] = []
    failures: list[str] = []
    for config in CELERY_CONFIGS:
        try:
            runs.append(
                (config, await _celery_run(children, sink, path, bodies, redis_url, config, log))
            )
        except Exception as exc:  # one pool failing must not hide the others' figures
            failures.append(f"Celery {config.name} FAILED: {exc}")
            log(f"(celery) {config.name} FAILED: {exc}")
    scenario = Scenario(key="celery", title="Celery 5 + Redis")
    scenario.notes.extend(failures)
    if not runs:
        scenario.notes.append("FAILED: no Celery configuration finished")
        return scenario
    best_config, best = max(runs, key=lambda run: run[1].rate)
    scenario.title = f"Celery 5 + Redis, {best_config.name}"
    scenario.throughput = best
    for config, throughput in runs:
        scenario.variants.append({"name": config.name, **asdict(throughput)})
        if config is not best_config:
            scenario.notes.append(f"also ran {config.name}: {_summary(throughput)}")
    return scenario


async def _celery_run(
    children: Children,
    sink: Sink,
    path: Path,
    bodies: Sequence[bytes],
    redis_url: str,
    config: CeleryConfig,
    log: Log,
) -> Throughput:
    broker, client = _free_redis_db(redis_url)
    env = {
        **_repo_env(),
        "BENCH_CELERY_BROKER": broker,
        "BENCH_CELERY_QUEUE": "chathooks-bench",
        "BENCH_CELERY_PREFETCH": str(config.prefetch),
    }
    try:
        await sink.reset()
        log(f"(celery) {config.name}: enqueueing {len(bodies)} tasks on {broker}")
        children.run(
            "celery enqueue",
            python_module("bench.peers.celery_enqueue", str(path), sink.webhook_url),
            env=env,
            timeout=ENQUEUE_TIMEOUT,
        )
        started = time.time()
        worker = children.start(
            "celery-worker",
            python_module(
                "celery",
                "-A",
                "bench.peers.celery_app",
                "worker",
                *config.pool_args,
                "--prefetch-multiplier",
                str(config.prefetch),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ),
            env=env,
        )
        try:
            throughput = await measure_drain(
                sink,
                len(bodies),
                started,
                delivering=[ProcessTree([worker.pid])],
                broker=[RedisServer(broker)],
                watch=(worker,),
                allow_missing=True,
                stall_seconds=PEER_STALL_SECONDS,
            )
        finally:
            children.stop(worker)
        log(f"(celery) {config.name}: {_summary(throughput)}")
        return throughput
    finally:
        client.flushdb()


async def procrastinate_phase(
    *,
    children: Children,
    sink: Sink,
    bodies: Sequence[bytes],
    scratch: Path,
    databases: Databases,
    log: Log,
) -> Scenario:
    """procrastinate's async worker x64 on a fresh database, dropped afterwards."""
    scenario = Scenario(key="procrastinate", title=f"procrastinate, async x{IO_CONCURRENCY}")
    path = scratch / "procrastinate-bodies.jsonl"
    body_file.write(path, bodies)
    async with databases.fresh() as url:
        env = {**_repo_env(), "BENCH_PROCRASTINATE_DSN": url}
        await sink.reset()
        log(f"(procrastinate) enqueueing {len(bodies)} jobs on {url.rsplit('/', 1)[1]}")
        children.run(
            "procrastinate enqueue",
            python_module("bench.peers.procrastinate_enqueue", str(path), sink.webhook_url),
            env=env,
            timeout=ENQUEUE_TIMEOUT,
        )
        started = time.time()
        worker = children.start(
            "procrastinate-worker",
            [
                *_procrastinate_command(),
                "--app",
                "bench.peers.procrastinate_app.app",
                "--log-level",
                "warning",
                "worker",
                "--concurrency",
                str(IO_CONCURRENCY),
                "--queues",
                "chathooks_bench",
            ],
            env=env,
        )
        try:
            scenario.throughput = await measure_drain(
                sink,
                len(bodies),
                started,
                delivering=[ProcessTree([worker.pid])],
                broker=[PostgresBackends(databases.admin_url, url.rsplit("/", 1)[1])],
                watch=(worker,),
                allow_missing=True,
                stall_seconds=PEER_STALL_SECONDS,
            )
        finally:
            children.stop(worker)
    log(f"(procrastinate) {_summary(scenario.throughput)}")
    return scenario


def _procrastinate_command() -> list[str]:
    beside = Path(sys.executable).with_name("procrastinate")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("procrastinate")
    if found:
        return [found]
    return python_module("procrastinate")


def _summary(throughput: Throughput) -> str:
    cpu = throughput.cpu_ms_per_delivery
    broker = throughput.broker_cpu_ms_per_delivery
    return (
        f"{throughput.rate:,.0f} deliveries/s, "
        + (f"{cpu:.2f} CPU ms each" if cpu is not None else "CPU not measured")
        + (f" (+{broker:.2f} in the broker)" if broker is not None else "")
        + f", {throughput.duplicates} duplicates, {throughput.missing} missing"
    )
