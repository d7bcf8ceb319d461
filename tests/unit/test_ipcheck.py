"""Source allow-lists: IPv4, IPv6, IPv4-mapped addresses and X-Forwarded-For handling."""

from __future__ import annotations

import ipaddress

import pytest

from chathooks.receiver.ipcheck import (
    ForbiddenSource,
    IPAddress,
    SourceFilter,
    parse_address,
    parse_networks,
)

OLARK = ["203.0.113.0/24", "2001:db8:10::/48"]
PROXIES = ["10.0.0.0/8", "fd00::/8"]


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize("addr", ["203.0.113.7", "2001:db8:10::1", "2001:db8:10:ffff::9"])
def test_addresses_inside_the_allow_list_pass(addr: str) -> None:
    assert SourceFilter(OLARK).check(addr) == ip(addr)


@pytest.mark.parametrize("addr", ["198.51.100.7", "2001:db8:11::1", "::1", "127.0.0.1"])
def test_addresses_outside_the_allow_list_are_forbidden_with_the_address(addr: str) -> None:
    with pytest.raises(ForbiddenSource) as info:
        SourceFilter(OLARK).check(addr)
    error = info.value
    assert error.address == str(ip(addr))
    assert error.field == "remote_addr"
    assert str(ip(addr)) in error.message
    assert error.to_dict()["error"] == "forbidden_source"


def test_ipv4_mapped_ipv6_peer_matches_an_ipv4_allow_list() -> None:
    # A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d.
    assert SourceFilter(OLARK).check("::ffff:203.0.113.7") == ip("::ffff:203.0.113.7")
    with pytest.raises(ForbiddenSource):
        SourceFilter(OLARK).check("::ffff:198.51.100.7")


def test_ipv4_mapped_network_in_the_allow_list_also_works() -> None:
    assert SourceFilter(["::ffff:203.0.113.0/120"]).check("::ffff:203.0.113.9")


def test_bare_addresses_and_host_bits_are_accepted_in_lists() -> None:
    nets = parse_networks(["203.0.113.9", "10.1.2.3/8", " ::1 "])
    assert [str(n) for n in nets] == ["203.0.113.9/32", "10.0.0.0/8", "::1/128"]
    assert parse_networks("192.0.2.0/24") == (ipaddress.ip_network("192.0.2.0/24"),)
    # As an environment variable gives it: comma-separated, blanks skipped.
    assert [str(n) for n in parse_networks("10.0.0.0/8, ,::1")] == ["10.0.0.0/8", "::1/128"]


def test_bad_cidr_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"trusted_proxies: '10\.0\.0\.0/33'"):
        SourceFilter(OLARK, trusted_proxies=["10.0.0.0/33"])
    with pytest.raises(ValueError, match="allow_cidrs: 'olark'"):
        SourceFilter(["olark"])


def test_empty_allow_list_is_refused_rather_than_blocking_everyone() -> None:
    with pytest.raises(ValueError, match="refuse every request"):
        SourceFilter([])


def test_xff_from_an_untrusted_peer_is_ignored() -> None:
    # A client outside the list claims to be Olark: the header must not help it.
    source = SourceFilter(OLARK, trusted_proxies=PROXIES)
    with pytest.raises(ForbiddenSource) as info:
        source.check("198.51.100.7", "203.0.113.7")
    assert info.value.address == "198.51.100.7"
    assert "trusted_proxies" in info.value.message  # tells the owner how to fix a real proxy


def test_xff_is_ignored_entirely_without_trusted_proxies() -> None:
    with pytest.raises(ForbiddenSource):
        SourceFilter(OLARK).check("10.0.0.1", "203.0.113.7")
    assert SourceFilter(OLARK).check("203.0.113.7", "198.51.100.1") == ip("203.0.113.7")


def test_xff_from_a_trusted_proxy_gives_the_client() -> None:
    source = SourceFilter(OLARK, trusted_proxies=PROXIES)
    assert source.client_address("10.0.0.1", "203.0.113.7") == (
        ip("203.0.113.7"),
        "x-forwarded-for",
    )
    assert source.check("10.0.0.1", "203.0.113.7") == ip("203.0.113.7")


def test_chain_is_walked_from_the_right_skipping_trusted_proxies() -> None:
    source = SourceFilter(OLARK, trusted_proxies=PROXIES)
    assert source.check("10.0.0.1", "203.0.113.7, 10.0.0.3, 10.0.0.2") == ip("203.0.113.7")


def test_prepended_spoofed_entry_does_not_win() -> None:
    # The attacker sends "X-Forwarded-For: 203.0.113.7"; our proxy appends the real peer.
    source = SourceFilter(OLARK, trusted_proxies=PROXIES)
    with pytest.raises(ForbiddenSource) as info:
        source.check("10.0.0.1", "203.0.113.7, 198.51.100.66")
    assert info.value.address == "198.51.100.66"
    assert info.value.field == "x-forwarded-for"


def test_repeated_xff_headers_are_one_chain() -> None:
    source = SourceFilter(OLARK, trusted_proxies=PROXIES)
    assert source.check("10.0.0.1", ["198.51.100.66", "203.0.113.7, 10.0.0.2"]) == ip("203.0.113.7")


def test_chain_of_only_trusted_proxies_gives_the_leftmost() -> None:
    source = SourceFilter(["10.9.9.9/32"], trusted_proxies=PROXIES)
    assert source.check("10.0.0.1", "10.9.9.9, 10.0.0.2") == ip("10.9.9.9")


def test_trusted_peer_without_xff_is_the_client() -> None:
    source = SourceFilter(["10.0.0.0/8"], trusted_proxies=PROXIES)
    assert source.client_address("10.0.0.1", None) == (ip("10.0.0.1"), "remote_addr")


def test_ipv6_proxy_and_ipv6_client_with_brackets_and_ports() -> None:
    source = SourceFilter(OLARK, trusted_proxies=PROXIES)
    assert source.check("fd00::1", "[2001:db8:10::5]:4711") == ip("2001:db8:10::5")
    assert source.check("fd00::1", "203.0.113.7:4711, fd00::2") == ip("203.0.113.7")


def test_ipv4_mapped_proxy_peer_is_trusted() -> None:
    source = SourceFilter(OLARK, trusted_proxies=["10.0.0.1"])
    assert source.check("::ffff:10.0.0.1", "203.0.113.7") == ip("203.0.113.7")


def test_junk_where_the_client_should_be_is_forbidden() -> None:
    source = SourceFilter(OLARK, trusted_proxies=PROXIES)
    with pytest.raises(ForbiddenSource) as info:
        source.check("10.0.0.1", "203.0.113.7, unknown")
    assert info.value.field == "x-forwarded-for"
    assert "'unknown'" in info.value.message
    # Junk left of the client is never looked at.
    assert source.check("10.0.0.1", "unknown, 203.0.113.7") == ip("203.0.113.7")


@pytest.mark.parametrize("peer", [None, "", "unix:/run/app.sock"])
def test_unknown_peer_is_forbidden(peer: str | None) -> None:
    with pytest.raises(ForbiddenSource, match="not an IP address"):
        SourceFilter(OLARK).check(peer)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1:8080 ", "192.0.2.1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ('"192.0.2.1"', "192.0.2.1"),
        ("unknown", None),
        ("[2001:db8::1", None),
        ("", None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    parsed = parse_address(text)
    assert (str(parsed) if parsed else None) == expected
