"""Source-address allow-lists, with ``X-Forwarded-For`` from trusted proxies only.

Olark publishes the ranges it sends from, so an endpoint can refuse everyone
else. Behind a reverse proxy the TCP peer is the proxy, and the real client is
in ``X-Forwarded-For``; but anybody can send that header, so it is believed
only when the peer is a configured trusted proxy, and the chain is walked from
the right (the entries a trusted proxy appended) skipping trusted proxies, so a
client cannot pick its own address by prepending entries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from chathooks.errors import FieldError

__all__ = [
    "ForbiddenSource",
    "IPAddress",
    "IPNetwork",
    "SourceFilter",
    "parse_address",
    "parse_networks",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ForbiddenSource(FieldError, PermissionError):
    """The request's source address is not in the allow-list (HTTP 403)."""

    code = "forbidden_source"
    status_code = 403

    def __init__(self, address: str | None, message: str, *, field: str = "remote_addr") -> None:
        # ``field`` is ``remote_addr`` or ``x-forwarded-for``: where the address came from.
        super().__init__(message, field=field)
        #: The client address as determined (or as received, when it did not parse).
        self.address = address


def parse_networks(
    cidrs: str | Iterable[str] | None, *, setting: str = "allow_cidrs"
) -> tuple[IPNetwork, ...]:
    """CIDR strings as networks; a bare address is a one-address network.

    The one parser of networks in chathooks: the receiver's allow-lists, the
    service's ``CHATHOOKS_ALLOWED_DESTINATIONS`` and its egress ranges. A
    string is a comma-separated list (``"10.0.0.0/8, ::1"``, as environment
    variables give it); blank entries are skipped and None is no network.
    Host bits are allowed (``10.0.0.7/8`` means ``10.0.0.0/8``) because that is
    how people paste ranges; anything unparseable raises :class:`ValueError`
    naming the setting, so a typo fails at start-up.
    """
    if cidrs is None:
        return ()
    if isinstance(cidrs, str):
        cidrs = cidrs.split(",")
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        text = str(cidr).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"{setting}: {text!r} is not an IP network; write e.g. '203.0.113.0/24', "
                "'2001:db8::/32' or a single address"
            ) from exc
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """An address as it appears in ``REMOTE_ADDR`` or ``X-Forwarded-For``, or None.

    Accepts ``[v6]``, ``[v6]:port`` and ``v4:port`` (some proxies add ports)
    and zone ids; ``unknown`` and other junk give None.
    """
    value = text.strip().strip('"')
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return None
        value = value[1:end]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    value = value.split("%", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _candidates(address: IPAddress) -> tuple[IPAddress, ...]:
    """The address, plus its IPv4 form when it is IPv4-mapped (``::ffff:a.b.c.d``).

    A dual-stack socket reports IPv4 clients as mapped IPv6; matching both forms
    lets an allow-list written in IPv4 apply to them.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return (address, address.ipv4_mapped)
    return (address,)


def _in_any(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(
        candidate.version == network.version and candidate in network
        for candidate in _candidates(address)
        for network in networks
    )


class SourceFilter:
    """Decides the client address of a request and whether it may post.

    ``allow`` lists the networks that may post; ``trusted_proxies`` lists the
    peers whose ``X-Forwarded-For`` is believed. With no trusted proxies the
    header is ignored entirely.
    """

    def __init__(self, allow: Iterable[str], *, trusted_proxies: Iterable[str] = ()) -> None:
        self.allow = parse_networks(allow, setting="allow_cidrs")
        if not self.allow:
            raise ValueError(
                "allow_cidrs is empty, which would refuse every request; "
                "list the sender's networks, or pass None to turn the check off"
            )
        self.trusted_proxies = parse_networks(trusted_proxies, setting="trusted_proxies")

    def is_trusted_proxy(self, address: IPAddress) -> bool:
        return _in_any(address, self.trusted_proxies)

    def client_address(
        self, remote_addr: str | None, forwarded_for: str | Sequence[str] | None = None
    ) -> tuple[IPAddress, str]:
        """The client address and where it came from (``remote_addr`` or ``x-forwarded-for``).

        Raises :class:`ForbiddenSource` when the address cannot be determined:
        an unknown peer, or junk in a chain that a trusted proxy vouched for.
        """
        peer = parse_address(remote_addr) if remote_addr else None
        if peer is None:
            raise ForbiddenSource(
                remote_addr,
                f"the peer address {remote_addr!r} is not an IP address, so it cannot be "
                "checked against the allow-list",
            )
        if not self.is_trusted_proxy(peer):
            return peer, "remote_addr"
        entries = _forwarded_entries(forwarded_for)
        client = peer
        for entry in reversed(entries):
            hop = parse_address(entry)
            if hop is None:
                raise ForbiddenSource(
                    entry,
                    f"X-Forwarded-For holds {entry!r}, which is not an IP address, where the "
                    "client address was expected",
                    field="x-forwarded-for",
                )
            client = hop
            if not self.is_trusted_proxy(hop):
                break
        return client, "x-forwarded-for" if entries else "remote_addr"

    def check(
        self, remote_addr: str | None, forwarded_for: str | Sequence[str] | None = None
    ) -> IPAddress:
        """The client address if it is allowed; otherwise :class:`ForbiddenSource`."""
        client, source = self.client_address(remote_addr, forwarded_for)
        if _in_any(client, self.allow):
            return client
        message = f"source address {client} is not in the allowed networks (allow_cidrs)"
        if source == "remote_addr" and _forwarded_entries(forwarded_for):
            message += (
                f"; X-Forwarded-For was ignored because the peer {client} is not a trusted "
                "proxy: if it is your reverse proxy, add it to trusted_proxies"
            )
        raise ForbiddenSource(str(client), message, field=source)


def _forwarded_entries(forwarded_for: str | Sequence[str] | None) -> list[str]:
    """The hops of one or more ``X-Forwarded-For`` values, left to right."""
    if not forwarded_for:
        return []
    values = [forwarded_for] if isinstance(forwarded_for, str) else list(forwarded_for)
    return [hop.strip() for value in values for hop in value.split(",") if hop.strip()]
