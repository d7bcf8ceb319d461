"""All SQL of conversations: their state, and which payloads went to which endpoint.

Every function takes a connection and leaves the transaction to the caller,
so a change to a conversation and the deliveries it causes commit together.

A conversation is two things: its row (state, bookkeeping and the transcript
document without its items) and its lines, one row each in
``conversation_lines``. Adding a line is an UPDATE of the small row and one
INSERT; the lines before it are not read or written, so line 5,000 costs what
line 10 does. The whole transcript is put together only when it is posted or
read (:func:`read_transcript`).

Concurrency is handled by conditional UPDATEs rather than locks held across
statements, which behaves the same on SQLite and PostgreSQL:

* a change is written only ``WHERE version = <the version it was computed
  from> AND lines = <the lines it saw> AND created_at = <its creation time>
  AND state = 'open'`` (the line count gives a line its ``seq``; the creation
  time tells a chat erased and started again under the same id from the one
  the change was computed on); when another writer got there first the caller
  reloads and tries again (or learns the conversation closed). So a caller may
  also start from a record it kept rather than read;
* closing is one UPDATE ``WHERE state = 'open'`` (and, for the idle check,
  ``AND last_activity_at <= cutoff``), so of several workers racing to close
  the same conversation exactly one sees a changed row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, bindparam, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chathooks.conversations.rules import PriorPost
from chathooks.db.driver import DriverStatement
from chathooks.db.tables import conversation_lines, conversation_posts, conversations, deliveries
from chathooks.paging import InvalidCursor, decode_cursor, encode_cursor
from chathooks.wire import Item, MessageToVisitor, Transcript, dumps

__all__ = [
    "CommandLine",
    "ConversationRecord",
    "InvalidCursor",
    "LineRows",
    "NewPost",
    "PostedDelivery",
    "State",
    "append_line",
    "close_conversation",
    "command_lines",
    "get_conversation",
    "idle_conversations",
    "insert_conversation",
    "insert_lines",
    "latest_changes",
    "list_conversations",
    "posted_deliveries",
    "prior_posts",
    "read_transcript",
    "record_posts",
    "save_transcript",
    "wire_items",
]

State = Literal["open", "closed"]


@dataclass(frozen=True)
class ConversationRecord:
    """A stored conversation: its transcript's envelope and its bookkeeping.

    ``envelope`` is the transcript as it would be posted now without its items
    (visitor, operators, tags, groups); :func:`read_transcript` adds them.
    """

    site_id: str
    id: str
    state: State
    envelope: Transcript
    #: Bumped whenever the transcript changes; posts record the version they showed.
    version: int
    created_at: float
    updated_at: float
    last_activity_at: float
    closed_at: float | None
    close_reason: str | None
    #: Chat lines (the transcript's items) and all lines (commands too) so far.
    messages: int = 0
    lines: int = 0


@dataclass(frozen=True)
class CommandLine:
    """An operator's command line as typed (``!lead wants a quote``), where it was typed."""

    command: str
    line: MessageToVisitor
    #: How many of the transcript's items came before it.
    after_items: int
    created_at: float


@dataclass(frozen=True)
class NewPost:
    """One payload of a conversation queued for one endpoint."""

    endpoint_id: str
    delivery_id: str
    action_id: str
    trigger: str
    version: int
    command: str | None = None
    operator_id: str | None = None


@dataclass(frozen=True)
class PostedDelivery:
    """A payload of a conversation and how its delivery is going."""

    action_id: str
    trigger: str
    command: str | None
    operator_id: str | None
    version: int
    posted_at: float
    endpoint_id: str
    delivery_id: str
    #: ``pending``, ``delivering``, ``succeeded``, ``retrying`` or ``failed``.
    status: str
    attempt_count: int
    status_code: int | None
    error: str | None
    integration_url: str | None
    updated_at: float
    #: When the next attempt is due; meaningful while ``retrying`` (or ``pending``).
    next_attempt_at: float | None = None


