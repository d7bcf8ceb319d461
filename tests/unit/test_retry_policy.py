"""The retry policy: schedule, jitter, Retry-After, and which outcomes are retried."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from chathooks.sender import (
    MAX_RETRY_AFTER_SECONDS,
    parse_retry_after,
    retry_delay,
)
from chathooks.settings import DEFAULT_RETRY_SCHEDULE

SCHEDULE = (5.0, 300.0, 1800.0)


def test_without_jitter_the_schedule_is_walked_in_order_then_exhausted() -> None:
    delays = [retry_delay(n, SCHEDULE, jitter=0) for n in range(1, 5)]

    assert delays == [5.0, 300.0, 1800.0, None]


def test_the_default_schedule_allows_one_retry_per_entry() -> None:
    schedule = [float(s) for s in DEFAULT_RETRY_SCHEDULE]

    assert retry_delay(len(schedule), schedule) is not None
    assert retry_delay(len(schedule) + 1, schedule) is None


def test_an_empty_schedule_means_no_retries() -> None:
    assert retry_delay(1, []) is None


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay(0, SCHEDULE)


def test_jitter_stays_within_ten_percent_and_actually_varies() -> None:
    rng = random.Random(1234)
    delays = [retry_delay(2, SCHEDULE, rng=rng) for _ in range(2000)]

    assert all(d is not None and 270.0 <= d <= 330.0 for d in delays)
    assert len({round(d or 0, 3) for d in delays}) > 100
    assert min(d or 0 for d in delays) < 280 and max(d or 0 for d in delays) > 320


def test_the_same_seed_gives_the_same_delay() -> None:
    first = retry_delay(3, SCHEDULE, rng=random.Random(7))
    second = retry_delay(3, SCHEDULE, rng=random.Random(7))

    assert first == second


def test_a_longer_retry_after_wins_over_the_schedule() -> None:
    assert retry_delay(1, SCHEDULE, retry_after=120.0) == 120.0


def test_a_shorter_retry_after_does_not_shorten_the_schedule() -> None:
    assert retry_delay(2, SCHEDULE, retry_after=10.0, jitter=0) == 300.0


def test_retry_after_is_capped_at_a_day() -> None:
    delay = retry_delay(1, SCHEDULE, retry_after=10 * 24 * 3600.0)

    assert delay == MAX_RETRY_AFTER_SECONDS == 86400.0


def test_retry_after_does_not_revive_an_exhausted_schedule() -> None:
    assert retry_delay(4, SCHEDULE, retry_after=60.0) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("²", None),
        ("1" + "0" * 400, None),
    ],
)
def test_retry_after_delta_seconds(header: str, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = formatdate(now + 90, usegmt=True)  # "Tue, 14 Nov 2023 22:14:50 GMT"

    assert parse_retry_after(header, now=now) == pytest.approx(90.0)


def test_retry_after_date_in_the_past_means_now() -> None:
    now = 1_700_000_000.0

    assert parse_retry_after(formatdate(now - 600, usegmt=True), now=now) == 0.0
