"""Writing down what became of claimed deliveries, many at once.

The worker decides each delivery's fate (see :mod:`chathooks.worker`); this
module stores a batch of those decisions in the caller's transaction: one
executemany for the attempts log, one for the deliveries, and one for the
deliveries a command's success superseded. What the outcomes say about their
endpoints (the breaker, 410 Gone) is :mod:`chathooks.queue.health`'s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Text, bindparam, func, insert, literal_column, null, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.driver import DriverStatement
from chathooks.db.tables import attempts, deliveries, unfinished
from chathooks.queue.claim import COMMAND_TRIGGER
from chathooks.queue.statuses import (
    DELIVERING,
    FAILED,
    FINISHED,
    SUCCEEDED,
    SUPERSEDED,
    SUPERSEDED_REASON,
)
from chathooks.queue.storable import (
    MAX_ERROR_CHARS,
    MAX_RESPONSE_BODY_CHARS,
    link_or_none,
    storable_text,
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One claimed delivery after its attempt (or after being dropped unsent).

    Also what :class:`chathooks.worker.Worker` hands to ``on_outcome``
    listeners, so it carries the delivery's identity as well as the result.
    """

    delivery_seq: int
    delivery_id: str
    site_id: str
    endpoint_id: str
    conversation_id: str | None
    #: The delivery's new status: ``succeeded``, ``retrying`` or ``failed``.
    status: str
    #: Attempts made so far, counting this one.
    attempt_count: int
    #: Attempts since the retry schedule (re)started, counting this one.
    round_attempts: int
    #: When the next attempt is due (``retrying`` only).
    next_attempt_at: float | None
    #: ``succeeded``, ``failed`` or ``refused``; None when no attempt was made.
    attempt_outcome: str | None
    started_at: float
    duration_ms: float = 0.0
    status_code: int | None = None
    response_body: str | None = None
    error: str | None = None
    integration_url: str | None = None
    #: Why the endpoint must be switched off (it answered 410 Gone); None to leave it.
    #: Acted on by :func:`chathooks.queue.health.learn_from`.
    disable_endpoint: str | None = None
    #: The lease of the claim this outcome settles; None records it whatever the lease.
    lease_expires_at: float | None = None
    #: What made the delivery (``command`` for an operator's ``!lead``...).
    trigger: str = "api"
    #: The attempt's request headers, secrets masked, and the receiver's response headers.
    request_headers: Mapping[str, str] | None = None
    response_headers: Mapping[str, str] | None = None

    @property
    def attempted(self) -> bool:
        return self.attempt_outcome is not None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def storable(outcome: Outcome) -> Outcome:
    """``outcome`` with what the receiver sent cleaned for storing (see :mod:`.storable`)."""
    body = storable_text(outcome.response_body, MAX_RESPONSE_BODY_CHARS)
    error = storable_text(outcome.error, MAX_ERROR_CHARS)
    link = link_or_none(outcome.integration_url)
    if (body, error, link) == (outcome.response_body, outcome.error, outcome.integration_url):
        return outcome
    return replace(outcome, response_body=body, error=error, integration_url=link)


def unstorable(outcome: Outcome, reason: str) -> Outcome:
    """What is recorded when the database refused ``outcome`` itself: a failure with the reason.

    Nothing the receiver sent is kept, so this much always stores; the
    delivery is settled (``failed``, redeliverable) instead of coming back
    with every lease.
    """
    return replace(
        outcome,
        status=FAILED,
        next_attempt_at=None,
        response_body=None,
        integration_url=None,
        disable_endpoint=None,
        status_code=outcome.status_code if 100 <= (outcome.status_code or 0) <= 999 else None,
        error=storable_text(f"the outcome could not be stored: {reason}", MAX_ERROR_CHARS),
    )


