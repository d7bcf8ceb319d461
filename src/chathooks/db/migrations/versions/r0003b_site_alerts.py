"""operational alerts: a site's alert endpoint, and when each alert was last sent; probe spacing

A site's ``alert_url`` is an endpoint of its own (``role = 'alerts'``, at
most one per site), so alerts go through the delivery queue like any
payload: retried, logged, signed. ``endpoint_health.alerted`` keeps when
each type of alert about an endpoint last went out, to rate-limit them;
``probe_interval`` the breaker's current wait between probes.

Revision ID: r0003b
Revises: r0003
Create Date: 2026-12-01 11:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0003b"
down_revision: str | Sequence[str] | None = "r0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ALERTS = sa.text("role = 'alerts'")


def upgrade() -> None:
    # Not batch mode: rebuilding ``endpoints`` on SQLite would cascade to its deliveries.
    op.add_column(
        "endpoints",
        sa.Column("role", sa.String(length=10), nullable=False, server_default="delivery"),
    )
    op.add_column("endpoint_health", sa.Column("alerted", sa.JSON(), nullable=True))
    op.add_column("endpoint_health", sa.Column("probe_interval", sa.Float(), nullable=True))
    op.create_index(
        "ix_endpoints_site_alerts",
        "endpoints",
        ["site_id"],
        unique=True,
        sqlite_where=_ALERTS,
        postgresql_where=_ALERTS,
    )


def downgrade() -> None:
    op.drop_index("ix_endpoints_site_alerts", table_name="endpoints")
    op.execute("ALTER TABLE endpoint_health DROP COLUMN probe_interval")
    op.execute("ALTER TABLE endpoint_health DROP COLUMN alerted")
    op.execute("ALTER TABLE endpoints DROP COLUMN role")
