"""endpoint isolation: a cap on requests in flight, health and a circuit breaker, held deliveries

Each endpoint may set ``max_in_flight``; ``endpoint_health`` keeps its
breaker and recent counts where every worker sees them. Three partial
indexes serve the per-endpoint claim (due work of one endpoint, requests in
flight at one endpoint) and enabling an endpoint again (its held deliveries).

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0003"
down_revision: str | Sequence[str] | None = "r0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNFINISHED = sa.text("status IN ('pending', 'retrying', 'delivering')")
_IN_FLIGHT = sa.text("status = 'delivering'")
_HELD = sa.text("status = 'held'")


def upgrade() -> None:
    # Not batch mode: rebuilding ``endpoints`` on SQLite would cascade to its deliveries.
    op.add_column("endpoints", sa.Column("max_in_flight", sa.Integer(), nullable=True))
    op.create_table(
        "endpoint_health",
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.Float(), nullable=True),
        sa.Column("last_success_at", sa.Float(), nullable=True),
        sa.Column("last_failure_at", sa.Float(), nullable=True),
        sa.Column("last_failure_reason", sa.Text(), nullable=True),
        sa.Column("probe_at", sa.Float(), nullable=True),
        sa.Column("recent", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_endpoint_health_endpoint_id_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("endpoint_id", name=op.f("pk_endpoint_health")),
    )
    op.create_index(
        "ix_deliveries_unfinished_endpoint_due",
        "deliveries",
        ["endpoint_id", "next_attempt_at", "seq"],
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )
    op.create_index(
        "ix_deliveries_in_flight",
        "deliveries",
        ["endpoint_id"],
        sqlite_where=_IN_FLIGHT,
        postgresql_where=_IN_FLIGHT,
    )
    op.create_index(
        "ix_deliveries_held",
        "deliveries",
        ["endpoint_id", "seq"],
        sqlite_where=_HELD,
        postgresql_where=_HELD,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_held", table_name="deliveries")
    op.drop_index("ix_deliveries_in_flight", table_name="deliveries")
    op.drop_index("ix_deliveries_unfinished_endpoint_due", table_name="deliveries")
    op.drop_table("endpoint_health")
    op.execute("ALTER TABLE endpoints DROP COLUMN max_in_flight")