def _record(row: Mapping[Any, Any]) -> ConversationRecord:
    """The record of a ``conversations`` row (its columns by name)."""
    document = row["document"]
    if not isinstance(document, dict):
        document = json.loads(document)
    state: State = "closed" if row["state"] == "closed" else "open"
    return ConversationRecord(
        site_id=row["site_id"],
        id=row["id"],
        state=state,
        envelope=Transcript.model_validate({**document, "items": []}),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_activity_at=row["last_activity_at"],
        closed_at=row["closed_at"],
        close_reason=row["close_reason"],
        messages=row["messages"],
        lines=row["lines"],
    )


def _document(transcript: Transcript) -> dict[str, Any]:
    """What is stored: the envelope, without ``items`` (rows of their own) and without
    ``manuallySubmitted``, which each post sets."""
    document = transcript.to_wire()
    document.pop("manuallySubmitted", None)
    document.pop("items", None)
    return document


async def insert_conversation(
    connection: AsyncConnection, site_id: str, transcript: Transcript, *, now: float
) -> ConversationRecord:
    """Store a new open conversation (no lines yet); a duplicate id raises IntegrityError."""
    await _INSERT_CONVERSATION.execute(
        connection,
        {
            "site_id": site_id,
            "id": transcript.id,
            "document": _document(transcript),
            "created_at": now,
        },
    )
    return ConversationRecord(
        site_id=site_id,
        id=transcript.id,
        state="open",
        envelope=transcript.model_copy(update={"items": []}),
        version=1,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        closed_at=None,
        close_reason=None,
    )


# The statements a chat's calls run are compiled once and run through the driver
# (chathooks.db.driver): a chat line, a command or a close then costs SQLite's own work
# and little more.
_INSERT_CONVERSATION = DriverStatement(
    insert(conversations).values(
        site_id=bindparam("site_id"),
        id=bindparam("id"),
        state="open",
        document=bindparam("document", type_=conversations.c.document.type),
        version=1,
        messages=0,
        lines=0,
        created_at=bindparam("created_at"),
        updated_at=bindparam("created_at"),
        last_activity_at=bindparam("created_at"),
    )
)
_THIS_CONVERSATION = and_(
    conversations.c.site_id == bindparam("b_site"), conversations.c.id == bindparam("b_id")
)
_GET_CONVERSATION = DriverStatement(select(conversations).where(_THIS_CONVERSATION))
#: The SET clause is the parameters' column keys (``version``, ``lines``...) of each call:
#: one statement for each set of keys (see :func:`_write_if_current`).
_WRITE_IF_CURRENT = update(conversations).where(
    _THIS_CONVERSATION,
    conversations.c.version == bindparam("b_version"),
    conversations.c.lines == bindparam("b_lines"),
    # A conversation erased and started again under the same id is another one.
    conversations.c.created_at == bindparam("b_created"),
    conversations.c.state == "open",
)
_WRITES_IF_CURRENT: dict[tuple[str, ...], DriverStatement] = {}
_LINE_COLUMNS = ("site_id", "conversation_id", "seq", "command", "line", "created_at")
_INSERT_LINE = DriverStatement(insert(conversation_lines), columns=_LINE_COLUMNS)


def _write_if_current(columns: tuple[str, ...]) -> DriverStatement:
    """The conditional UPDATE that sets ``columns`` (a handful of combinations occur)."""
    found = _WRITES_IF_CURRENT.get(columns)
    if found is None:
        found = _WRITES_IF_CURRENT[columns] = DriverStatement(_WRITE_IF_CURRENT, columns=columns)
    return found


async def get_conversation(
    connection: AsyncConnection, site_id: str, conversation_id: str
) -> ConversationRecord | None:
    result = await _GET_CONVERSATION.execute(
        connection, {"b_site": site_id, "b_id": conversation_id}
    )
    return next((_record(row) for row in result.mappings()), None)


async def save_transcript(
    connection: AsyncConnection,
    record: ConversationRecord,
    envelope: Transcript,
    *,
    now: float,
    activity: bool,
) -> ConversationRecord | None:
    """Write ``envelope`` if ``record`` is still current and open; None when it is not.

    The version goes up only when the envelope changed. ``activity`` also
    restarts the idle clock. The row is written even when nothing changed, so
    concurrent writers of one conversation queue up behind each other's row
    lock instead of interleaving.
    """
    return await _write(connection, record, envelope, now=now, activity=activity, line=None)


