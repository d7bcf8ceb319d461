"""How each endpoint has been answering: its circuit breaker, health and automatic disabling.

Written in the same transaction as the outcomes it learns from, so every
worker's claim sees the breaker the moment an outcome is recorded.

- After ``breaker_threshold`` failed attempts in a row, the last of them a
  connection error, a timeout or a 5xx (the receiver is down or broken,
  not refusing one payload), the breaker opens: the endpoint is ``failing``
  and the claim gives it one probe at a time, spaced from
  ``breaker_probe_seconds`` doubling up to ``breaker_probe_max_seconds``.
  Its other deliveries wait, due, without spending attempts. The first
  success closes the breaker and the backlog flows at the full cap.
- An endpoint that has failed continuously for ``disable_after`` seconds and
  at least ``disable_min_failures`` attempts is disabled, as one answering
  410 Gone is at once. Its waiting deliveries become ``held``; enabling it
  again sends them, in order (:func:`release_held`).

The last 24 hours of attempts are counted in hourly buckets on the health
row, so the API reports a success rate without reading the attempt log.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, bindparam, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.tables import deliveries, endpoint_health, endpoints, unfinished
from chathooks.queue.notify import announce_due
from chathooks.queue.record import Outcome
from chathooks.queue.statuses import (
    DELIVERING,
    ENDPOINT_DISABLED,
    FAILED,
    FAILING,
    HEALTHY,
    HELD,
    PENDING,
)

__all__ = [
    "FAILING",
    "HEALTHY",
    "HealthPolicy",
    "Transition",
    "disable_endpoint",
    "health_of",
    "learn_from",
    "release_held",
]

DISABLED = "disabled"
_HOUR = 3600.0
_WINDOW_HOURS = 24


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """The thresholds of the breaker and of automatic disabling (see the module docstring)."""

    breaker_threshold: int = 5
    probe_seconds: float = 5.0
    probe_max_seconds: float = 300.0
    disable_after: float = 432000.0
    disable_min_failures: int = 10

    def next_probe_interval(self, interval: float | None) -> float:
        """The wait after a failed probe: double the last one, within the maximum."""
        if interval is None:
            return min(self.probe_seconds, self.probe_max_seconds)
        return min(interval * 2, self.probe_max_seconds)


@dataclass(frozen=True, slots=True)
class Transition:
    """An endpoint changed state: what an operational alert reports."""

    endpoint_id: str
    site_id: str
    #: ``endpoint.failing``, ``endpoint.disabled``, ``endpoint.recovered`` or
    #: ``delivery.exhausted`` (a delivery failed for good).
    type: str
    reason: str | None
    at: float
    #: The delivery of a ``delivery.exhausted``.
    delivery_id: str | None = None


_HEALTH = select(endpoint_health).where(
    endpoint_health.c.endpoint_id.in_(bindparam("h_ids", expanding=True))
)
_HEALTH_FOR_UPDATE = _HEALTH.with_for_update()
_ENABLED = select(endpoints.c.id, endpoints.c.site_id, endpoints.c.enabled).where(
    endpoints.c.id.in_(bindparam("h_ids", expanding=True))
)


async def learn_from(
    connection: AsyncConnection,
    outcomes: Sequence[Outcome],
    *,
    policy: HealthPolicy,
    now: float | None = None,
) -> list[Transition]:
    """Update the health of the endpoints ``outcomes`` were attempted at; their transitions.

    In the caller's transaction, right after :func:`record_outcomes` stored
    them. Outcomes without an attempt (held deliveries) teach nothing.
    """
    at = time.time() if now is None else now
    attempted = sorted((o for o in outcomes if o.attempted), key=lambda o: o.started_at)
    if not attempted:
        return []
    ids = {"h_ids": sorted({o.endpoint_id for o in attempted})}
    # Two workers' outcomes for one endpoint, one at a time, on PostgreSQL.
    query = _HEALTH_FOR_UPDATE if connection.dialect.name == "postgresql" else _HEALTH
    rows = {row.endpoint_id: dict(row._mapping) for row in await connection.execute(query, ids)}
    enabled = {
        row.id: (row.site_id, bool(row.enabled)) for row in await connection.execute(_ENABLED, ids)
    }
    transitions: list[Transition] = []
    changed: list[dict[str, Any]] = []
    for endpoint_id in ids["h_ids"]:
        if endpoint_id not in enabled:
            continue  # deleted meanwhile
        site_id, is_enabled = enabled[endpoint_id]
        health = rows.get(endpoint_id) or _fresh(endpoint_id)
        mine = [o for o in attempted if o.endpoint_id == endpoint_id]
        for outcome in mine:
            happened = _apply(health, outcome, policy)
            if happened is not None:
                transitions.append(Transition(endpoint_id, site_id, happened, outcome.error, at))
            if outcome.status == FAILED:
                transitions.append(
                    Transition(
                        endpoint_id,
                        site_id,
                        "delivery.exhausted",
                        outcome.error,
                        at,
                        delivery_id=outcome.delivery_id,
                    )
                )
        _prune(health, at)
        health["updated_at"] = at
        changed.append(health)
        gone = next((o.disable_endpoint for o in mine if o.disable_endpoint), None)
        reason = gone or (_worn_out_reason(health) if _worn_out(health, policy, at) else None)
        if (
            is_enabled
            and reason
            and await disable_endpoint(connection, endpoint_id, reason, now=at)
        ):
            transitions.append(Transition(endpoint_id, site_id, "endpoint.disabled", reason, at))
    await _store(connection, changed)
    return transitions


def _fresh(endpoint_id: str) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "state": HEALTHY,
        "consecutive_failures": 0,
        "failing_since": None,
        "last_success_at": None,
        "last_failure_at": None,
        "last_failure_reason": None,
        "probe_at": None,
        "probe_interval": None,
        "recent": {},
        "alerted": None,
        "updated_at": 0.0,
    }


def _apply(health: dict[str, Any], outcome: Outcome, policy: HealthPolicy) -> str | None:
    """Fold one attempt into ``health``; the alert type if the breaker opened or closed."""
    when = outcome.started_at
    bucket = str(int(when // _HOUR))
    recent = dict(health["recent"] or {})
    ok, failed = recent.get(bucket, [0, 0])
    succeeded = outcome.attempt_outcome == "succeeded"
    recent[bucket] = [ok + 1, failed] if succeeded else [ok, failed + 1]
    health["recent"] = recent
    if succeeded:
        was_failing = health["state"] == FAILING
        health.update(
            state=HEALTHY,
            consecutive_failures=0,
            failing_since=None,
            probe_at=None,
            probe_interval=None,
            last_success_at=when,
        )
        return "endpoint.recovered" if was_failing else None
    failures = int(health["consecutive_failures"]) + 1
    health.update(
        consecutive_failures=failures,
        failing_since=health["failing_since"] or when,
        last_failure_at=when,
        last_failure_reason=outcome.error,
    )
    down = outcome.status_code is None or outcome.status_code >= 500
    if health["state"] == FAILING:
        # Only the probe moves the next probe out; attempts already in flight when
        # the breaker opened started before it was due.
        probe_at = health["probe_at"]
        if probe_at is None or when >= probe_at:
            interval = policy.next_probe_interval(health["probe_interval"])
            health.update(probe_at=when + interval, probe_interval=interval)
        return None
    if down and failures >= policy.breaker_threshold:
        interval = policy.next_probe_interval(None)
        health.update(state=FAILING, probe_at=when + interval, probe_interval=interval)
        return "endpoint.failing"
    return None


def _worn_out(health: Mapping[str, Any], policy: HealthPolicy, at: float) -> bool:
    since = health["failing_since"]
    return (
        since is not None
        and at - since >= policy.disable_after
        and int(health["consecutive_failures"]) >= policy.disable_min_failures
    )


def _worn_out_reason(health: Mapping[str, Any]) -> str:
    return (
        f"failing since {_iso(health['failing_since'])} "
        f"({health['consecutive_failures']} failed attempts in a row); "
        f"last: {health['last_failure_reason']}"
    )


def _prune(health: dict[str, Any], at: float) -> None:
    oldest = int(at // _HOUR) - _WINDOW_HOURS
    health["recent"] = {
        bucket: counts
        for bucket, counts in (health["recent"] or {}).items()
        if int(bucket) > oldest
    }


@functools.cache
def _upsert(dialect_name: str) -> Insert:
    """``INSERT ... ON CONFLICT (endpoint_id) DO UPDATE`` of every column, built once."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(endpoint_health)
    columns = [c.name for c in endpoint_health.columns if c.name != "endpoint_id"]
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=[endpoint_health.c.endpoint_id],
        set_={name: statement.excluded[name] for name in columns},
    )
    return upsert


