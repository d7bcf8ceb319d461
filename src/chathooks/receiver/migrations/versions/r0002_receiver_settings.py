"""Settings the receiver keeps between starts (the key generated for reading).

Revision ID: 0002_receiver_settings
Revises: 0001_received_transcripts
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_receiver_settings"
down_revision: str | None = "0001_received_transcripts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "received_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_received_settings"),
    )


def downgrade() -> None:
    op.drop_table("received_settings")
