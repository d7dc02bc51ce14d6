"""Which addresses notify may POST to: a subscriber chooses its NotificationEndpoint, so
without a policy it could make notify call the stack's own ports, loopback services or
the cloud metadata server (blind SSRF).

- AUXIP_NOTIFY_DENIED_NETWORKS (loopback, link-local, unspecified, multicast, broadcast):
  comma-separated CIDRs notify never calls.
- AUXIP_NOTIFY_ALLOWED_NETWORKS (none): CIDRs exempt from the deny list, an operator's
  exception (the tests' loopback receivers).

Private ranges (10/8, 172.16/12, 192.168/16) are not denied by default: ground-segment
subscribers legitimately sit there. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`)
reaches its IPv4 address, so it is judged as both.

Two checks: `check_literal` when a subscription is created (IP literals and `localhost`
names only; a name may not resolve yet), `resolve_and_check` before each delivery. The
second leaves a window (DNS rebinding): httpx resolves the name again when it connects,
and a hostile DNS server may answer differently then. Closing it needs a transport that
connects to the checked address; not done.
"""

from __future__ import annotations

import socket
from functools import cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Annotated
from urllib.parse import urlsplit

import httpx
from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Networks = Annotated[tuple[Network, ...], NoDecode]  # NoDecode: a CIDR list, not JSON

DEFAULT_DENIED: tuple[Network, ...] = tuple(ip_network(cidr) for cidr in (
    "127.0.0.0/8", "::1/128",  # loopback
    "169.254.0.0/16", "fe80::/10",  # link-local, where cloud metadata servers answer
    "0.0.0.0/8", "::/128",  # unspecified: 0.0.0.0 reaches the local host on Linux
    "224.0.0.0/4", "ff00::/8",  # multicast
    "255.255.255.255/32",  # broadcast
))


class EndpointRefused(Exception):
    """The endpoint's address is one notify must not call."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EndpointPolicy(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore")

    notify_denied_networks: Networks = DEFAULT_DENIED
    notify_allowed_networks: Networks = ()

    @field_validator("notify_denied_networks", "notify_allowed_networks", mode="before")
    @classmethod
    def _cidrs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        networks = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                # strict: `10.1.2.3/8` is more likely a typo than a meant 10.0.0.0/8
                networks.append(ip_network(item))
            except ValueError as error:
                raise ValueError(f"{item!r} is not a CIDR network: {error}") from None
        return tuple(networks)


@cache
def current() -> EndpointPolicy:
    """The process-wide policy, from the environment (read once)."""
    return EndpointPolicy()


def check_literal(url: str, policy: EndpointPolicy) -> None:
    """For creation: refuse an endpoint whose host is an IP literal in a denied network, or
    a `localhost` name. Resolves nothing: other names are judged at delivery."""
    host = _host(url)
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        raise EndpointRefused(f"host {name} is a loopback name")
    address = _literal(host)
    if address is not None:
        _judge(address, policy)


def resolve_and_check(url: str, policy: EndpointPolicy) -> list[Address]:
    """For delivery: the addresses the endpoint's host resolves to, refused when any is
    denied and not allowed (httpx may connect to any of them). A name that does not resolve
    raises OSError (socket.gaierror), not EndpointRefused: that is an endpoint failure
    like any other, for the retries."""
    host = _host(url)
    found = []
    for *_, sockaddr in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM):
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    for address in found:
        _judge(address, policy)
    return found


def _host(url: str) -> str:
    """The host as httpx connects to it: IDNA-encoded, full-width dots folded (httpx turns
    `127。0。0。1` into 127.0.0.1, which urlsplit leaves alone), brackets off."""
    try:
        return httpx.URL(url).raw_host.decode("ascii")
    except (httpx.InvalidURL, ValueError):
        return urlsplit(url).hostname or ""  # httpx cannot use it: nothing to connect to


def _literal(host: str) -> Address | None:
    """The address an IP literal names, in every form the resolver accepts (`2130706433`,
    `0x7f.1`, `127.1` are 127.0.0.1 to getaddrinfo); None for a name."""
    try:
        return ip_address(host.split("%", 1)[0])  # an IPv6 zone does not change the address
    except ValueError:
        pass
    try:
        # AI_NUMERICHOST: parsed the way the resolver would, never a DNS query.
        info = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM,
                                  flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    return ip_address(str(info[0][4][0]).split("%", 1)[0])


def _judge(address: Address, policy: EndpointPolicy) -> None:
    forms: list[Address] = [address]
    shown = str(address)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        forms.append(address.ipv4_mapped)
        shown = f"::ffff:{address.ipv4_mapped}"  # str() would say ::ffff:7f00:1
    denied = next((net for net in policy.notify_denied_networks
                   for form in forms if form in net), None)
    if denied is None:
        return
    if any(form in net for net in policy.notify_allowed_networks for form in forms):
        return
    raise EndpointRefused(f"address {shown} is in the denied network {denied}")
