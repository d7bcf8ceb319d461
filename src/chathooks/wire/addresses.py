"""The visitor's ``ip`` as strict Olark consumers accept it.

Snowplow's ``com.olark`` schemas declare ``visitor.ip`` as ``format: ipv4``:
an ``"ip": ""`` (or an IPv6 address) makes a bad row there, while a payload
without the key passes. So a payload carries ``ip`` only when it is IPv4; an
IPv4-mapped IPv6 address (``::ffff:203.0.113.7``) is written as its IPv4 form.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: An IPv4 address written as ``ipaddress`` writes it: kept as it is without parsing it.
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def ipv4_form(value: str) -> str | None:
    """``value`` as an IPv4 address, or None where the key is to be left out.

    ``""`` and a well-formed IPv6 address give None; text that is no IP
    address at all raises :class:`ValueError`.
    """
    text = value.strip()
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        raise ValueError(
            f'{value!r} is not an IP address; send the visitor\'s IPv4 address or ""'
        ) from exc
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else None
    return str(address)


def with_ipv4_visitor_ip(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with ``visitor.ip`` kept only when it is IPv4 (the input is not changed).

    A document whose ``ip`` is already an IPv4 address, or that has none, is
    returned as it is, so a conforming payload passes on byte for byte.
    """
    visitor = document.get("visitor")
    if not isinstance(visitor, dict) or "ip" not in visitor:
        return document
    value = visitor["ip"]
    if isinstance(value, str) and _CANONICAL_IPV4.fullmatch(value):
        return document
    try:
        ip = ipv4_form(value) if isinstance(value, str) else None
    except ValueError:
        ip = None
    if ip is not None and ip == value:
        return document
    kept = {key: (ip if key == "ip" else item) for key, item in visitor.items()}
    if ip is None:
        del kept["ip"]
    return {**document, "visitor": kept}


__all__ = ["ipv4_form", "with_ipv4_visitor_ip"]
