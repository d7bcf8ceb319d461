"""CPU meters for whole sets of processes: a process tree, a Redis server, PostgreSQL backends.

A peer's cost is not one pid: Celery's prefork pool is a parent and its
children, procrastinate's work is split between its worker and the PostgreSQL
backends serving it, Celery's broker is the Redis server. Each meter reads
CPU seconds keyed by something stable (a pid, the server), and :func:`spent`
adds up what each key used between two readings; a key first seen in the
second reading (a backend that connected meanwhile) counts from zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import asyncpg
import psutil
import redis

from bench.cpu import process_cpu_seconds

Reading = dict[str, float]


class CpuMeter(Protocol):
    async def read(self) -> Reading: ...


def spent(before: Mapping[str, float], after: Mapping[str, float]) -> float:
    """CPU seconds used between two readings of one meter."""
    return sum(max(0.0, value - before.get(key, 0.0)) for key, value in after.items())


class ProcessTree:
    """The given processes and all their descendants (a prefork pool's children too)."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)

    async def read(self) -> Reading:
        reading: Reading = {}
        for pid in self.pids:
            try:
                root = psutil.Process(pid)
                family = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in family:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                reading[str(process.pid)] = times.user + times.system
        return reading


class RedisServer:
    """The Redis server's own CPU, from ``INFO cpu`` (it is shared: others' use counts too)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    async def read(self) -> Reading:
        info = self.client.info("cpu")
        return {"redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"])}


class PostgresBackends:
    """The PostgreSQL backend processes connected to one database."""

    def __init__(self, admin_url: str, database: str) -> None:
        self.admin_url = admin_url
        self.database = database

    async def read(self) -> Reading:
        connection = await asyncpg.connect(self.admin_url, timeout=5)
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.database,
            )
        finally:
            await connection.close()
        reading: Reading = {}
        for row in rows:
            seconds = process_cpu_seconds(int(row["pid"]))
            if seconds is not None:
                reading[str(row["pid"])] = seconds
        return reading


async def read_all(meters: Iterable[CpuMeter]) -> list[Reading]:
    return [await meter.read() for meter in meters]


def spent_all(before: list[Reading], after: list[Reading]) -> float:
    return sum(spent(b, a) for b, a in zip(before, after, strict=True))
