"""Applying a chat event: change the conversation and queue its POSTs in one transaction.

Each method loads the conversation, asks :mod:`~chathooks.conversations.rules`
what the transcript becomes and which endpoints get what, then stores the
change, the deliveries and the record of what each endpoint was given in a
single transaction. Either all of it happens or none: a crash never leaves a
closed conversation whose transcript was not queued, nor a queued POST for a
change that was not stored.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks.conversations import rules, store
from chathooks.conversations.errors import (
    ConversationBusy,
    ConversationClosed,
    ConversationError,
    ConversationExists,
    ConversationNotFound,
)
from chathooks.conversations.ids import new_conversation_id
from chathooks.conversations.inputs import (
    ConversationChanges,
    NewConversation,
    NewMessage,
    NewOfflineMessage,
)
from chathooks.conversations.store import (
    CommandLine,
    ConversationRecord,
    NewPost,
    PostedDelivery,
)
from chathooks.group_commit import GroupCommit
from chathooks.queue import PENDING, deliveries_to, enqueue, write_transaction
from chathooks.repository.endpoints import Endpoint, enabled_endpoints
from chathooks.routing import PayloadKind, payload_kind, select_endpoints
from chathooks.wire import Item, MessageToVisitor, Transcript, dumps

__all__ = [
    "CommandOutcome",
    "ConversationService",
    "ConversationView",
    "MessageOutcome",
    "OfflineOutcome",
    "Queued",
    "StartOutcome",
]

#: How often a change is recomputed when another writer changed the conversation first.
MAX_ATTEMPTS = 20
#: Conversations closed per query by the idle check.
IDLE_BATCH = 200


@dataclass(frozen=True)
class Queued:
    """A delivery an action caused: new, or an earlier one that already carried this state."""

    id: str
    endpoint_id: str
    trigger: str
    #: True when no new POST was made because the endpoint already has this exact transcript.
    reused: bool = False
    status: str = PENDING
    integration_url: str | None = None


@dataclass(frozen=True)
class StartOutcome:
    conversation: ConversationRecord
    deliveries: list[Queued]


@dataclass(frozen=True)
class MessageOutcome:
    """A chat line was added to the transcript."""

    conversation: ConversationRecord
    item: Item


@dataclass(frozen=True)
class CommandOutcome:
    """An operator command posted the transcript so far."""

    conversation: ConversationRecord
    command: str
    deliveries: list[Queued]
    #: The command line as typed and kept (``!lead`` and the text after it).
    line: MessageToVisitor


@dataclass(frozen=True)
class OfflineOutcome:
    id: str
    deliveries: list[Queued]


@dataclass(frozen=True)
class ConversationView:
    """A conversation and every payload of it that was queued, with its delivery status."""

    conversation: ConversationRecord
    #: The whole transcript, as it would be posted now.
    transcript: Transcript
    posts: list[PostedDelivery] = field(default_factory=list)
    commands: list[CommandLine] = field(default_factory=list)


class ConversationService:
    """The conversation engine behind the API and the worker's idle check."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        #: This service's chat lines, committed together.
        self._lines = _LineWriter(engine)

    # -- start -------------------------------------------------------------------------
    async def start(self, site_id: str, request: NewConversation) -> StartOutcome:
        """Begin a conversation; endpoints with "Send all events" get a start event."""
        conversation_id = request.id or new_conversation_id()
        transcript = rules.begin(conversation_id, request)
        now = self._clock()
        try:
            async with write_transaction(self._engine) as connection:
                if await store.get_conversation(connection, site_id, conversation_id):
                    raise ConversationExists(conversation_id)
                record = await store.insert_conversation(connection, site_id, transcript, now=now)
                endpoints = await enabled_endpoints(connection, site_id)
                event = rules.start_event(transcript)
                queued = await self._post(
                    connection,
                    record,
                    event.to_wire(),
                    payload_kind(event),
                    select_endpoints(event, endpoints),
                    trigger="start",
                    now=now,
                )
        except IntegrityError as exc:  # another request created the same id just now
            raise ConversationExists(conversation_id) from exc
        return StartOutcome(conversation=record, deliveries=queued)

    # -- messages and commands ---------------------------------------------------------
    async def add_message(
        self, site_id: str, conversation_id: str, message: NewMessage
    ) -> MessageOutcome | CommandOutcome:
        """Add a chat line, or carry out an operator command (``!lead``...)."""
        command = rules.parse_command(message.body) if message.sender == "operator" else None
        if command is None:
            line = _Line(site_id, conversation_id, message, self._clock)
            return await self._lines.add(line)
        for _ in range(MAX_ATTEMPTS):
            now = self._clock()
            async with write_transaction(self._engine) as connection:
                record = await _open(connection, site_id, conversation_id)
                envelope, typed = rules.command_line(record.envelope, message, now=now)
                saved = await store.append_line(
                    connection, record, envelope, typed, command=command, now=now
                )
                if saved is None:
                    continue  # changed or closed meanwhile: load it again
                assert message.operator is not None
                queued = await self._command(
                    connection, saved, command, message.operator.id, now=now
                )
                return CommandOutcome(
                    conversation=saved, command=command, deliveries=queued, line=typed
                )
        raise ConversationBusy(conversation_id)

    async def _command(
        self,
        connection: AsyncConnection,
        record: ConversationRecord,
        command: str,
        operator_id: str,
        *,
        now: float,
    ) -> list[Queued]:
        endpoints = await enabled_endpoints(connection, record.site_id)
        prior = await store.prior_posts(connection, record.site_id, record.id)
        to_post, already = rules.command_recipients(
            endpoints, prior, record.envelope, record.version
        )
        if not to_post:
            return await self._earlier(connection, record, already) if already else []
        document = await _posted_transcript(connection, record, manually_submitted=True)
        queued = await self._post(
            connection,
            record,
            document,
            "transcript",
            to_post,
            trigger="command",
            now=now,
            command=command,
            operator_id=operator_id,
        )
        if already:
            queued += await self._earlier(connection, record, already)
        return queued

    async def _earlier(
        self, connection: AsyncConnection, record: ConversationRecord, endpoints: Sequence[Endpoint]
    ) -> list[Queued]:
        """The deliveries that already carried this version to ``endpoints`` (newest each)."""
        wanted = {endpoint.id for endpoint in endpoints}
        latest: dict[str, PostedDelivery] = {}
        for post in await store.posted_deliveries(connection, record.site_id, record.id):
            if (
                post.endpoint_id in wanted
                and post.version == record.version
                and post.trigger in ("command", "completion")
            ):
                latest[post.endpoint_id] = post
        return [
            Queued(
                id=post.delivery_id,
                endpoint_id=post.endpoint_id,
                trigger=post.trigger,
                reused=True,
                status=post.status,
                integration_url=post.integration_url,
            )
            for post in latest.values()
        ]

    # -- changes -----------------------------------------------------------------------
    async def change(
        self, site_id: str, conversation_id: str, changes: ConversationChanges
    ) -> ConversationRecord:
        """Change tags, visitor details, custom fields, feedback or groups."""
        for _ in range(MAX_ATTEMPTS):
            now = self._clock()
            async with write_transaction(self._engine) as connection:
                record = await _open(connection, site_id, conversation_id)
                envelope = rules.apply_changes(record.envelope, changes)
                saved = await store.save_transcript(
                    connection, record, envelope, now=now, activity=False
                )
                if saved is not None:
                    return saved
        raise ConversationBusy(conversation_id)

    # -- completion --------------------------------------------------------------------
    async def close(self, site_id: str, conversation_id: str) -> list[Queued]:
        """Complete a conversation now; returns the completion POSTs queued."""
        now = self._clock()
        async with write_transaction(self._engine) as connection:
            closed = await store.close_conversation(
                connection, site_id, conversation_id, now=now, reason="api"
            )
            if closed is None:
                record = await _existing(connection, site_id, conversation_id)
                raise ConversationClosed(conversation_id, record.close_reason)
            return await self._complete(connection, closed, now=now)

    async def close_idle(self, idle_timeout: float) -> int:
        """Complete every open conversation idle for ``idle_timeout`` seconds; returns how many.

        Safe with several workers: each conversation is closed by one
        conditional UPDATE and its completion POSTs are queued in the same
        transaction, so exactly one worker completes it.
        """
        closed = 0
        while True:
            now = self._clock()
            idle_since = now - idle_timeout
            async with self._engine.connect() as connection:
                candidates = await store.idle_conversations(
                    connection, idle_since=idle_since, limit=IDLE_BATCH
                )
            for site_id, conversation_id in candidates:
                async with write_transaction(self._engine) as connection:
                    record = await store.close_conversation(
                        connection,
                        site_id,
                        conversation_id,
                        now=now,
                        reason="idle",
                        idle_since=idle_since,
                    )
                    if record is None:
                        continue  # another worker closed it, or a message just arrived
                    await self._complete(connection, record, now=now)
                    closed += 1
            if len(candidates) < IDLE_BATCH:
                return closed

    async def _complete(
        self, connection: AsyncConnection, record: ConversationRecord, *, now: float
    ) -> list[Queued]:
        endpoints = await enabled_endpoints(connection, record.site_id)
        prior = await store.prior_posts(connection, record.site_id, record.id)
        recipients = rules.completion_recipients(endpoints, prior, record.envelope, record.version)
        if not recipients:
            return []
        document = await _posted_transcript(connection, record, manually_submitted=False)
        return await self._post(
            connection, record, document, "transcript", recipients, trigger="completion", now=now
        )

    # -- offline messages --------------------------------------------------------------
    async def offline_message(self, site_id: str, request: NewOfflineMessage) -> OfflineOutcome:
        """Post a visitor's offline message at once to endpoints with "Send offline messages"."""
        now = self._clock()
        payload = rules.offline_message(request, now=now)
        async with write_transaction(self._engine) as connection:
            endpoints = select_endpoints(payload, await enabled_endpoints(connection, site_id))
            refs = await enqueue(
                connection,
                deliveries_to(
                    (endpoint.id for endpoint in endpoints),
                    site_id=site_id,
                    conversation_id=payload.id,
                    payload_kind=payload_kind(payload),
                    trigger="offline",
                    payload=dumps(payload.to_wire()),
                ),
                now=now,
            )
        return OfflineOutcome(
            id=payload.id,
            deliveries=[
                Queued(id=r.id, endpoint_id=r.endpoint_id, trigger="offline") for r in refs
            ],
        )

    # -- reading -----------------------------------------------------------------------
    async def record(self, site_id: str, conversation_id: str) -> ConversationRecord:
        """The conversation's row only (no lines read); :class:`ConversationNotFound` if none."""
        async with self._engine.connect() as connection:
            return await _existing(connection, site_id, conversation_id)

    async def view(self, site_id: str, conversation_id: str) -> ConversationView:
        async with self._engine.connect() as connection:
            record = await _existing(connection, site_id, conversation_id)
            transcript = await store.read_transcript(connection, record)
            posts = await store.posted_deliveries(connection, site_id, conversation_id)
            commands = await store.command_lines(connection, site_id, conversation_id)
        return ConversationView(
            conversation=record, transcript=transcript, posts=posts, commands=commands
        )

    async def page(
        self,
        site_id: str,
        *,
        state: store.State | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[ConversationRecord], str | None]:
        async with self._engine.connect() as connection:
            return await store.list_conversations(
                connection, site_id, state=state, limit=limit, cursor=cursor
            )

    async def posts(self, site_id: str, conversation_id: str) -> list[PostedDelivery]:
        async with self._engine.connect() as connection:
            return await store.posted_deliveries(connection, site_id, conversation_id)

    # -- shared ------------------------------------------------------------------------
    async def _post(
        self,
        connection: AsyncConnection,
        record: ConversationRecord,
        document: dict[str, Any],
        kind: PayloadKind,
        endpoints: Sequence[Endpoint],
        *,
        trigger: rules.Trigger,
        now: float,
        command: str | None = None,
        operator_id: str | None = None,
    ) -> list[Queued]:
        """Queue the payload ``document`` (of ``kind``) for ``endpoints`` and remember it as
        one action of the conversation."""
        if not endpoints:
            return []
        refs = await enqueue(
            connection,
            deliveries_to(
                (endpoint.id for endpoint in endpoints),
                site_id=record.site_id,
                conversation_id=record.id,
                payload_kind=kind,
                trigger=trigger,
                payload=dumps(document),
            ),
            now=now,
        )
        action_id = "act_" + secrets.token_hex(12)
        await store.record_posts(
            connection,
            record.site_id,
            record.id,
            [
                NewPost(
                    endpoint_id=ref.endpoint_id,
                    delivery_id=ref.id,
                    action_id=action_id,
                    trigger=trigger,
                    version=record.version,
                    command=command,
                    operator_id=operator_id,
                )
                for ref in refs
            ],
            now=now,
        )
        return [Queued(id=ref.id, endpoint_id=ref.endpoint_id, trigger=trigger) for ref in refs]