#: Rows of ``conversation_lines`` a caller inserts itself (see :func:`append_line`).
LineRows = list[dict[str, Any]]


async def append_line(
    connection: AsyncConnection,
    record: ConversationRecord,
    envelope: Transcript,
    line: Item,
    *,
    command: str | None,
    now: float,
    rows: LineRows | None = None,
) -> ConversationRecord | None:
    """Add one line after ``record``'s last, if ``record`` is still current and open.

    A chat line (``command`` None) is the transcript's next item and bumps the
    version; a command line does only if ``envelope`` changed (an operator
    joined). One UPDATE of the conversation's row and one INSERT: the earlier
    lines are neither read nor rewritten. None when another writer got there first.

    With ``rows``, the line's row is added to it instead of inserted: the caller
    inserts the rows of many lines in one statement (:func:`insert_lines`) in
    the same transaction.
    """
    return await _write(
        connection, record, envelope, now=now, activity=True, line=(line, command), rows=rows
    )


async def insert_lines(connection: AsyncConnection, rows: LineRows) -> None:
    """Insert the rows :func:`append_line` left to its caller, in one statement."""
    await _INSERT_LINE.executemany(connection, rows)


async def _write(
    connection: AsyncConnection,
    record: ConversationRecord,
    envelope: Transcript,
    *,
    now: float,
    activity: bool,
    line: tuple[Item, str | None] | None,
    rows: LineRows | None = None,
) -> ConversationRecord | None:
    # The rules hand back the very envelope they were given when a line leaves it as it was.
    document = None if envelope is record.envelope else _document(envelope)
    envelope_changed = document is not None and document != _document(record.envelope)
    item = line is not None and line[1] is None
    changed = envelope_changed or item
    version = record.version + 1 if changed else record.version
    values: dict[str, Any] = {"updated_at": now if changed else record.updated_at}
    if envelope_changed:
        values["document"] = document
    if changed:
        values["version"] = version
    messages = record.messages + 1 if item else record.messages
    lines = record.lines + 1 if line is not None else record.lines
    if line is not None:
        values["lines"] = lines
        values["messages"] = messages
    last_activity = now if activity else record.last_activity_at
    values["last_activity_at"] = last_activity
    current = {
        "b_site": record.site_id,
        "b_id": record.id,
        "b_version": record.version,
        "b_lines": record.lines,
        "b_created": record.created_at,
    }
    result = await _write_if_current(tuple(values)).execute(connection, {**current, **values})
    if result.rowcount != 1:
        return None
    if line is not None:
        row = {
            "site_id": record.site_id,
            "conversation_id": record.id,
            "seq": lines,
            "command": line[1],
            "line": dumps(line[0].to_wire()),
            "created_at": now,
        }
        if rows is None:
            await _INSERT_LINE.execute(connection, row)
        else:
            rows.append(row)
    return ConversationRecord(
        site_id=record.site_id,
        id=record.id,
        state="open",
        envelope=envelope,
        version=version,
        created_at=record.created_at,
        updated_at=values["updated_at"],
        last_activity_at=last_activity,
        closed_at=None,
        close_reason=None,
        messages=messages,
        lines=lines,
    )


async def read_transcript(connection: AsyncConnection, record: ConversationRecord) -> Transcript:
    """The whole transcript of ``record``: its envelope with every chat line, in order."""
    items = await wire_items(connection, record)
    return Transcript.model_validate({**record.envelope.to_wire(), "items": items})


async def wire_items(connection: AsyncConnection, record: ConversationRecord) -> list[Any]:
    """The transcript's items as written on the wire: each line is stored in that form
    (``dumps(item.to_wire())``, keys in the model's order), and is posted as it was stored
    (see ``_posted_transcript`` in :mod:`~chathooks.conversations.service`), so whatever
    writes ``conversation_lines.line`` must write it so."""
    found = await _CHAT_LINES.execute(connection, {"b_site": record.site_id, "b_id": record.id})
    return [json.loads(line) for (line,) in found.rows]


_CHAT_LINES = DriverStatement(
    select(conversation_lines.c.line)
    .where(
        conversation_lines.c.site_id == bindparam("b_site"),
        conversation_lines.c.conversation_id == bindparam("b_id"),
        conversation_lines.c.command.is_(None),
    )
    .order_by(conversation_lines.c.seq)
)