async def _store(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await connection.execute(_upsert(connection.dialect.name), rows)


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return "unknown"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


async def disable_endpoint(
    connection: AsyncConnection, endpoint_id: str, reason: str, *, now: float | None = None
) -> bool:
    """Switch an endpoint off with ``reason`` and hold what waits for it; False if it was off.

    Nothing is failed: every delivery waiting for it becomes ``held`` (one in
    flight is held when its claim comes back), to be sent once it is enabled.
    """
    at = time.time() if now is None else now
    result = await connection.execute(
        update(endpoints)
        .where(endpoints.c.id == endpoint_id, endpoints.c.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason, updated_at=at)
    )
    if not result.rowcount:
        return False
    await connection.execute(
        update(deliveries)
        .where(
            deliveries.c.endpoint_id == endpoint_id,
            unfinished(deliveries),
            deliveries.c.status != literal_column(f"'{DELIVERING}'"),
        )
        .values(status=HELD, last_error=ENDPOINT_DISABLED, updated_at=at)
    )
    return True


async def release_held(
    connection: AsyncConnection, endpoint_id: str, *, now: float | None = None
) -> int:
    """Send an enabled endpoint's held deliveries, in their queue order; returns how many.

    The endpoint first proves itself: its breaker is left open with a probe
    due at once, so one delivery goes first, and its success closes the
    breaker (``endpoint.recovered``) and lets the rest flow. Each held
    delivery's retry schedule starts over, as after a redelivery.
    """
    at = time.time() if now is None else now
    result = await connection.execute(
        update(deliveries)
        .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == HELD)
        .values(
            status=PENDING,
            next_attempt_at=at,
            round_attempts=0,
            last_error=None,
            updated_at=at,
        )
    )
    await connection.execute(
        update(endpoint_health)
        .where(endpoint_health.c.endpoint_id == endpoint_id)
        .values(state=FAILING, probe_at=at)
    )
    if result.rowcount:
        await announce_due(connection)
    return int(result.rowcount)


