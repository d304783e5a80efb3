"""Which URLs the hub may send to: the SSRF guard for partner endpoints.

A partner names an HTTPS endpoint; the hub must never be made to call into its own
network instead (the instance metadata service, a VPC-internal admin page, loopback).
`check_endpoint` parses the URL, resolves its host and checks every address it
resolves to; the caller then connects to one of those checked addresses (never
resolving again, which a DNS-rebinding host would answer differently), sending the
original host name for TLS and the Host header. It runs when a subscription is saved
and again before every send.

Outside the local runtime an address must be global unicast: loopback, private
(RFC 1918, unique-local fc00::/7), link-local (169.254.0.0/16 with the metadata
service 169.254.169.254, fe80::/10), carrier-grade NAT (100.64.0.0/10), multicast,
reserved, unspecified and documentation ranges are refused, and so are IPv6 forms that
embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16),
judged by the IPv4 address inside. The local runtime is the opposite: a partner tests on
one machine, so there only loopback is allowed (plain http included).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from switchboard_core.errors import HubError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

NAT64 = ipaddress.ip_network("64:ff9b::/96")
# IANA special-purpose ranges that Python 3.11's `is_global` still calls global (newer
# Pythons, Lambda's 3.14 among them, do not): refused here so every runtime judges alike.
SPECIAL_PURPOSE = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("192.88.99.0/24"),  # the deprecated 6to4 relay anycast
    ipaddress.ip_network("3fff::/20"),  # IPv6 documentation (RFC 9637)
)
MAX_URL_CHARS = 2048


class EndpointRefused(HubError):
    status = 400
    code = "endpoint_refused"

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(
            f"the endpoint {url[:200]!r} is refused: {problem}",
            details={"problems": [{"field": "url", "problem": problem}]},
        )


@dataclass(frozen=True)
class CheckedEndpoint:
    url: str
    scheme: str
    host: str  # as written, for TLS (SNI, certificate) and the Host header
    port: int
    addresses: tuple[str, ...]  # what the host resolved to, every one checked: connect to these only


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64 or 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_problem(address: IpAddress, *, local: bool) -> str | None:
    """Why the hub may not connect to `address` (None when it may)."""
    inner = embedded_ipv4(address)
    judged = inner if inner is not None else address
    if local:
        return (
            None
            if judged.is_loopback
            else f"{address} is not a loopback address (the local runtime sends only to this machine)"
        )
    if judged.is_loopback:
        return f"{address} is a loopback address"
    if judged.is_link_local:
        return f"{address} is link-local (the instance metadata service lives there)"
    if judged.is_multicast or judged.is_unspecified or judged.is_reserved:
        return f"{address} is not a unicast address"
    if not judged.is_global or any(
        judged in network for network in SPECIAL_PURPOSE if network.version == judged.version
    ):
        return f"{address} is not a public address (private, carrier-grade NAT, documentation or special-purpose)"
    return None


def check_endpoint(url: str, *, local: bool, resolve: Resolver = resolve_host) -> CheckedEndpoint:
    """`url` parsed and its host resolved, every address checked; EndpointRefused otherwise."""
    if len(url) > MAX_URL_CHARS:
        raise EndpointRefused(url, f"is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointRefused(url, f"is not a URL ({exc})") from None
    allowed_schemes = ("https", "http") if local else ("https",)
    if parts.scheme not in allowed_schemes:
        raise EndpointRefused(url, f"the scheme must be {' or '.join(allowed_schemes)}")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused(url, "credentials in the URL are not accepted (use the signature to authenticate)")
    host = parts.hostname
    if not host:
        raise EndpointRefused(url, "has no host")
    if parts.fragment:
        raise EndpointRefused(url, "has a fragment, which is never sent")
    port = port or (443 if parts.scheme == "https" else 80)
    literal = True
    try:
        addresses = [str(ipaddress.ip_address(host))]  # a literal address: nothing to resolve
    except ValueError:
        literal = False
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise EndpointRefused(url, f"its host {host!r} does not resolve ({exc})") from None
    if not addresses:
        raise EndpointRefused(url, f"its host {host!r} resolves to no address")
    for raw in addresses:
        problem = address_problem(ipaddress.ip_address(raw.split("%", 1)[0]), local=local)
        if problem:
            where = "" if literal else f"its host {host!r} resolves to an address the hub may not call: "
            raise EndpointRefused(url, where + problem)
    return CheckedEndpoint(url=url, scheme=parts.scheme, host=host, port=port, addresses=tuple(addresses))
