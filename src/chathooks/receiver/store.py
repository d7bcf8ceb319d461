"""Where ``chathooks receive`` keeps what it was sent: SQLite or PostgreSQL.

Olark posts the same conversation ``id`` several times (a start event, after
``!lead``, at the end), so a conversation is one row that is upserted, and
every POST is kept as a numbered version beside it with the document exactly
as decoded. A ``webhook-id`` is unique across versions, in the database and
not only in memory, so a sender's retry is recognised after a restart and
across several receiver processes.

The conversation row also holds a summary of its current document (visitor,
message count, first and last message time, tags, search text), so listing
and searching never parse JSON. A start event that arrives after the
transcript of the same chat (a late retry) is kept as a version but does not
replace the transcript as the current document.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chathooks import paging
from chathooks.db.engine import create_engine, sqlite_file
from chathooks.db.migrate import alembic_config, run_upgrade
from chathooks.db.tables import NAMING_CONVENTION, BigId
from chathooks.wire import (
    Event,
    InvalidPayload,
    OfflineMessageTranscript,
    Payload,
    StartEvent,
    WireError,
    readable_timestamp,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "KIND_LABELS",
    "MAX_ID_LENGTH",
    "VERSION_TABLE",
    "ConversationDetail",
    "ConversationPage",
    "ConversationSummary",
    "InvalidCursor",
    "MissingSchema",
    "ReceivedStore",
    "Recorded",
    "StoredVersion",
    "kind_of",
    "metadata",
    "received_conversations",
    "received_settings",
    "received_versions",
]

#: Where ``chathooks receive`` stores transcripts unless told otherwise.
DEFAULT_DATABASE_URL = "sqlite:///./received.db"
#: Alembic's bookkeeping table for this schema; distinct from the sender's, so both can share
#: one database.
VERSION_TABLE = "chathooks_receiver_alembic_version"
#: Longest conversation id or ``webhook-id`` stored; Olark's ids are 32 characters.
MAX_ID_LENGTH = 255
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number, distinct from the sender's: "the receiver schema migration".
_PG_MIGRATION_LOCK = 0x7265_6365_6976_6572

#: What a version is, in words a person reads on the pages.
KIND_LABELS = {
    "start_event": "start event",
    "event": "event",
    "transcript": "transcript",
    "offline_message": "offline message",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

received_conversations = Table(
    "received_conversations",
    metadata,
    #: The payload's ``id``.
    Column("id", String(MAX_ID_LENGTH), primary_key=True),
    #: Kind of the current document: ``transcript``, ``offline_message``, ``start_event``...
    Column("kind", String(32), nullable=False),
    Column("visitor_name", Text, nullable=True),
    Column("visitor_email", Text, nullable=True),
    #: JSON array of the operator tags.
    Column("tags", Text, nullable=False),
    Column("message_count", Integer, nullable=False),
    #: Epoch seconds of the first and last item (Olark's ``timestamp``), when present.
    Column("first_message_at", Float, nullable=True),
    Column("last_message_at", Float, nullable=True),
    Column("first_received_at", Float, nullable=False),
    Column("last_received_at", Float, nullable=False),
    Column("version_count", Integer, nullable=False),
    #: The version whose document the pages show.
    Column("current_version_id", BigId, nullable=True),
    #: The newest version's id: lists are ordered by it (newest first) and page on it.
    Column("last_version_id", BigId, nullable=False),
    #: Lower-cased visitor name, email and message text, for ``?q=``.
    Column("search_text", Text, nullable=False),
    Index("ix_received_conversations_last_version_id", "last_version_id"),
)

received_versions = Table(
    "received_versions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "conversation_id",
        String(MAX_ID_LENGTH),
        ForeignKey("received_conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    #: 1 for the first POST of a conversation, then 2, 3...
    Column("number", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    #: ``eventType`` of an extra event (``start``), else NULL.
    Column("event_type", Text, nullable=True),
    Column("manually_submitted", Boolean, nullable=True),
    #: The Standard Webhooks delivery id; a repeat is a retry and is not stored again.
    Column("webhook_id", String(MAX_ID_LENGTH), nullable=True, unique=True),
    Column("remote_addr", String(64), nullable=True),
    Column("received_at", Float, nullable=False),
    #: The JSON document as decoded from the request.
    Column("document", Text, nullable=False),
    UniqueConstraint("conversation_id", "number"),
)


#: What the receiver keeps between starts, one value a name (the generated read key).
received_settings = Table(
    "received_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
#: The ``received_settings`` name of the read key generated at a first start.
_READ_KEY_SETTING = "generated_read_key"


class MissingSchema(RuntimeError):
    """The database has no received-transcripts tables (``receive`` never ran on it)."""


class InvalidCursor(paging.InvalidCursor):
    """A ``cursor`` that this store did not hand out."""

    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is not one returned as next_cursor by this receiver")


def kind_of(payload: Payload) -> str:
    """``start_event``, ``event``, ``offline_message`` or ``transcript``."""
    if isinstance(payload, StartEvent):
        return "start_event"
    if isinstance(payload, Event):
        return "event"
    if isinstance(payload, OfflineMessageTranscript):
        return "offline_message"
    return "transcript"


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def _clean(value: str | None) -> str | None:
    """Text PostgreSQL accepts: no NUL characters, no lone surrogates."""
    if value is None:
        return None
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class _Summary:
    """What the conversation row says about a document."""

    kind: str
    visitor_name: str | None
    visitor_email: str | None
    tags: list[str]
    message_count: int
    first_message_at: float | None
    last_message_at: float | None
    search_text: str

    @classmethod
    def of(cls, payload: Payload) -> _Summary:
        visitor = payload.visitor
        name = _clean(visitor.full_name) if visitor else None
        email = _clean(visitor.email_address) if visitor else None
        stamps = [
            moment.timestamp()
            for item in payload.items
            if (moment := readable_timestamp(getattr(item, "timestamp", None))) is not None
        ]
        bodies = [
            body for item in payload.items if isinstance(body := getattr(item, "body", None), str)
        ]
        words = [name or "", email or "", *bodies]
        return cls(
            kind=kind_of(payload),
            visitor_name=name or None,
            visitor_email=email or None,
            tags=[_clean(tag) or "" for tag in payload.tags or []],
            message_count=len(payload.items),
            first_message_at=min(stamps) if stamps else None,
            last_message_at=max(stamps) if stamps else None,
            search_text=_clean("\n".join(words).lower()) or "",
        )

    def columns(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "visitor_name": self.visitor_name,
            "visitor_email": self.visitor_email,
            "tags": json.dumps(self.tags),
            "message_count": self.message_count,
            "first_message_at": self.first_message_at,
            "last_message_at": self.last_message_at,
            "search_text": self.search_text,
        }


@dataclass(frozen=True)
class Recorded:
    """The outcome of storing one POST."""

    conversation_id: str
    version: int
    #: True when the ``webhook-id`` was seen before and nothing new was stored.
    duplicate: bool = False


@dataclass(frozen=True)
class ConversationSummary:
    """One line of the conversation list."""

    id: str
    kind: str
    visitor_name: str | None
    visitor_email: str | None
    tags: list[str]
    message_count: int
    first_message_at: float | None
    last_message_at: float | None
    first_received_at: float
    last_received_at: float
    version_count: int

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @classmethod
    def from_row(cls, row: Row[Any]) -> ConversationSummary:
        return cls(
            id=row.id,
            kind=row.kind,
            visitor_name=row.visitor_name,
            visitor_email=row.visitor_email,
            tags=list(json.loads(row.tags)),
            message_count=row.message_count,
            first_message_at=row.first_message_at,
            last_message_at=row.last_message_at,
            first_received_at=row.first_received_at,
            last_received_at=row.last_received_at,
            version_count=row.version_count,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "visitor": {"name": self.visitor_name, "email": self.visitor_email},
            "tags": self.tags,
            "message_count": self.message_count,
            "first_message_at": _iso(self.first_message_at),
            "last_message_at": _iso(self.last_message_at),
            "first_received_at": _iso(self.first_received_at),
            "last_received_at": _iso(self.last_received_at),
            "version_count": self.version_count,
        }


@dataclass(frozen=True)
class StoredVersion:
    """One POST of a conversation, as received."""

    number: int
    kind: str
    event_type: str | None
    manually_submitted: bool | None
    webhook_id: str | None
    remote_addr: str | None
    received_at: float
    document: dict[str, Any]

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @classmethod
    def from_row(cls, row: Row[Any]) -> StoredVersion:
        return cls(
            number=row.number,
            kind=row.kind,
            event_type=row.event_type,
            manually_submitted=row.manually_submitted,
            webhook_id=row.webhook_id,
            remote_addr=row.remote_addr,
            received_at=row.received_at,
            document=json.loads(row.document),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "event_type": self.event_type,
            "manually_submitted": self.manually_submitted,
            "webhook_id": self.webhook_id,
            "remote_addr": self.remote_addr,
            "received_at": _iso(self.received_at),
            "document": self.document,
        }


@dataclass(frozen=True)
class ConversationDetail:
    """A conversation with every version; ``document`` is the current one."""

    summary: ConversationSummary
    document: dict[str, Any]
    versions: list[StoredVersion] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary.to_json(),
            "document": self.document,
            "versions": [version.to_json() for version in self.versions],
        }


@dataclass(frozen=True)
class ConversationPage:
    items: list[ConversationSummary]
    #: Pass back as ``cursor`` for the next (older) page; None on the last page.
    next_cursor: str | None


class ReceivedStore:
    """Received conversations and their versions, in one database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> ReceivedStore:
        """A store on ``url`` (``sqlite:///received.db``, ``postgresql://...``); no I/O yet."""
        return cls(create_engine(url))

    async def close(self) -> None:
        await self.engine.dispose()

    # -- schema --------------------------------------------------------------------
    async def migrate(self) -> None:
        """Bring the receiver's tables up to date (Alembic, its own version table).

        Receivers starting at once on one database upgrade one after the other:
        a transaction-scoped advisory lock on PostgreSQL, ``BEGIN IMMEDIATE``
        (the write lock, taken at the start) on SQLite.
        """
        url = self.engine.url.render_as_string(hide_password=False)
        await run_upgrade(url, alembic_config(scripts=MIGRATIONS_DIR), lock_key=_PG_MIGRATION_LOCK)

    async def require_schema(self) -> None:
        """Raise :class:`MissingSchema` unless ``receive`` created the tables here."""
        async with self.engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        missing = {received_conversations.name, received_versions.name} - set(names)
        if missing:
            raise MissingSchema(
                "the database holds no received transcripts (no table "
                f"{', '.join(sorted(missing))}); run `chathooks receive` with this "
                "--database-url first"
            )

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def kept_read_key(self, generate: Callable[[], str]) -> tuple[str, bool]:
        """The read key generated at the first start, kept here; ``generate`` makes it then.

        Returns the key and whether it was made now. Receivers starting at once
        on one database agree on one key (the first insert wins). The key sits
        beside the transcripts it guards, so it tells a reader of the database
        nothing that the database does not already hold.
        """
        async with self.engine.begin() as connection:
            insert = (
                postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
            )(received_settings).values(name=_READ_KEY_SETTING, value=generate())
            created = await connection.execute(
                insert.on_conflict_do_nothing(index_elements=["name"])
            )
            key = (
                await connection.execute(
                    select(received_settings.c.value).where(
                        received_settings.c.name == _READ_KEY_SETTING
                    )
                )
            ).scalar_one()
        return str(key), created.rowcount == 1

    # -- writing -------------------------------------------------------------------
    async def record(
        self,
        payload: Payload,
        document: dict[str, Any],
        *,
        webhook_id: str | None = None,
        remote_addr: str | None = None,
        received_at: float | None = None,
    ) -> Recorded:
        """Store one POST: upsert its conversation and append a version.

        A ``webhook-id`` already stored returns the earlier result with
        ``duplicate=True`` and stores nothing, also when two copies race (the
        unique index decides). Raises :class:`~chathooks.wire.WireError` for an
        id that cannot be stored.
        """
        _check_ids(payload.id, webhook_id)
        if webhook_id is not None and (earlier := await self._by_webhook_id(webhook_id)):
            return earlier
        try:
            async with self.engine.begin() as connection:
                return await self._append(
                    connection,
                    payload,
                    document,
                    webhook_id=webhook_id,
                    remote_addr=_clean(remote_addr),
                    received_at=received_at if received_at is not None else _now(),
                )
        except IntegrityError:
            if webhook_id is not None and (earlier := await self._by_webhook_id(webhook_id)):
                return earlier
            raise

    async def _by_webhook_id(self, webhook_id: str) -> Recorded | None:
        query = select(received_versions.c.conversation_id, received_versions.c.number).where(
            received_versions.c.webhook_id == webhook_id
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return Recorded(row.conversation_id, row.number, duplicate=True)

    async def _append(
        self,
        connection: AsyncConnection,
        payload: Payload,
        document: dict[str, Any],
        *,
        webhook_id: str | None,
        remote_addr: str | None,
        received_at: float,
    ) -> Recorded:
        summary = _Summary.of(payload)
        conversations = received_conversations.c
        # Insert-or-nothing first: it is a write, so SQLite takes its write lock before
        # anything is read, and PostgreSQL gets a row to lock below.
        insert = (postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert)(
            received_conversations
        ).values(
            id=payload.id,
            first_received_at=received_at,
            last_received_at=received_at,
            version_count=0,
            current_version_id=None,
            last_version_id=0,
            **summary.columns(),
        )
        await connection.execute(insert.on_conflict_do_nothing(index_elements=["id"]))
        current = (
            await connection.execute(
                select(
                    conversations.version_count,
                    conversations.kind,
                    conversations.current_version_id,
                )
                .where(conversations.id == payload.id)
                .with_for_update()
            )
        ).one()
        number = current.version_count + 1
        inserted = await connection.execute(
            received_versions.insert().values(
                conversation_id=payload.id,
                number=number,
                kind=summary.kind,
                event_type=_clean(payload.event_type) if isinstance(payload, Event) else None,
                manually_submitted=payload.manually_submitted,
                webhook_id=webhook_id,
                remote_addr=remote_addr,
                received_at=received_at,
                document=json.dumps(document),
            )
        )
        primary_key = inserted.inserted_primary_key
        assert primary_key is not None
        version_id = primary_key[0]
        changes: dict[str, Any] = {
            "version_count": number,
            "last_version_id": version_id,
            "last_received_at": received_at,
        }
        if _becomes_current(summary.kind, current.kind, current.current_version_id):
            changes.update(summary.columns(), current_version_id=version_id)
        await connection.execute(
            update(received_conversations).where(conversations.id == payload.id).values(**changes)
        )
        return Recorded(payload.id, number)

    # -- reading -------------------------------------------------------------------
    async def list_conversations(
        self, *, query: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> ConversationPage:
        """Conversations, newest POST first, optionally only those matching ``query``."""
        conversations = received_conversations.c
        statement = select(received_conversations).order_by(conversations.last_version_id.desc())
        if cursor:
            statement = statement.where(conversations.last_version_id < _parse_cursor(cursor))
        if query and query.strip():
            needle = _clean(query.strip().lower()) or ""
            statement = statement.where(conversations.search_text.contains(needle, autoescape=True))
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement.limit(limit + 1))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = paging.encode_cursor(rows[-1].last_version_id) if more and rows else None
        return ConversationPage([ConversationSummary.from_row(r) for r in rows], next_cursor)

    async def get_conversation(self, conversation_id: str) -> ConversationDetail | None:
        """A conversation with all its versions, oldest first; None when unknown."""
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(received_conversations).where(
                        received_conversations.c.id == conversation_id
                    )
                )
            ).first()
            if row is None:
                return None
            version_rows = (
                await connection.execute(
                    select(received_versions)
                    .where(received_versions.c.conversation_id == conversation_id)
                    .order_by(received_versions.c.number)
                )
            ).all()
        versions = [StoredVersion.from_row(v) for v in version_rows]
        current = next(
            (
                version
                for version, version_row in zip(versions, version_rows, strict=True)
                if version_row.id == row.current_version_id
            ),
            versions[-1] if versions else None,
        )
        return ConversationDetail(
            ConversationSummary.from_row(row), current.document if current else {}, versions
        )

    async def stream_conversations(
        self,
    ) -> AsyncIterator[tuple[ConversationSummary, dict[str, Any]]]:
        """Every conversation with its current document, oldest first (for export)."""
        conversations = received_conversations.c
        statement = (
            select(received_conversations, received_versions.c.document.label("document"))
            .join(received_versions, received_versions.c.id == conversations.current_version_id)
            .order_by(conversations.first_received_at, conversations.id)
        )
        async with self.engine.connect() as connection:
            result = await connection.stream(statement)
            async for row in result:
                yield ConversationSummary.from_row(row), json.loads(row.document)

    async def stream_versions(self) -> AsyncIterator[tuple[str, StoredVersion]]:
        """Every version of every conversation, by conversation then number (for export)."""
        conversations = received_conversations.c
        statement = (
            select(received_versions)
            .join(received_conversations, conversations.id == received_versions.c.conversation_id)
            .order_by(conversations.first_received_at, conversations.id, received_versions.c.number)
        )
        async with self.engine.connect() as connection:
            result = await connection.stream(statement)
            async for row in result:
                yield row.conversation_id, StoredVersion.from_row(row)