async def health_of(
    connection: AsyncConnection, enabled: Mapping[str, bool], *, now: float | None = None
) -> dict[str, dict[str, Any]]:
    """The ``health`` object of each endpoint of ``enabled`` (whether each is switched on, as
    the caller read it with the rest of the endpoint), as the API shows it (one query).

    ``state`` is ``disabled`` for a switched-off endpoint, whatever its breaker. It is
    decided by the flag given, not read again: an endpoint and its health are two reads,
    and a worker disabling the endpoint between them must not show an endpoint that is
    ``enabled`` and ``disabled`` at once. ``success_rate_24h`` is None when nothing was
    attempted in the last 24 hours.
    """
    at = time.time() if now is None else now
    if not enabled:
        return {}
    ids = sorted(enabled)
    rows = {row.endpoint_id: row for row in await connection.execute(_HEALTH, {"h_ids": ids})}
    found: dict[str, dict[str, Any]] = {}
    oldest = int(at // _HOUR) - _WINDOW_HOURS
    for endpoint_id in ids:
        row = rows.get(endpoint_id)
        health = _fresh(endpoint_id) if row is None else dict(row._mapping)
        ok = failed = 0
        for bucket, counts in (health["recent"] or {}).items():
            if int(bucket) > oldest:
                ok, failed = ok + int(counts[0]), failed + int(counts[1])
        state = health["state"] or HEALTHY
        switched_on = enabled[endpoint_id]
        found[endpoint_id] = {
            "state": DISABLED if not switched_on else state,
            "consecutive_failures": int(health["consecutive_failures"] or 0),
            "failing_since": health["failing_since"],
            "last_success_at": health["last_success_at"],
            "last_failure_at": health["last_failure_at"],
            "last_failure_reason": health["last_failure_reason"],
            "next_probe_at": health["probe_at"] if state == FAILING and switched_on else None,
            "attempts_24h": ok + failed,
            "success_rate_24h": None if ok + failed == 0 else round(ok / (ok + failed), 4),
        }
    return found
