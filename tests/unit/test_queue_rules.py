"""Rules of the queue that need no database: delivery ids and what an attempt's result means."""

from __future__ import annotations

import re

import pytest

from chathooks.queue import ClaimedDelivery, Destination, new_delivery_id
from chathooks.sender import AttemptResult
from chathooks.worker import GONE_REASON, decide, held

NOW = 1_700_000_000.0
SCHEDULE = [5.0, 300.0]


def claimed(*, attempts: int = 0, round_attempts: int = 0, enabled: bool = True) -> ClaimedDelivery:
    return ClaimedDelivery(
        seq=7,
        id="msg_01HZZZZZZZZZZZZZZZZZZZZZZZ",
        site_id="site_1",
        endpoint_id="ep_1",
        conversation_id="conv",
        payload="{}",
        attempt_count=attempts,
        round_attempts=round_attempts,
        destination=Destination(
            endpoint_id="ep_1",
            url="https://crm.example/hook",
            secret=None,
            format="form",
            headers={},
            enabled=enabled,
        ),
        lease_expires_at=NOW + 120,
    )


def test_delivery_ids_are_ulids_that_sort_by_creation_time() -> None:
    ids = [new_delivery_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)
    # The first ten characters after the prefix are the millisecond clock.
    clocks = [i[4:14] for i in ids]
    assert clocks == sorted(clocks)


def test_any_2xx_succeeds() -> None:
    outcome = decide(
        claimed(attempts=2, round_attempts=1),
        AttemptResult(ok=True, status_code=202, integration_url="https://crm.example/l/1"),
        started_at=NOW,
        schedule=SCHEDULE,
        now=NOW + 1,
    )
    assert outcome.status == "succeeded"
    assert outcome.attempt_count == 3
    assert outcome.attempt_outcome == "succeeded"
    assert outcome.integration_url == "https://crm.example/l/1"
    assert outcome.next_attempt_at is None
    assert outcome.finished


def test_a_failure_waits_for_the_next_step_of_the_schedule() -> None:
    first = decide(
        claimed(),
        AttemptResult(ok=False, status_code=500, error="HTTP 500"),
        started_at=NOW,
        schedule=[10.0, 300.0],
        now=NOW,
    )
    second = decide(
        claimed(attempts=1, round_attempts=1),
        AttemptResult(ok=False, status_code=500, error="HTTP 500"),
        started_at=NOW,
        schedule=[10.0, 300.0],
        now=NOW,
    )
    assert first.status == second.status == "retrying"
    assert first.next_attempt_at == pytest.approx(NOW + 10, rel=0, abs=1.0)  # ±10% jitter
    assert second.next_attempt_at == pytest.approx(NOW + 300, rel=0, abs=30.0)
    assert first.round_attempts == 1
    assert not first.finished


def test_the_delivery_fails_when_the_schedule_is_used_up() -> None:
    outcome = decide(
        claimed(attempts=5, round_attempts=2),
        AttemptResult(ok=False, status_code=503, error="HTTP 503"),
        started_at=NOW,
        schedule=SCHEDULE,
        now=NOW,
    )
    assert outcome.status == "failed"
    assert outcome.attempt_count == 6
    assert outcome.next_attempt_at is None


def test_a_longer_retry_after_wins_over_the_schedule() -> None:
    outcome = decide(
        claimed(),
        AttemptResult(ok=False, status_code=429, retry_after=120.0),
        started_at=NOW,
        schedule=SCHEDULE,
        now=NOW,
    )
    assert outcome.status == "retrying"
    assert outcome.next_attempt_at == NOW + 120.0


def test_410_gone_holds_the_delivery_and_switches_the_endpoint_off() -> None:
    outcome = decide(
        claimed(),
        AttemptResult(ok=False, status_code=410, gone=True, error="HTTP 410"),
        started_at=NOW,
        schedule=SCHEDULE,
        now=NOW,
    )
    assert outcome.status == "held"  # sent again once the endpoint is enabled
    assert not outcome.finished
    assert outcome.disable_endpoint == GONE_REASON


def test_a_refused_destination_is_marked_refused_and_retried() -> None:
    outcome = decide(
        claimed(),
        AttemptResult(ok=False, refused=True, error="10.0.0.5 is a private address"),
        started_at=NOW,
        schedule=SCHEDULE,
        now=NOW,
    )
    assert outcome.attempt_outcome == "refused"
    assert outcome.error == "10.0.0.5 is a private address"
    assert outcome.status == "retrying"


def test_a_disabled_endpoints_delivery_is_held_without_an_attempt() -> None:
    outcome = held(claimed(attempts=1, enabled=False), now=NOW)
    assert outcome.status == "held"
    assert not outcome.finished
    assert outcome.error == "endpoint disabled"
    assert not outcome.attempted
    assert outcome.attempt_count == 1


@pytest.mark.parametrize(
    ("result", "status", "disables"),
    [
        # 2xx: any of them succeeds.
        (AttemptResult(ok=True, status_code=200), "succeeded", False),
        (AttemptResult(ok=True, status_code=204), "succeeded", False),
        # No answer: connection refused, timeout, refused destination: retried.
        (AttemptResult(ok=False, error="connection refused"), "retrying", False),
        (AttemptResult(ok=False, error="timed out after 15.0s (total)"), "retrying", False),
        (AttemptResult(ok=False, refused=True, error="10.0.0.5 is private"), "retrying", False),
        # 3xx: never followed, retried (the owner may fix the URL).
        (AttemptResult(ok=False, status_code=301, error="HTTP 301"), "retrying", False),
        (AttemptResult(ok=False, status_code=308, error="HTTP 308"), "retrying", False),
        # 4xx the owner can fix, or "later": retried.
        (AttemptResult(ok=False, status_code=401, error="HTTP 401"), "retrying", False),
        (AttemptResult(ok=False, status_code=403, error="HTTP 403"), "retrying", False),
        (AttemptResult(ok=False, status_code=404, error="HTTP 404"), "retrying", False),
        (AttemptResult(ok=False, status_code=408, error="HTTP 408"), "retrying", False),
        (AttemptResult(ok=False, status_code=429, retry_after=60.0), "retrying", False),
        # 4xx about the payload itself: the same bytes would be refused again.
        (AttemptResult(ok=False, status_code=400, error="HTTP 400"), "failed", False),
        (AttemptResult(ok=False, status_code=413, error="HTTP 413"), "failed", False),
        (AttemptResult(ok=False, status_code=414, error="HTTP 414"), "failed", False),
        (AttemptResult(ok=False, status_code=415, error="HTTP 415"), "failed", False),
        (AttemptResult(ok=False, status_code=422, error="HTTP 422"), "failed", False),
        # 410 Gone: the endpoint is switched off; the delivery is held, not lost.
        (AttemptResult(ok=False, status_code=410, gone=True, error="HTTP 410"), "held", True),
        # 5xx: retried (and counted by the circuit breaker).
        (AttemptResult(ok=False, status_code=500, error="HTTP 500"), "retrying", False),
        (AttemptResult(ok=False, status_code=503, retry_after=30.0), "retrying", False),
    ],
)
def test_each_class_of_answer_is_handled_as_the_readme_says(
    result: AttemptResult, status: str, disables: bool
) -> None:
    outcome = decide(claimed(), result, started_at=NOW, schedule=SCHEDULE, now=NOW)
    assert outcome.status == status
    assert (outcome.disable_endpoint is not None) is disables
    if result.retry_after:
        assert outcome.next_attempt_at == NOW + result.retry_after  # slowed as asked
