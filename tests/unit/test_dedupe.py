"""SeenIds: recognising a redelivered webhook-id, within bounded memory."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chathooks.receiver.dedupe import SeenIds


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_sighting_is_new_and_a_redelivery_is_not() -> None:
    seen = SeenIds()
    assert seen.check_and_add("msg_1") is True
    assert seen.check_and_add("msg_1") is False
    assert seen.check_and_add("msg_2") is True
    assert "msg_1" in seen
    assert "msg_3" not in seen
    assert len(seen) == 2


def test_least_recently_seen_is_evicted_first() -> None:
    seen = SeenIds(max_size=2, ttl_seconds=None)
    seen.check_and_add("a")
    seen.check_and_add("b")
    assert seen.check_and_add("a") is False  # "a" is now the most recent
    seen.check_and_add("c")  # evicts "b"
    assert "b" not in seen
    assert "a" in seen
    assert "c" in seen
    assert seen.check_and_add("b") is True


def test_ids_expire_after_the_ttl() -> None:
    clock = FakeClock()
    seen = SeenIds(ttl_seconds=60, clock=clock)
    seen.check_and_add("old")
    clock.now += 30
    seen.check_and_add("younger")
    clock.now += 30
    assert "old" not in seen
    assert "younger" in seen
    assert seen.check_and_add("old") is True
    clock.now += 31
    assert len(seen) == 1  # only the re-added "old"


def test_a_redelivery_refreshes_the_ttl() -> None:
    clock = FakeClock()
    seen = SeenIds(ttl_seconds=60, clock=clock)
    seen.check_and_add("x")
    clock.now += 50
    assert seen.check_and_add("x") is False
    clock.now += 50
    assert "x" in seen


def test_discard_lets_a_failed_delivery_be_processed_again() -> None:
    seen = SeenIds()
    seen.check_and_add("msg_1")
    seen.discard("msg_1")
    seen.discard("never-seen")
    assert seen.check_and_add("msg_1") is True
    seen.clear()
    assert len(seen) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"max_size": 0}, "max_size"), ({"ttl_seconds": 0}, "ttl")]
)
def test_bad_bounds_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SeenIds(**kwargs)


def test_concurrent_deliveries_of_one_id_are_new_exactly_once() -> None:
    seen = SeenIds(max_size=10_000)
    ids = [f"msg_{i}" for i in range(200)]
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        local = [(i, seen.check_and_add(i)) for i in ids]
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 * len(ids)
    for webhook_id in ids:
        assert sum(new for i, new in results if i == webhook_id) == 1
