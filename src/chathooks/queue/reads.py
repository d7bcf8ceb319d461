"""Looking at the queue: one delivery with its attempts, listings, and numbers for /metrics.

Every lookup by id is scoped by ``site_id``, so one site's key never reveals
another site's deliveries. Results are plain dicts (JSON-ready, times as
epoch seconds) for the API and the CLI to render.
"""

from __future__ import annotations

import json
import time
from typing import Any, TypeVar

from sqlalchemy import Float, RowMapping, Select, bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.prefix import starts_with
from chathooks.db.tables import attempts, deliveries, delivery_payloads
from chathooks.errors import FieldError
from chathooks.paging import InvalidCursor, decode_cursor, encode_cursor
from chathooks.queue.statuses import (
    DELIVERING,
    FINISHED,
    HELD,
    STATUSES,
    SUCCEEDED,
    SUPERSEDED,
    UNFINISHED,
    WAITING,
)

MAX_PAGE_SIZE = 500

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


class InvalidQueueQuery(FieldError, ValueError):
    """A listing asked for something that cannot be: ``field`` names the culprit."""

    code = "invalid_query"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


# Everything a listing shows; the payload itself only comes with a single delivery.
_SUMMARY_COLUMNS = (
    deliveries.c.seq,
    deliveries.c.id,
    deliveries.c.site_id,
    deliveries.c.endpoint_id,
    deliveries.c.conversation_id,
    deliveries.c.payload_kind,
    deliveries.c.trigger,
    deliveries.c.status,
    deliveries.c.attempt_count,
    deliveries.c.next_attempt_at,
    deliveries.c.last_status_code,
    deliveries.c.last_error,
    deliveries.c.integration_url,
    deliveries.c.created_at,
    deliveries.c.updated_at,
    deliveries.c.finished_at,
)
_ATTEMPT_COLUMNS = (
    attempts.c.number,
    attempts.c.started_at,
    attempts.c.duration_ms,
    attempts.c.outcome,
    attempts.c.status_code,
    attempts.c.response_body,
    attempts.c.error,
    attempts.c.integration_url,
    attempts.c.request_headers,
    attempts.c.response_headers,
)


async def get_delivery(
    connection: AsyncConnection, site_id: str, delivery_id: str
) -> dict[str, Any] | None:
    """A delivery of ``site_id`` with its payload and its ``attempts`` (oldest first)."""
    row = (
        await connection.execute(
            select(*_SUMMARY_COLUMNS, delivery_payloads.c.payload)
            .join(delivery_payloads, delivery_payloads.c.delivery_id == deliveries.c.id)
            .where(deliveries.c.site_id == site_id, deliveries.c.id == delivery_id)
        )
    ).first()
    if row is None:
        return None
    attempt_rows = await connection.execute(
        select(*_ATTEMPT_COLUMNS)
        .where(attempts.c.delivery_seq == row.seq)
        .order_by(attempts.c.number, attempts.c.id)
    )
    delivery = _summary(row._mapping)
    delivery["payload"] = row.payload
    delivery["attempts"] = [_attempt(attempt._mapping) for attempt in attempt_rows]
    return delivery


def _attempt(row: RowMapping) -> dict[str, Any]:
    """An attempt as a dict; its headers (JSON text in the table) as dicts, None if unknown."""
    attempt = dict(row)
    for name in ("request_headers", "response_headers"):
        text = attempt.get(name)
        attempt[name] = json.loads(text) if text else None
    return attempt


async def site_of_delivery(connection: AsyncConnection, delivery_id: str) -> str | None:
    """The site a delivery belongs to, for admin tools that get only a delivery id."""
    query = select(deliveries.c.site_id).where(deliveries.c.id == delivery_id)
    site_id: str | None = (await connection.execute(query)).scalar()
    return site_id


