"""``column`` starts with a prefix, as a range an index can search, the same on both databases.

``LIKE`` would not do: SQLite's ignores case, and PostgreSQL uses an index
for it only when the pattern is a constant known at planning time. Strings
starting with ``p`` are exactly those from ``p`` up to (not including) ``p``
with its last character moved one code point on, in byte order, which is
code-point order for UTF-8. SQLite compares text that way (its ``BINARY``
collation); on PostgreSQL the ``~>=~`` / ``~<~`` operators do, whatever the
database's collation, on an index built with ``text_pattern_ops``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_
from sqlalchemy.sql.expression import ColumnElement

__all__ = ["prefix_range", "starts_with"]

_LAST = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """``(low, high)``: the strings starting with ``prefix`` are ``low <= s < high``.

    ``high`` is None when no string is above them (the prefix is all U+10FFFF).
    """
    stem = prefix
    while stem:
        following = ord(stem[-1]) + 1
        if _SURROGATES[0] <= following <= _SURROGATES[1]:
            following = _SURROGATES[1] + 1  # no UTF-8 text lies in between
        if following <= _LAST:
            return prefix, stem[:-1] + chr(following)
        stem = stem[:-1]
    return prefix, None


def starts_with(column: ColumnElement[Any], prefix: str, *, dialect: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix`` (case-sensitive), for the database ``dialect`` names."""
    low, high = prefix_range(prefix)
    # ~>=~ and ~<~ compare bytes, as text_pattern_ops orders them; SQLite's >= and < already do.
    at_least, below = ("~>=~", "~<~") if dialect == "postgresql" else (">=", "<")
    lower = column.op(at_least, is_comparison=True)(low)
    if high is None:
        return lower
    return and_(lower, column.op(below, is_comparison=True)(high))
