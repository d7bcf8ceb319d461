"""a conversation's lines in a table of their own

Every chat line rewrote the conversation's whole transcript (its ``items``
were in the ``document`` column), so line 5,000 cost thirty times line 10.
Each line is now a row of ``conversation_lines``; the document keeps the
rest of the transcript. Operator commands (``!lead`` and the text after it)
are lines too, kept for the console; they are not transcript items.

Existing conversations' items move into the new table in order; a downgrade
puts them back (and drops the command lines, which had no place before).

Revision ID: r0007
Revises: r0006
Create Date: 2026-12-01 14:50:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "r0007"
down_revision: str | Sequence[str] | None = "r0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Conversations read and rewritten per round trip while the items move.
_BATCH = 500

_conversations = sa.table(
    "conversations",
    sa.column("site_id", sa.String()),
    sa.column("id", sa.String()),
    sa.column("document", sa.JSON()),
    sa.column("messages", sa.Integer()),
    sa.column("lines", sa.Integer()),
    sa.column("created_at", sa.Float()),
)
_lines = sa.table(
    "conversation_lines",
    sa.column("site_id", sa.String()),
    sa.column("conversation_id", sa.String()),
    sa.column("seq", sa.Integer()),
    sa.column("command", sa.String()),
    sa.column("line", sa.Text()),
    sa.column("created_at", sa.Float()),
)


def _document(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def upgrade() -> None:
    op.create_table(
        "conversation_lines",
        sa.Column("site_id", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("command", sa.String(length=20), nullable=True),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id", "conversation_id"],
            ["conversations.site_id", "conversations.id"],
            name=op.f("fk_conversation_lines_site_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "site_id", "conversation_id", "seq", name=op.f("pk_conversation_lines")
        ),
    )
    # Not batch mode: on SQLite that rebuilds ``conversations``; a column with a
    # constant default is added in place on both databases.
    op.add_column(
        "conversations", sa.Column("messages", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "conversations", sa.Column("lines", sa.Integer(), nullable=False, server_default="0")
    )
    bind = op.get_bind()
    after: tuple[str, str] = ("", "")
    while True:
        rows = bind.execute(
            sa.select(
                _conversations.c.site_id,
                _conversations.c.id,
                _conversations.c.document,
                _conversations.c.created_at,
            )
            .where(sa.tuple_(_conversations.c.site_id, _conversations.c.id) > after)
            .order_by(_conversations.c.site_id, _conversations.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            document = _document(row.document)
            items = document.pop("items", None) or []
            if items:
                bind.execute(
                    sa.insert(_lines),
                    [
                        {
                            "site_id": row.site_id,
                            "conversation_id": row.id,
                            "seq": number,
                            "command": None,
                            "line": json.dumps(item),
                            "created_at": row.created_at,
                        }
                        for number, item in enumerate(items, start=1)
                    ],
                )
            bind.execute(
                sa.update(_conversations)
                .where(_conversations.c.site_id == row.site_id, _conversations.c.id == row.id)
                .values(document=document, messages=len(items), lines=len(items))
            )
        after = (rows[-1].site_id, rows[-1].id)


def downgrade() -> None:
    bind = op.get_bind()
    keys = bind.execute(sa.select(_conversations.c.site_id, _conversations.c.id)).all()
    for site_id, conversation_id in keys:
        document = _document(
            bind.execute(
                sa.select(_conversations.c.document).where(
                    _conversations.c.site_id == site_id, _conversations.c.id == conversation_id
                )
            ).scalar_one()
        )
        document["items"] = [
            json.loads(line)
            for line in bind.execute(
                sa.select(_lines.c.line)
                .where(
                    _lines.c.site_id == site_id,
                    _lines.c.conversation_id == conversation_id,
                    _lines.c.command.is_(None),
                )
                .order_by(_lines.c.seq)
            ).scalars()
        ]
        bind.execute(
            sa.update(_conversations)
            .where(_conversations.c.site_id == site_id, _conversations.c.id == conversation_id)
            .values(document=document)
        )
    op.drop_table("conversation_lines")
    # SQLite >= 3.35 drops a column in place (batch mode would rebuild the table).
    op.execute("ALTER TABLE conversations DROP COLUMN lines")
    op.execute("ALTER TABLE conversations DROP COLUMN messages")
