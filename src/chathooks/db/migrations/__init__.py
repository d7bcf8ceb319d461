"""Alembic migrations of the sender schema; run them with :func:`chathooks.db.migrate.upgrade`."""
