"""Destination safety: deliveries may only reach public addresses, unless allowed.

Customers choose the URL a transcript is posted to, so without a guard the
sender would be a proxy into our own network (server-side request forgery):
loopback admin ports, the private LAN, or the cloud metadata service that hands
out credentials. Every address a delivery would connect to is therefore checked
here first, and refused unless it is public unicast or inside a network the
operator opened with ``CHATHOOKS_ALLOWED_DESTINATIONS``.

Checking a name and then letting the HTTP client resolve it again would leave a
gap (DNS rebinding: public on the first lookup, 127.0.0.1 on the second), so
:class:`GuardedResolver` plugs into aiohttp and hands it only the addresses that
passed; IP-literal URLs never reach a resolver, so :meth:`DestinationGuard.check_url`
checks them before the request.

IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT,
6to4, NAT64) are judged by the IPv4 address inside, because that is where the
packets end up. The tables are explicit rather than ``ipaddress.is_private`` so
the verdict does not change between Python patch releases.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from chathooks.receiver.ipcheck import IPAddress, IPNetwork, parse_networks

__all__ = [
    "ALLOWED_DESTINATIONS_SETTING",
    "DestinationGuard",
    "DestinationRefused",
    "GuardedResolver",
    "IPAddress",
    "IPNetwork",
    "Refusal",
]


#: The environment variable that opens exceptions; named in every refusal message.
ALLOWED_DESTINATIONS_SETTING = "CHATHOOKS_ALLOWED_DESTINATIONS"

_SCHEMES = frozenset({"http", "https"})
# Literal-host verdicts are memoised; the set of distinct hosts is small in
# practice, and the cap only stops a pathological stream of hosts growing it.
_CACHE_LIMIT = 4096

# Instance metadata services hand out cloud credentials: the prime SSRF target.
# AWS/GCP/Azure/OpenStack, AWS ECS task metadata, AWS over IPv6, Alibaba, Azure
# WireServer (a public address reachable only from inside Azure).
_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(text)
    for text in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)


def _table(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    networks = parse_networks((cidr for cidr, _ in rows), setting="refused ranges")
    return tuple(zip(networks, (kind for _, kind in rows), strict=True))


# (network, "a/an <kind>") - the phrase completes "destination X is ... address".
_IPV4_REFUSED = _table(
    ("0.0.0.0/8", "an unspecified"),
    ("10.0.0.0/8", "a private"),
    ("100.64.0.0/10", "a carrier-grade NAT (100.64.0.0/10)"),
    ("127.0.0.0/8", "a loopback"),
    ("169.254.0.0/16", "a link-local"),
    ("172.16.0.0/12", "a private"),
    ("192.0.0.0/24", "a reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "a reserved (documentation)"),
    ("192.88.99.0/24", "a reserved (6to4 relay)"),
    ("192.168.0.0/16", "a private"),
    ("198.18.0.0/15", "a reserved (benchmarking)"),
    ("198.51.100.0/24", "a reserved (documentation)"),
    ("203.0.113.0/24", "a reserved (documentation)"),
    ("224.0.0.0/4", "a multicast"),
    ("240.0.0.0/4", "a reserved"),
)

_IPV6_REFUSED = _table(
    ("::/128", "an unspecified"),
    ("::1/128", "a loopback"),
    ("64:ff9b:1::/48", "a private (local-use NAT64)"),
    ("100::/64", "a reserved (discard-only)"),
    ("2001::/23", "a reserved (IETF protocol assignments)"),
    ("2001:db8::/32", "a reserved (documentation)"),
    ("3fff::/20", "a reserved (documentation)"),
    ("fc00::/7", "a private (unique local)"),
    ("fe80::/10", "a link-local"),
    ("fec0::/10", "a private (site-local)"),
    ("ff00::/8", "a multicast"),
)

# Only this block is allocated for global unicast; anything else is reserved.
_IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


def _last_32_bits(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


# IPv6 prefixes whose low 32 bits are an IPv4 destination, and how to get it.
_Extract = Callable[[ipaddress.IPv6Address], ipaddress.IPv4Address | None]
_EMBEDDING: tuple[tuple[ipaddress.IPv6Network, _Extract], ...] = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), _last_32_bits),  # IPv4-mapped
    (ipaddress.IPv6Network("::/96"), _last_32_bits),  # IPv4-compatible (deprecated)
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), _last_32_bits),  # SIIT IPv4-translated
    (ipaddress.IPv6Network("64:ff9b::/96"), _last_32_bits),  # NAT64 well-known prefix
    (ipaddress.IPv6Network("2002::/16"), lambda a: a.sixtofour),  # 6to4
)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (and is routed to), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    # :: and ::1 sit inside ::/96 but are IPv6 addresses in their own right.
    if int(address) <= 1:
        return None
    for network, extract in _EMBEDDING:
        if address in network:
            return extract(address)
    return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one address may not be reached."""

    address: IPAddress
    #: "a loopback", "a private", "a cloud metadata", ... (completes "is ... address").
    kind: str
    #: The IPv4 address inside an IPv6 one, when that is what was refused.
    embedded: ipaddress.IPv4Address | None = None

    @property
    def description(self) -> str:
        """``"a private address"``, ``"a loopback address (it carries IPv4 127.0.0.1)"``."""
        text = f"{self.kind} address"
        if self.embedded is not None:
            text += f" (it carries IPv4 {self.embedded})"
        return text

    @property
    def message(self) -> str:
        return (
            f"destination {self.address} is {self.description}; "
            f"allow it with {ALLOWED_DESTINATIONS_SETTING}"
        )