#: One row per outcome: run through the driver (see :mod:`chathooks.db.driver`).
_UPDATE_DELIVERY = DriverStatement(
    update(deliveries)
    .where(
        deliveries.c.seq == bindparam("b_seq"),
        # A claim that expired and went to another worker is no longer ours to settle.
        deliveries.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        status=bindparam("b_status"),
        attempt_count=bindparam("b_attempt_count"),
        round_attempts=bindparam("b_round_attempts"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        last_status_code=bindparam("b_status_code"),
        last_error=bindparam("b_error"),
        # The latest integrationUrl a receiver gave stays on the delivery.
        integration_url=func.coalesce(
            bindparam("b_integration_url", type_=Text), deliveries.c.integration_url
        ),
        lease_owner=null(),
        lease_expires_at=null(),
        updated_at=bindparam("b_now"),
        finished_at=bindparam("b_finished_at"),
    )
)


#: Older deliveries of a conversation still waiting at an endpoint, once a newer one succeeded.
_SUPERSEDE = (
    update(deliveries)
    .where(
        deliveries.c.endpoint_id == bindparam("b_endpoint_id"),
        deliveries.c.conversation_id == bindparam("b_conversation_id"),
        deliveries.c.seq < bindparam("b_seq"),
        unfinished(deliveries),
        # One in flight is left to finish; it can no longer overtake anything.
        deliveries.c.status != literal_column(f"'{DELIVERING}'"),
    )
    .values(
        status=SUPERSEDED,
        last_error=SUPERSEDED_REASON,
        next_attempt_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
        finished_at=bindparam("b_now"),
    )
)


#: The attempt log's columns an outcome fills (``id`` is generated).
_ATTEMPT_COLUMNS = (
    "delivery_seq",
    "number",
    "started_at",
    "duration_ms",
    "outcome",
    "status_code",
    "response_body",
    "error",
    "integration_url",
    "request_headers",
    "response_headers",
)
_INSERT_ATTEMPTS = DriverStatement(insert(attempts), columns=_ATTEMPT_COLUMNS)

#: These of ``owner``'s claims, locked on PostgreSQL until the updates that settle them
#: commit; their status is checked in Python. Given ``status = 'delivering'``, a planner met
#: it on ``ix_deliveries_due`` or ``ix_deliveries_in_flight``, reading every claim in flight
#: (every worker's) to match it against these: SQLite always, and PostgreSQL on a queue
#: without statistics (about 3 ms a lookup with 8,000 queued). ``lease_owner`` is in no
#: index, so with it the lookup stays one primary-key probe a claim; and a claim another
#: worker has taken since is neither read nor locked.
_CLAIMS = (
    select(deliveries.c.seq, deliveries.c.lease_expires_at, deliveries.c.status)
    .where(
        deliveries.c.seq.in_(bindparam("b_seqs", expanding=True)),
        deliveries.c.lease_owner == bindparam("b_owner"),
    )
    .with_for_update()
)


async def _leases(connection: AsyncConnection, seqs: list[int], owner: str) -> dict[int, float]:
    """The lease expiry of each of the claims ``seqs`` that ``owner`` still holds."""
    return {
        seq: lease_expires_at
        for seq, lease_expires_at, status in await connection.execute(
            _CLAIMS, {"b_seqs": seqs, "b_owner": owner}
        )
        if status == DELIVERING
    }


async def _still_held(
    connection: AsyncConnection, outcomes: Sequence[Outcome], owner: str
) -> list[Outcome]:
    leases = await _leases(connection, [outcome.delivery_seq for outcome in outcomes], owner)
    return [
        outcome
        for outcome in outcomes
        if outcome.delivery_seq in leases
        and (
            outcome.lease_expires_at is None
            or leases[outcome.delivery_seq] == outcome.lease_expires_at
        )
    ]


async def record_outcomes(
    connection: AsyncConnection,
    outcomes: Sequence[Outcome],
    *,
    owner: str,
    now: float | None = None,
) -> list[Outcome]:
    """Store ``outcomes`` of deliveries ``owner`` claimed, in the caller's transaction.

    Only outcomes of claims ``owner`` still holds are stored (and returned): a
    claim whose lease ran out may have been claimed again, even by this same
    worker, and its newer result must not be overwritten; a delivery deleted
    with its endpoint has nothing left to settle. What the receiver sent is
    stored cleaned (:func:`storable`), and the cleaned outcomes are returned.
    """
    outcomes = await _still_held(connection, [storable(o) for o in outcomes], owner)
    if not outcomes:
        return []
    at = time.time() if now is None else now
    attempt_rows = [
        {
            "delivery_seq": outcome.delivery_seq,
            "number": outcome.attempt_count,
            "started_at": outcome.started_at,
            "duration_ms": outcome.duration_ms,
            "outcome": outcome.attempt_outcome,
            "status_code": outcome.status_code,
            "response_body": outcome.response_body,
            "error": outcome.error,
            "integration_url": outcome.integration_url,
            "request_headers": _json_or_none(outcome.request_headers),
            "response_headers": _json_or_none(outcome.response_headers),
        }
        for outcome in outcomes
        if outcome.attempted
    ]
    await _INSERT_ATTEMPTS.executemany(connection, attempt_rows)
    await _UPDATE_DELIVERY.executemany(
        connection,
        [
            {
                "b_seq": outcome.delivery_seq,
                "b_owner": owner,
                "b_status": outcome.status,
                "b_attempt_count": outcome.attempt_count,
                "b_round_attempts": outcome.round_attempts,
                "b_next_attempt_at": (
                    outcome.next_attempt_at if outcome.next_attempt_at is not None else at
                ),
                "b_status_code": outcome.status_code,
                "b_error": outcome.error,
                "b_integration_url": outcome.integration_url,
                "b_now": at,
                "b_finished_at": at if outcome.finished else None,
            }
            for outcome in outcomes
        ],
    )
    # Only a command overtakes earlier deliveries of its conversation (see the claim), so
    # only its success can leave an older state of the chat waiting; that one is not sent.
    newer = [
        {
            "b_endpoint_id": outcome.endpoint_id,
            "b_conversation_id": outcome.conversation_id,
            "b_seq": outcome.delivery_seq,
            "b_now": at,
        }
        for outcome in outcomes
        if outcome.status == SUCCEEDED
        and outcome.trigger == COMMAND_TRIGGER
        and outcome.conversation_id is not None
    ]
    if newer:
        await connection.execute(_SUPERSEDE, newer)
    return outcomes


#: ``json.dumps(..., ensure_ascii=False)``, without building an encoder for every call.
_encode_json = json.JSONEncoder(ensure_ascii=False).encode


def _json_or_none(headers: Mapping[str, str] | None) -> str | None:
    if headers is None:
        return None
    return _encode_json(headers if type(headers) is dict else dict(headers))
