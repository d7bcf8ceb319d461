"""Group commit: the writes of concurrent callers share one transaction.

A small write in a transaction of its own (on SQLite a ``BEGIN IMMEDIATE``, a
commit and a flush) costs more than the write itself. So a caller's item
waits in a list; while one batch commits the next gathers, and each caller is
answered once the transaction holding its item has committed. An idle
service adds no delay: a lone item is committed as soon as the event loop has
had ``gather_turns`` turns, and no timer is waited on. When the database
refuses a batch for any reason, each of its items is committed on its own, so
one item cannot fail its neighbours.

Used by ingest (:mod:`chathooks.ingest`) and by chat lines
(:mod:`chathooks.conversations.service`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")

#: Commits a batch in one transaction; per item its answer, or the error that item alone
#: met (and that its caller is to get) without failing the transaction.
Commit = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]


class GroupCommit(Generic[T, R]):
    """Commits items of concurrent callers together, at most ``max_batch`` a transaction."""

    def __init__(self, commit: Commit[T, R], *, max_batch: int, gather_turns: int = 0) -> None:
        self._commit = commit
        self.max_batch = max_batch
        self._gather_turns = gather_turns
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Returns once ``item`` is committed, with its answer; raises what it met."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        # A caller that gives up cancels only its own future: its item is committed with
        # the others all the same, and _settle passes over a future already done. (No
        # shield: that would cost a future more and a turn of the loop per item.)
        return await done

    async def _commit_waiting(self) -> None:
        for _ in range(self._gather_turns):
            await asyncio.sleep(0)
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            items = [item for item, _ in batch]
            try:
                answers = await self._commit(items)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                for item, done in batch:
                    _settle(done, await self._alone(item))
                continue
            for (_, done), answer in zip(batch, answers, strict=True):
                _settle(done, answer)

    async def _alone(self, item: T) -> R | Exception:
        try:
            [answer] = await self._commit([item])
        except Exception as exc:
            return exc
        return answer


def _settle(done: asyncio.Future[R], answer: R | Exception) -> None:
    if done.done():
        return
    if isinstance(answer, Exception):
        done.set_exception(answer)
    else:
        done.set_result(answer)
