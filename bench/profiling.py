"""Optional flame graphs of the chathooks processes while a phase is measured.

``--profile DIR`` attaches ``py-spy record`` (not a chathooks dependency:
``pip install py-spy``) to the processes of each measured phase and writes
one SVG per process and phase, so a slow figure comes with where the time went.
py-spy samples from outside the process (``--nonblocking``), which costs the
measured process little, but a profiled run is still not the run to quote.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.processes import Child

SAMPLES_PER_SECOND = 100


class ProfilerMissing(RuntimeError):
    """``--profile`` was asked for but py-spy is not installed."""


def find_py_spy() -> str:
    """The py-spy executable next to this interpreter or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise ProfilerMissing(
            "--profile needs py-spy; install it with `.venv/bin/pip install py-spy`"
        )
    return found


class Profiler:
    """Records flame graphs into ``directory``; does nothing when it is None."""

    def __init__(self, directory: Path | None, *, fmt: str = "flamegraph") -> None:
        self.directory = directory
        #: py-spy's output: ``flamegraph`` (SVG), ``speedscope`` or ``raw`` (collapsed stacks).
        self.format = fmt
        self.written: list[Path] = []
        self._py_spy = find_py_spy() if directory is not None else ""
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def recording(self, label: str, processes: Sequence[Child]) -> Iterator[None]:
        """Sample ``processes`` for the duration of the block."""
        if self.directory is None:
            yield
            return
        spies: list[tuple[subprocess.Popen[bytes], Path]] = []
        for child in processes:
            suffix = {"flamegraph": "svg", "speedscope": "json"}.get(self.format, "txt")
            output = self.directory / f"{label}-{child.name}.{suffix}"
            argv = [
                self._py_spy,
                "record",
                "--pid",
                str(child.pid),
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--nonblocking",
                "--format",
                self.format,
                "--output",
                str(output),
            ]
            spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            spies.append((spy, output))
        try:
            yield
        finally:
            for spy, output in spies:
                if spy.poll() is None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
                try:
                    spy.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait()
                if output.exists():
                    self.written.append(output)
