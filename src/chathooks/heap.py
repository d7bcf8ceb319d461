"""Keeping the garbage collector's pauses out of a long-running process's latency.

CPython's cyclic collector now and then walks every tracked object (a full,
"generation 2" collection). A started service holds a few hundred thousand
objects that live as long as it does: modules, classes, the web framework's
routes, the database metadata. Walking them took 75-90 ms in ``chathooks
serve``; at 500 ingest requests/s a full collection came every 1-2 s, and each
one stalled every request in flight, so the p99 of enqueue-to-delivery was set
by the collector (130 ms) rather than by the work (25 ms). Moving what exists
once the service has started into the permanent generation
(:func:`gc.freeze`) leaves later full collections only the objects made
since, so they take a few milliseconds.

The youngest generation is then collected every :data:`YOUNG_COLLECTION_EVERY`
allocations instead of CPython's 700. A request makes a few hundred container
objects and drops nearly all of them, so at 700 the collector ran about once
per request and walked what the request was still holding: in the chat API it
took 6% of the process's CPU (440 ms of about 7.5 s for 23,000 calls), and 2.4%
(180 ms) at 10,000. A young collection of 10,000 objects takes a fraction of a
millisecond.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_COLLECTION_EVERY", "freeze_startup_objects"]

#: Allocations (net of deallocations) between two collections of the youngest generation.
YOUNG_COLLECTION_EVERY = 10_000


def freeze_startup_objects() -> int:
    """Collect once, then exclude every surviving object from later collections, and
    collect the youngest generation every :data:`YOUNG_COLLECTION_EVERY` allocations.

    Call it once, when start-up is done. Returns how many objects were frozen.
    Frozen objects are never freed, which is what a process's start-up state
    wants; do not call it again and again in a process that builds and drops
    whole applications (a test run).
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, oldest)
    return gc.get_freeze_count()