class DestinationRefused(Exception):
    """A delivery's destination is not allowed; nothing was connected.

    Deliberately not an ``OSError``: aiohttp would wrap that as a DNS failure,
    while this must stay recognisable as a refusal all the way up.
    """

    def __init__(self, message: str, *, host: str, addresses: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.addresses = tuple(addresses)


class DestinationGuard:
    """Decides which addresses and URLs deliveries may reach.

    ``allowed_networks`` (``CHATHOOKS_ALLOWED_DESTINATIONS``) open exceptions for
    anything inside them, including loopback and metadata addresses: the
    operator listed them on purpose, e.g. ``127.0.0.0/8`` for a receiver on the
    same host, or ``10.0.0.0/8`` for one on the private network.
    """

    def __init__(self, allowed_networks: Iterable[IPNetwork] = ()) -> None:
        self.allowed_networks: tuple[IPNetwork, ...] = tuple(allowed_networks)
        self._literal_cache: dict[str, str | None] = {}

    # -- addresses ------------------------------------------------------------------
    def refusal(self, address: IPAddress | str) -> Refusal | None:
        """Why ``address`` may not be reached, or None when it may."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        inner = embedded_ipv4(ip)
        if self._is_allowed(ip) or (inner is not None and self._is_allowed(inner)):
            return None
        if ip in _METADATA_ADDRESSES:
            return Refusal(ip, "a cloud metadata")
        if inner is not None:
            if inner in _METADATA_ADDRESSES:
                return Refusal(ip, "a cloud metadata", embedded=inner)
            found = _table_refusal(inner)
            return None if found is None else Refusal(ip, found, embedded=inner)
        found = _table_refusal(ip)
        return None if found is None else Refusal(ip, found)

    def is_allowed(self, address: IPAddress | str) -> bool:
        return self.refusal(address) is None

    def _is_allowed(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.allowed_networks)

    # -- URLs -----------------------------------------------------------------------
    def check_url(self, url: URL) -> str | None:
        """A refusal message for a URL that can be judged without DNS, else None.

        Catches a scheme other than http/https, a missing host, and IP-literal
        hosts (which aiohttp connects to without asking any resolver). Host
        names pass here and are checked by :class:`GuardedResolver`.
        """
        if url.scheme not in _SCHEMES:
            shown = url.scheme or "(none)"
            return f"URL scheme {shown!r} is not allowed; only http and https are"
        host = url.host
        if not host:
            return f"URL {str(url)!r} has no host"
        if host in self._literal_cache:
            return self._literal_cache[host]
        verdict = self._check_literal(host)
        if len(self._literal_cache) >= _CACHE_LIMIT:
            self._literal_cache.clear()
        self._literal_cache[host] = verdict
        return verdict

    def _check_literal(self, host: str) -> str | None:
        # The same heuristic aiohttp uses to skip its resolver: such a host must
        # be judged here, and a non-canonical form (127.1, 2130706433) refused.
        if ":" not in host and not host.replace(".", "").isdigit():
            return None
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return f"destination {host} is not a valid IP address; write it as e.g. 203.0.113.7"
        refusal = self.refusal(ip)
        return None if refusal is None else refusal.message

    def refuse_host(self, host: str, refusals: Sequence[Refusal]) -> DestinationRefused:
        """The exception for a host name all of whose addresses were refused."""
        if len(refusals) == 1:
            only = refusals[0]
            message = (
                f"destination {host} resolves to {only.address}, {only.description}; "
                f"allow it with {ALLOWED_DESTINATIONS_SETTING}"
            )
        else:
            listed = ", ".join(f"{r.address} ({r.description})" for r in refusals)
            message = (
                f"destination {host} resolves only to refused addresses: {listed}; "
                f"allow them with {ALLOWED_DESTINATIONS_SETTING}"
            )
        return DestinationRefused(message, host=host, addresses=[str(r.address) for r in refusals])


def _table_refusal(ip: IPAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv4Address):
        for network, kind in _IPV4_REFUSED:
            if ip in network:
                return kind
        return None
    for network, kind in _IPV6_REFUSED:
        if ip in network:
            return kind
    if ip not in _IPV6_GLOBAL_UNICAST:
        return "a reserved (outside IPv6 global unicast 2000::/3)"
    return None


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that returns only addresses the guard allows.

    aiohttp connects to exactly what its resolver returns, so filtering here
    means the address that was checked is the address that is connected to.
    When nothing is left, :class:`DestinationRefused` is raised before any
    connection is attempted. DNS failures pass through unchanged.
    """

    def __init__(self, guard: DestinationGuard, resolver: AbstractResolver) -> None:
        self._guard = guard
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refused: list[Refusal] = []
        for result in results:
            refusal = self._guard.refusal(result["host"])
            if refusal is None:
                allowed.append(result)
            elif refusal not in refused:
                refused.append(refusal)
        if not allowed:
            if not refused:
                raise OSError(f"DNS lookup for {host} returned no addresses")
            raise self._guard.refuse_host(host, refused)
        return allowed

    async def close(self) -> None:
        await self._resolver.close()
