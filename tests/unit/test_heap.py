"""Freezing start-up objects, checked in a fresh interpreter (freezing is for good)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from chathooks.api.app import create_app
create_app()
assert gc.get_freeze_count() == 0
frozen = freeze_startup_objects()
assert frozen == gc.get_freeze_count() > 10_000, frozen
# What start-up made is no longer scanned: a full collection now looks at far fewer objects.
assert len(gc.get_objects()) < frozen / 2, (len(gc.get_objects()), frozen)
# A request's worth of short-lived containers no longer sets off a young collection each
# (at CPython's 700 these 5,000 would have set off 7).
collections = gc.get_stats()[0]["collections"]
held = [[index] for index in range(5_000)]
assert gc.get_stats()[0]["collections"] == collections, gc.get_threshold()
print(frozen)
"""


def test_start_up_objects_leave_the_collectors_scans() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from chathooks.heap import freeze_startup_objects\n" + SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 10_000
