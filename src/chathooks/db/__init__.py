"""Database access shared by the service: engines, the schema and migrations."""

from chathooks.db.engine import create_engine, normalize_url

__all__ = ["create_engine", "normalize_url"]
