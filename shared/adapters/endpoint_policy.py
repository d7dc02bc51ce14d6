"""Which addresses auxip may connect to on someone else's say: a subscriber chooses its
NotificationEndpoint, an operator's routing file names HTTP, S3 and SFTP targets; without
a policy they could make auxip call the stack's own ports, loopback services, the private
network behind it or the cloud metadata server (SSRF).

- AUXIP_OUTBOUND_DENIED_NETWORKS (loopback, link-local, private 10/8, 172.16/12,
  192.168/16, 100.64/10 (CGNAT), fc00::/7 (ULA), fec0::/10, unspecified, multicast,
  broadcast): comma-separated CIDRs never called. AUXIP_NOTIFY_DENIED_NETWORKS, its former
  name, is read when it is unset.
- AUXIP_OUTBOUND_ALLOWED_NETWORKS (none): exceptions to the deny list, each a CIDR
  (`10.20.0.0/16`) or one address and port (`127.0.0.1:8080`, `[::1]:8080`). The local
  stack and the tests allow their loopback receivers; a ground segment whose subscribers
  sit on a private network allows that network. AUXIP_NOTIFY_ALLOWED_NETWORKS, its former
  name, is read when it is unset.

An IPv6 address carrying an IPv4 one (mapped `::ffff:127.0.0.1`, NAT64 `64:ff9b::/96`,
6to4 `2002::/16`, Teredo) is judged as that IPv4 address too.

Three checks: `check_literal` when an endpoint or target is created (IP literals and
`localhost` names only: a name may not resolve yet), `resolve_host` before a transfer whose
client resolves the name itself (the routing S3 target), and `connect_judged`
(outbound_http.py: notify and the routing HTTP target; the routing SFTP target) which
resolves, judges and connects to the judged address itself, so that no second resolution
(DNS rebinding) can slip another address in. A refusal is EndpointRefused, with a stable
`code` for callers' records and security events.
"""

from __future__ import annotations

import socket
from functools import cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Annotated, NamedTuple
from urllib.parse import urlsplit

import httpx
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Networks = Annotated[tuple[Network, ...], NoDecode]  # NoDecode: a CIDR list, not JSON

DEFAULT_DENIED: tuple[Network, ...] = tuple(ip_network(cidr) for cidr in (
    "127.0.0.0/8", "::1/128",  # loopback
    "169.254.0.0/16", "fe80::/10",  # link-local, where cloud metadata servers answer
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # private (RFC 1918)
    "100.64.0.0/10",  # carrier-grade NAT, a cloud's internal range at times
    "fc00::/7", "fec0::/10",  # unique local, site-local (deprecated, still routed at times)
    "0.0.0.0/8", "::/128",  # unspecified: 0.0.0.0 reaches the local host on Linux
    "224.0.0.0/4", "ff00::/8",  # multicast
    "255.255.255.255/32",  # broadcast
))
_NAT64 = ip_network("64:ff9b::/96")

# EndpointRefused.code: stable, for records, metrics and security events.
DENIED_ADDRESS = "outbound_address_denied"
LOOPBACK_NAME = "outbound_loopback_name"