async def command_lines(
    connection: AsyncConnection, site_id: str, conversation_id: str
) -> list[CommandLine]:
    """The operator commands typed in a conversation, in order, each placed among the items."""
    query = (
        select(
            conversation_lines.c.seq,
            conversation_lines.c.command,
            conversation_lines.c.line,
            conversation_lines.c.created_at,
        )
        .where(
            conversation_lines.c.site_id == site_id,
            conversation_lines.c.conversation_id == conversation_id,
            conversation_lines.c.command.is_not(None),
        )
        .order_by(conversation_lines.c.seq)
    )
    found = []
    for index, row in enumerate(await connection.execute(query)):
        found.append(
            CommandLine(
                command=row.command,
                line=MessageToVisitor.model_validate(json.loads(row.line)),
                # Every line before it that is not a command is an item.
                after_items=row.seq - 1 - index,
                created_at=row.created_at,
            )
        )
    return found


async def close_conversation(
    connection: AsyncConnection,
    site_id: str,
    conversation_id: str,
    *,
    now: float,
    reason: str,
    idle_since: float | None = None,
) -> ConversationRecord | None:
    """Close an open conversation in one conditional UPDATE; the closed conversation for the
    one caller that closed it, None for any other (closed already, or not there).

    With ``idle_since`` the conversation closes only if it had no activity
    after that time, so a message that arrives during the idle check wins.
    """
    parameters = {"b_site": site_id, "b_id": conversation_id, "b_now": now, "b_reason": reason}
    if idle_since is None:
        result = await _CLOSE.execute(connection, parameters)
    else:
        result = await _CLOSE_IDLE.execute(connection, {**parameters, "b_idle_since": idle_since})
    return next((_record(row) for row in result.mappings()), None)


_CLOSING = (
    update(conversations)
    .values(
        state="closed",
        closed_at=bindparam("b_now"),
        close_reason=bindparam("b_reason"),
        updated_at=bindparam("b_now"),
    )
    .returning(*conversations.c)
)
_CLOSE = DriverStatement(_CLOSING.where(_THIS_CONVERSATION, conversations.c.state == "open"))
_CLOSE_IDLE = DriverStatement(
    _CLOSING.where(
        _THIS_CONVERSATION,
        conversations.c.state == "open",
        conversations.c.last_activity_at <= bindparam("b_idle_since"),
    )
)


async def idle_conversations(
    connection: AsyncConnection, *, idle_since: float, limit: int
) -> list[tuple[str, str]]:
    """``(site_id, id)`` of open conversations with no activity after ``idle_since``."""
    query = (
        select(conversations.c.site_id, conversations.c.id)
        .where(conversations.c.state == "open", conversations.c.last_activity_at <= idle_since)
        .order_by(conversations.c.last_activity_at)
        .limit(limit)
    )
    return [(row.site_id, row.id) for row in (await connection.execute(query)).all()]


async def list_conversations(
    connection: AsyncConnection,
    site_id: str,
    *,
    state: State | None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[ConversationRecord], str | None]:
    """A page of a site's conversations, newest first; ``next_cursor`` continues it."""
    query = select(conversations).where(conversations.c.site_id == site_id)
    if state is not None:
        query = query.where(conversations.c.state == state)
    if cursor:
        created_at, conversation_id = decode_cursor(cursor, float, str)
        query = query.where(
            or_(
                conversations.c.created_at < created_at,
                and_(
                    conversations.c.created_at == created_at,
                    conversations.c.id < conversation_id,
                ),
            )
        )
    query = query.order_by(conversations.c.created_at.desc(), conversations.c.id.desc())
    rows = (await connection.execute(query.limit(limit + 1))).all()
    records = [_record(row._mapping) for row in rows[:limit]]
    last = records[-1] if len(rows) > limit and records else None
    next_cursor = None if last is None else encode_cursor(last.created_at, last.id)
    return records, next_cursor


async def prior_posts(
    connection: AsyncConnection, site_id: str, conversation_id: str
) -> list[PriorPost]:
    """What each endpoint was already given of this conversation."""
    found = await _PRIOR_POSTS.execute(connection, {"b_site": site_id, "b_id": conversation_id})
    return [
        PriorPost(endpoint_id=endpoint_id, trigger=trigger, version=version)
        for endpoint_id, trigger, version in found.rows
    ]


