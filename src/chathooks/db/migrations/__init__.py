"""Alembic migrations of the sender schema; run them with :func:`chathooks.db.migrate.upgrade`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chathooks.sealing import Keyring


def migration_keyring() -> Keyring:
    """The keyring a migration seals and opens secrets with, inside a migration only.

    The one ``chathooks migrate`` passed in (the setting or the SQLite key
    file, as the service will use it), else the one configured for the
    database being migrated.
    """
    from alembic import context, op

    from chathooks.sealing import Keyring, configured_keyring

    given = context.config.attributes.get("keyring")
    if isinstance(given, Keyring):
        return given
    return configured_keyring(op.get_bind().engine.url.render_as_string(hide_password=False))
