"""Which addresses auxip may call on someone else's say (shared/adapters/endpoint_policy.py):
the deny list by default (loopback, link-local, private, CGNAT, ULA, unspecified, multicast,
broadcast), IPv6 carrying IPv4 (mapped, NAT64, 6to4) judged as IPv4, `localhost` names, the
allow list's exceptions (networks, or one address and port), the former setting names,
configuration errors, and the resolving check of delivery."""

from __future__ import annotations

import socket
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
from pydantic import ValidationError

from shared.adapters.endpoint_policy import (
    DEFAULT_DENIED,
    DENIED_ADDRESS,
    LOOPBACK_NAME,
    Allowance,
    EndpointPolicy,
    EndpointRefused,
    check_literal,
    resolve_and_check,
)

# The defaults, whatever AUXIP_* the process was started with.
DEFAULT = EndpointPolicy(outbound_denied_networks=DEFAULT_DENIED, outbound_allowed=())


def policy(monkeypatch: pytest.MonkeyPatch, **env: str) -> EndpointPolicy:
    """The policy a process gets from these AUXIP_* variables (and no others of ours)."""
    for name in ("AUXIP_NOTIFY_DENIED_NETWORKS", "AUXIP_NOTIFY_ALLOWED_NETWORKS",
                 "AUXIP_OUTBOUND_DENIED_NETWORKS", "AUXIP_OUTBOUND_ALLOWED_NETWORKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return EndpointPolicy()


DENIED = [
    ("http://127.0.0.1/", "127.0.0.0/8"),
    ("https://127.8.9.10:8443/hook", "127.0.0.0/8"),
    ("http://169.254.169.254/latest/meta-data", "169.254.0.0/16"),
    ("http://0.0.0.0:8080/", "0.0.0.0/8"),
    ("http://224.0.0.251/", "224.0.0.0/4"),
    ("http://255.255.255.255/", "255.255.255.255/32"),
    ("http://[::1]:8080/", "::1/128"),
    ("http://[::]/", "::/128"),
    ("http://[fe80::1]/", "fe80::/10"),
    ("http://[fe80::1%25eth0]/", "fe80::/10"),
    ("http://[ff02::1]/", "ff00::/8"),
    ("http://[::ffff:127.0.0.1]/", "127.0.0.0/8"),  # IPv4-mapped: reaches 127.0.0.1
    ("http://[::ffff:169.254.169.254]/", "169.254.0.0/16"),
    ("http://[::FFFF:7f00:2]/", "127.0.0.0/8"),
    # The forms getaddrinfo (and so httpx) reads as 127.0.0.1.
    ("http://2130706433/", "127.0.0.0/8"),
    ("http://0x7f.1/", "127.0.0.0/8"),
    ("http://127.1/", "127.0.0.0/8"),
    ("http://127\u30020\u30020\u30021/", "127.0.0.0/8"),  # full-width dots: httpx folds them
    # Private networks, and IPv6 forms that reach them or loopback.
    ("http://10.0.0.1/hook", "10.0.0.0/8"),
    ("http://172.16.0.9:8080/", "172.16.0.0/12"),
    ("http://172.31.255.254/", "172.16.0.0/12"),
    ("http://192.168.1.20/n", "192.168.0.0/16"),
    ("http://100.64.0.1/", "100.64.0.0/10"),
    ("https://[fd00::5]/n", "fc00::/7"),
    ("http://[::ffff:10.1.2.3]/", "10.0.0.0/8"),
    ("http://[64:ff9b::7f00:1]/", "127.0.0.0/8"),  # NAT64 of 127.0.0.1
    ("http://[64:ff9b::a9fe:a9fe]/", "169.254.0.0/16"),  # NAT64 of the metadata server
    ("http://[2002:a00:1::1]/", "10.0.0.0/8"),  # 6to4 of 10.0.0.1
]


@pytest.mark.parametrize(("url", "network"), DENIED, ids=[u for u, _ in DENIED])
def test_denied_literals_are_refused_naming_address_and_network(url: str, network: str) -> None:
    with pytest.raises(EndpointRefused) as refused:
        check_literal(url, DEFAULT)
    assert f"in the denied network {network}" in refused.value.reason
    assert str(refused.value) == refused.value.reason


def test_a_mapped_address_is_shown_in_its_ipv4_form() -> None:
    with pytest.raises(EndpointRefused, match=r"address ::ffff:127\.0\.0\.2 is in"):
        check_literal("http://[::ffff:127.0.0.2]/", DEFAULT)


@pytest.mark.parametrize("url", ["http://localhost/", "http://LOCALHOST:1/x",
                                 "http://localhost./", "https://api.localhost/hook",
                                 "http://a.b.LocalHost:80/"])
def test_localhost_names_are_refused_without_resolving(url: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _no_dns)
    with pytest.raises(EndpointRefused, match="loopback name"):
        check_literal(url, DEFAULT)


@pytest.mark.parametrize("url", [
    "http://8.8.8.8/", "https://subscriber.example.org/auxip", "http://localhostish.org/",
    "http://no-such-host.invalid/", "http://169.253.1.1/", "http://223.255.255.255/",
    "http://172.32.0.1/", "http://100.128.0.1/", "http://[2001:db8::1]/",
    "http://[64:ff9b::808:808]/",
])
def test_public_addresses_and_names_pass_creation(url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _numeric_only(socket.getaddrinfo))
    check_literal(url, DEFAULT)  # names are judged at delivery, not here


def test_the_refusal_carries_a_stable_code_and_the_address() -> None:
    with pytest.raises(EndpointRefused) as refused:
        check_literal("http://[::ffff:169.254.169.254]/", DEFAULT)
    assert refused.value.code == DENIED_ADDRESS == "outbound_address_denied"
    assert refused.value.address == "::ffff:169.254.169.254"
    with pytest.raises(EndpointRefused) as refused:
        check_literal("http://localhost/", DEFAULT)
    assert refused.value.code == LOOPBACK_NAME == "outbound_loopback_name"


@pytest.mark.parametrize("name", ["AUXIP_OUTBOUND_ALLOWED_NETWORKS",
                                  "AUXIP_NOTIFY_ALLOWED_NETWORKS"])
def test_the_allow_list_exempts_from_the_deny_list(name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    allowing = policy(monkeypatch, **{name: " 127.0.0.1/32 , fe80::/64,"})
    assert allowing.outbound_allowed == (Allowance(ip_network("127.0.0.1/32")),
                                         Allowance(ip_network("fe80::/64")))
    assert allowing.outbound_denied_networks == DEFAULT.outbound_denied_networks
    check_literal("http://127.0.0.1:9/x", allowing)
    check_literal("http://[::ffff:127.0.0.1]/", allowing)  # the same address
    check_literal("http://[fe80::7]/", allowing)
    with pytest.raises(EndpointRefused, match="127.0.0.2 is in the denied network"):
        check_literal("http://127.0.0.2:9/x", allowing)
    with pytest.raises(EndpointRefused, match="169.254.169.254"):
        check_literal("http://169.254.169.254/", allowing)
    with pytest.raises(EndpointRefused, match="loopback name"):
        check_literal("http://localhost/", allowing)  # a name: which address is unknown


def test_the_new_names_win_over_the_former(monkeypatch: pytest.MonkeyPatch) -> None:
    both = policy(monkeypatch, AUXIP_NOTIFY_ALLOWED_NETWORKS="10.0.0.0/8",
                  AUXIP_OUTBOUND_ALLOWED_NETWORKS="192.168.0.0/16")
    check_literal("http://192.168.1.1/", both)
    with pytest.raises(EndpointRefused, match="10.0.0.0/8"):
        check_literal("http://10.1.1.1/", both)  # not read: the new name is set
    former = policy(monkeypatch, AUXIP_NOTIFY_DENIED_NETWORKS="8.8.8.0/24")
    with pytest.raises(EndpointRefused, match="8.8.8.0/24"):
        check_literal("http://8.8.8.8/", former)  # the former name, alone, is read
    check_literal("http://10.1.1.1/", former)


def test_an_allowance_may_name_one_address_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    one = policy(monkeypatch, AUXIP_OUTBOUND_ALLOWED_NETWORKS="127.0.0.1:8080, [::1]:9443")
    check_literal("http://127.0.0.1:8080/hook", one)
    check_literal("https://[::1]:9443/hook", one)
    check_literal("http://[::ffff:127.0.0.1]:8080/", one)
    for other in ("http://127.0.0.1:8081/", "http://127.0.0.1/", "https://[::1]/",
                  "http://127.0.0.2:8080/"):
        with pytest.raises(EndpointRefused):
            check_literal(other, one)


def test_the_deny_list_can_be_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    strict = policy(monkeypatch, AUXIP_NOTIFY_DENIED_NETWORKS="10.0.0.0/8,127.0.0.0/8")
    with pytest.raises(EndpointRefused, match="10.0.0.0/8"):
        check_literal("http://10.1.2.3/hook", strict)
    with pytest.raises(EndpointRefused, match="10.0.0.0/8"):
        check_literal("http://[::ffff:10.1.2.3]/hook", strict)
    check_literal("http://169.254.169.254/", strict)  # the operator's choice


@pytest.mark.parametrize("value", ["nope", "10.1.2.3/8", "10.0.0.0/33", "::1/129",
                                   "127.0.0.0/8;10.0.0.0/8", "[\"127.0.0.0/8\"]",
                                   "127.0.0.1:0", "127.0.0.1:65536", "host.example:80"])
@pytest.mark.parametrize("name", ["AUXIP_NOTIFY_DENIED_NETWORKS",
                                  "AUXIP_NOTIFY_ALLOWED_NETWORKS",
                                  "AUXIP_OUTBOUND_DENIED_NETWORKS",
                                  "AUXIP_OUTBOUND_ALLOWED_NETWORKS"])
def test_an_invalid_cidr_stops_the_start(name: str, value: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as invalid:
        policy(monkeypatch, **{name: value})
    text = str(invalid.value)
    # Named by the setting's current name, whichever name it was given under.
    assert name.replace("_NOTIFY_", "_OUTBOUND_") in text and "is not a CIDR network" in text


def test_delivery_refuses_a_name_resolving_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EndpointRefused, match="127.0.0.1 is in the denied network 127.0.0.0/8"):
        resolve_and_check("http://localhost:8080/hook", DEFAULT)
    allowing = policy(monkeypatch, AUXIP_NOTIFY_ALLOWED_NETWORKS="127.0.0.0/8,::1/128")
    found = resolve_and_check("http://localhost:8080/hook", allowing)
    assert ip_address("127.0.0.1") in found or ip_address("::1") in found


def test_delivery_refuses_when_any_address_is_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _answers({
        "mixed.example.org": ["93.184.216.34", "169.254.169.254"],
        "public.example.org": ["93.184.216.34", "2606:2800:220:1::1"],
        "mapped.example.org": ["::ffff:127.0.0.1"],
        "private.example.org": ["10.1.2.3"],
    }))
    with pytest.raises(EndpointRefused, match="169.254.169.254"):
        resolve_and_check("http://mixed.example.org/n", DEFAULT)
    with pytest.raises(EndpointRefused, match="::ffff:127.0.0.1"):
        resolve_and_check("http://mapped.example.org/n", DEFAULT)
    assert resolve_and_check("https://public.example.org/n", DEFAULT) == [
        ip_address("93.184.216.34"), ip_address("2606:2800:220:1::1")]
    with pytest.raises(EndpointRefused, match="10.1.2.3 is in the denied network 10.0.0.0/8"):
        resolve_and_check("http://private.example.org/n", DEFAULT)


def test_delivery_judges_literals_too() -> None:
    with pytest.raises(EndpointRefused, match="127.0.0.0/8"):
        resolve_and_check("http://2130706433:9/", DEFAULT)
    assert resolve_and_check("http://8.8.8.8/hook", DEFAULT) == [ip_address("8.8.8.8")]


def test_a_name_that_does_not_resolve_is_not_a_refusal() -> None:
    # The retries handle it, as for any endpoint that cannot be reached.
    with pytest.raises(OSError) as failed:
        resolve_and_check("http://no-such-host.invalid/hook", DEFAULT)
    assert not isinstance(failed.value, EndpointRefused)


def _no_dns(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("check_literal must not resolve names")


def _numeric_only(real: Any) -> Any:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("flags", 0) & socket.AI_NUMERICHOST:
            raise AssertionError(f"check_literal resolved {host!r}")
        return real(host, port, *args, **kwargs)
    return getaddrinfo


def _answers(table: dict[str, list[str]]) -> Any:
    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, 0, 0, 0) if ":" in a else (a, 0)) for a in table[host]]
    return getaddrinfo
