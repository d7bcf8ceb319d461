"""Deleting conversations: closed ones past the retention period, or named ones (erasure).

A conversation goes with its lines (``conversation_lines``) and the record
of what was posted for it (``conversation_posts``). A delivery of it still
to be sent is not touched: it has its own copy of the payload, and is
delivered (and purged) in its own time.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.db.forget import oldest_batch
from chathooks.db.jsonpath import visitor_email_is
from chathooks.db.tables import conversation_lines, conversation_posts, conversations

__all__ = ["conversations_to_erase", "delete_conversations", "purge_closed_conversations"]


async def delete_conversations(
    connection: AsyncConnection, keys: Sequence[tuple[str, str]]
) -> tuple[int, int]:
    """Delete conversations given as ``(site_id, id)``, their lines and their posts; returns
    how many conversations and posts went."""
    if not keys:
        return 0, 0
    await connection.execute(
        delete(conversation_lines).where(
            tuple_(conversation_lines.c.site_id, conversation_lines.c.conversation_id).in_(
                list(keys)
            )
        )
    )
    posts = await connection.execute(
        delete(conversation_posts).where(
            tuple_(conversation_posts.c.site_id, conversation_posts.c.conversation_id).in_(
                list(keys)
            )
        )
    )
    removed = await connection.execute(
        delete(conversations).where(
            tuple_(conversations.c.site_id, conversations.c.id).in_(list(keys))
        )
    )
    return int(removed.rowcount), int(posts.rowcount)


async def purge_closed_conversations(
    connection: AsyncConnection, *, closed_before: float, limit: int
) -> tuple[int, int]:
    """Delete up to ``limit`` conversations closed before ``closed_before`` (one batch)."""
    query = (
        select(conversations.c.site_id, conversations.c.id)
        .where(conversations.c.state == "closed", conversations.c.closed_at < closed_before)
        .order_by(conversations.c.closed_at)
    )
    keys = [(row.site_id, row.id) for row in await oldest_batch(connection, query, limit=limit)]
    return await delete_conversations(connection, keys)


async def conversations_to_erase(
    connection: AsyncConnection,
    site_id: str,
    *,
    conversation_id: str | None = None,
    email: str | None = None,
) -> list[str]:
    """Ids of ``site_id``'s conversation ``conversation_id``, or of every one whose visitor's
    email address is ``email`` (the whole address, case-insensitive)."""
    query = select(conversations.c.id).where(conversations.c.site_id == site_id)
    if conversation_id is not None:
        query = query.where(conversations.c.id == conversation_id)
    elif email:
        query = query.where(visitor_email_is(conversations.c.document, email))
    else:
        return []
    return [row.id for row in await connection.execute(query)]
