"""Enqueue every body of a file as a Celery task, then exit (``python -m``, from the benchmark)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.peers import bodies
from bench.peers.celery_app import app, deliver


def main(argv: list[str]) -> int:
    path, url = Path(argv[0]), argv[1]
    count = 0
    with app.producer_or_acquire() as producer:
        for body in bodies.read(path):
            deliver.apply_async((url, body), producer=producer)
            count += 1
    print(f"enqueued {count}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
