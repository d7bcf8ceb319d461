"""``chathooks`` commands in real processes, for tests that kill, restart and read them."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from support.services import environment_without_settings

CHATHOOKS = str(Path(sys.executable).with_name("chathooks"))
ADMIN_KEY = "chadm_process-test-admin-key"


def environment(**extra: str) -> dict[str, str]:
    """This environment without any CHATHOOKS_* of the caller's, plus quick test settings."""
    env = environment_without_settings()
    env.update(
        CHATHOOKS_ALLOWED_DESTINATIONS="127.0.0.0/8",
        CHATHOOKS_POLL_INTERVAL="0.05",
        CHATHOOKS_RETRY_SCHEDULE="0.2,0.2",
        CHATHOOKS_ADMIN_KEY=ADMIN_KEY,
    )
    env.update(extra)
    return env


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHATHOOKS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=environment(**env),
        check=False,
    )


def run_json(*args: str, cwd: Path, **env: str) -> Any:
    done = run(*args, "--json", cwd=cwd, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    log: Path
    started_at: float
    base_url: str | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL


@contextmanager
def started(args: list[str], cwd: Path, name: str, **env: str) -> Iterator[Process]:
    """A ``chathooks`` command in its own process until the block ends (then SIGTERM)."""
    log = cwd / f"{name}.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [CHATHOOKS, *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=environment(**env),
        )
    handle = Process(process, log, time.monotonic())
    try:
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def serving(
    cwd: Path, database_url: str, *extra: str, name: str = "serve", **env: str
) -> Iterator[Process]:
    """``chathooks serve`` on a free port, once it answers ``/healthz``."""
    port = free_port()
    args = ["serve", "--port", str(port), "--database-url", database_url, *extra]
    with started(args, cwd, name, **env) as process:
        process.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.process.poll() is None, f"serve exited:\n{process.output()}"
            try:
                if httpx.get(f"{process.base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"serve did not answer:\n{process.output()}"
            time.sleep(0.05)
        yield process


def wait_until(check: Any, *, timeout: float = 30.0, interval: float = 0.1, what: str = "") -> Any:
    """``check()`` once it returns something truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(interval)
