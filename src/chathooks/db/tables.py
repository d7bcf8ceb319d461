"""The schema of the sender service, in one place.

Times are stored as epoch seconds (``Float``): they compare the same way on
SQLite and PostgreSQL, index well, and the queue does arithmetic on them.
The API renders them as ISO-8601.
"""

from __future__ import annotations

from typing import Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
)
from sqlalchemy.sql.expression import ColumnElement, FromClause

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a queue.
BigId = BigInteger().with_variant(Integer(), "sqlite")

#: Constraint names every chathooks schema uses (the receiver's too), so migrations can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

sites = Table(
    "sites",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    #: SHA-256 of the API key; the key itself is shown once and never stored.
    Column("api_key_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

#: Keys that may create sites. Only hashes: a key generated at first start is printed once.
admin_keys = Table(
    "admin_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("site_id", String(40), ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    #: Olark's "Send all transcripts automatically".
    Column("auto_send", Boolean, nullable=False, default=True),
    #: Olark's "Send offline messages".
    Column("send_offline", Boolean, nullable=False, default=True),
    #: Olark's "Send all events" (start events).
    Column("send_events", Boolean, nullable=False, default=False),
    #: ``whsec_...`` sealed with the service key (chathooks.sealing); NULL: unsigned.
    Column("secret", Text, nullable=True),
    #: The secret a rotation replaced (sealed), which also signs until ``previous_secret_until``.
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_until", Float, nullable=True),
    #: ``form`` (Olark's wire form) or ``json``.
    Column("format", String(10), nullable=False, default="form"),
    #: Extra request headers, e.g. a receiver's token.
    Column("headers", JSON, nullable=False, default=dict),
    #: Why the endpoint was switched off by chathooks (e.g. it answered 410 Gone).
    Column("disabled_reason", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    #: Requests in flight to this endpoint at once, across all workers; NULL: the service default.
    Column("max_in_flight", Integer, nullable=True),
    #: ``delivery`` (a site's webhook) or ``alerts`` (where its operational alerts go:
    #: at most one per site, set as the site's ``alert_url``, never routed payloads).
    Column("role", String(10), nullable=False, default="delivery", server_default="delivery"),
    Index("ix_endpoints_site", "site_id"),
)

#: How an endpoint has been answering: its circuit breaker, for every worker to see.
#: Kept apart from ``endpoints`` so that recording outcomes never waits on a claim,
#: which locks endpoint rows while it picks their deliveries.
endpoint_health = Table(
    "endpoint_health",
    metadata,
    Column(
        "endpoint_id",
        String(40),
        ForeignKey("endpoints.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    #: ``healthy`` or ``failing`` (the breaker is open: one probe at a time).
    Column("state", String(10), nullable=False, default="healthy"),
    #: Failed attempts since the last success.
    Column("consecutive_failures", Integer, nullable=False, default=0),
    #: When the current run of failures began; NULL after a success.
    Column("failing_since", Float, nullable=True),
    Column("last_success_at", Float, nullable=True),
    Column("last_failure_at", Float, nullable=True),
    Column("last_failure_reason", Text, nullable=True),
    #: While failing: when the next probe may be sent, and the wait after the last one.
    Column("probe_at", Float, nullable=True),
    Column("probe_interval", Float, nullable=True),
    #: Attempt counts of the last 24 hours, in hourly buckets: ``{"<hour>": [ok, failed]}``.
    Column("recent", JSON, nullable=False, default=dict),
    #: When each type of alert about this endpoint was last sent: ``{"<type>": epoch}``.
    Column("alerted", JSON, nullable=True),
    Column("updated_at", Float, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    #: Queue order; also the cursor of delivery listings.
    Column("seq", BigId, primary_key=True, autoincrement=True),
    #: Public id, sent as ``webhook-id`` on every attempt.
    Column("id", String(40), nullable=False, unique=True),
    Column("site_id", String(40), ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column(
        "endpoint_id", String(40), ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False
    ),
    #: The payload's conversation ``id``: deliveries sharing (endpoint, conversation) go in order.
    Column("conversation_id", String(200), nullable=True),
    #: ``transcript``, ``offline_message``, ``event`` or ``test``.
    Column("payload_kind", String(20), nullable=False),
    #: What made it: ``api``, ``command``, ``completion``, ``start``, ``offline``, ``redeliver``.
    Column("trigger", String(20), nullable=False, default="api"),
    #: ``pending`` → ``delivering`` → ``succeeded`` | ``retrying`` | ``failed``; also
    #: ``held`` (its endpoint is disabled) and ``superseded`` (a newer one succeeded).
    Column("status", String(12), nullable=False),
    Column("attempt_count", Integer, nullable=False, default=0),
    #: Attempts since the retry schedule last started (at creation, or on a redeliver).
    Column("round_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("integration_url", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_order", "endpoint_id", "conversation_id", "seq"),
    Index("ix_deliveries_site", "site_id", "seq"),
    #: Retention: finished deliveries oldest first.
    Index("ix_deliveries_finished", "finished_at"),
    #: The delivery log's conversation filter, exact or by prefix; ``text_pattern_ops`` on
    #: PostgreSQL compares bytes whatever the database's collation, as a prefix needs.
    Index(
        "ix_deliveries_site_conversation",
        "site_id",
        "conversation_id",
        "seq",
        postgresql_ops={"conversation_id": "text_pattern_ops"},
    ),
    #: The delivery log's created-at range.
    Index("ix_deliveries_site_created", "site_id", "created_at"),
)

#: Every value of ``deliveries.status``, spelled here once: :mod:`chathooks.queue.statuses`
#: names each and says what it means.
DeliveryStatus = Literal[
    "pending", "delivering", "retrying", "succeeded", "failed", "held", "superseded"
]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)
_PENDING, _DELIVERING, _RETRYING, *_ = DELIVERY_STATUSES
#: A delivery in one of these states will still be sent; partial indexes hold only these rows.
#: The order is the migrations' predicate, which a query must repeat verbatim.
UNFINISHED_STATUSES = (_PENDING, _RETRYING, _DELIVERING)


def unfinished(table: FromClause) -> ColumnElement[bool]:
    """``status IN ('pending', 'retrying', 'delivering')`` on ``table`` (or an alias of it).

    Spelled with literals, not bound parameters: SQLite and PostgreSQL use a
    partial index only when the query repeats the index's predicate verbatim.
    """
    return table.c.status.in_([literal_column(f"'{status}'") for status in UNFINISHED_STATUSES])


def unfinished_by_elimination(table: FromClause) -> ColumnElement[bool]:
    """The rows :func:`unfinished` selects, spelled so that no index can answer it.

    ``status NOT IN`` every other status: for re-checking rows already found by
    key. Spelled as :func:`unfinished`, the re-check matched the partial indexes'
    predicate, and PostgreSQL, with statistics that made them look empty, drove
    the lookup from one of them instead of the keys (see ``claim_statement``).
    """
    others = [status for status in DELIVERY_STATUSES if status not in UNFINISHED_STATUSES]
    return table.c.status.not_in([literal_column(f"'{status}'") for status in others])


# The queue's hot lookups, kept small by covering unfinished deliveries only, each with
# one index that fits it (migration r0011 says why): "is an earlier one of this
# conversation unfinished" here, "what is due at this endpoint" below.
Index(
    "ix_deliveries_unfinished_order",
    deliveries.c.endpoint_id,
    deliveries.c.conversation_id,
    deliveries.c.seq,
    sqlite_where=unfinished(deliveries),
    postgresql_where=unfinished(deliveries),
)
# The per-endpoint claim: "what is due at this endpoint", and "how many are in flight there".
# ``seq`` breaks ties in due order, so a claim stops after its first rows even when a whole
# batch was queued with one due time.
Index(
    "ix_deliveries_unfinished_endpoint_due",
    deliveries.c.endpoint_id,
    deliveries.c.next_attempt_at,
    deliveries.c.seq,
    sqlite_where=unfinished(deliveries),
    postgresql_where=unfinished(deliveries),
)
Index(
    "ix_deliveries_in_flight",
    deliveries.c.endpoint_id,
    sqlite_where=deliveries.c.status == literal_column("'delivering'"),
    postgresql_where=deliveries.c.status == literal_column("'delivering'"),
)
#: A site has at most one alert endpoint.
Index(
    "ix_endpoints_site_alerts",
    endpoints.c.site_id,
    unique=True,
    sqlite_where=endpoints.c.role == literal_column("'alerts'"),
    postgresql_where=endpoints.c.role == literal_column("'alerts'"),
)
#: Deliveries waiting for their endpoint to be enabled again, in queue order.
Index(
    "ix_deliveries_held",
    deliveries.c.endpoint_id,
    deliveries.c.seq,
    sqlite_where=deliveries.c.status == literal_column("'held'"),
    postgresql_where=deliveries.c.status == literal_column("'held'"),
)

#: The JSON document exactly as it goes on the wire (inside ``data=`` for form endpoints).
#: Apart from ``deliveries`` because it never changes: a status update does not copy it.
delivery_payloads = Table(
    "delivery_payloads",
    metadata,
    Column(
        "delivery_id",
        String(40),
        ForeignKey("deliveries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("payload", Text, nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "delivery_seq",
        BigId,
        ForeignKey("deliveries.seq", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("number", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Float, nullable=False),
    #: ``succeeded``, ``failed`` (will retry or gave up), ``refused`` (destination not allowed).
    Column("outcome", String(12), nullable=False),
    Column("status_code", Integer, nullable=True),
    #: The first 20 KB of the response body.
    Column("response_body", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("integration_url", Text, nullable=True),
    #: JSON object of the headers sent, secrets masked (see chathooks.sender.requests).
    Column("request_headers", Text, nullable=True),
    #: JSON object of the headers the receiver answered with.
    Column("response_headers", Text, nullable=True),
    Index("ix_attempts_delivery", "delivery_seq", "number"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("site_id", String(40), ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(200), primary_key=True),
    #: ``open`` or ``closed``.
    Column("state", String(10), nullable=False),
    #: The transcript document as it would be posted now, without its ``items`` (they are
    #: rows of ``conversation_lines``) and ``manuallySubmitted`` (each post sets it).
    Column("document", JSON, nullable=False),
    #: Bumped on every change: "nothing is posted twice for the same state".
    Column("version", Integer, nullable=False, default=1),
    #: Chat lines in the transcript (its ``items``), for the 10,000 limit and the listing.
    Column("messages", Integer, nullable=False, default=0, server_default="0"),
    #: Rows in ``conversation_lines`` (chat lines and commands): the last one's ``seq``.
    Column("lines", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_activity_at", Float, nullable=False),
    Column("closed_at", Float, nullable=True),
    #: ``api`` or ``idle``.
    Column("close_reason", String(10), nullable=True),
    Index("ix_conversations_idle", "state", "last_activity_at"),
    #: Listing a site's conversations, newest first.
    Index("ix_conversations_site_created", "site_id", "created_at", "id"),
    #: Retention: closed conversations oldest first.
    Index("ix_conversations_closed", "state", "closed_at"),
)

#: A conversation's lines in order, one row each, so a line is one INSERT and never a
#: rewrite of the lines before it. A chat line is a transcript item (its wire JSON); an
#: operator command (``!lead`` and the text after it) is kept for the console, but it is
#: not an item: what is posted is what Olark posts.
conversation_lines = Table(
    "conversation_lines",
    metadata,
    Column("site_id", String(40), primary_key=True),
    Column("conversation_id", String(200), primary_key=True),
    #: 1, 2, 3... within the conversation: the order the lines were written in.
    Column("seq", Integer, primary_key=True, autoincrement=False),
    #: ``lead``, ``case``... for a command line; NULL for a chat line (a transcript item).
    Column("command", String(20), nullable=True),
    #: The line as an item's wire JSON (``kind``, ``body``, ``timestamp``, ``nickname``...),
    #: exactly as ``dumps(item.to_wire())`` writes it: a chat line is posted as stored.
    Column("line", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    ForeignKeyConstraint(
        ["site_id", "conversation_id"],
        ["conversations.site_id", "conversations.id"],
        ondelete="CASCADE",
    ),
)

conversation_posts = Table(
    "conversation_posts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("site_id", String(40), nullable=False),
    Column("conversation_id", String(200), nullable=False),
    Column(
        "endpoint_id", String(40), ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False
    ),
    Column("delivery_id", String(40), nullable=False),
    #: The posts made by one start, command or completion share it (one entry of ``integrations``).
    Column("action_id", String(40), nullable=False),
    #: ``start``, ``command`` or ``completion``.
    Column("trigger", String(20), nullable=False),
    #: ``lead``, ``case``, ``webhook``... for a command.
    Column("command", String(20), nullable=True),
    Column("operator_id", String(200), nullable=True),
    #: The conversation ``version`` the posted transcript showed.
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_conversation_posts_conv", "site_id", "conversation_id", "id"),
    UniqueConstraint("delivery_id"),
)

#: One row per running worker (``serve``'s or ``chathooks worker``), rewritten every few
#: seconds: who holds claims, and whether it is still alive to finish them.
workers = Table(
    "workers",
    metadata,
    #: The ``lease_owner`` its claims carry.
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    #: ``serve`` or ``worker``.
    Column("kind", String(10), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
)

#: Who erased what kind of data when, and how much: never the erased data itself.
erasures = Table(
    "erasures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("site_id", String(40), nullable=False),
    #: ``conversation`` or ``email``: what the request named (not its value).
    Column("subject", String(20), nullable=False),
    #: ``api`` (the site's key), ``admin`` or ``cli``.
    Column("requested_by", String(20), nullable=False),
    Column("requested_at", Float, nullable=False),
    #: Rows removed, by kind: ``{"conversations": 1, "deliveries": 2, ...}``.
    Column("counts", JSON, nullable=False),
    Index("ix_erasures_site", "site_id", "id"),
)

#: ``Idempotency-Key``s seen in the last 24 hours, per site, with the answer given.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("site_id", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    #: SHA-256 of method, path and body: the same key with another request is refused.
    Column("request_hash", String(64), nullable=False),
    #: NULL while the first request is still running.
    Column("status_code", Integer, nullable=True),
    #: The answer, sealed like endpoint secrets (it may hold one).
    Column("response_body", Text, nullable=True),
    Column("response_type", String(100), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_idempotency_keys_created", "created_at"),
)

__all__ = [
    "DELIVERY_STATUSES",
    "NAMING_CONVENTION",
    "UNFINISHED_STATUSES",
    "BigId",
    "DeliveryStatus",
    "admin_keys",
    "attempts",
    "conversation_lines",
    "conversation_posts",
    "conversations",
    "deliveries",
    "delivery_payloads",
    "endpoint_health",
    "endpoints",
    "erasures",
    "idempotency_keys",
    "metadata",
    "sites",
    "unfinished",
    "workers",
]
