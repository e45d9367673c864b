"""Which addresses a fetch may reach: the SSRF rules (pure; no IO, no DNS).

A URL either comes from the config (the operator chose it) or was found somewhere aggregator
does not control: in a feed (``wfw:commentRss``, replies links, page links) or in a redirect.
A found URL may only reach public addresses, unless it stays on the same origin (scheme, host,
port) as its source's configured URL, or the config sets ``allow_private_networks: true``. A
configured URL may reach loopback and private networks, but not link-local or cloud metadata
addresses (again unless ``allow_private_networks``). See the README, "Limits and safety".

This module only classifies; :mod:`aggregator.fetch.transport` applies the rule to the address it
actually connects to, so a name that resolves differently a second time (DNS rebinding) gains
nothing.

IP addresses come in many spellings that all reach the same socket address (issue 12): the
legacy numeric forms that ``inet_aton`` accepts (``2130706433``, ``0177.0.0.1``, ``127.1``,
``0x7f.1``, ``0``), and characters that IDNA maps onto ASCII digits and dots (``127。0。0。1``,
fullwidth, superscript and circled digits). :func:`host_reason` judges the host the HTTP client
will really use, and refuses every spelling of an IP address but the one standard form.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services. Most live in link-local space (169.254.169.254 for AWS, GCP, Azure,
# OpenStack; 169.254.170.2 for ECS task credentials); these are elsewhere.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",  # AWS over IPv6 (inside fc00::/7)
        "100.100.100.200",  # Alibaba Cloud (inside 100.64.0.0/10)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: an IPv4 address in the low 32 bits
# RFC 4291 2.5.5.1: the deprecated "IPv4-compatible" ::a.b.c.d (but not :: and ::1 themselves).
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# A host label that a URL parser or inet_aton reads as a number: decimal, octal or hex.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AddressRule:
    """What kinds of non-public address a connection may reach."""

    allow_private: bool  # loopback, RFC 1918, unique local, shared (CGNAT), unspecified
    allow_link_local: bool  # link-local and cloud metadata addresses

    def blocked_reason(self, address: str) -> str | None:
        """Why connecting to ``address`` is refused, or ``None`` when it is allowed."""
        return blocked_reason(address, self)


#: A URL found in content or a redirect, off its source's origin: public addresses only.
FOUND = AddressRule(allow_private=False, allow_link_local=False)
#: A configured URL (or one on its origin): anything but link-local and metadata addresses.
CONFIGURED = AddressRule(allow_private=True, allow_link_local=False)
#: ``allow_private_networks: true``: every address.
OPEN = AddressRule(allow_private=True, allow_link_local=True)


@dataclass(frozen=True)
class Provenance:
    """Where a URL came from, which decides the addresses it may reach.

    ``source_url`` is the configured URL of the source the URL belongs to; ``configured`` says
    whether the URL fetched is itself configured (a source's ``url`` or ``comments_url``) or was
    found in that source's content. Redirects are always treated as found.
    """

    source_url: str
    configured: bool

    @classmethod
    def config(cls, url: str) -> Provenance:
        """A URL taken from the config file."""
        return cls(url, True)

    @classmethod
    def found_in(cls, source_url: str) -> Provenance:
        """A URL found in the content of the source configured at ``source_url``."""
        return cls(source_url, False)

    @classmethod
    def polled(cls, config_url: str, url: str) -> Provenance:
        """A source's URL as polled: ``config_url`` itself, or a URL that replaced it.

        A URL adopted from permanent redirects (issue 12) came from the server, not from the
        operator: it stays a found URL forever, judged by same origin against ``config_url``.
        """
        return cls.config(config_url) if url == config_url else cls.found_in(config_url)


def rule_for(url: str, provenance: Provenance, *, allow_private_networks: bool) -> AddressRule:
    """The address rule for fetching ``url`` (a redirect target counts as found)."""
    if allow_private_networks:
        return OPEN
    if provenance.configured or same_origin(url, provenance.source_url):
        return CONFIGURED
    return FOUND


def origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an http(s) URL, the port made explicit; ``None`` if unreadable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS.get(scheme)


def same_origin(url: str, other: str) -> bool:
    """Whether two http(s) URLs share scheme, host and port (RFC 6454)."""
    mine = origin(url)
    return mine is not None and mine == origin(other)


def file_url_folder(url: str) -> PurePosixPath:
    """The folder a ``file://`` URL's file is in (lexically; the fetcher resolves symlinks)."""
    return PurePosixPath(unquote(urlsplit(url).path)).parent


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address an all-numeric ``host`` denotes the way ``inet_aton`` reads it.

    One to four dot-separated numbers, each decimal, octal (leading ``0``) or hex (``0x``); the
    last fills the remaining bytes (``127.1`` is 127.0.0.1, ``2130706433`` too). ``None`` when
    ``host`` is not such a spelling or its numbers are out of range.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot, as in a fully qualified name
    if not 1 <= len(labels) <= 4:
        return None
    numbers = []
    for label in labels:
        number = _ipv4_number(label)
        if number is None:
            return None
        numbers.append(number)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_number(label: str) -> int | None:
    label = label.lower()
    try:
        if label.startswith("0x"):
            return int(label[2:], 16) if label[2:] else 0
        if len(label) > 1 and label.startswith("0"):
            return int(label[1:], 8)
        return int(label, 10) if label.isascii() and label.isdigit() else None
    except ValueError:
        return None


def host_address(host: str) -> IPAddress | None:
    """The IP address an ASCII URL host is, in its standard form only; ``None`` for a name.

    Raises ``ValueError`` when ``host`` looks like an IP address in any other form: its last
    label is a number (the WHATWG URL rule for "ends in a number"), or it is an IPv6 literal
    that does not parse. Such hosts are never names, and each parser reads them differently.
    """
    bare = host.strip("[]").split("%", 1)[0]
    if ":" in bare:
        try:
            return ipaddress.IPv6Address(bare)
        except ValueError:
            raise ValueError(f"{host} is not a valid IPv6 address") from None
    if not host.isascii():
        raise ValueError(f"{host!r} is not an ASCII host name")
    labels = host.split(".")
    last = labels[-2] if len(labels) > 1 and labels[-1] == "" else labels[-1]
    if not _NUMERIC_LABEL.fullmatch(last):
        return None
    address = numeric_ipv4(host)
    if address is None:
        raise ValueError(f"{host} is not a valid IPv4 address")
    if host != str(address):
        raise ValueError(f"{host} spells the IP address {address} in a non-standard form")
    return address


def host_reason(written: str, used: str, rule: AddressRule) -> str | None:
    """Why ``rule`` refuses a URL whose host reads ``written`` and goes to ``used``.

    ``written`` is the host as it appears in the URL (lower case); ``used`` is the ASCII host
    the HTTP client connects to after its own normalisation (IDNA, UTS #46). An IP address is
    accepted only in its standard ASCII form (dotted quad, or IPv6 in brackets) and when
    ``written`` reads as the same address; then it is judged by ``rule``. A name gives
    ``None``: its addresses are judged when resolved (:mod:`aggregator.fetch.transport`).
    """
    try:
        address = host_address(used.lower())
    except ValueError as error:
        return str(error)
    if address is None:
        return None
    bare = written.lower().strip("[]").split("%", 1)[0]
    try:
        same = written.isascii() and ipaddress.ip_address(bare) == address
    except ValueError:
        same = False
    if not same:
        return f"{written!r} is the IP address {address} spelled in other characters"
    return rule.blocked_reason(str(address))


def blocked_reason(address: str, rule: AddressRule) -> str | None:
    """Why ``rule`` refuses a connection to the IP ``address``; ``None`` when it is allowed.

    IPv4 addresses embedded in IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
    6to4 ``2002::/16``) are judged as the IPv4 address they reach.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    # The embedded IPv4 address first: it is where the connection really goes.
    reasons = [_reason(candidate, rule) for candidate in (*_embedded(ip), ip)]
    return next((reason for reason in reasons if reason), None)


def _embedded(ip: IPAddress) -> tuple[IPAddress, ...]:
    if not isinstance(ip, ipaddress.IPv6Address):
        return ()
    found: list[IPAddress] = []
    if ip.ipv4_mapped:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour:
        found.append(ip.sixtofour)
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return tuple(found)


def _reason(ip: IPAddress, rule: AddressRule) -> str | None:
    if ip in _METADATA:
        return None if rule.allow_link_local else f"{ip} is a cloud metadata address"
    if ip.is_link_local:
        return None if rule.allow_link_local else f"{ip} is a link-local address"
    if rule.allow_private:
        return None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_private:
        return f"{ip} is a private network address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None
