"""Tests for aggregator.addresses: the SSRF rules, as pure functions (no sockets, no DNS)."""

from __future__ import annotations

import pytest

from aggregator.addresses import (
    CONFIGURED,
    FOUND,
    OPEN,
    Provenance,
    blocked_reason,
    rule_for,
    same_origin,
)

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
