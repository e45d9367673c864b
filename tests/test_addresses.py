"""Tests for aggregator.fetch.addresses: the SSRF rules, as pure functions (no sockets, no DNS), and
the host the HTTP client will use (transport.request_url), for every spelling of an address."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aggregator.errors import BlockedAddressError
from aggregator.fetch.addresses import (
    CONFIGURED,
    FOUND,
    OPEN,
    AddressRule,
    Provenance,
    blocked_reason,
    host_reason,
    numeric_ipv4,
    rule_for,
    same_origin,
)
from aggregator.fetch.transport import request_url

NON_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "private"),
    ("::", "unspecified"),
    ("100.64.0.1", "not a public"),
    ("224.0.0.1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
    ("::ffff:10.0.0.1", "private"),
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("2002:0a00:0001::1", "private"),  # 6to4 of 10.0.0.1
]
LINK_LOCAL = [
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("::ffff:169.254.169.254", "metadata"),
]
PUBLIC = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8", "1.1.1.1"]


@pytest.mark.parametrize(("address", "kind"), NON_PUBLIC + LINK_LOCAL)
def test_found_urls_reach_no_private_address(address: str, kind: str) -> None:
    reason = blocked_reason(address, FOUND)
    assert reason is not None and kind in reason


@pytest.mark.parametrize(("address", "kind"), LINK_LOCAL)
def test_configured_urls_never_reach_link_local_or_metadata(address: str, kind: str) -> None:
    reason = blocked_reason(address, CONFIGURED)
    assert reason is not None and kind in reason


@pytest.mark.parametrize(("address", "kind"), NON_PUBLIC)
def test_configured_urls_may_reach_private_networks(address: str, kind: str) -> None:
    assert blocked_reason(address, CONFIGURED) is None


@pytest.mark.parametrize("address", [a for a, _ in NON_PUBLIC + LINK_LOCAL] + PUBLIC)
def test_allow_private_networks_allows_everything(address: str) -> None:
    assert blocked_reason(address, OPEN) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed_to_all(address: str) -> None:
    assert blocked_reason(address, FOUND) is None
    assert blocked_reason(address, CONFIGURED) is None


def test_a_name_is_not_an_address() -> None:
    assert "not an IP address" in (blocked_reason("localhost", OPEN) or "")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://Example.org/feed", "http://example.org:80/other", True),
        ("https://example.org/", "https://example.org:443/x", True),
        ("http://example.org/", "https://example.org/", False),
        ("http://example.org:8080/", "http://example.org/", False),
        ("http://example.org/", "http://www.example.org/", False),
        ("http://127.0.0.1:8000/a", "http://127.0.0.1:8001/a", False),
        ("http://[::1", "http://[::1]/", False),
        ("file:///a/b", "file:///a/c", False),
    ],
)
def test_same_origin(a: str, b: str, same: bool) -> None:
    assert same_origin(a, b) is same


def test_rule_for_each_provenance() -> None:
    source = "http://127.0.0.1:8000/feed.xml"
    assert rule_for(source, Provenance.config(source), allow_private_networks=False) is CONFIGURED
    found = Provenance.found_in(source)
    assert rule_for("http://127.0.0.1:8000/c/1", found, allow_private_networks=False) is CONFIGURED
    assert rule_for("http://127.0.0.1:9000/c/1", found, allow_private_networks=False) is FOUND
    assert rule_for("http://example.org/c/1", found, allow_private_networks=False) is FOUND
    assert rule_for("http://example.org/c/1", found, allow_private_networks=True) is OPEN


# -- spellings of an IP address (issue 12) ----------------------------------------------------
# Every way to write an IPv4 address that some layer under us reads as that address: the
# numeric forms of inet_aton, and characters IDNA (UTS #46) maps onto ASCII digits and dots.
# Whatever the spelling, the host the HTTP client ends up with must be judged as the address,
# or refused.

_DOTS = [".", "\u3002", "\uff0e", "\uff61"]


def _digit_variants(d: int) -> list[str]:
    variants = [str(d), chr(0xFF10 + d), chr(0x2080 + d), chr(0x1D7CE + d)]  # fullwidth, sub, bold
    variants.append("\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"[d])  # super
    variants.append("\u24ea" if d == 0 else chr(0x2460 + d - 1))  # circled
    return variants


@st.composite
def unicode_spellings(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """``address`` as a dotted quad, each digit and dot in a character IDNA maps to ASCII."""
    octets = []
    for octet in str(address).split("."):
        octets.append("".join(draw(st.sampled_from(_digit_variants(int(c)))) for c in octet))
    host = octets[0]
    for octet in octets[1:]:
        host += draw(st.sampled_from(_DOTS)) + octet
    return host


@st.composite
def numeric_spellings(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """``address`` in one of the forms inet_aton accepts: 1 to 4 parts, each decimal, octal
    or hex, the last part filling the remaining bytes; perhaps with a trailing dot."""
    value = int(address)
    parts = draw(st.integers(1, 4))
    octets = [(value >> (8 * (3 - i))) & 0xFF for i in range(parts - 1)]
    last = value & ((1 << (8 * (4 - (parts - 1)))) - 1)
    numbers = [*octets, last]
    written = []
    for number in numbers:
        form = draw(st.sampled_from(["dec", "oct", "hex", "HEX"]))
        written.append(
            {
                "dec": str(number),
                "oct": f"0{number:o}",
                "hex": f"0x{number:x}",
                "HEX": f"0X{number:X}",
            }[form]
        )
    host = ".".join(written) + draw(st.sampled_from(["", "."]))
    assume(host != str(address))  # the standard form itself is judged normally
    return host


non_public_v4 = st.one_of(
    st.ip_addresses(v=4, network="127.0.0.0/8"),
    st.ip_addresses(v=4, network="10.0.0.0/8"),
    st.ip_addresses(v=4, network="192.168.0.0/16"),
    st.ip_addresses(v=4, network="172.16.0.0/12"),
    st.ip_addresses(v=4, network="169.254.0.0/16"),
    st.ip_addresses(v=4, network="0.0.0.0/8"),
    st.just(ipaddress.IPv4Address("169.254.169.254")),
)
any_v4 = st.ip_addresses(v=4)


def _judge(host: str, rule: AddressRule) -> str | None:
    """What the fetcher decides for a URL with ``host``: the refusal, or None when allowed."""
    url = f"http://{host}:8080/feed"
    try:
        request_url(url, urlsplit(url).hostname or "", rule)
    except BlockedAddressError as error:
        return str(error)
    except ValueError as error:  # yarl cannot read it: never requested either
        return f"invalid: {error}"
    return None


@given(st.data())
@settings(max_examples=300)
def test_unicode_spellings_never_reach_a_non_public_address(data: st.DataObject) -> None:
    address = data.draw(non_public_v4)
    host = data.draw(unicode_spellings(address))
    for rule in (FOUND, CONFIGURED, OPEN):
        reason = _judge(host, rule)
        if host.isascii():  # every character drawn was ASCII: the standard form
            assert (reason is None) == (blocked_reason(str(address), rule) is None)
        else:
            assert reason is not None and str(address) in reason


@given(st.data())
@settings(max_examples=300)
def test_numeric_spellings_are_refused_for_every_address(data: st.DataObject) -> None:
    address = data.draw(any_v4)
    host = data.draw(numeric_spellings(address))
    assert numeric_ipv4(host) == address  # the spelling means what inet_aton says
    for rule in (FOUND, CONFIGURED, OPEN):
        reason = _judge(host, rule)
        assert reason is not None and "non-standard form" in reason


@given(any_v4)
def test_the_standard_spelling_is_judged_as_the_address(address: ipaddress.IPv4Address) -> None:
    for rule in (FOUND, CONFIGURED, OPEN):
        reason = _judge(str(address), rule)
        assert (reason is None) == (blocked_reason(str(address), rule) is None)


@given(st.ip_addresses(v=6))
def test_ipv6_literals_are_judged_as_the_address_they_reach(address: ipaddress.IPv6Address) -> None:
    for rule in (FOUND, CONFIGURED):
        reason = _judge(f"[{address}]", rule)
        assert (reason is None) == (blocked_reason(str(address), rule) is None)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("169.254.43518", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
    ],
)
def test_numeric_ipv4_reads_like_inet_aton(host: str, address: str) -> None:
    assert numeric_ipv4(host) == ipaddress.IPv4Address(address)
    if host != "0x":  # inet_aton itself wants a digit after 0x
        assert socket.inet_aton(host) == ipaddress.IPv4Address(address).packed


@pytest.mark.parametrize("host", ["example.org", "xn--bcher-kva.example", "1e100.net", "localhost"])
def test_names_are_left_to_the_resolver(host: str) -> None:
    assert host_reason(host, host, FOUND) is None


@pytest.mark.parametrize("host", ["example.123", "1.2.3.4.5", "256.1.1.1", "0x1g.1", "08.1.1.1"])
def test_hosts_ending_in_a_number_that_is_no_address_are_refused(host: str) -> None:
    reason = host_reason(host, host, OPEN)
    assert reason is not None and "not a valid IPv4 address" in reason


def test_the_polled_url_keeps_its_provenance() -> None:
    """Issue 12, item 3: an adopted redirect target is a found URL of the configured one."""
    config = "https://feeds.example.org/feed"
    assert Provenance.polled(config, config) == Provenance.config(config)
    moved = "https://moved.example.net/feed"
    assert Provenance.polled(config, moved) == Provenance.found_in(config)
    assert rule_for(moved, Provenance.polled(config, moved), allow_private_networks=False) is FOUND
    same = "https://feeds.example.org/new-feed"
    assert (
        rule_for(same, Provenance.polled(config, same), allow_private_networks=False) is CONFIGURED
    )
