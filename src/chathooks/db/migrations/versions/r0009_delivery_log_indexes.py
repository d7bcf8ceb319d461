"""indexes of the delivery log's filters: conversation id (exact or prefix), created-at range

Without them a search of the log for one conversation, or for one hour,
walked every delivery the site ever had, finished ones included.

Revision ID: r0009
Revises: r0008
Create Date: 2026-12-01 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "r0009"
down_revision: str | Sequence[str] | None = "r0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_site_conversation",
        "deliveries",
        ["site_id", "conversation_id", "seq"],
        postgresql_ops={"conversation_id": "text_pattern_ops"},
    )
    op.create_index("ix_deliveries_site_created", "deliveries", ["site_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_site_created", table_name="deliveries")
    op.drop_index("ix_deliveries_site_conversation", table_name="deliveries")
