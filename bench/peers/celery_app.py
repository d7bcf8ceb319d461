"""Celery 5 on the Redis broker: one task that posts a body with a pooled HTTP client.

Configured from the environment by the benchmark (``BENCH_CELERY_*``), so
that a worker started with ``celery -A bench.peers.celery_app worker`` and the
enqueuer agree on the broker and the queue. ``acks_late`` so that a task is
acknowledged only after its POST, as a delivery queue must; no result backend
(nothing reads results). The HTTP client is one ``urllib3.PoolManager`` per
process: thread-safe for the threads pool, cooperative under gevent's patching.
"""

from __future__ import annotations

import os
from typing import Any

import urllib3
from celery import Celery

BROKER_URL = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "chathooks-bench")
PREFETCH = int(os.environ.get("BENCH_CELERY_PREFETCH", "4"))
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

app = Celery("chathooks_bench", broker=BROKER_URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=PREFETCH,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_http = urllib3.PoolManager(maxsize=128, retries=False, timeout=urllib3.Timeout(total=30))


@app.task(name="bench.deliver", acks_late=True)  # type: ignore[untyped-decorator]
def deliver(url: str, body: str) -> None:
    """POST one form body; anything but 200 raises, so the task fails visibly."""
    response: Any = _http.request(
        "POST", url, body=body.encode("ascii"), headers={"Content-Type": FORM_CONTENT_TYPE}
    )
    if response.status != 200:
        raise RuntimeError(f"the sink answered HTTP {response.status}")
