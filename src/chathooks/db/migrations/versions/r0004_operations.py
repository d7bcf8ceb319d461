"""worker heartbeats, erasure audit, idempotency keys, retention indexes

``workers`` lets a restarted or surviving worker release a dead one's claims
at once instead of after the lease; ``erasures`` records who erased what kind
of data and how much (never the data); ``idempotency_keys`` keeps the answers
to repeated POSTs for 24 hours. Retention deletes finished deliveries and
closed conversations oldest first, on the two new indexes.

Revision ID: r0004
Revises: r0003b
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0004"
down_revision: str | Sequence[str] | None = "r0003b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "erasures",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=20), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index("ix_erasures_site", "erasures", ["site_id", "id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("site_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("response_type", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("site_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])
    op.create_index("ix_deliveries_finished", "deliveries", ["finished_at"])
    op.create_index("ix_conversations_closed", "conversations", ["state", "closed_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_closed", table_name="conversations")
    op.drop_index("ix_deliveries_finished", table_name="deliveries")
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_erasures_site", table_name="erasures")
    op.drop_table("erasures")
    op.drop_table("workers")
