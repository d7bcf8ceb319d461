"""the headers of each attempt: what was sent (secrets masked) and what came back

The delivery log shows, per attempt, the request as it went out and the
receiver's whole answer. The body needs no column: it is built from the
stored payload and the attempt's Content-Type, byte for byte.

Revision ID: r0006
Revises: r0004
Create Date: 2026-12-01 11:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0006"
down_revision: str | Sequence[str] | None = "r0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: added in place on both databases, without copying the table.
    op.add_column("attempts", sa.Column("request_headers", sa.Text(), nullable=True))
    op.add_column("attempts", sa.Column("response_headers", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("response_headers")
        batch.drop_column("request_headers")
