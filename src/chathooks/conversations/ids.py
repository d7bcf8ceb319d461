"""Conversation ids shaped like Olark's: 32 letters and digits.

Receivers upsert by ``id`` and some store it in fixed-width columns sized for
Olark's ids, so generated ids keep exactly that shape.
"""

from __future__ import annotations

import re
import secrets
import string

__all__ = ["CONVERSATION_ID_PATTERN", "new_conversation_id"]

_ALPHABET = string.ascii_letters + string.digits
_LENGTH = 32

#: Ids a chat platform may choose itself: URL-safe, so they work as path segments.
CONVERSATION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def new_conversation_id() -> str:
    """A new random id such as ``wGev6kIm8m9tIwyZ8D5z70Ua2FozbDBT``."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