async def _posted_transcript(
    connection: AsyncConnection, record: ConversationRecord, *, manually_submitted: bool
) -> dict[str, Any]:
    """The wire document of the transcript as posted: what
    ``rules.transcript_payload(read_transcript(...)).to_wire()`` gives, with the lines as
    they were stored (each was written as its item's wire form) rather than read into
    models and written out again."""
    envelope = rules.transcript_payload(record.envelope, manually_submitted=manually_submitted)
    document = envelope.to_wire()
    document["items"] = await store.wire_items(connection, record)
    return document


async def _existing(
    connection: AsyncConnection, site_id: str, conversation_id: str
) -> ConversationRecord:
    """The conversation, or :class:`ConversationNotFound`."""
    record = await store.get_conversation(connection, site_id, conversation_id)
    if record is None:
        raise ConversationNotFound(conversation_id)
    return record


async def _open(
    connection: AsyncConnection, site_id: str, conversation_id: str
) -> ConversationRecord:
    """The conversation, if it is still open."""
    record = await _existing(connection, site_id, conversation_id)
    if record.state != "open":
        raise ConversationClosed(conversation_id, record.close_reason)
    return record


# -- chat lines, committed together -----------------------------------------------------
#: Most chat lines committed in one transaction.
MAX_LINE_BATCH = 256
#: Conversations whose last written state a line writer keeps (see ``_LineWriter._known``).
KNOWN_CONVERSATIONS = 10_000


