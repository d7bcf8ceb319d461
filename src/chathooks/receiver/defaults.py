"""Where ``chathooks receive`` listens by default.

Kept apart from the app so the command line can show these defaults without
importing the web stack (a ``chathooks worker`` process never loads FastAPI).
"""

from __future__ import annotations

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8701
