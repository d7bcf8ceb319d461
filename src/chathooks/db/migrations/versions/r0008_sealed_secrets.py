"""endpoint signing secrets sealed with the service key; the previous secret during a rotation

Every ``endpoints.secret`` is replaced by its sealed form (see
:mod:`chathooks.sealing`), which is longer, so the column becomes TEXT; the
secret a rotation replaced, and until when it still signs, get columns of
their own. The service key comes from ``chathooks migrate`` (the setting or
the SQLite key file), as the service will use it.

Revision ID: r0008
Revises: r0007
Create Date: 2026-12-01 14:40:00
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from chathooks.db.migrations import migration_keyring
from chathooks.sealing import is_sealed

revision: str = "r0008"
down_revision: str | Sequence[str] | None = "r0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _replace_secrets(column_type: sa.types.TypeEngine[str], convert: Callable[[str], str]) -> None:
    """Rewrite ``endpoints.secret`` through ``convert`` into a new column of ``column_type``.

    Not batch mode, not ALTER TYPE: rebuilding ``endpoints`` on SQLite would
    cascade to its deliveries, so a new column is filled, the old one dropped
    and the new one renamed (both databases do those in place).
    """
    op.add_column("endpoints", sa.Column("secret_new", column_type, nullable=True))
    bind = op.get_bind()
    table = sa.table("endpoints", sa.column("id", sa.String()), sa.column("secret", sa.String()))
    rows = bind.execute(sa.select(table.c.id, table.c.secret).where(table.c.secret.is_not(None)))
    updates = [{"b_id": row.id, "b_secret": convert(row.secret)} for row in rows]
    if updates:
        bind.execute(
            sa.text("UPDATE endpoints SET secret_new = :b_secret WHERE id = :b_id"), updates
        )
    op.execute("ALTER TABLE endpoints DROP COLUMN secret")
    op.execute("ALTER TABLE endpoints RENAME COLUMN secret_new TO secret")


def _convert_answers(convert: Callable[[str], str]) -> None:
    """The answers kept for ``Idempotency-Key`` repeats, which may hold a new secret."""
    bind = op.get_bind()
    table = sa.table(
        "idempotency_keys",
        sa.column("site_id", sa.String()),
        sa.column("key", sa.String()),
        sa.column("response_body", sa.Text()),
    )
    rows = bind.execute(
        sa.select(table.c.site_id, table.c.key, table.c.response_body).where(
            table.c.response_body.is_not(None)
        )
    )
    updates = [
        {"b_site": row.site_id, "b_key": row.key, "b_body": convert(row.response_body)}
        for row in rows
    ]
    if updates:
        bind.execute(
            sa.text(
                "UPDATE idempotency_keys SET response_body = :b_body"
                " WHERE site_id = :b_site AND key = :b_key"
            ),
            updates,
        )


def upgrade() -> None:
    keyring = migration_keyring()
    _replace_secrets(
        sa.Text(), lambda secret: secret if is_sealed(secret) else keyring.seal(secret)
    )
    op.add_column("endpoints", sa.Column("previous_secret", sa.Text(), nullable=True))
    op.add_column("endpoints", sa.Column("previous_secret_until", sa.Float(), nullable=True))
    _convert_answers(lambda body: body if is_sealed(body) else keyring.seal(body))


def downgrade() -> None:
    keyring = migration_keyring()
    _convert_answers(lambda body: keyring.open(body, cached=False))
    op.execute("ALTER TABLE endpoints DROP COLUMN previous_secret_until")
    op.execute("ALTER TABLE endpoints DROP COLUMN previous_secret")
    _replace_secrets(sa.String(length=100), keyring.open)