@dataclass(frozen=True, slots=True)
class _Line:
    """A chat line (not a command) waiting for its transaction."""

    site_id: str
    conversation_id: str
    message: NewMessage
    clock: Callable[[], float]


class _LineWriter:
    """Chat lines of concurrent requests share a transaction (group commit).

    A line is one small UPDATE and one INSERT, so its own transaction (on
    SQLite ``BEGIN IMMEDIATE``, a commit and a flush) would cost more than
    the line; see :mod:`chathooks.group_commit`. The INSERTs of a batch are
    one statement, after its UPDATEs. The lines of a batch are
    written in arrival order within each conversation, each reading the
    conversation as the line before it left it. A line the rules refuse
    (closed, full, unknown) writes nothing and is answered with its error;
    when the database refuses the batch, each line is tried in a transaction
    of its own.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._batches: GroupCommit[_Line, MessageOutcome] = GroupCommit(
            self._commit, max_batch=MAX_LINE_BATCH
        )
        #: The conversations this writer wrote last, as it left them, oldest first. A
        #: line starts from one without reading it: the UPDATE is conditional on the
        #: version, the line count, the creation time and the state, so an entry that is
        #: out of date (another writer, a close, an erasure) costs a read and a retry.
        self._known: dict[tuple[str, str], ConversationRecord] = {}

    async def add(self, line: _Line) -> MessageOutcome:
        return await self._batches.submit(line)

    async def _commit(self, batch: list[_Line]) -> list[MessageOutcome | Exception]:
        answers: list[MessageOutcome | Exception | None] = [None] * len(batch)
        #: As this transaction leaves them; kept only once it committed, so a batch
        #: rolled back never leaves a state behind that the database does not have.
        written: dict[tuple[str, str], ConversationRecord] = {}
        #: The lines' rows, inserted together once every line's UPDATE is done.
        rows: store.LineRows = []
        async with write_transaction(self._engine) as connection:
            # Conversations in one order, so on PostgreSQL two processes' batches never
            # wait for each other's row locks in a cycle (the sort keeps arrival order).
            in_order = sorted(enumerate(batch), key=lambda p: (p[1].site_id, p[1].conversation_id))
            for index, line in in_order:
                key = (line.site_id, line.conversation_id)
                known = written.pop(key, None) or self._known.pop(key, None)
                try:
                    outcome = await _write_line(connection, line, known, rows)
                except ConversationError as refused:  # raised before it wrote anything
                    answers[index] = refused
                    continue
                answers[index] = outcome
                written[key] = outcome.conversation
            await store.insert_lines(connection, rows)
        self._known.update(written)
        while len(self._known) > KNOWN_CONVERSATIONS:
            del self._known[next(iter(self._known))]
        return [answer for answer in answers if answer is not None]


async def _write_line(
    connection: AsyncConnection,
    line: _Line,
    known: ConversationRecord | None,
    rows: store.LineRows,
) -> MessageOutcome:
    """Write ``line``, starting from ``known`` (the conversation as this process last wrote
    it) when there is one: the conditional UPDATE finds out whether it is still current.
    The line's row is added to ``rows``, for the batch's one INSERT."""
    record = known
    for _ in range(MAX_ATTEMPTS):
        now = line.clock()
        fresh = record is None
        if record is None:
            record = await _open(connection, line.site_id, line.conversation_id)
        try:
            envelope, item = rules.chat_item(
                record.envelope, line.message, now=now, messages=record.messages
            )
        except ConversationError:
            if fresh:
                raise
            record = None  # refused on what this process knew: ask the database
            continue
        saved = await store.append_line(
            connection, record, envelope, item, command=None, now=now, rows=rows
        )
        if saved is not None:
            return MessageOutcome(conversation=saved, item=item)
        # Changed, closed or gone meanwhile (or ``known`` was out of date): read it again.
        record = None
    raise ConversationBusy(line.conversation_id)
