"""The fault-injection suite: deliveries through a bad day, on SQLite and PostgreSQL.

``chathooks serve`` (with its worker) and one ``chathooks worker`` run as real
processes against one database while transcripts keep arriving through the
API and a receiver misbehaves on 30 % of the requests (503s, timeouts,
connection resets, and 200s with a NUL byte, invalid UTF-8 or 10 MB bodies).
Meanwhile the worker and then ``serve`` are killed with SIGKILL and started
again, and on PostgreSQL (a private server, so the shared one is untouched)
the database restarts once and then stays away for 15 s.

Afterwards every transcript the API accepted has been delivered and recorded
as succeeded, a delivery was answered twice only if it was in flight in a
process that was killed, and nothing arrived after its success was recorded;
and what a killed process held was under way again within 10 s of its
restart, with the default 120 s lease.

Run it alone with ``make faults``; ``make test`` runs it too.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from chathooks.db.engine import create_engine
from chathooks.db.migrate import upgrade
from chathooks.db.tables import deliveries
from support.faulty_receiver import FaultyReceiver
from support.private_postgres import private_postgres
from support.service import ADMIN_KEY
from support.services import environment_without_settings

CHATHOOKS = str(Path(sys.executable).with_name("chathooks"))
CONCURRENCY = 16
#: The default lease: a killed process's claims must come back long before it runs out.
LEASE_SECONDS = 120
#: Within this long of a killed process's restart, what it held is being sent again.
RECOVERY_SECONDS = 10.0
TRANSCRIPTS = 360
OUTAGE_SECONDS = 15.0


def _environment(database_url: str) -> dict[str, str]:
    env = environment_without_settings()
    env.update(
        {
            "CHATHOOKS_DATABASE_URL": database_url,
            "CHATHOOKS_ADMIN_KEY": ADMIN_KEY,
            "CHATHOOKS_ALLOWED_DESTINATIONS": "127.0.0.0/8",
            "CHATHOOKS_RETRY_SCHEDULE": ",".join(["0.2"] * 30),
            "CHATHOOKS_CONNECT_TIMEOUT": "1",
            "CHATHOOKS_TOTAL_TIMEOUT": "2",
            "CHATHOOKS_LEASE_SECONDS": str(LEASE_SECONDS),
            "CHATHOOKS_POLL_INTERVAL": "0.1",
            "CHATHOOKS_WORKER_CONCURRENCY": str(CONCURRENCY),
            "CHATHOOKS_ENDPOINT_CONCURRENCY": str(CONCURRENCY),
            # 30 % faults are the point here, not a receiver to shield the others from.
            "CHATHOOKS_BREAKER_THRESHOLD": "1000000",
        }
    )
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """``serve`` and a ``worker``, each restartable after a SIGKILL."""

    def __init__(self, database_url: str, logs: Path) -> None:
        self.env = _environment(database_url)
        self.logs = logs
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.kills = 0

    def start(self, name: str) -> None:
        args = ["serve", "--port", str(self.port)] if name == "serve" else ["worker"]
        log = (self.logs / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            [CHATHOOKS, *args], stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        if name == "serve":
            self.wait_healthy()

    def kill(self, name: str) -> None:
        self.running[name].send_signal(signal.SIGKILL)
        self.running[name].wait(30)
        self.kills += 1

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve is not healthy:\n{self.log_text()}")

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-5000:] for p in self.logs.glob("*.log"))

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Feeder(threading.Thread):
    """Posts transcripts one after another; remembers the deliveries of those accepted."""

    def __init__(self, base: str, site: str, key: str, count: int) -> None:
        super().__init__(name="feeder", daemon=True)
        self.base, self.site, self.key, self.count = base, site, key, count
        self.accepted: list[str] = []
        self.refused = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            for n in range(self.count):
                document = {"kind": "Conversation", "id": f"chat-{n}", "items": []}
                while True:
                    try:
                        answer = client.post(
                            f"/api/v1/sites/{self.site}/transcripts",
                            json=document,
                            headers={"Authorization": f"Bearer {self.key}"},
                        )
                    except httpx.TransportError:
                        answer = None
                    if answer is not None and answer.status_code == 202:
                        self.accepted.extend(d["id"] for d in answer.json()["deliveries"])
                        break
                    # serve is down or its database is: nothing was accepted; try again
                    self.refused += 1
                    time.sleep(0.2)
                time.sleep(0.02)

    def wait_for(self, accepted: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < accepted:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.accepted)} transcripts were accepted")
            time.sleep(0.05)


def _claims(database_url: str) -> dict[str, str | None]:
    """The lease owner of every delivery being sent now."""

    async def read() -> dict[str, str | None]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(deliveries.c.id, deliveries.c.lease_owner).where(
                        deliveries.c.status == "delivering"
                    )
                )
                return {row.id: row.lease_owner for row in rows}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _kill_and_restart(processes: Processes, name: str, database_url: str) -> float:
    """SIGKILL ``name``, start it again; seconds until every claim held at the kill moved on."""
    processes.kill(name)
    held = _claims(database_url)
    processes.start(name)
    restarted = time.monotonic()
    while True:
        now = _claims(database_url)
        if all(now.get(delivery) != owner for delivery, owner in held.items()):
            return time.monotonic() - restarted
        if time.monotonic() - restarted > 60:
            stuck = {d: o for d, o in held.items() if now.get(d) == o}
            raise AssertionError(f"claims of the killed {name} never came back: {stuck}")
        time.sleep(0.1)


def _states(database_url: str) -> dict[str, tuple[str, float | None]]:
    async def read() -> dict[str, tuple[str, float | None]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(deliveries.c.id, deliveries.c.status, deliveries.c.finished_at)
                )
                return {row.id: (row.status, row.finished_at) for row in rows}
        finally:
            await engine.dispose()

    return asyncio.run(read())


@contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'chathooks.db'}", None
        return
    with private_postgres() as server:
        yield server.url, server


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_accepted_transcript_is_delivered_through_faults_kills_and_outages(
    backend: str, tmp_path: Path
) -> None:
    with (
        _database(backend, tmp_path) as (database_url, server),
        FaultyReceiver(fault_rate=0.3, timeout_seconds=4.0) as receiver,
    ):
        upgrade(database_url)
        processes = Processes(database_url, tmp_path)
        try:
            processes.start("serve")
            processes.start("worker")
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            site = httpx.post(
                f"{processes.base}/api/v1/sites", json={"name": "faults"}, headers=admin
            ).json()
            made = httpx.post(
                f"{processes.base}/api/v1/sites/{site['id']}/endpoints",
                json={"url": receiver.url},
                headers={"Authorization": f"Bearer {site['api_key']}"},
            )
            assert made.status_code == 201, made.text
            feeder = Feeder(processes.base, site["id"], site["api_key"], TRANSCRIPTS)
            feeder.start()

            feeder.wait_for(60)
            recoveries = [_kill_and_restart(processes, "worker", database_url)]
            feeder.wait_for(120)
            recoveries.append(_kill_and_restart(processes, "serve", database_url))
            if server is not None:
                feeder.wait_for(180)
                server.restart()
                feeder.wait_for(240)
                server.stop()
                time.sleep(OUTAGE_SECONDS)
                server.start()
            feeder.join(300)
            assert not feeder.is_alive(), "the feeder did not finish"

            deadline = time.monotonic() + 240
            while True:
                states = _states(database_url)
                waiting = [d for d in feeder.accepted if states.get(d, ("?",))[0] != "succeeded"]
                if not waiting:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{len(waiting)} accepted deliveries not succeeded, e.g. "
                        f"{[(d, states.get(d)) for d in waiting[:5]]}\n{processes.log_text()}"
                    )
                time.sleep(0.5)
            time.sleep(2.0)  # anything still to arrive after being recorded would show now
        finally:
            processes.stop_all()

        accepted = set(feeder.accepted)
        assert len(accepted) == TRANSCRIPTS
        successes = receiver.successes()
        assert accepted <= set(successes), "an accepted transcript never got a success answer"
        twice = {d for d, n in successes.items() if n > 1}
        # Only what a killed process had in flight may be answered twice.
        assert len(twice) <= processes.kills * CONCURRENCY, sorted(twice)
        states = _states(database_url)
        after = [
            a
            for a in receiver.arrivals()
            if a.webhook_id in states
            and states[a.webhook_id][1] is not None
            and a.at > (states[a.webhook_id][1] or 0) + 0.05
        ]
        assert after == [], f"sent again after its success was recorded: {after[:5]}"
        # Not the lease: a restarted process releases what its dead predecessor held.
        assert max(recoveries) < RECOVERY_SECONDS, recoveries
        kinds = {a.kind for a in receiver.arrivals()}
        assert {"http_503", "timeout", "reset", "nul", "invalid_utf8", "ten_mb"} <= kinds
        print(
            f"{backend}: {len(accepted)} delivered, {len(receiver.arrivals())} requests, "
            f"{len(twice)} answered twice, {feeder.refused} posts refused during outages, "
            f"recovered in {', '.join(f'{r:.1f}' for r in recoveries)} s after each restart"
        )
