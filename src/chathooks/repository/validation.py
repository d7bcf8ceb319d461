"""The rules an endpoint's settings must follow, shared by the API and the CLI.

Each check returns the cleaned value or raises :class:`ValueError` with a
message a person can act on; the caller names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from chathooks.sender.requests import check_extra_headers
from chathooks.urls import MAX_URL_LENGTH, check_url

__all__ = [
    "ENDPOINT_FORMATS",
    "MAX_HEADERS",
    "MAX_HEADER_NAME",
    "MAX_HEADER_VALUE",
    "MAX_URL_LENGTH",
    "EndpointFormat",
    "check_format",
    "check_headers",
    "check_site_name",
    "check_url",
]

MAX_HEADERS = 20
#: An extra header's name and value. Receivers' servers commonly refuse a header line
#: over 8 KiB (nginx, Node) and a name is a word or two.
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 4096
MAX_SITE_NAME = 200
EndpointFormat = Literal["form", "json"]
ENDPOINT_FORMATS: tuple[EndpointFormat, ...] = ("form", "json")

# Hop-by-hop headers describe one connection, not the request; the sender
# refuses the names it sets itself (content-type, webhook-*...) on top of these.
_HOP_BY_HOP_HEADERS = frozenset(
    {
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "upgrade",
    }
)


def check_site_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise ValueError("the site name must not be empty")
    if len(cleaned) > MAX_SITE_NAME:
        raise ValueError(f"the site name is longer than {MAX_SITE_NAME} characters")
    return cleaned


def check_format(value: str) -> EndpointFormat:
    for known in ENDPOINT_FORMATS:
        if value == known:
            return known
    raise ValueError(f"the format must be 'form' (Olark's wire form) or 'json', not {value!r}")


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Extra request headers; hop-by-hop names and those the sender sets are refused."""
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"at most {MAX_HEADERS} extra headers are allowed ({len(headers)} given)")
    for name, value in headers.items():
        if len(name) > MAX_HEADER_NAME:
            raise ValueError(
                f"the header name {name[:40]!r}... is longer than {MAX_HEADER_NAME} characters"
            )
        if len(value) > MAX_HEADER_VALUE:
            raise ValueError(
                f"the value of header {name!r} is longer than {MAX_HEADER_VALUE} characters "
                f"({len(value)})"
            )
    check_extra_headers(headers)
    seen: set[str] = set()
    for name in headers:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP_HEADERS:
            raise ValueError(f"{name!r} is a hop-by-hop header and cannot be set on an endpoint")
        if lowered in seen:
            raise ValueError(f"the header {name!r} is given twice")
        seen.add(lowered)
    return dict(headers)
