"""The one cursor scheme of every listing: sites, endpoints, deliveries, conversations, received.

A cursor is the sort key of the last row shown, as a JSON array, base64url
without padding: opaque to callers (they pass ``next_cursor`` back
unchanged), and checked on the way in, so a cursor that was not handed out
is a clear error naming ``cursor`` rather than a query on nonsense.
Part of the receiver toolkit: the standard library alone.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from chathooks.errors import FieldError

__all__ = ["InvalidCursor", "decode_cursor", "encode_cursor"]

Key = str | int | float


class InvalidCursor(FieldError, ValueError):
    """A listing cursor that this service did not hand out."""

    code = "invalid_query"
    field = "cursor"

    def __init__(
        self,
        message: str = "the cursor is not one this listing handed out; pass next_cursor back "
        "unchanged, or start again without it",
    ) -> None:
        super().__init__(message)


def encode_cursor(*key: Key) -> str:
    """The cursor for a row whose sort key is ``key``."""
    text = json.dumps(list(key), separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(
    cursor: str, *shape: type[Key], error: Callable[[], Exception] = InvalidCursor
) -> tuple[Any, ...]:
    """The sort key a cursor holds, each part of the type ``shape`` gives, else ``error()``.

    An ``int`` part must be a whole number (not a boolean); a ``float`` part
    may be written as a whole number.
    """
    try:
        raw = base64.b64decode(
            (cursor + "=" * (-len(cursor) % 4)).encode("ascii"), altchars=b"-_", validate=True
        )
        key = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise error() from exc
    if not isinstance(key, list) or len(key) != len(shape):
        raise error()
    parts: list[Any] = []
    for part, kind in zip(key, shape, strict=True):
        if isinstance(part, bool):
            raise error()
        if kind is float and isinstance(part, int):
            part = float(part)
        if not isinstance(part, kind):
            raise error()
        parts.append(part)
    return tuple(parts)