def _becomes_current(new_kind: str, current_kind: str, current_version_id: int | None) -> bool:
    """Whether a new version replaces the shown document: an event never hides a transcript."""
    if current_version_id is None:
        return True
    is_event = new_kind in ("start_event", "event")
    return not is_event or current_kind in ("start_event", "event")


def _check_ids(conversation_id: str, webhook_id: str | None) -> None:
    if not conversation_id.strip():
        raise InvalidPayload("id: the conversation id is empty", field="id")
    if len(conversation_id) > MAX_ID_LENGTH:
        raise InvalidPayload(
            f"id: the conversation id is {len(conversation_id)} characters; at most "
            f"{MAX_ID_LENGTH} are stored",
            field="id",
        )
    if webhook_id is not None and len(webhook_id) > MAX_ID_LENGTH:
        raise WireError(
            f"the webhook-id header is {len(webhook_id)} characters; at most {MAX_ID_LENGTH} "
            "are stored",
            field="webhook-id",
        )


def _parse_cursor(cursor: str) -> int:
    [version_id] = paging.decode_cursor(cursor, int, error=InvalidCursor)
    if not 0 <= version_id < 2**63:
        raise InvalidCursor()
    return int(version_id)


def _now() -> float:
    return datetime.now(tz=UTC).timestamp()


def sqlite_file_exists(url: str) -> bool:
    """False when ``url`` names a SQLite file that is not there (opening would create it)."""
    path = sqlite_file(url)
    return path is None or path.exists()
