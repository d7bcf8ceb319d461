"""The one syntactic check of an http(s) URL: endpoints, alert URLs, send-test, CLI options.

Part of the receiver toolkit (the standard library alone), so ``chathooks
send-test`` on a toolkit-only install checks a URL as the service does. Where
a URL may lead (loopback, private networks) is not judged here: that is the
sender's destination guard, :mod:`chathooks.sender.guard`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["MAX_URL_LENGTH", "check_url"]

MAX_URL_LENGTH = 2048


def check_url(url: str, *, example: str = "https://crm.example.com/olark") -> str:
    """``url`` without surrounding blanks if it is an absolute ``http``/``https`` URL with a host.

    Otherwise :class:`ValueError` saying what is wrong; ``example`` is the URL
    the message shows when there is no host. The query string is kept as given.
    """
    cleaned = url.strip()
    if not cleaned:
        raise ValueError("the URL must not be empty")
    if len(cleaned) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in cleaned):
        raise ValueError("the URL must not contain spaces; percent-encode them as %20")
    try:
        parts = urlsplit(cleaned)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise ValueError(f"the URL does not parse ({exc}), e.g. {example}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "none"
        raise ValueError(f"the URL must start with http:// or https:// (scheme was {shown})")
    if not parts.hostname:
        raise ValueError(f"the URL has no host name, e.g. {example}")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise ValueError(f"the URL's port is not a number from 0 to 65535 ({exc})") from exc
    return cleaned
