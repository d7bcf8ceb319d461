"""Public ids and API keys.

Ids start with their kind (``site_``, ``ep_``) so a misplaced id is obvious in
a log, and with the creation time in milliseconds so sorting by id is sorting
by age, which makes the id itself a stable paging cursor.
"""

from __future__ import annotations

import hashlib
import secrets
import time

__all__ = ["hash_key", "new_id", "new_key"]


def new_id(prefix: str) -> str:
    """A new id such as ``ep_018c2f6a1b2c9f3e4d5a6b7c``: time-ordered, then random."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def new_key(prefix: str) -> str:
    """A new secret API key; only its :func:`hash_key` is ever stored."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
