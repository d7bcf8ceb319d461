"""Erasure (GDPR Art. 17): one visitor's or one conversation's data, gone from the database.

An erasure names a conversation, or a visitor's email address. It removes,
in one transaction, the conversation(s) with their posts; every delivery of
them, or whose payload contains the address (offline messages included),
whatever its status, with its payload, its attempts and the receivers'
response bodies (deliveries still to be sent are cancelled: counted as
``deliveries_cancelled``); and the stored answers of ``Idempotency-Key``
requests that echo it. What was erased is recorded in ``erasures`` as who,
when, which kind of subject and the counts, never the subject itself.

Gone means gone from the file as well: SQLite runs with ``secure_delete``
(deleted content is overwritten with zeros, see :mod:`chathooks.db.engine`),
and after an erasure the write-ahead log, which may still hold earlier page
images, is checkpointed into the database and truncated. PostgreSQL deletes
the rows; its dead tuples are reclaimed by (auto)vacuum, and nothing of
chathooks copies them elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, insert, or_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.conversations.retention import conversations_to_erase, delete_conversations
from chathooks.db.forget import check_subject, forget_wal
from chathooks.db.tables import erasures, idempotency_keys
from chathooks.queue import write_transaction
from chathooks.queue.retention import delete_deliveries, deliveries_to_erase

__all__ = ["ErasureCounts", "erase"]

Requester = Literal["api", "admin", "cli"]


@dataclass(frozen=True)
class ErasureCounts:
    conversations: int = 0
    conversation_posts: int = 0
    deliveries: int = 0
    deliveries_cancelled: int = 0
    payloads: int = 0
    attempts: int = 0
    idempotency_keys: int = 0


async def _erase_in(
    connection: AsyncConnection, site_id: str, subject: str, value: str
) -> ErasureCounts:
    by_email = subject == "email"
    conversation_ids = await conversations_to_erase(
        connection,
        site_id,
        conversation_id=None if by_email else value,
        email=value if by_email else None,
    )
    if not by_email and value not in conversation_ids:
        conversation_ids.append(value)  # an offline message has deliveries but no conversation
    doomed = await deliveries_to_erase(
        connection,
        site_id,
        conversation_ids=conversation_ids,
        email=value if by_email else None,
    )
    removed = await delete_deliveries(connection, doomed, finished_only=False)
    chats, posts = await delete_conversations(
        connection, [(site_id, conversation_id) for conversation_id in conversation_ids]
    )
    # Each as a whole JSON string, quotes included: "ann@x.com" is not inside "joann@x.com".
    needles = [
        json.dumps(needle) for needle in ([value, *conversation_ids] if by_email else [value])
    ]
    keys = await connection.execute(
        sql_delete(idempotency_keys).where(
            idempotency_keys.c.site_id == site_id,
            or_(
                *(
                    func.lower(idempotency_keys.c.response_body).contains(
                        needle.lower(), autoescape=True
                    )
                    for needle in needles
                )
            ),
        )
    )
    return ErasureCounts(
        conversations=chats,
        conversation_posts=posts,
        deliveries=removed.deliveries,
        deliveries_cancelled=removed.unfinished,
        payloads=removed.payloads,
        attempts=removed.attempts,
        idempotency_keys=int(keys.rowcount),
    )


async def erase(
    engine: AsyncEngine,
    site_id: str,
    *,
    conversation_id: str | None = None,
    email: str | None = None,
    requested_by: Requester,
    now: float | None = None,
) -> ErasureCounts:
    """Erase a conversation or everything of one email address in ``site_id``; the counts."""
    subject, value = check_subject(conversation_id, email)
    at = time.time() if now is None else now
    async with write_transaction(engine) as connection:
        counts = await _erase_in(connection, site_id, subject, value)
        await connection.execute(
            insert(erasures).values(
                site_id=site_id,
                subject=subject,
                requested_by=requested_by,
                requested_at=at,
                counts=dataclasses.asdict(counts),
            )
        )
    await forget_wal(engine)
    return counts
