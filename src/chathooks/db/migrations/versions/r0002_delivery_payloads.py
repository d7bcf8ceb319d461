"""payloads in a table of their own

A delivery's row is rewritten on every change of status (claimed, attempted,
settled); with the 2-20 KB payload in it, SQLite copied the payload each time.
The payload never changes, so it now lives in ``delivery_payloads``.

Revision ID: r0002
Revises: r0001
Create Date: 2026-11-25 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0002"
down_revision: str | Sequence[str] | None = "r0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_payloads",
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_payloads_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_delivery_payloads")),
    )
    op.execute(
        "INSERT INTO delivery_payloads (delivery_id, payload) SELECT id, payload FROM deliveries"
    )
    # Not batch mode: on SQLite it rebuilds ``deliveries``, and dropping the old table
    # would cascade to the payloads just copied. SQLite >= 3.35 drops a column in place.
    op.execute("ALTER TABLE deliveries DROP COLUMN payload")


def downgrade() -> None:
    op.add_column("deliveries", sa.Column("payload", sa.Text(), nullable=False, server_default=""))
    op.execute(
        "UPDATE deliveries SET payload = (SELECT payload FROM delivery_payloads"
        " WHERE delivery_payloads.delivery_id = deliveries.id)"
    )
    op.drop_table("delivery_payloads")
