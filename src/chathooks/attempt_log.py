"""What an operator reads about deliveries that did not go through: one WARNING per attempt.

Only identities and the reason reach the log (the delivery, endpoint and
site ids, the HTTP status or the error); never the payload, the receiver's
body, or anything of the endpoint's secret or headers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from chathooks.queue import Outcome

__all__ = ["failure_reason", "log_failed_attempts", "logging_outcomes"]

log = logging.getLogger("chathooks.deliveries")

OutcomeListener = Callable[[list[Outcome]], Awaitable[None]]


def failure_reason(outcome: Outcome) -> str:
    """``HTTP 503``, ``HTTP 503: ...`` or the transport error, in a few words."""
    if outcome.status_code is not None:
        return f"HTTP {outcome.status_code}" + (f": {outcome.error}" if outcome.error else "")
    return outcome.error or "no answer"


def log_failed_attempts(outcomes: Iterable[Outcome]) -> None:
    """Log each failed or refused attempt (and each delivery dropped unsent) at WARNING."""
    for outcome in outcomes:
        if outcome.attempt_outcome == "succeeded":
            continue
        if outcome.attempt_outcome is None and outcome.error is None:
            continue
        reason = failure_reason(outcome)
        what = "gave up" if outcome.finished else f"will retry (attempt {outcome.attempt_count})"
        log.warning(
            "delivery %s to endpoint %s of site %s failed: %s; %s",
            outcome.delivery_id,
            outcome.endpoint_id,
            outcome.site_id,
            reason,
            what,
            extra={
                "delivery_id": outcome.delivery_id,
                "endpoint_id": outcome.endpoint_id,
                "site_id": outcome.site_id,
                "reason": reason,
                "status": outcome.status,
                "attempt": outcome.attempt_count,
            },
        )


def logging_outcomes(then: OutcomeListener | None = None) -> OutcomeListener:
    """A worker's ``on_outcome`` that logs failed attempts, then calls ``then``."""

    async def on_outcome(batch: list[Outcome]) -> None:
        log_failed_attempts(batch)
        if then is not None:
            await then(batch)

    return on_outcome
