"""Finished deliveries put into a queue's tables in bulk, for the history phase.

A queue that has run for months holds far more finished deliveries than
unfinished ones; claiming and recording must not get dearer as they pile up.
The rows are written with one set-based statement per table, straight in
SQL (a million through the API would take most of an hour): each delivery
``succeeded`` with one attempt and a small payload, for the benchmark's own
site and endpoint, with ids of their own that the API never makes.
"""

from __future__ import annotations

import sqlite3
import time

import asyncpg

#: What each finished delivery carries (the figures are about row counts, not bytes).
_PAYLOAD = '{"kind":"Conversation","id":"history"}'

_SQLITE = [
    """
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
    INSERT INTO deliveries (id, site_id, endpoint_id, conversation_id, payload_kind, "trigger",
        status, attempt_count, round_attempts, next_attempt_at, last_status_code,
        created_at, updated_at, finished_at)
    SELECT printf('dlv_history_%012d', i), :site, :endpoint, printf('history%025d', i),
        'transcript', 'api', 'succeeded', 1, 1, :at - i, 200, :at - i, :at - i, :at - i
    FROM n
    """,
    """
    INSERT INTO delivery_payloads (delivery_id, payload)
    SELECT id, :payload FROM deliveries WHERE id LIKE 'dlv_history_%'
    """,
    """
    INSERT INTO attempts (delivery_seq, number, started_at, duration_ms, outcome, status_code,
        response_body)
    SELECT seq, 1, created_at, 3.0, 'succeeded', 200, '{"integrationUrl":null}'
    FROM deliveries WHERE id LIKE 'dlv_history_%'
    """,
]

_POSTGRES = [
    """
    INSERT INTO deliveries (id, site_id, endpoint_id, conversation_id, payload_kind, "trigger",
        status, attempt_count, round_attempts, next_attempt_at, last_status_code,
        created_at, updated_at, finished_at)
    SELECT 'dlv_history_' || lpad(i::text, 12, '0'), $2, $3, 'history' || lpad(i::text, 25, '0'),
        'transcript', 'api', 'succeeded', 1, 1, $4 - i, 200, $4 - i, $4 - i, $4 - i
    FROM generate_series(1, $1::bigint) AS i
    """,
    """
    INSERT INTO delivery_payloads (delivery_id, payload)
    SELECT id, $1 FROM deliveries WHERE id LIKE 'dlv\\_history\\_%'
    """,
    """
    INSERT INTO attempts (delivery_seq, number, started_at, duration_ms, outcome, status_code,
        response_body)
    SELECT seq, 1, created_at, 3.0, 'succeeded', 200, '{"integrationUrl":null}'
    FROM deliveries WHERE id LIKE 'dlv\\_history\\_%'
    """,
]


def fill_sqlite(path: str, *, site_id: str, endpoint_id: str, count: int) -> float:
    """Add ``count`` finished deliveries to the SQLite file; returns the seconds it took."""
    started = time.perf_counter()
    connection = sqlite3.connect(path, timeout=60)
    try:
        at = time.time() - 86_400.0
        with connection:
            connection.execute(
                _SQLITE[0], {"count": count, "site": site_id, "endpoint": endpoint_id, "at": at}
            )
            connection.execute(_SQLITE[1], {"payload": _PAYLOAD})
            connection.execute(_SQLITE[2])
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return time.perf_counter() - started


async def fill_postgres(url: str, *, site_id: str, endpoint_id: str, count: int) -> float:
    """Add ``count`` finished deliveries to the PostgreSQL database; the seconds it took."""
    started = time.perf_counter()
    connection = await asyncpg.connect(url, timeout=10)
    try:
        at = time.time() - 86_400.0
        async with connection.transaction():
            await connection.execute(_POSTGRES[0], count, site_id, endpoint_id, at)
            await connection.execute(_POSTGRES[1], _PAYLOAD)
            await connection.execute(_POSTGRES[2])
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return time.perf_counter() - started
