"""endpoint request headers sealed with the service key: their values are often a receiver's token

Each value of ``endpoints.headers`` is replaced by its sealed form (see
:mod:`chathooks.sealing`); the names stay readable, and the column stays
JSON. The downgrade puts the plain values back.

Revision ID: r0010
Revises: r0009
Create Date: 2026-12-01 17:40:00
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from chathooks.db.migrations import migration_keyring

revision: str = "r0010"
down_revision: str | Sequence[str] | None = "r0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _convert_headers(convert: Callable[[str], str]) -> None:
    """Rewrite every value of every endpoint's ``headers`` through ``convert``."""
    bind = op.get_bind()
    table = sa.table("endpoints", sa.column("id", sa.String()), sa.column("headers", sa.JSON()))
    rows = bind.execute(sa.select(table.c.id, table.c.headers))
    updates = [
        {"b_id": row.id, "b_headers": {name: convert(value) for name, value in row.headers.items()}}
        for row in rows
        if isinstance(row.headers, dict) and row.headers
    ]
    if updates:
        bind.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values(headers=sa.bindparam("b_headers", type_=sa.JSON())),
            updates,
        )


def upgrade() -> None:
    keyring = migration_keyring()
    _convert_headers(lambda value: keyring.seal(str(value)))


def downgrade() -> None:
    keyring = migration_keyring()
    _convert_headers(lambda value: keyring.open(value, cached=False))