_PRIOR_POSTS = DriverStatement(
    select(
        conversation_posts.c.endpoint_id, conversation_posts.c.trigger, conversation_posts.c.version
    ).where(
        conversation_posts.c.site_id == bindparam("b_site"),
        conversation_posts.c.conversation_id == bindparam("b_id"),
    )
)


async def record_posts(
    connection: AsyncConnection,
    site_id: str,
    conversation_id: str,
    posts: Sequence[NewPost],
    *,
    now: float,
) -> None:
    """Remember which delivery carried which version to which endpoint."""
    await _INSERT_POSTS.executemany(
        connection,
        [
            {
                "site_id": site_id,
                "conversation_id": conversation_id,
                "endpoint_id": post.endpoint_id,
                "delivery_id": post.delivery_id,
                "action_id": post.action_id,
                "trigger": post.trigger,
                "command": post.command,
                "operator_id": post.operator_id,
                "version": post.version,
                "created_at": now,
            }
            for post in posts
        ],
    )


_INSERT_POSTS = DriverStatement(
    insert(conversation_posts),
    columns=(
        "site_id",
        "conversation_id",
        "endpoint_id",
        "delivery_id",
        "action_id",
        "trigger",
        "command",
        "operator_id",
        "version",
        "created_at",
    ),
)


async def posted_deliveries(
    connection: AsyncConnection, site_id: str, conversation_id: str
) -> list[PostedDelivery]:
    """Every payload of this conversation with its delivery's status, oldest first.

    Read through ``conversation_posts`` (indexed by conversation) and the
    deliveries' unique id, so this stays cheap however large the queue grows:
    the event stream runs it several times a second.
    """
    posts = conversation_posts
    query = (
        select(
            posts.c.action_id,
            posts.c.trigger,
            posts.c.command,
            posts.c.operator_id,
            posts.c.version,
            posts.c.created_at.label("posted_at"),
            posts.c.endpoint_id,
            posts.c.delivery_id,
            deliveries.c.status,
            deliveries.c.attempt_count,
            deliveries.c.last_status_code,
            deliveries.c.last_error,
            deliveries.c.integration_url,
            deliveries.c.updated_at,
            deliveries.c.next_attempt_at,
        )
        .select_from(posts.join(deliveries, deliveries.c.id == posts.c.delivery_id))
        .where(posts.c.site_id == site_id, posts.c.conversation_id == conversation_id)
        .order_by(posts.c.id)
    )
    return [
        PostedDelivery(
            action_id=row.action_id,
            trigger=row.trigger,
            command=row.command,
            operator_id=row.operator_id,
            version=row.version,
            posted_at=row.posted_at,
            endpoint_id=row.endpoint_id,
            delivery_id=row.delivery_id,
            status=row.status,
            attempt_count=row.attempt_count,
            status_code=row.last_status_code,
            error=row.last_error,
            integration_url=row.integration_url,
            updated_at=row.updated_at,
            next_attempt_at=row.next_attempt_at,
        )
        for row in (await connection.execute(query)).all()
    ]


async def latest_changes(
    connection: AsyncConnection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[float, int]]:
    """For each (site, conversation) in ``keys``: its deliveries' latest change and count.

    One query for all the conversations a process's event streams watch
    (:class:`chathooks.conversations.events.OutcomeSignal`), through
    ``conversation_posts``' index; a conversation with no delivery is absent.
    """
    if not keys:
        return {}
    posts = conversation_posts
    query = (
        select(
            posts.c.site_id,
            posts.c.conversation_id,
            func.max(deliveries.c.updated_at).label("latest"),
            func.count().label("posts"),
        )
        .select_from(posts.join(deliveries, deliveries.c.id == posts.c.delivery_id))
        .where(tuple_(posts.c.site_id, posts.c.conversation_id).in_(list(keys)))
        .group_by(posts.c.site_id, posts.c.conversation_id)
    )
    return {
        (row.site_id, row.conversation_id): (float(row.latest), int(row.posts))
        for row in await connection.execute(query)
    }