async def list_deliveries(
    connection: AsyncConnection,
    site_id: str,
    *,
    status: str | None = None,
    endpoint_id: str | None = None,
    conversation_id: str | None = None,
    conversation_prefix: str | None = None,
    created_from: float | None = None,
    created_to: float | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of ``site_id``'s deliveries, newest first, and the cursor of the next page.

    ``conversation_id`` matches exactly, ``conversation_prefix`` the ids that
    start with it (case-sensitive, on both databases); ``created_from`` is
    inclusive and ``created_to`` exclusive, in epoch seconds. Items are
    :func:`get_delivery` without ``payload`` and ``attempts``. Raises
    :class:`InvalidQueueQuery` for an unknown status, a limit out of range, an
    empty time range or a cursor this function did not make.
    """
    if status is not None and status not in STATUSES:
        raise InvalidQueueQuery("status", f"status must be one of {', '.join(STATUSES)}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQueueQuery("limit", f"limit must be from 1 to {MAX_PAGE_SIZE}")
    filters: dict[str, Any] = {
        "endpoint_id": endpoint_id,
        "conversation_id": conversation_id,
        "conversation_prefix": conversation_prefix,
        "created_from": created_from,
        "created_to": created_to,
    }
    ranged = bool(conversation_prefix) or created_from is not None or created_to is not None
    searched = ranged and await _few_in_range(connection, site_id, filters)
    query = select(*_SUMMARY_COLUMNS).where(deliveries.c.site_id == site_id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    query = _filtered(query, dialect=connection.dialect.name, searched=searched, **filters)
    if cursor:
        query = query.where(deliveries.c.seq < decode_cursor(cursor, int, error=_bad_cursor)[0])
    # Walks ix_deliveries_site (site_id, seq) newest first, the filters checked on the way,
    # so a page costs the rows up to its last match, never a sort of them all; a
    # conversation, and a prefix or created-at range holding few deliveries, are searched
    # on an index of their own instead (ix_deliveries_site_conversation,
    # ix_deliveries_site_created): a rare match costs no walk through the whole history.
    newest_first = deliveries.c.seq.desc()
    if searched and connection.dialect.name == "sqlite":
        # SQLite would rather walk the table in seq order than sort the few rows found.
        newest_first = (deliveries.c.seq + 0).desc()
    query = query.order_by(newest_first).limit(limit + 1)
    rows = (await connection.execute(query)).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].seq) if len(rows) > limit else None
    return [_summary(row._mapping) for row in page], next_cursor


async def list_alert_deliveries(
    connection: AsyncConnection,
    site_id: str,
    endpoint_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the deliveries to ``site_id``'s alert endpoint, newest first, each with
    its ``payload`` (the alert document), and the cursor of the next page.

    Alerts belong to no conversation: ``ix_deliveries_order`` (endpoint, conversation
    NULL, seq) holds them in order, however many webhooks the site has sent.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQueueQuery("limit", f"limit must be from 1 to {MAX_PAGE_SIZE}")
    query = (
        select(*_SUMMARY_COLUMNS, delivery_payloads.c.payload)
        .join(delivery_payloads, delivery_payloads.c.delivery_id == deliveries.c.id)
        .where(
            deliveries.c.site_id == site_id,
            deliveries.c.endpoint_id == endpoint_id,
            deliveries.c.conversation_id.is_(None),
        )
    )
    if cursor:
        query = query.where(deliveries.c.seq < decode_cursor(cursor, int, error=_bad_cursor)[0])
    rows = (
        await connection.execute(query.order_by(deliveries.c.seq.desc()).limit(limit + 1))
    ).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].seq) if len(rows) > limit else None
    return [{**_summary(row._mapping), "payload": row.payload} for row in page], next_cursor


#: What the delivery log counts: what waits or needs a person; not the ever-growing
#: ``succeeded`` and ``superseded``.
COUNTED_STATUSES = tuple(status for status in STATUSES if status not in (SUCCEEDED, SUPERSEDED))


async def count_deliveries(
    connection: AsyncConnection,
    site_id: str,
    *,
    endpoint_id: str | None = None,
    created_from: float | None = None,
    created_to: float | None = None,
) -> dict[str, int]:
    """How many of ``site_id``'s deliveries are in each of :data:`COUNTED_STATUSES`.

    Every status of :data:`COUNTED_STATUSES` is a key, zero included. The
    status list is spelled as literals so the query runs on ``ix_deliveries_due``
    (status first) and never touches the succeeded rows, however many there are.
    """
    query = select(deliveries.c.status, func.count()).where(
        deliveries.c.site_id == site_id,
        deliveries.c.status.in_([literal_column(f"'{status}'") for status in COUNTED_STATUSES]),
    )
    # On the status index, not the created-at one, on SQLite: it cannot tell a narrow
    # range from a wide one, and a wide one would count every succeeded row in it.
    query = _filtered(
        query,
        dialect=connection.dialect.name,
        searched=connection.dialect.name != "sqlite",
        endpoint_id=endpoint_id,
        created_from=created_from,
        created_to=created_to,
    )
    counts: dict[str, int] = dict.fromkeys(COUNTED_STATUSES, 0)
    for row in await connection.execute(query.group_by(deliveries.c.status)):
        counts[row[0]] = int(row[1])
    return counts


#: A prefix or created-at range holding fewer deliveries than this is searched on its index.
_FEW = 1000


async def _few_in_range(connection: AsyncConnection, site_id: str, filters: dict[str, Any]) -> bool:
    """Whether the listing's range filters hold fewer than :data:`_FEW` deliveries.

    PostgreSQL's planner knows from its statistics (the answer is always yes:
    let it choose). SQLite's does not, and would sort a range of a million
    rows to show the newest fifty; counting up to :data:`_FEW` on the range's
    index tells it, at the cost of at most that many index entries.
    """
    if connection.dialect.name != "sqlite":
        return True
    probe: Select[tuple[int]] = _filtered(
        select(deliveries.c.seq).where(deliveries.c.site_id == site_id),
        dialect=connection.dialect.name,
        searched=True,
        **filters,
    ).limit(_FEW)
    found = (await connection.execute(select(func.count()).select_from(probe.subquery()))).scalar()
    return int(found or 0) < _FEW


def _filtered(
    query: _Query,
    *,
    dialect: str,
    searched: bool,
    endpoint_id: str | None = None,
    conversation_id: str | None = None,
    conversation_prefix: str | None = None,
    created_from: float | None = None,
    created_to: float | None = None,
) -> _Query:
    """``query`` narrowed by the delivery log's filters (None leaves a filter out).

    ``searched``: the prefix and created-at conditions are written so that
    their indexes serve them; otherwise so that none can (``created_at + 0``,
    ``substr``), and the query walks the index its ``ORDER BY`` or status picks.
    """
    if created_from is not None and created_to is not None and created_to <= created_from:
        raise InvalidQueueQuery("created_to", "created_to must be later than created_from")
    if endpoint_id is not None:
        query = query.where(deliveries.c.endpoint_id == endpoint_id)
    if conversation_id is not None:
        query = query.where(deliveries.c.conversation_id == conversation_id)
    if conversation_prefix:
        column = deliveries.c.conversation_id
        query = query.where(
            starts_with(column, conversation_prefix, dialect=dialect)
            if searched
            # substr, not LIKE: LIKE ignores case on SQLite.
            else func.substr(column, 1, len(conversation_prefix)) == conversation_prefix
        )
    created = deliveries.c.created_at if searched else deliveries.c.created_at + 0
    if created_from is not None:
        query = query.where(created >= created_from)
    if created_to is not None:
        query = query.where(created < created_to)
    return query


async def queue_stats(connection: AsyncConnection, *, now: float | None = None) -> dict[str, Any]:
    """``{"by_status": {status: count}, "oldest_pending_age_seconds": float}`` for /metrics.

    Only work not finished is counted (``pending``, ``retrying``,
    ``delivering``, ``held``), looked up by status in the index that starts
    with it: a scrape costs the same with a million finished deliveries in the
    table as with none. The age is how long the longest-waiting due delivery
    has been due: 0 when the workers keep up, growing when they fall behind or
    are down.
    """
    at = time.time() if now is None else now
    counts = {status: 0 for status in WAITING}
    waiting = deliveries.c.status.in_([literal_column(f"'{status}'") for status in WAITING])
    for row in await connection.execute(
        select(deliveries.c.status, func.count()).where(waiting).group_by(deliveries.c.status)
    ):
        counts[row[0]] = int(row[1])
    earliest = (await connection.execute(_EARLIEST_DUE, {"at": at})).one()
    due = [value for value in earliest if value is not None]
    return {
        "by_status": counts,
        "oldest_pending_age_seconds": max(0.0, at - min(due)) if due else 0.0,
    }


#: The earliest due time of each unfinished status that is due by ``:at``: one probe of
#: ``ix_deliveries_due`` (status, due time) each, however long the backlog.
_EARLIEST_DUE = select(
    *(
        select(func.min(deliveries.c.next_attempt_at))
        .where(
            deliveries.c.status == literal_column(f"'{status}'"),
            deliveries.c.next_attempt_at <= bindparam("at", type_=Float),
        )
        .scalar_subquery()
        for status in UNFINISHED
    )
)


def _summary(row: RowMapping) -> dict[str, Any]:
    delivery = dict(row)
    delivery.pop("seq")
    delivery.pop("payload", None)
    if delivery["status"] in FINISHED or delivery["status"] in (DELIVERING, HELD):
        # Nothing is scheduled: finished, held, or being sent right now (the value is the lease).
        delivery["next_attempt_at"] = None
    return delivery


def _bad_cursor() -> InvalidQueueQuery:
    return InvalidQueueQuery("cursor", InvalidCursor().message)
