"""The visitor's ``ip`` as strict consumers take it: IPv4 kept as sent, anything else rewritten."""

from __future__ import annotations

from typing import Any

import pytest

from chathooks.wire import with_ipv4_visitor_ip


@pytest.mark.parametrize("ip", ["198.51.100.4", "0.0.0.0", "255.255.255.255", "10.0.0.1"])
def test_an_ipv4_address_passes_as_the_same_document(ip: str) -> None:
    document = {"id": "c", "visitor": {"kind": "Visitor", "ip": ip}}
    assert with_ipv4_visitor_ip(document) is document


@pytest.mark.parametrize(
    ("ip", "written"),
    [
        (" 198.51.100.4", "198.51.100.4"),  # padded: written without the spaces
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped IPv6: its IPv4 form
        ("01.2.3.4", None),  # a leading zero is no address (it reads as octal to some)
        ("256.1.1.1", None),
        ("1.2.3", None),
        ("1.2.3.4.5", None),
        ("\u0661.2.3.4", None),  # an Arabic-Indic digit is not an ASCII one
        ("2001:db8::7", None),
        ("", None),
    ],
)
def test_anything_else_is_written_as_ipv4_or_left_out(ip: str, written: str | None) -> None:
    visitor = {"kind": "Visitor", "ip": ip, "city": "Oslo"}
    document: dict[str, Any] = {"id": "c", "visitor": visitor}
    result = with_ipv4_visitor_ip(document)
    expected = (
        {"kind": "Visitor", "city": "Oslo"}
        if written is None
        else {"kind": "Visitor", "ip": written, "city": "Oslo"}
    )
    assert result["visitor"] == expected
    assert list(result["visitor"]) == list(expected)  # the key keeps its place
    assert visitor["ip"] == ip  # the caller's document is not changed
