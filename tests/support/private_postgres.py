"""A PostgreSQL server of a test's own, to stop, restart and take away at will.

The machine's shared server serves every other test, so a test that needs a
database restart or an outage starts its own with ``initdb`` and ``pg_ctl``
(from the PostgreSQL installation, as the ``postgres`` user when the tests
run as root, which PostgreSQL refuses), on a free port, with a data
directory of its own in the system's temporary folder (the test's own folder
is not open to that user); it is removed afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.services import postgres_secret_key, unavailable


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivatePostgres:
    """One server: ``url`` reaches database ``chathooks``; stop, start and restart it."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="chathooks-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/chathooks"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        full = ["runuser", "-u", "postgres", "--", *command] if self._as_postgres else command
        return subprocess.run(list(full), capture_output=True, text=True, timeout=120, check=check)

    def initialise(self) -> None:
        initdb, ctl = _bin("initdb"), _bin("pg_ctl")
        if initdb is None or ctl is None:
            unavailable("initdb and pg_ctl are not installed (apt-get install postgresql)")
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(str(initdb), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-N")
        self.start()
        self._run(
            str(_bin("createdb")),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "chathooks",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(_bin("pg_ctl")),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._run(str(_bin("pg_ctl")), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_until_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                self._run(
                    str(_bin("pg_isready")), "-h", "127.0.0.1", "-p", str(self.port), check=False
                ).returncode
                == 0
            ):
                return
            time.sleep(0.1)
        raise AssertionError(f"the private PostgreSQL did not come up:\n{self.log.read_text()}")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.initialise()
        with postgres_secret_key():
            yield server
    finally:
        server._run(
            str(_bin("pg_ctl")), "-D", str(server.data), "-m", "immediate", "stop", check=False
        )
