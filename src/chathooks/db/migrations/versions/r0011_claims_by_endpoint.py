"""drop ix_deliveries_unfinished_due: claims read unfinished deliveries by endpoint only

The index of unfinished deliveries by due time alone answered none of the
claim's lookups better than ``ix_deliveries_unfinished_endpoint_due`` and
``ix_deliveries_unfinished_order``, and where statistics made every partial
index look empty (a queue analysed in a quiet moment, then given a burst),
PostgreSQL took it for the conversation-order check and read the whole
backlog for each candidate: a claim of 64 out of 2,000 took about a second.
Without it, each lookup has one index that fits it. Every write of an
unfinished delivery also maintains one index fewer.

Revision ID: r0011
Revises: r0010
Create Date: 2026-12-02 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0011"
down_revision: str | Sequence[str] | None = "r0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNFINISHED = "status IN ('pending', 'retrying', 'delivering')"


def upgrade() -> None:
    op.drop_index(
        "ix_deliveries_unfinished_due",
        table_name="deliveries",
        sqlite_where=sa.text(_UNFINISHED),
        postgresql_where=sa.text(_UNFINISHED),
    )


def downgrade() -> None:
    op.create_index(
        "ix_deliveries_unfinished_due",
        "deliveries",
        ["next_attempt_at"],
        unique=False,
        sqlite_where=sa.text(_UNFINISHED),
        postgresql_where=sa.text(_UNFINISHED),
    )
