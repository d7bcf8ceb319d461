"""Who may read what ``chathooks receive`` stored: the holder of its read key.

The stored transcripts hold every visitor's name, e-mail address, IP address
and messages, so the pages and ``/api/transcripts`` answer only a request that
carries the read key: ``Authorization: Bearer <key>`` for scripts, or the
cookie a person gets from the sign-in form. The cookie holds an HMAC of the key,
not the key, so it cannot be turned back into a credential for the API; it is
``HttpOnly`` and ``SameSite=Lax`` (a click on an ``integrationUrl`` from the
chat console, a top-level navigation, still carries it). A receiver started
with ``--public`` has no key and answers anyone, as before.

``POST /webhook`` is not guarded here: it has its own checks (signatures and
source allow-lists), since the sender never holds the read key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["COOKIE_NAME", "ReadAccess", "generate_read_key", "safe_next"]

COOKIE_NAME = "chathooks_receiver_read"
_COOKIE_CONTEXT = b"chathooks receiver read cookie v1"
_KEY_PREFIX = "chrd_"


def generate_read_key() -> str:
    """A new read key: 32 random bytes, URL-safe, with a recognisable prefix."""
    return _KEY_PREFIX + secrets.token_urlsafe(32)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this receiver only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


@dataclass(frozen=True)
class ReadAccess:
    """The read key of one receiver; ``key=None`` means anyone may read."""

    key: str | None

    @property
    def public(self) -> bool:
        return self.key is None

    def cookie_value(self) -> str:
        """What the sign-in cookie holds for this key."""
        if self.key is None:
            return ""
        return hmac.new(self.key.encode(), _COOKIE_CONTEXT, hashlib.sha256).hexdigest()

    def accepts_key(self, given: str | None) -> bool:
        if self.key is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.key.encode())

    def allows(self, authorization: str | None, cookie: str | None) -> bool:
        """Whether a request with these ``Authorization`` and cookie values may read."""
        if self.key is None:
            return True
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and self.accepts_key(token.strip()):
                return True
        return cookie is not None and hmac.compare_digest(
            cookie.encode(), self.cookie_value().encode()
        )
