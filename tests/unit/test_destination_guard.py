"""The destination guard: which addresses a delivery may reach (no network used)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from chathooks.receiver.ipcheck import parse_networks
from chathooks.sender import DestinationGuard, DestinationRefused, GuardedResolver

REFUSED = {
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "cloud metadata",
    "169.254.1.1": "link-local",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "100.64.0.1": "carrier-grade NAT",
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "255.255.255.255": "reserved",
    "240.0.0.1": "reserved",
    "192.0.2.10": "reserved",
    "2001:db8::1": "reserved",
    # Metadata services, directly and in every IPv6 form that reaches them.
    "fd00:ec2::254": "cloud metadata",
    "169.254.170.2": "cloud metadata",
    "::ffff:169.254.169.254": "cloud metadata",
    "::a9fe:a9fe": "cloud metadata",  # IPv4-compatible
    "2002:a9fe:a9fe::1": "cloud metadata",  # 6to4
    "64:ff9b::a9fe:a9fe": "cloud metadata",  # NAT64
    "::ffff:0:a9fe:a9fe": "cloud metadata",  # SIIT
    # Embedded private/loopback addresses.
    "::127.0.0.1": "loopback",
    "2002:7f00:1::": "loopback",
    "64:ff9b::10.1.2.3": "private",
    "64:ff9b:1::1": "private",
    "::ffff:100.64.0.1": "carrier-grade NAT",
}

ALLOWED = [
    "93.184.216.34",
    "2606:2800:220:1::1",
    "8.8.8.8",
    "1.1.1.1",
    "::ffff:93.184.216.34",  # mapped form of a public address goes to that public address
    "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
    "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
    "2a00:1450:4001:80b::200e",
]


@pytest.mark.parametrize(("address", "kind"), sorted(REFUSED.items()))
def test_non_public_addresses_are_refused_with_their_kind(address: str, kind: str) -> None:
    refusal = DestinationGuard().refusal(address)

    assert refusal is not None, f"{address} should be refused"
    assert f"{kind}" in refusal.description
    assert str(ipaddress.ip_address(address)) in refusal.message
    assert "CHATHOOKS_ALLOWED_DESTINATIONS" in refusal.message


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert DestinationGuard().refusal(address) is None


def test_message_reads_as_the_spec_says() -> None:
    refusal = DestinationGuard().refusal("10.0.0.5")

    assert refusal is not None
    assert refusal.message == (
        "destination 10.0.0.5 is a private address; allow it with CHATHOOKS_ALLOWED_DESTINATIONS"
    )


def test_mapped_address_message_names_the_ipv4_inside() -> None:
    refusal = DestinationGuard().refusal("::ffff:10.0.0.1")

    assert refusal is not None
    assert "10.0.0.1" in refusal.message
    assert "private" in refusal.message


def test_allowed_networks_open_exceptions_for_plain_and_mapped_forms() -> None:
    guard = DestinationGuard(parse_networks("127.0.0.0/8, 10.1.0.0/16"))

    assert guard.is_allowed("127.0.0.1")
    assert guard.is_allowed("::ffff:127.0.0.1")
    assert guard.is_allowed("10.1.2.3")
    assert not guard.is_allowed("10.2.0.1")
    assert not guard.is_allowed("::1")
    assert not guard.is_allowed("169.254.169.254")


def test_an_allow_list_entry_covering_metadata_is_respected() -> None:
    guard = DestinationGuard(parse_networks("169.254.169.254/32"))

    assert guard.is_allowed("169.254.169.254")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/hook", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("https://[::ffff:169.254.169.254]/latest", "cloud metadata"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://127.1/hook", "127.1 is not a valid IP address"),
        ("http://2130706433/hook", "not a valid IP address"),
        ("http://0.0.0.0:80/", "unspecified"),
    ],
)
def test_urls_with_refused_literal_hosts_or_schemes(url: str, fragment: str) -> None:
    verdict = DestinationGuard().check_url(URL(url))

    assert verdict is not None
    assert fragment in verdict


@pytest.mark.parametrize(
    "url",
    ["https://example.com/hook", "http://93.184.216.34/hook", "https://[2606:2800:220:1::1]/x"],
)
def test_urls_left_for_the_resolver_or_public_literals_pass(url: str) -> None:
    assert DestinationGuard().check_url(URL(url)) is None


class FixedAnswers(AbstractResolver):
    """Stands in for DNS with fixed answers, so no lookup leaves the machine."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        pass


async def test_resolver_hands_aiohttp_only_the_allowed_addresses() -> None:
    resolver = GuardedResolver(
        DestinationGuard(),
        FixedAnswers({"mixed.example": ["10.0.0.1", "93.184.216.34", "::1"]}),
    )

    results = await resolver.resolve("mixed.example", 443)

    assert [r["host"] for r in results] == ["93.184.216.34"]


async def test_resolver_refuses_a_name_that_only_points_inside() -> None:
    resolver = GuardedResolver(
        DestinationGuard(),
        FixedAnswers({"rebind.example": ["169.254.169.254"], "two.example": ["10.0.0.1", "::1"]}),
    )

    with pytest.raises(DestinationRefused) as single:
        await resolver.resolve("rebind.example", 80)
    with pytest.raises(DestinationRefused) as several:
        await resolver.resolve("two.example", 80)

    assert single.value.message == (
        "destination rebind.example resolves to 169.254.169.254, a cloud metadata address; "
        "allow it with CHATHOOKS_ALLOWED_DESTINATIONS"
    )
    assert "10.0.0.1 (a private address)" in several.value.message
    assert "::1 (a loopback address)" in several.value.message
    assert several.value.addresses == ("10.0.0.1", "::1")
