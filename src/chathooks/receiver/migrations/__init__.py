"""Alembic migrations of the receiver's own tables (``chathooks receive``)."""
