"""Received conversations and every version of them.

Revision ID: 0001_received_transcripts
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_received_transcripts"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The migration spells out its types instead of importing the live tables, so it keeps
# creating exactly this schema however store.py changes later.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "received_conversations",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("visitor_name", sa.Text(), nullable=True),
        sa.Column("visitor_email", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("first_message_at", sa.Float(), nullable=True),
        sa.Column("last_message_at", sa.Float(), nullable=True),
        sa.Column("first_received_at", sa.Float(), nullable=False),
        sa.Column("last_received_at", sa.Float(), nullable=False),
        sa.Column("version_count", sa.Integer(), nullable=False),
        sa.Column("current_version_id", BigId, nullable=True),
        sa.Column("last_version_id", BigId, nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_received_conversations"),
    )
    op.create_index(
        "ix_received_conversations_last_version_id",
        "received_conversations",
        ["last_version_id"],
    )
    op.create_table(
        "received_versions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=True),
        sa.Column("manually_submitted", sa.Boolean(), nullable=True),
        sa.Column("webhook_id", sa.String(255), nullable=True),
        sa.Column("remote_addr", sa.String(64), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["received_conversations.id"],
            name="fk_received_versions_conversation_id_received_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_received_versions"),
        sa.UniqueConstraint(
            "conversation_id", "number", name="uq_received_versions_conversation_id_number"
        ),
        sa.UniqueConstraint("webhook_id", name="uq_received_versions_webhook_id"),
    )


def downgrade() -> None:
    op.drop_table("received_versions")
    op.drop_index("ix_received_conversations_last_version_id", "received_conversations")
    op.drop_table("received_conversations")
