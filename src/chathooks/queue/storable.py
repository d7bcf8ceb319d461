"""Text from a receiver, made fit to store on every backend.

Whatever an endpoint answers ends up in the delivery log: the reply's body,
a reason built from its status and headers, its ``integrationUrl``. A
receiver controls all of it, and PostgreSQL refuses a NUL byte in text while
neither backend can encode a lone surrogate (which ``\\ud800`` in a JSON reply
decodes to). One such reply used to fail the write of a whole batch of
outcomes. So every such string is cleaned on its way in: NULs and lone
surrogates become U+FFFD, and the length is capped.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = [
    "MAX_ERROR_CHARS",
    "MAX_INTEGRATION_URL_CHARS",
    "MAX_RESPONSE_BODY_CHARS",
    "link_or_none",
    "storable_text",
]

#: The longest reply body kept (the sender reads at most ``max_response_bytes`` anyway).
MAX_RESPONSE_BODY_CHARS = 64 * 1024
#: The longest failure reason kept.
MAX_ERROR_CHARS = 4096
#: The longest ``integrationUrl`` kept; browsers and CRMs stop well before.
MAX_INTEGRATION_URL_CHARS = 8192

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_LINK_SCHEMES = frozenset({"http", "https"})


def storable_text(value: str | None, limit: int) -> str | None:
    """``value`` with NULs and lone surrogates replaced, cut to ``limit`` characters."""
    if value is None:
        return None
    if len(value) > limit:
        value = value[:limit]
    if value.isascii() and "\x00" not in value:
        return value
    return _UNSTORABLE.sub("\ufffd", value)


def link_or_none(url: str | None) -> str | None:
    """``url`` when it can be offered to an operator as a link: http(s) only, storable.

    A receiver may answer ``javascript:`` or ``data:`` URLs; shown as a link,
    those run in the operator's browser. They are dropped (the reply body,
    kept on the attempt, still shows what the receiver said).
    """
    if url is None:
        return None
    cleaned = storable_text(url.strip(), MAX_INTEGRATION_URL_CHARS)
    if not cleaned:
        return None
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme.lower() not in _LINK_SCHEMES or not parts.netloc:
        return None
    if any(ch in cleaned for ch in "\ufffd\r\n\t ") or not cleaned.isprintable():
        return None
    return cleaned
