"""The delivery worker: claim due deliveries, post them, record what happened.

::

    claim a batch ──► post up to worker_concurrency at once ──► record outcomes in batches
         ▲                                                              │
         └──── the transaction that records a batch claims the next ◄───┘
               work with it: what finished freed room at its endpoint,
               and may release the next delivery of its conversation

Everything that touches the database is in :mod:`chathooks.queue`; the HTTP
is :class:`chathooks.sender.Sender`. What is left here is the loop and the
rules for what an attempt's result means (:func:`decide`).

Crash safety comes from the queue's leases: a claimed delivery that is never
recorded (the process was killed) becomes due again when its lease runs out,
and is sent again with the same ``webhook-id``. Delivery is at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.outcomes import OutcomeWriter
from chathooks.queue import (
    ENDPOINT_DISABLED,
    FAILED,
    HELD,
    RETRYING,
    SUCCEEDED,
    ClaimedDelivery,
    HealthPolicy,
    Outcome,
    Transition,
    claim,
    learn_from,
    listening,
    queue_alerts,
    release,
    when_due_here,
    write_transaction,
)
from chathooks.sender import (
    DISABLE,
    FAIL,
    SUCCEED,
    AttemptResult,
    Sender,
    answer_class,
    build_request,
    logged_headers,
    retry_delay,
)
from chathooks.settings import Settings

__all__ = ["Outcome", "Worker", "decide", "default_worker_id", "set_within"]

log = logging.getLogger("chathooks.worker")

OutcomeListener = Callable[[list[Outcome]], Awaitable[None]]
PeriodicJob = tuple[float, Callable[[], Awaitable[None]]]

GONE_REASON = "the receiver answered 410 Gone"
#: How often a worker checks that its PostgreSQL listener's connection is still open.
LISTENER_CHECK_SECONDS = 5.0
#: Seconds a worker claims only on its own after a claim failed inside a recording transaction.
CLAIM_WITH_OUTCOMES_PAUSE = 30.0
#: How often outcomes held through a database outage are offered to the database again.
HELD_RETRY_SECONDS = 1.0


async def set_within(event: asyncio.Event, seconds: float | None) -> bool:
    """Whether ``event`` is set within ``seconds`` (None: however long it takes)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


