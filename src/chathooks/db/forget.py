"""Forgetting stored data, for every chathooks store: the sender's and the receiver's.

What retention and erasure share, whichever tables they delete from: the
rule of what an erasure may name (:func:`check_subject`), deleting the oldest
rows a bounded batch at a time until none is left (:func:`oldest_batch`,
:func:`in_batches`), and making sure SQLite's write-ahead log keeps no copy
of what was erased (:func:`forget_wal`). Nothing here knows the tables: the
sender (:mod:`chathooks.erasure`, :mod:`chathooks.retention`) and the
receiver (:mod:`chathooks.receiver.retention`) bring their own queries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from sqlalchemy import Row, Select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.errors import FieldError

__all__ = ["InvalidErasure", "check_subject", "forget_wal", "in_batches", "oldest_batch"]

Subject = Literal["conversation", "email"]


class InvalidErasure(FieldError, ValueError):
    """An erasure that names neither a conversation nor an email address (or both)."""

    code = "invalid_erasure"
    status_code = 422


def check_subject(conversation_id: str | None, email: str | None) -> tuple[Subject, str]:
    """``("conversation", id)`` or ``("email", address)``; :class:`InvalidErasure` otherwise."""
    conversation_id = conversation_id.strip() if conversation_id else None
    email = email.strip() if email else None
    if conversation_id and email:
        raise InvalidErasure(
            "name either conversation_id or email, not both", field="conversation_id"
        )
    if conversation_id:
        return "conversation", conversation_id
    if email:
        if "@" not in email:
            raise InvalidErasure(f"{email!r} is not an email address", field="email")
        return "email", email
    raise InvalidErasure(
        "name what to erase: conversation_id, or the visitor's email", field="conversation_id"
    )


async def oldest_batch(
    connection: AsyncConnection, query: Select[Any], *, limit: int
) -> list[Row[Any]]:
    """The first ``limit`` rows of ``query`` (ordered oldest first by the caller) to delete.

    On PostgreSQL they are locked ``FOR UPDATE SKIP LOCKED``: several
    processes purging at once take different rows instead of waiting on each
    other's.
    """
    query = query.limit(limit)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(await connection.execute(query))


async def in_batches(
    step: Callable[[], Awaitable[int]], *, batch_size: int, max_batches: int | None = None
) -> None:
    """Run ``step`` (one batch, in its own transaction; it returns how many rows it removed)
    until a batch comes back short, or ``max_batches`` ran."""
    done = 0
    while max_batches is None or done < max_batches:
        done += 1
        if await step() < batch_size:
            return


async def forget_wal(engine: AsyncEngine) -> None:
    """SQLite: copy the write-ahead log into the database and truncate it to nothing.

    The log keeps earlier images of the pages an erasure rewrote until it is
    reset; a checkpoint that cannot finish now (a reader is in the middle of
    something) leaves it to the next one, with the deleted rows already zeroed
    in the database itself.
    """
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as connection:
        await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        await connection.commit()
