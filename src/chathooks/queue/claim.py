"""Taking due deliveries off the queue under a lease, and giving them back.

A claim marks a batch ``delivering``, records who holds it and until when,
and moves ``next_attempt_at`` to that lease expiry. A worker that dies
therefore leaves nothing stuck: when the lease runs out its deliveries are
simply due again.

One slow or broken receiver must not take the queue down with it, so a claim
shares the work out per endpoint. Each endpoint has *room*: its cap on
requests in flight (``max_in_flight``, else ``CHATHOOKS_ENDPOINT_CONCURRENCY``)
minus the deliveries to it already under a live lease, counted across every
worker; while its circuit breaker is open the room is one probe, and only
once the probe is due. A claim then takes at most ``room`` deliveries per
endpoint, oldest due first within the endpoint, and orders the batch by rank
within the endpoint: every endpoint's first delivery, then every endpoint's
second, and so on, so a deep backlog at one endpoint cannot push a fresh
delivery to another back in line.

On PostgreSQL several workers claim at once, and ``SKIP LOCKED`` alone cannot
bound a count; so the claim first locks the endpoint rows that have due work
(``FOR UPDATE SKIP LOCKED``): one claimer at a time decides for an endpoint,
and the next one sees what it took. SQLite has one writer at a time anyway.

Conversations stay in order: a delivery is taken only when no earlier
delivery of the same (endpoint, conversation) is unfinished, unless it is an
operator's command (``!lead``, ``!case``, ``!webhook``) and the earlier one
is waiting for a retry: the command must reach the receiver now rather than
wait behind a start event the receiver refused.

Every lookup runs on partial indexes of unfinished deliveries: finished
deliveries, however many, are never read by a claim.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Select,
    String,
    Update,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import ColumnElement, FromClause

from chathooks.db.tables import (
    deliveries,
    delivery_payloads,
    endpoint_health,
    endpoints,
    unfinished,
    unfinished_by_elimination,
)
from chathooks.queue.notify import announce_due
from chathooks.queue.statuses import DELIVERING, FAILING, PENDING, RETRYING
from chathooks.sealing import keyring_of, still_signs

#: The trigger of an operator's command POST: it is not held back by its conversation.
COMMAND_TRIGGER = "command"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where and how a claimed delivery is posted: its endpoint's settings at claim time."""

    endpoint_id: str
    url: str
    secret: str | None
    format: str
    headers: dict[str, str]
    enabled: bool
    #: The secret a rotation replaced, while it still signs too (see :attr:`signing_secrets`).
    previous_secret: str | None = None

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        """What each attempt is signed with: the secret, then the one it replaced, if any."""
        return tuple(s for s in (self.secret, self.previous_secret) if s is not None)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this worker now holds, with everything needed to post it."""

    seq: int
    id: str
    site_id: str
    endpoint_id: str
    conversation_id: str | None
    payload: str
    #: Attempts made before this claim (the coming one is number ``attempt_count + 1``).
    attempt_count: int
    #: Attempts made since the retry schedule (re)started.
    round_attempts: int
    destination: Destination
    #: The claim is this worker's until then; its outcome is recorded only if it still is.
    lease_expires_at: float
    #: What made it (``command`` for an operator's ``!lead``...).
    trigger: str = "api"


#: Bound parameters of the claim statements.
NOW, LIMIT, OWNER, LEASE_UNTIL = "claim_now", "claim_limit", "claim_owner", "claim_lease_until"
#: The service's default cap per endpoint, the endpoints the claim may take from, and
#: the largest room among them.
CAP, OPEN, WIDEST = "claim_cap", "claim_open", "claim_widest"
#: The largest cap on requests in flight an endpoint (or the service default) may set.
MAX_IN_FLIGHT = 64


def _now() -> ColumnElement[float]:
    return bindparam(NOW, type_=Float)


def _room(endpoint: FromClause, health: FromClause) -> ColumnElement[int]:
    """How many more deliveries ``endpoint`` may have in flight now, across all workers.

    A disabled endpoint gets its full cap: what is claimed for it is held at
    once, without an attempt (see :mod:`chathooks.worker`).
    """
    now = _now()
    flying = deliveries.alias("flying")
    in_flight = (
        select(func.count())
        .select_from(flying)
        .where(
            flying.c.endpoint_id == endpoint.c.id,
            flying.c.status == literal_column(f"'{DELIVERING}'"),
            flying.c.lease_expires_at > now,
        )
        .scalar_subquery()
    )
    cap = func.coalesce(endpoint.c.max_in_flight, bindparam(CAP, type_=Integer))
    allowed = case(
        (endpoint.c.enabled.is_(False), cap),
        (
            health.c.state == literal_column(f"'{FAILING}'"),
            case((health.c.probe_at <= now, 1), else_=0),
        ),
        else_=cap,
    )
    return allowed - in_flight


def _with_health(endpoint: FromClause) -> FromClause:
    return endpoint.outerjoin(endpoint_health, endpoint_health.c.endpoint_id == endpoint.c.id)


def open_endpoints() -> Select[tuple[str, int]]:
    """The endpoints with due deliveries and room for more, with that room, locked for this claim.

    Locked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: another claimer skips
    them until this claim commits, then counts what it took as in flight.

    "Has due work" is a correlated scalar subquery with ``LIMIT 1``, for the
    reason :func:`_in_order` gives: written as ``EXISTS``, PostgreSQL made it a
    semi-join and, on a queue without statistics, hashed every due delivery
    of every endpoint on each claim (about 2 ms a claim with 8,000 queued).
    As a subplan it is one probe of ``ix_deliveries_unfinished_endpoint_due``
    per endpoint. It asks for the earliest due delivery, in that index's
    order: asked for any one, PostgreSQL trusted statistics that said most
    deliveries were due (as they were when autovacuum looked) and scanned
    the table for the first, reading all of it when none was.
    """
    now = _now()
    due = deliveries.alias("due")
    first_due = (
        select(literal_column("1"))
        .where(due.c.endpoint_id == endpoints.c.id, unfinished(due), due.c.next_attempt_at <= now)
        .order_by(due.c.next_attempt_at)
        .limit(1)
        .scalar_subquery()
    )
    room = _room(endpoints, endpoint_health)
    return (
        select(endpoints.c.id, room.label("room"))
        .select_from(_with_health(endpoints))
        .where(first_due.is_not(None), room > 0)
        .order_by(endpoints.c.id)
        .with_for_update(skip_locked=True, of=endpoints)
    )


def _in_order(candidate: FromClause) -> ColumnElement[bool]:
    """``candidate`` may go now as far as its conversation at its endpoint is concerned.

    It must be the earliest unfinished delivery of its (endpoint, conversation),
    unless it is an operator's command and its conversation is stuck behind a
    delivery waiting for a retry: the command is the operator asking for the
    chat to be posted now, and it is a newer state of the chat than anything
    waiting. With nothing retrying, a command too waits for what is about to be
    sent, so the usual order holds. And nothing overtakes a delivery in flight
    (a redelivered earlier delivery waits for a later one being posted right
    now), commands included.

    The checks are correlated *scalar* subqueries on purpose. Written as
    ``NOT EXISTS``, PostgreSQL turns them into an anti-join, and on a table
    without statistics (a fresh queue, before autovacuum's first ANALYZE) it
    then matched each candidate against every unfinished delivery of the
    endpoint: 1.2-2.4 s per claim with 2,000 queued. A scalar subquery stays
    a subplan run per candidate, one probe of ``ix_deliveries_unfinished_order``.
    """
    now = _now()
    earlier = deliveries.alias("earlier")
    same_conversation = and_(
        earlier.c.endpoint_id == candidate.c.endpoint_id,
        earlier.c.conversation_id == candidate.c.conversation_id,
        unfinished(earlier),
    )
    first_unfinished = select(func.min(earlier.c.seq)).where(same_conversation).scalar_subquery()

    def one_earlier(*conditions: ColumnElement[bool]) -> ColumnElement[Any]:
        return (
            select(literal_column("1"))
            .where(same_conversation, *conditions)
            .limit(1)
            .scalar_subquery()
        )

    other_in_flight = one_earlier(
        earlier.c.seq != candidate.c.seq,
        earlier.c.status == literal_column(f"'{DELIVERING}'"),
        earlier.c.lease_expires_at > now,
    )
    retrying_before = one_earlier(
        earlier.c.seq < candidate.c.seq,
        earlier.c.status == literal_column(f"'{RETRYING}'"),
    )
    return and_(
        or_(
            # Deliveries without a conversation have no order to keep.
            candidate.c.conversation_id.is_(None),
            candidate.c.seq == first_unfinished,
            and_(
                candidate.c.trigger == literal_column(f"'{COMMAND_TRIGGER}'"),
                retrying_before.is_not(None),
            ),
        ),
        other_in_flight.is_(None),
    )


def _due_at(candidate: FromClause) -> ColumnElement[bool]:
    return and_(unfinished(candidate), candidate.c.next_attempt_at <= _now(), _in_order(candidate))


def due_deliveries(dialect_name: str) -> Select[tuple[int]]:
    """The ``seq`` of up to ``:claim_limit`` deliveries of the ``:claim_open`` endpoints.

    At most each endpoint's room, oldest due first within an endpoint, ranked
    across endpoints. PostgreSQL reads each endpoint's first ``room`` due
    deliveries straight off the index (``LATERAL ... LIMIT room``); SQLite has
    no LATERAL, so it reads each open endpoint's first :data:`MAX_IN_FLIGHT`
    and numbers those. Either way a claim reads a bounded number of rows per
    endpoint, however deep its backlog, and none of an endpoint with no room.
    """
    candidate = deliveries.alias("candidate")
    order = (candidate.c.next_attempt_at, candidate.c.seq)
    limit = bindparam(LIMIT, type_=Integer)
    room = (
        select(endpoints.c.id, _room(endpoints, endpoint_health).label("room"))
        .select_from(_with_health(endpoints))
        .where(endpoints.c.id.in_(bindparam(OPEN, expanding=True)))
        .subquery("room")
    )
    if dialect_name == "postgresql":
        picked = (
            select(
                candidate.c.seq,
                candidate.c.next_attempt_at,
                func.row_number().over(order_by=order).label("rank"),
            )
            .where(candidate.c.endpoint_id == room.c.id, _due_at(candidate))
            .order_by(*order)
            # The room may have shrunk since the endpoint was opened (its breaker opened).
            .limit(func.greatest(room.c.room, 0))
            .lateral("picked")
        )
        return (
            select(picked.c.seq)
            .select_from(room.join(picked, true()))
            .order_by(picked.c.rank, picked.c.next_attempt_at)
            .limit(limit)
        )
    # SQLite cannot LIMIT by a column of the outer query; so read as many of each
    # endpoint off the index as the largest room among them (:data:`WIDEST`, at most
    # :data:`MAX_IN_FLIGHT`) and rank those. A claim behind a busy endpoint, whose room
    # is a few freed slots, then reads a few rows rather than the largest cap's worth.
    first = deliveries.alias("first")
    firsts = (
        select(first.c.seq)
        .where(first.c.endpoint_id == room.c.id, _due_at(first))
        .order_by(first.c.next_attempt_at, first.c.seq)
        .limit(bindparam(WIDEST, type_=Integer))
    )
    ranked = (
        select(
            candidate.c.seq,
            candidate.c.next_attempt_at,
            room.c.room,
            func.row_number()
            .over(partition_by=candidate.c.endpoint_id, order_by=order)
            .label("rank"),
        )
        .select_from(room.join(candidate, candidate.c.seq.in_(firsts)))
        .subquery("ranked")
    )
    return (
        select(ranked.c.seq)
        .where(ranked.c.rank <= ranked.c.room)
        .order_by(ranked.c.rank, ranked.c.next_attempt_at)
        .limit(limit)
    )


@functools.cache
def claim_statement(dialect_name: str) -> Update:
    """The claiming ``UPDATE ... RETURNING`` for a backend, built once.

    Its parameters are :data:`NOW`, :data:`LIMIT`, :data:`OWNER`,
    :data:`LEASE_UNTIL`, :data:`CAP` and :data:`OPEN`. Building and compiling this statement cost
    more than running it on a small queue, so it is made once per backend.
    """
    due = due_deliveries(dialect_name).cte("due")
    lease_until = bindparam(LEASE_UNTIL, type_=Float)
    picked: list[ColumnElement[bool]] = [deliveries.c.seq.in_(select(due.c.seq))]
    if dialect_name == "postgresql":
        # Checked again on the row itself: PostgreSQL re-reads a row updated
        # meanwhile (its outcome recorded, say) against these conditions. SQLite
        # has one writer, so nothing changes between the choice and the update;
        # there the check would even make it walk every due row of the queue
        # (on ``ix_deliveries_due``) instead of looking up the chosen ones. On
        # PostgreSQL it is spelled so that no index answers it: spelled as the
        # partial indexes' predicate, a queue analysed when it had nothing
        # unfinished had the UPDATE driven from such an index, every unfinished
        # delivery matched against the chosen batch (60 ms of a claim out of 2,000).
        picked += [unfinished_by_elimination(deliveries), deliveries.c.next_attempt_at <= _now()]
    return (
        update(deliveries)
        .where(*picked)
        .values(
            status=DELIVERING,
            lease_owner=bindparam(OWNER, type_=String),
            lease_expires_at=lease_until,
            next_attempt_at=lease_until,
            updated_at=_now(),
        )
        .returning(
            deliveries.c.seq,
            deliveries.c.id,
            deliveries.c.site_id,
            deliveries.c.endpoint_id,
            deliveries.c.conversation_id,
            deliveries.c.attempt_count,
            deliveries.c.round_attempts,
            deliveries.c.trigger,
        )
    )


@functools.cache
def _open_statement() -> Select[tuple[str, int]]:
    return open_endpoints()


async def claim(
    connection: AsyncConnection,
    *,
    owner: str,
    limit: int,
    lease_seconds: float,
    endpoint_concurrency: int = 8,
    now: float | None = None,
) -> list[ClaimedDelivery]:
    """Claim up to ``limit`` due deliveries for ``owner`` until ``now + lease_seconds``.

    ``endpoint_concurrency`` is the cap on deliveries in flight per endpoint
    for endpoints without a ``max_in_flight`` of their own. Four statements,
    whatever the batch size: the endpoints with room (locked), the claiming
    ``UPDATE ... RETURNING``, then the settings of the endpoints involved and
    the payloads (SQLite's RETURNING cannot join). Deliveries of a disabled
    endpoint are claimed too, so the worker can hold them.
    """
    at = time.time() if now is None else now
    lease_until = at + lease_seconds
    rooms = {
        row.id: int(row.room)
        for row in await connection.execute(_open_statement(), {NOW: at, CAP: endpoint_concurrency})
    }
    if not rooms:
        return []
    parameters = {
        NOW: at,
        LIMIT: limit,
        OWNER: owner,
        LEASE_UNTIL: lease_until,
        CAP: endpoint_concurrency,
        OPEN: sorted(rooms),
    }
    if connection.dialect.name != "postgresql":  # PostgreSQL limits each endpoint by its own room
        parameters[WIDEST] = min(max(rooms.values()), limit, MAX_IN_FLIGHT)
    statement = claim_statement(connection.dialect.name)
    claimed = (await connection.execute(statement, parameters)).all()
    if not claimed:
        return []
    destinations = await _destinations(connection, {row.endpoint_id for row in claimed}, at)
    payloads = await _payloads(connection, [row.id for row in claimed])
    # RETURNING order is unspecified; hand them out in queue order. The rows are unpacked
    # in the order of the RETURNING clause (a Row's attributes cost a lookup each).
    return [
        ClaimedDelivery(
            seq=seq,
            id=delivery_id,
            site_id=site_id,
            endpoint_id=endpoint_id,
            conversation_id=conversation_id,
            payload=payloads[delivery_id],
            attempt_count=attempt_count,
            round_attempts=round_attempts,
            destination=destinations[endpoint_id],
            lease_expires_at=lease_until,
            trigger=trigger,
        )
        for (
            seq,
            delivery_id,
            site_id,
            endpoint_id,
            conversation_id,
            attempt_count,
            round_attempts,
            trigger,
        ) in sorted(claimed, key=itemgetter(0))
        # An endpoint deleted meanwhile takes its deliveries with it (ON DELETE CASCADE).
        if endpoint_id in destinations
    ]


#: Built once: constructing a statement and its cache key costs more than running it.
_PAYLOADS = select(delivery_payloads.c.delivery_id, delivery_payloads.c.payload).where(
    delivery_payloads.c.delivery_id.in_(bindparam("claimed_ids", expanding=True))
)
_DESTINATIONS = select(
    endpoints.c.id,
    endpoints.c.url,
    endpoints.c.secret,
    endpoints.c.previous_secret,
    endpoints.c.previous_secret_until,
    endpoints.c.format,
    endpoints.c.headers,
    endpoints.c.enabled,
).where(endpoints.c.id.in_(bindparam("endpoint_ids", expanding=True)))


async def _payloads(connection: AsyncConnection, ids: list[str]) -> dict[str, str]:
    rows = await connection.execute(_PAYLOADS, {"claimed_ids": ids})
    return dict(rows.all())


async def _destinations(
    connection: AsyncConnection, ids: set[str], at: float
) -> dict[str, Destination]:
    """The endpoints' settings, their secrets opened (from the keyring's cache, usually)."""
    keyring = keyring_of(connection)
    rows = await connection.execute(_DESTINATIONS, {"endpoint_ids": sorted(ids)})
    return {
        row.id: Destination(
            endpoint_id=row.id,
            url=row.url,
            secret=keyring.open_optional(row.secret),
            format=row.format,
            headers=keyring.open_values(_string_headers(row.headers)),
            enabled=bool(row.enabled),
            previous_secret=keyring.open_optional(
                row.previous_secret if still_signs(row.previous_secret_until, at) else None
            ),
        )
        for row in rows
    }


def _string_headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(name): str(text) for name, text in value.items()}


async def release(
    connection: AsyncConnection,
    seqs: Sequence[int],
    *,
    owner: str,
    now: float | None = None,
) -> int:
    """Give claimed deliveries back unsent (a worker stopping), due at once; returns how many.

    Only ``owner``'s own claims are touched: one that already expired and
    went to another worker stays with that worker.
    """
    if not seqs:
        return 0
    return await release_where(
        connection,
        deliveries.c.seq.in_(list(seqs)),
        deliveries.c.lease_owner == owner,
        now=now,
    )


async def release_where(
    connection: AsyncConnection, *conditions: ColumnElement[bool], now: float | None = None
) -> int:
    """Make the claims matching ``conditions`` due again at once; returns how many.

    A delivery never attempted is ``pending`` again, one attempted before
    ``retrying``; the attempt under way, if any, was never recorded.
    """
    at = time.time() if now is None else now
    result = await connection.execute(
        update(deliveries)
        .where(deliveries.c.status == DELIVERING, *conditions)
        .values(
            status=case((deliveries.c.attempt_count == 0, PENDING), else_=RETRYING),
            next_attempt_at=at,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=at,
        )
    )
    if result.rowcount:
        await announce_due(connection)  # another worker may take them at once
    return int(result.rowcount)
