"""Child processes the benchmark starts, and the guarantee that they all stop.

Every child runs in its own process group with its output in a log file, so
a Ctrl-C in the terminal reaches only the benchmark, which then stops each
child it started (SIGTERM, then SIGKILL after a grace period) by its group
id. When a child dies early, the error shows the end of its log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

STOP_GRACE_SECONDS = 10.0


class ChildFailed(RuntimeError):
    """A child process exited or never became ready; the message carries its log tail."""


class Child:
    """One started process, its log, and how to stop it."""

    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], log: Path):
        self.name = name
        self.argv = list(argv)
        self.log_path = log
        self._log: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            self.argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise :class:`ChildFailed` (with the log tail) when the process has exited."""
        if not self.running():
            raise ChildFailed(
                f"{self.name} exited with status {self.process.returncode}\n"
                f"$ {' '.join(self.argv)}\n{self.log_tail()}"
            )

    def wait_for_log(self, marker: str, timeout: float) -> str:
        """Block until ``marker`` appears in the log; return the line holding it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._log.flush()
            for line in self.log_path.read_text(errors="replace").splitlines():
                if marker in line:
                    return line
            self.check_alive()
            time.sleep(0.05)
        raise ChildFailed(
            f"{self.name} did not print {marker!r} within {timeout:.0f} s\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM the child's process group, SIGKILL it if it lingers."""
        if self.running():
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        else:
            # The leader is gone; anything it left in its group still goes.
            self._signal(signal.SIGKILL)
        self._log.close()

    def _signal(self, signum: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


class Children:
    """The processes of one benchmark run; :meth:`stop_all` ends every one still running."""

    def __init__(self, log_dir: Path, env: Mapping[str, str]) -> None:
        self.log_dir = log_dir
        self.env = dict(env)
        self._started: list[Child] = []
        self._counter = 0

    def start(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> Child:
        """Start ``argv`` in the background with ``env`` added to the run's environment."""
        self._counter += 1
        log = self.log_dir / f"{self._counter:02d}-{name.replace(' ', '-')}.log"
        child = Child(name, argv, env={**self.env, **(env or {})}, log=log)
        self._started.append(child)
        return child

    def run(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 120.0,
    ) -> str:
        """Run a short command to completion; its stdout, or :class:`ChildFailed`."""
        done = subprocess.run(
            list(argv),
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise ChildFailed(
                f"{name} failed with status {done.returncode}\n$ {' '.join(argv)}\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        return done.stdout

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self._started:
            self._started.remove(child)

    def stop_all(self) -> None:
        for child in reversed(self._started):
            child.stop()
        self._started.clear()


def free_port() -> int:
    """A loopback port that was free a moment ago, for a child that takes ``--port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def python_module(module: str, *args: str) -> list[str]:
    """argv to run ``python -m module`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
