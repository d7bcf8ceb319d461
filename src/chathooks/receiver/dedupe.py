"""Remembering recent ``webhook-id`` values, so a redelivery is noticed.

A sender retries whenever it did not see a 2xx in time, so a receiver can get
the same delivery twice (its first answer was lost, or slow). The retry keeps
its ``webhook-id``; remembering the ids seen lately lets a receiver answer 2xx
again without processing the payload twice. Memory is bounded twice over: by
a count (least recently seen forgotten first) and by age, since retries stop
after a while.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["SeenIds"]


class SeenIds:
    """A thread-safe, bounded set of recently seen ids, with LRU eviction and a TTL.

    ``max_size`` caps memory; ``ttl_seconds`` (None: no expiry) should exceed the
    sender's whole retry window, or a late retry looks new. In-memory only: with
    several receiver processes, each remembers only what it saw.
    """

    def __init__(
        self,
        max_size: int = 10_000,
        ttl_seconds: float | None = 24 * 3600,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive or None, got {ttl_seconds}")
        self.max_size = max_size
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        # id -> expiry time; ordered by last sighting, so the oldest expire first.
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_add(self, webhook_id: str) -> bool:
        """Record ``webhook_id``; True if it is new, False if it was seen recently.

        Check and record are one atomic step, so two concurrent deliveries of
        the same id cannot both be treated as new.
        """
        with self._lock:
            now = self._clock()
            self._expire(now)
            is_new = webhook_id not in self._seen
            self._seen[webhook_id] = now + self.ttl_seconds if self.ttl_seconds else float("inf")
            self._seen.move_to_end(webhook_id)
            while len(self._seen) > self.max_size:
                self._seen.popitem(last=False)
            return is_new

    def discard(self, webhook_id: str) -> None:
        """Forget ``webhook_id``, e.g. when processing failed and the retry must be handled."""
        with self._lock:
            self._seen.pop(webhook_id, None)

    def __contains__(self, webhook_id: object) -> bool:
        with self._lock:
            self._expire(self._clock())
            return webhook_id in self._seen

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._seen)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest_id, expiry = next(iter(self._seen.items()))
            if expiry > now:
                break
            del self._seen[oldest_id]