def default_worker_id() -> str:
    """``host-pid-random``: tells leases apart in the database and in logs."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


def decide(
    claimed: ClaimedDelivery,
    result: AttemptResult,
    *,
    started_at: float,
    schedule: Sequence[float],
    now: float | None = None,
    request_headers: Mapping[str, str] | None = None,
) -> Outcome:
    """What one attempt's result means for its delivery (the README's retry policy).

    Which answers are retried, failed at once or disable the endpoint is
    :func:`chathooks.sender.answer_class`. 410 Gone holds the delivery (and
    its endpoint's others) until the endpoint is enabled again. A retried
    delivery waits for the next step of the schedule, longer if the
    receiver's ``Retry-After`` asks for it; when the schedule is used up the
    delivery has failed. An answer without a status (refused destination,
    connection error, timeout) is retried: someone may fix the URL or the
    allow-list meanwhile.
    """
    at = time.time() if now is None else now
    round_attempts = claimed.round_attempts + 1
    next_attempt_at: float | None = None
    disable_endpoint: str | None = None
    verdict = SUCCEED if result.ok else answer_class(result.status_code)
    if verdict == SUCCEED:
        status = SUCCEEDED
    elif verdict == DISABLE or result.gone:
        status = HELD
        disable_endpoint = GONE_REASON
    elif verdict == FAIL:
        status = FAILED
    else:
        delay = retry_delay(round_attempts, schedule, retry_after=result.retry_after)
        status = FAILED if delay is None else RETRYING
        next_attempt_at = None if delay is None else at + delay
    return _settling(
        claimed,
        status=status,
        attempt_count=claimed.attempt_count + 1,
        round_attempts=round_attempts,
        next_attempt_at=next_attempt_at,
        attempt_outcome="succeeded" if result.ok else "refused" if result.refused else "failed",
        started_at=started_at,
        duration_ms=result.duration_ms,
        status_code=result.status_code,
        response_body=result.response_body,
        error=result.error,
        integration_url=result.integration_url,
        disable_endpoint=disable_endpoint,
        request_headers=request_headers,
        response_headers=result.response_headers,
    )


def held(claimed: ClaimedDelivery, *, now: float) -> Outcome:
    """A delivery whose endpoint is disabled: held without an attempt.

    Not left pending: it would be claimed over and over. Enabling the
    endpoint again sends every held delivery, in order.
    """
    return _settling(
        claimed,
        status=HELD,
        attempt_count=claimed.attempt_count,
        round_attempts=claimed.round_attempts,
        next_attempt_at=None,
        attempt_outcome=None,
        started_at=now,
        error=ENDPOINT_DISABLED,
    )


def _settling(claimed: ClaimedDelivery, **result: Any) -> Outcome:
    """The :class:`Outcome` of ``claimed``: its identity and lease, with ``result``."""
    return Outcome(
        delivery_seq=claimed.seq,
        delivery_id=claimed.id,
        site_id=claimed.site_id,
        endpoint_id=claimed.endpoint_id,
        conversation_id=claimed.conversation_id,
        lease_expires_at=claimed.lease_expires_at,
        trigger=claimed.trigger,
        **result,
    )


@dataclass(frozen=True, slots=True)
class _Settled:
    """What a recording transaction learnt and claimed, handed over once it committed."""

    transitions: list[Transition]
    claimed: list[ClaimedDelivery]
    #: The transaction looked for due work (whether or not it found any).
    looked: bool


def _log_transition(transition: Transition) -> None:
    log.warning(
        "%s: endpoint %s of site %s (%s)",
        transition.type,
        transition.endpoint_id,
        transition.site_id,
        transition.reason or "no reason given",
    )


class Worker:
    """Sends due deliveries until told to stop; several may run against one PostgreSQL.

    Inside, ``worker_concurrency`` sender loops take claimed deliveries from a
    local backlog, one claimer loop keeps that backlog filled, and one
    recorder loop writes the outcomes down in batches.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        worker_id: str | None = None,
        periodic: Sequence[PeriodicJob] = (),
        on_outcome: OutcomeListener | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self.periodic = list(periodic)
        self.on_outcome = on_outcome
        #: Claimed, not yet started; None tells a sender loop to finish.
        self._backlog: asyncio.Queue[ClaimedDelivery | None] = asyncio.Queue()
        # Enough in hand to cover a claim's round trip, little enough that claims
        # waiting their turn do not outlive their leases behind a slow endpoint.
        self._refill_below = max(settings.worker_concurrency, settings.claim_batch_size // 2)
        #: Seconds of lease a claim needs left to be posted: one full attempt and a margin.
        self._lease_margin = min(settings.total_timeout + 5.0, settings.lease_seconds / 2)
        #: The claimer should look again: there is room, or new work may be due.
        self._nudge = asyncio.Event()
        self._new_work = False
        self._outcomes: list[Outcome] = []
        self._outcomes_waiting = asyncio.Event()
        self._closing = False
        #: Claims may be made (the claimer loop runs); cleared when the worker stops.
        self._claiming = False
        #: Recording transactions claim too, from this moment (``time.monotonic()``) on.
        self._claim_with_outcomes_after = 0.0
        self._health = HealthPolicy(
            breaker_threshold=settings.breaker_threshold,
            probe_seconds=settings.breaker_probe_seconds,
            probe_max_seconds=settings.breaker_probe_max_seconds,
            disable_after=settings.disable_after,
            disable_min_failures=settings.disable_min_failures,
        )
        #: Records outcomes (and what they say of their endpoints); holds them
        #: while the database is away.
        self._writer = OutcomeWriter(
            engine, self.worker_id, follow_up=self._settle, committed=self._settled
        )
        #: Claimed by the recording transactions of the current :meth:`_record` call.
        self._claimed_with_outcomes = 0
        #: Whether one of them looked for due work.
        self._looked_with_outcomes = False

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll (e.g. right after enqueue)."""
        self._new_work = True
        self._nudge.set()

    # -- one batch, for tests and scripts ------------------------------------------
    async def run_once(self) -> int:
        """Claim one batch, send it, record the outcomes; returns how many were claimed."""
        batch = await self._claim()
        if not batch:
            return 0
        slots = asyncio.Semaphore(self.settings.worker_concurrency)
        async with Sender.from_settings(self.settings) as sender:

            async def attempt(claimed: ClaimedDelivery) -> Outcome:
                async with slots:
                    return await self._attempt(sender, claimed)

            outcomes = await asyncio.gather(*(attempt(claimed) for claimed in batch))
        await self._record(list(outcomes))
        return len(batch)

    # -- the loops -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set, then finish what is in flight and record it.

        Claimed deliveries not yet started go back to the queue at once.
        Cancelling instead of setting ``stop`` abandons in-flight claims to
        their leases.
        """
        stop = stop or asyncio.Event()
        self._closing = False
        log.info("worker %s started", self.worker_id)
        recorder = asyncio.create_task(self._record_continuously())
        tasks = [recorder, asyncio.create_task(self._nudge_on(stop))]
        if self.engine.dialect.name == "postgresql":
            tasks.append(asyncio.create_task(self._listen_for_due_work(stop)))
        for seconds, job in self.periodic:
            tasks.append(asyncio.create_task(self._every(seconds, job, stop)))
        try:
            # Whatever commits due work in this process wakes this worker.
            with when_due_here(self.engine, self.wake):
                await self._deliver(stop)
            self._closing = True
            self._outcomes_waiting.set()
            await recorder
            # A recording transaction that was claiming as the worker stopped.
            await self._release(self._empty_backlog())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("worker %s stopped", self.worker_id)

    async def _deliver(self, stop: asyncio.Event) -> None:
        """The sender loops and the claimer, until ``stop``; then the unsent go back."""
        senders: list[asyncio.Task[None]] = []
        try:
            async with Sender.from_settings(self.settings) as sender:
                senders = [
                    asyncio.create_task(self._send_continuously(sender))
                    for _ in range(self.settings.worker_concurrency)
                ]
                self._claiming = True
                try:
                    await self._claim_continuously(stop)
                finally:
                    self._claiming = False
                unsent = self._empty_backlog()
                for _ in senders:
                    self._backlog.put_nowait(None)
                await asyncio.gather(*senders)
            await self._release(unsent)
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)

    async def _claim_continuously(self, stop: asyncio.Event) -> None:
        """Keep the backlog filled: at once while batches come back full, else when nudged."""
        loop = asyncio.get_running_loop()
        more_due = True
        next_poll = loop.time()
        while not stop.is_set():
            self._nudge.clear()
            room = self._backlog_has_room()
            if room and (more_due or self._new_work or loop.time() >= next_poll):
                self._new_work = False
                claimed = await self._claim()
                for delivery in claimed:
                    self._backlog.put_nowait(delivery)
                # A full batch means more is probably due: claim again as soon as there is room.
                more_due = len(claimed) >= self.settings.claim_batch_size
                next_poll = loop.time() + self.settings.poll_interval
                continue
            await set_within(self._nudge, max(0.0, next_poll - loop.time()) if room else None)

    async def _send_continuously(self, sender: Sender) -> None:
        """One of ``worker_concurrency`` loops: post the next claimed delivery, until stopped."""
        while (claimed := await self._backlog.get()) is not None:
            if self._backlog_has_room():
                self._nudge.set()
            if claimed.lease_expires_at - time.time() < self._lease_margin:
                # Too late to post and record it within the lease: another claim may
                # already be under way. It returns to the queue when the lease ends.
                continue
            outcome = await self._attempt(sender, claimed)
            self._outcomes.append(outcome)
            self._outcomes_waiting.set()

    async def _record_continuously(self) -> None:
        """Write outcomes as they come; all that arrive during one write go in the next."""
        while True:
            if not self._outcomes:
                if self._writer.held and not self._closing:
                    # The database was away: offer what is held again shortly.
                    await set_within(self._outcomes_waiting, HELD_RETRY_SECONDS)
                    self._outcomes_waiting.clear()
                elif self._closing:
                    if self._writer.held:
                        await self._record([])  # one last try; the rest is left to the leases
                    return
                else:
                    await self._outcomes_waiting.wait()
                    self._outcomes_waiting.clear()
                    continue
            batch, self._outcomes = self._outcomes, []
            await self._record(batch)

    async def _attempt(self, sender: Sender, claimed: ClaimedDelivery) -> Outcome:
        """Post one claimed delivery; never raises, whatever the receiver does."""
        started_at = time.time()
        destination = claimed.destination
        if not destination.enabled:
            return held(claimed, now=started_at)
        sent_headers: dict[str, str] | None = None
        try:
            request = build_request(
                delivery_id=claimed.id,
                url=destination.url,
                document_json=claimed.payload,
                fmt=destination.format,
                secret=destination.signing_secrets,
                extra_headers=destination.headers,
            )
        except ValueError as exc:
            result = AttemptResult(ok=False, error=f"cannot build the request: {exc}")
        else:
            sent_headers = logged_headers(request.headers)
            try:
                result = await sender.send(request)
            except Exception as exc:  # a bug must cost one attempt, not the worker
                log.exception("sending delivery %s failed unexpectedly", claimed.id)
                result = AttemptResult(ok=False, error=f"internal error: {exc!r}")
        return decide(
            claimed,
            result,
            started_at=started_at,
            schedule=self.settings.retry_schedule,
            request_headers=sent_headers,
        )

    # -- the database side -----------------------------------------------------------
    async def _claim_in(self, connection: AsyncConnection) -> list[ClaimedDelivery]:
        return await claim(
            connection,
            owner=self.worker_id,
            limit=self.settings.claim_batch_size,
            lease_seconds=self.settings.lease_seconds,
            endpoint_concurrency=self.settings.endpoint_concurrency,
        )

    async def _claim(self) -> list[ClaimedDelivery]:
        try:
            async with write_transaction(self.engine) as connection:
                return await self._claim_in(connection)
        except Exception:
            # The database may be restarting; the next poll tries again.
            log.exception("claiming deliveries failed")
            return []

    async def _settle(self, connection: AsyncConnection, outcomes: list[Outcome]) -> _Settled:
        """In the transaction recording ``outcomes``: endpoint health, alerts, the next claim.

        Claiming here rather than in a transaction of its own halves the
        commits of a busy worker: what just finished freed room at its
        endpoint (and may have released the next delivery of its
        conversation), and this claim takes that at once. What is claimed
        reaches the backlog only once the transaction committed
        (:meth:`_settled`), before any next recording transaction claims.

        A claim that fails here fails the recording transaction with it; the
        outcomes are then written again (see :class:`OutcomeWriter`) without a
        claim for a while, so a fault of the claim can never cost an outcome.
        """
        transitions = await learn_from(connection, outcomes, policy=self._health)
        await queue_alerts(connection, transitions, min_interval=self.settings.alert_interval)
        claimed: list[ClaimedDelivery] = []
        looked = (
            self._claiming
            and self._backlog_has_room()
            and time.monotonic() >= self._claim_with_outcomes_after
        )
        if looked:
            try:
                claimed = await self._claim_in(connection)
            except Exception:
                self._claim_with_outcomes_after = time.monotonic() + CLAIM_WITH_OUTCOMES_PAUSE
                log.exception("claiming with recorded outcomes failed; claiming on its own")
                raise
        return _Settled(transitions, claimed, looked)

    def _settled(self, settled: _Settled) -> None:
        """After a recording transaction committed: its claims join the backlog."""
        for transition in settled.transitions:
            _log_transition(transition)
        for delivery in settled.claimed:
            self._backlog.put_nowait(delivery)
        self._claimed_with_outcomes += len(settled.claimed)
        self._looked_with_outcomes |= settled.looked

    async def _record(self, outcomes: list[Outcome]) -> None:
        # Never raises: a refused outcome is recorded as failed, and through a database
        # outage outcomes are held and written with the next call (see OutcomeWriter).
        self._claimed_with_outcomes = 0
        self._looked_with_outcomes = False
        outcomes = await self._writer.write(outcomes)
        if outcomes and (
            not self._looked_with_outcomes
            or self._claimed_with_outcomes >= self.settings.claim_batch_size
        ):
            # No claim was made with them (the backlog was full, say), or a full batch
            # was: the claimer looks again. When the claim found less than a batch, the
            # queue was just looked at, and a claim of its own right after would find
            # nothing either (with two workers on one busy endpoint, the other's
            # recording transactions take the room these outcomes freed).
            self.wake()
        if self.on_outcome is not None and outcomes:
            try:
                await self.on_outcome(outcomes)
            except Exception:
                log.exception("an on_outcome listener failed")

    def _backlog_has_room(self) -> bool:
        """Fewer claimed deliveries wait than cover a claim's round trip: claim more."""
        return self._backlog.qsize() < self._refill_below

    def _empty_backlog(self) -> list[int]:
        unsent: list[int] = []
        while not self._backlog.empty():
            claimed = self._backlog.get_nowait()
            if claimed is not None:
                unsent.append(claimed.seq)
        return unsent

    async def _release(self, unsent: list[int]) -> None:
        if not unsent:
            return
        try:
            async with write_transaction(self.engine) as connection:
                await release(connection, unsent, owner=self.worker_id)
        except Exception:
            log.exception("giving back %d unsent deliveries failed; their leases will", len(unsent))

    async def _listen_for_due_work(self, stop: asyncio.Event) -> None:
        """Wake at each announcement of due work from another process (PostgreSQL).

        A lost connection is noticed within :data:`LISTENER_CHECK_SECONDS` and
        listened on again; meanwhile the poll finds the work.
        """
        while not stop.is_set():
            try:
                async with listening(self.engine, self.wake) as still_open:
                    while still_open() and not await set_within(stop, LISTENER_CHECK_SECONDS):
                        pass
            except Exception:
                log.warning("cannot listen for due work; polling meanwhile", exc_info=True)
            await set_within(stop, LISTENER_CHECK_SECONDS)

    # -- helpers -------------------------------------------------------------------------
    async def _nudge_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._nudge.set()

    async def _every(
        self, seconds: float, job: Callable[[], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        while not await set_within(stop, seconds):
            try:
                await job()
            except Exception:
                log.exception("periodic job %r failed", job)
