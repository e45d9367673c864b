"""The network layer under the fetcher: one asyncio loop running aiohttp, with guarded connects.

Why aiohttp on a loop thread: the poller and the comment follower are plain threads, and with
httpx every request cost them about 0.8 ms of Python CPU under the GIL (httpx, httpcore and h11
per request): 9,000 conditional GETs took 7.1 s on the benchmark machine. The same requests
through aiohttp on one event loop, each thread handing its request to the loop and waiting for
the answer, took 1.4 s (``benchmarks/README.md``). So the threads keep their simple blocking
code and the loop does the network work.

What this module adds to aiohttp:

* **Address rules** (:mod:`aggregator.fetch.addresses`), at three points, each enough alone:

  1. :func:`request_url` makes the URL aiohttp will request (yarl: IDNA / UTS #46 applied, so
     ``127。0。0。1`` becomes ``127.0.0.1``) and judges *that* host, refusing every spelling of
     an IP address but the standard one (issue 12);
  2. host names are resolved by :class:`GuardedResolver`, which checks every address against
     the session's :class:`~aggregator.fetch.addresses.AddressRule` and hands aiohttp only the
     allowed ones; aiohttp connects to those addresses, never to the name again, so DNS
     rebinding cannot swap in a private address after the check;
  3. :class:`GuardedConnector` checks the address each socket is about to connect to, and the
     connected socket's peer address again, whatever spelling or library path led there.

  A refused address raises :class:`~aggregator.errors.BlockedAddressError` before a byte of the
  request is sent.
* **One session per rule**: a kept-alive connection is only reused by requests of the same rule.
* :class:`LoopThread`: the loop (uvloop's where it is installed: another tenth off the CPU of
  a request), started on first use, and the bridge that runs a coroutine on it from any thread.

It does not follow redirects, bound the whole fetch by a deadline or decide which rule a URL
gets: :mod:`aggregator.fetch.fetcher` does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from aggregator.errors import BlockedAddressError, FetchError
from aggregator.fetch.addresses import AddressRule, host_reason

#: host, port -> the IP addresses to try, in order.
Resolver = Callable[[str, int], list[str]]

T = TypeVar("T")

_ALLOW_HINT = "(set allow_private_networks: true to allow it)"


def default_ssl_context() -> ssl.SSLContext:
    """The CA store fetches trust: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set (as OpenSSL
    and most HTTP clients read them), else certifi's bundle, so trust does not depend on how the
    host system was set up (the store httpx used before the move to aiohttp, kept)."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile and os.path.isfile(cafile):
        return ssl.create_default_context(cafile=cafile)
    if capath and os.path.isdir(capath):
        return ssl.create_default_context(capath=capath)
    return ssl.create_default_context(cafile=certifi.where())


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver; raises ``OSError`` when it cannot."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def request_url(url: str, written_host: str, rule: AddressRule) -> URL:
    """The URL aiohttp will request for ``url``, its host judged by ``rule``.

    ``written_host`` is the host as the URL spells it. The host judged is the one aiohttp
    connects to (yarl's, after IDNA), so no spelling can differ from what was checked. Raises
    :class:`BlockedAddressError` for a refused or disguised IP address, ``ValueError`` for a
    URL yarl cannot read. Names are left to :class:`GuardedResolver`.
    """
    parsed = URL(url)
    used = parsed.raw_host or ""
    reason = host_reason(written_host, used, rule)
    if reason is not None:
        hint = _ALLOW_HINT if rule.blocked_reason(used.strip("[]")) == reason else ""
        raise BlockedAddressError(f"refused to connect: {reason} {hint}".rstrip())
    return parsed


async def check_target_name(url: URL, rule: AddressRule, resolver: Resolver) -> None:
    """Before a request goes through a proxy: refuse a host name any of whose addresses
    ``rule`` refuses (IP literals were judged by :func:`request_url`).

    A name this machine cannot resolve is left to the proxy (a proxy on a closed network may
    be the only one that can): the proxy is then the guard, as the README says.
    """
    host = (url.raw_host or "").strip("[]")
    if not host or _is_ip(host):
        return
    loop = asyncio.get_running_loop()
    try:
        addresses = await loop.run_in_executor(None, resolver, host, url.port or 0)
    except OSError:
        return
    for address in addresses:
        reason = rule.blocked_reason(address)
        if reason is not None:
            raise BlockedAddressError(
                f"refused to connect: {host} resolves to {reason} {_ALLOW_HINT}"
            )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def split_proxy(proxy: str | None) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """An http(s) proxy URL without its credentials, and those as ``proxy_auth``; ``None``
    for no proxy or a socks proxy (its connector holds it: :func:`make_session`)."""
    if not proxy or proxy.startswith("socks"):
        return None, None
    parsed = URL(proxy)
    auth = None
    if parsed.user is not None:
        auth = aiohttp.BasicAuth(parsed.user, parsed.password or "")
    return str(parsed.with_user(None)), auth


def check_peer(address: str, rule: AddressRule) -> None:
    """Refuse a socket address ``rule`` does not allow (raises :class:`BlockedAddressError`)."""
    reason = rule.blocked_reason(address)
    if reason is not None:
        raise BlockedAddressError(f"refused to connect: {reason} {_ALLOW_HINT}")