class EndpointRefused(Exception):
    """The endpoint's address is one auxip must not call (`code`: why, stable)."""

    def __init__(self, reason: str, code: str = DENIED_ADDRESS, host: str | None = None,
                 address: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.host = host
        self.address = address


class Allowance(NamedTuple):
    """An exception to the deny list: a network, or one address on one port."""

    network: Network
    port: int | None = None


def _allowance(item: str) -> Allowance:
    """`CIDR`, `address:port` or `[IPv6]:port`."""
    if item.startswith("[") and "]:" in item:
        address, _, port = item[1:].partition("]:")
    elif item.count(":") == 1:
        address, _, port = item.partition(":")
    else:
        try:
            return Allowance(ip_network(item))
        except ValueError as error:
            raise ValueError(f"{item!r} is not a CIDR network or address:port: {error}"
                             ) from None
    try:
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError("port out of 1-65535")
        return Allowance(ip_network(ip_address(address)), number)
    except ValueError as error:
        raise ValueError(f"{item!r} is not a CIDR network or address:port: {error}") from None


class EndpointPolicy(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUXIP_", extra="ignore",
                                      populate_by_name=True)

    outbound_denied_networks: Networks = Field(DEFAULT_DENIED, validation_alias=AliasChoices(
        "AUXIP_OUTBOUND_DENIED_NETWORKS", "AUXIP_NOTIFY_DENIED_NETWORKS"))
    outbound_allowed: Annotated[tuple[Allowance, ...], NoDecode] = Field(
        (), validation_alias=AliasChoices("AUXIP_OUTBOUND_ALLOWED_NETWORKS",
                                          "AUXIP_NOTIFY_ALLOWED_NETWORKS"))

    @field_validator("outbound_denied_networks", mode="before")
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

    @field_validator("outbound_allowed", mode="before")
    @classmethod
    def _allowances(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return tuple(_allowance(item) for item in (p.strip() for p in value.split(","))
                     if item)


@cache
def current() -> EndpointPolicy:
    """The process-wide policy, from the environment (read once)."""
    return EndpointPolicy()


def check_literal(url: str, policy: EndpointPolicy) -> None:
    """For creation: refuse an endpoint whose host is an IP literal in a denied network, or
    a `localhost` name. Resolves nothing: other names are judged at delivery."""
    check_literal_host(_host(url), _port(url), policy)


def check_literal_host(host: str, port: int | None, policy: EndpointPolicy) -> None:
    """check_literal for a host and port (an SFTP target has no URL)."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        raise EndpointRefused(f"host {name} is a loopback name", LOOPBACK_NAME, host=host)
    address = _literal(host)
    if address is not None:
        judge(address, port, policy, host=host)


def resolve_and_check(url: str, policy: EndpointPolicy) -> list[Address]:
    """For delivery: the addresses the endpoint's host resolves to, refused when any is
    denied and not allowed (a client may connect to any of them). A name that does not
    resolve raises OSError (socket.gaierror), not EndpointRefused: that is an endpoint
    failure like any other, for the retries."""
    return resolve_host(_host(url), _port(url), policy)


def resolve_host(host: str, port: int | None, policy: EndpointPolicy) -> list[Address]:
    """resolve_and_check for a host and port."""
    found: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    for address in found:
        judge(address, port, policy, host=host)
    return found


def _port(url: str) -> int | None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return None
    return parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)


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


def carried_ipv4(address: Address) -> list[IPv4Address]:
    """The IPv4 addresses an IPv6 address reaches or carries: IPv4-mapped, NAT64
    (64:ff9b::/96), 6to4 (2002::/16), Teredo's client."""
    if not isinstance(address, IPv6Address):
        return []
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in _NAT64:
        found.append(IPv4Address(address.packed[-4:]))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.append(address.teredo[1])
    return found


def judge(address: Address, port: int | None, policy: EndpointPolicy, *,
          host: str | None = None) -> None:
    """Refuse `address` (on `port`) when it, or an IPv4 address it carries, is in a denied
    network and no allowance covers it."""
    forms: list[Address] = [address, *carried_ipv4(address)]
    shown = str(address)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        shown = f"::ffff:{address.ipv4_mapped}"  # str() would say ::ffff:7f00:1
    denied = next((net for net in policy.outbound_denied_networks
                   for form in forms if form in net), None)
    if denied is None:
        return
    if any(form in allowed.network and (allowed.port is None or allowed.port == port)
           for allowed in policy.outbound_allowed for form in forms):
        return
    raise EndpointRefused(f"address {shown} is in the denied network {denied}", DENIED_ADDRESS,
                          host=host, address=shown)


def connect_judged(host: str, port: int, policy: EndpointPolicy,
                   timeout: float | None) -> socket.socket:
    """A TCP connection to `host`, made to an address this policy judged: resolved once,
    every address judged (EndpointRefused when any is denied), then connected to those very
    addresses in turn, so a second DNS answer (rebinding) never reaches the socket. OSError
    when none answers or the name does not resolve."""
    addresses = resolve_host(host, port, policy)
    failure: OSError = OSError(f"{host} resolves to no address")
    for address in addresses:
        try:
            return socket.create_connection((str(address), port), timeout)
        except OSError as error:
            failure = error
    raise failure
