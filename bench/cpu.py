"""CPU time used by processes, to tell cost per delivery apart from waiting.

Deliveries per second depend on everything else the machine is doing; CPU
milliseconds per delivery hardly do, so they are the figure to compare when
the machine is shared. Read from ``/proc`` (Linux); None elsewhere.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    if pid == os.getpid():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Fields 14 and 15 of stat(5) (utime, stime); index 11 and 12 after the command name.
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def total_cpu_seconds(pids: Iterable[int]) -> float | None:
    """CPU seconds of all ``pids`` together; None when any cannot be read."""
    total = 0.0
    for pid in pids:
        seconds = process_cpu_seconds(pid)
        if seconds is None:
            return None
        total += seconds
    return total


def per_item_ms(before: float | None, after: float | None, items: int) -> float | None:
    """CPU milliseconds per item between two readings."""
    if before is None or after is None or items <= 0:
        return None
    return (after - before) * 1000 / items


def scheduled_cpu_seconds(pid: int) -> float | None:
    """CPU seconds all threads of ``pid`` ran so far, to the nanosecond (``schedstat``).

    ``/proc/<pid>/stat`` counts in clock ticks (10 ms), too coarse for one API
    call; the scheduler's own account is exact. None where it is not offered.
    """
    total = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/schedstat", encoding="ascii") as stat:
                total += int(stat.read().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile
    return total / 1e9