class GuardedResolver(AbstractResolver):
    """Resolves a name once and gives aiohttp only the addresses its rule allows."""

    def __init__(self, rule: AddressRule, resolver: Resolver = system_resolver):
        self.rule = rule
        self.resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The allowed addresses of ``host``; raises :class:`FetchError` when there are none."""
        loop = asyncio.get_running_loop()
        try:
            addresses = await loop.run_in_executor(None, self.resolver, host, port)
        except OSError as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise FetchError(f"cannot resolve host {host}: {reason}") from None
        if not addresses:
            raise FetchError(f"cannot resolve host {host}: no addresses")
        allowed = [a for a in addresses if self.rule.blocked_reason(a) is None]
        if not allowed:
            reason = self.rule.blocked_reason(addresses[0])
            named = "" if host == addresses[0] else f"{host} resolves to "
            raise BlockedAddressError(f"refused to connect: {named}{reason} {_ALLOW_HINT}")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in allowed
        ]

    async def close(self) -> None:
        """Nothing to release: the blocking resolver runs in the loop's default executor."""


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector whose every socket obeys ``rule``, however its address was reached.

    The address is checked twice: by the socket factory, before ``connect()`` (so not even a
    SYN goes to a refused address), and on the connected socket's peer address. The resolver
    and :func:`request_url` have judged it already; this holds if a later aiohttp or yarl
    finds another way from a URL to an address (issue 12).
    """

    def __init__(self, rule: AddressRule, **kwargs: Any):
        super().__init__(socket_factory=self._socket_for, **kwargs)
        self.rule = rule

    def _socket_for(self, addr_info: Any) -> socket.socket:
        family, kind, proto, _, address = addr_info
        check_peer(str(address[0]), self.rule)
        return socket.socket(family=family, type=kind, proto=proto)

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        transport, protocol = await super()._wrap_create_connection(*args, **kwargs)
        peer = transport.get_extra_info("peername")
        reason = (
            "the connection has no peer address"
            if not peer
            else self.rule.blocked_reason(str(peer[0]))
        )
        if reason is not None:
            transport.abort()
            raise BlockedAddressError(f"refused to connect: {reason} {_ALLOW_HINT}")
        return transport, protocol


# The peer check overrides a method of aiohttp's connector: fail loudly, not open, if it goes.
if not callable(getattr(aiohttp.TCPConnector, "_wrap_create_connection", None)):
    raise ImportError("aiohttp.TCPConnector._wrap_create_connection is gone: update transport.py")


def make_session(
    rule: AddressRule,
    *,
    ssl_context: ssl.SSLContext,
    resolver: Resolver,
    headers: dict[str, str],
    connect_timeout: float,
    max_connections: int = 32,
    keepalive_expiry: float = 30.0,
    socks_proxy: str | None = None,
) -> aiohttp.ClientSession:
    """An aiohttp session whose connections all obey ``rule``; call it on the loop.

    Bodies arrive as sent (no automatic decompression: :mod:`aggregator.fetch.decoding` bounds it),
    no cookies are kept between sources, and aiohttp reads no proxy from the environment:
    :mod:`aggregator.fetch.fetcher` chooses the proxy of each request, and judges its target itself.
    With ``socks_proxy`` (``socks5://`` or ``socks5h://``, where the proxy resolves names)
    every connection goes through that proxy (aiohttp-socks).
    """
    connector: aiohttp.TCPConnector
    if socks_proxy is not None:
        from aiohttp_socks import ProxyConnector

        rdns = socks_proxy.startswith("socks5h")
        connector = ProxyConnector.from_url(
            "socks5" + socks_proxy[len("socks5h") if rdns else len("socks5") :],
            rdns=rdns,
            ssl=ssl_context,
            limit=max_connections,
            keepalive_timeout=keepalive_expiry,
        )
    else:
        connector = GuardedConnector(
            rule,
            ssl=ssl_context,
            resolver=GuardedResolver(rule, resolver),
            limit=max_connections,
            keepalive_timeout=keepalive_expiry,
            happy_eyeballs_delay=None,
        )
    return aiohttp.ClientSession(
        connector=connector,
        headers=headers,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        skip_auto_headers=("Content-Type",),
    )


class LoopThread:
    """An asyncio event loop in a daemon thread, started on first use.

    :meth:`run` blocks the calling thread until the coroutine finishes on the loop, so callers
    stay synchronous while many requests share one loop.
    """

    def __init__(self, name: str = "aggregator-http"):
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = _new_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and return its result (or raise its exception)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._started()).result()

    def close(self, cleanup: Coroutine[Any, Any, None] | None = None) -> None:
        """Run ``cleanup`` on the loop (if it was ever started), then stop the loop."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            if cleanup is not None:
                cleanup.close()
            return
        if cleanup is not None:
            asyncio.run_coroutine_threadsafe(cleanup, loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (faster), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    rule: AddressRule,
) -> int:
    """POST ``body`` to ``url`` through a guarded session (no redirects followed); return the
    status. Raises :class:`FetchError` with one line on a network error or the timeout. The
    host is judged by ``rule`` as for a fetch. For alert webhooks (issue 15)."""
    parts = urlsplit(url)
    target = request_url(url, parts.hostname or "", rule)
    try:
        async with asyncio.timeout(timeout):
            async with session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                return response.status
    except TimeoutError:
        raise FetchError(f"{url}: no answer within {timeout:g}s") from None
    except aiohttp.ClientError as error:
        raise FetchError(f"{url}: {error}") from None
