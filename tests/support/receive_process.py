"""``chathooks receive`` in a process of its own, as a user runs it, for the tests that need one.

The receiver is started on a free loopback port with the installed console
script and waited for on ``/healthz``; it is stopped when the block ends.
"""

from __future__ import annotations

import os
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
import pytest

from chathooks.wire import FORM_CONTENT_TYPE

CHATHOOKS = str(Path(sys.executable).with_name("chathooks"))
FORM = {"content-type": FORM_CONTENT_TYPE}
#: The read key the test receivers are started with (unless a test chooses otherwise).
READ_KEY = "chrd_test-read-key-0123456789"
READER = {"Authorization": f"Bearer {READ_KEY}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningReceiver:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(f"{self.base}/webhook", content=body, headers={**FORM, **(headers or {})})

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", params=params, headers=READER)

    def conversations(self, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/api/transcripts", **params)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@contextmanager
def running_receiver(
    tmp_path: Path,
    *args: str,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
    read_key: str | None = READ_KEY,
) -> Iterator[RunningReceiver]:
    """``chathooks receive`` in its own process, until the block ends.

    It is started with ``--read-key READ_KEY`` unless ``read_key`` is None (then it
    generates its own) or ``args`` has ``--public``.
    """
    port = port or free_port()
    if read_key is not None and "--public" not in args:
        args = (*args, "--read-key", read_key)
    command = [CHATHOOKS, "receive", "--port", str(port), *args]
    if database_url is not None:
        command += ["--database-url", database_url]
    log = tmp_path / f"receive-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env={**os.environ, **(env or {})},
        )
    running = RunningReceiver(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_healthy(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(running: RunningReceiver) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            pytest.fail(f"chathooks receive exited:\n{running.log.read_text()}")
        try:
            if httpx.get(f"{running.base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"chathooks receive did not become healthy:\n{running.log.read_text()}")
