"""The network layer under httpx (httpcore's only adapter): guarded connects and a deadline.

Two things httpx cannot do by itself, done where the socket is made:

* **Address rules** (:mod:`aggregator.addresses`): a host name is resolved once, every address
  is checked against the connection pool's :class:`~aggregator.addresses.AddressRule`, and the
  socket connects to a checked address, never to the name again, so DNS rebinding cannot swap
  in a private address after the check. A refused address raises
  :class:`~aggregator.errors.BlockedAddressError` before a byte is sent.
* **A total deadline per fetch**: httpx's read timeout restarts with every chunk, so a server
  that trickles one byte a second would hold a worker forever. Every read, write and TLS
  handshake here waits at most until the deadline set by :func:`deadline` for the current fetch
  (a context variable, so each thread has its own), which makes the deadline fire while bytes
  trickle, also during the headers.

It does not follow redirects or decide which rule a URL gets: :mod:`aggregator.fetch` does.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import httpcore

from aggregator.addresses import AddressRule
from aggregator.errors import BlockedAddressError

#: host, port -> the IP addresses to try, in order.
Resolver = Callable[[str, int], list[str]]

_DEADLINE: ContextVar[float | None] = ContextVar("aggregator_fetch_deadline", default=None)


class DeadlineExceeded(httpcore.TimeoutException):
    """The fetch's total deadline passed (raised as an httpcore timeout, mapped by httpx)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Run the block with a total deadline of ``seconds`` for every socket operation in it."""
    until = time.monotonic() + seconds
    token = _DEADLINE.set(until)
    try:
        yield until
    finally:
        _DEADLINE.reset(token)


def _bounded(timeout: float | None) -> float | None:
    """``timeout`` shortened to what is left before the current deadline."""
    until = _DEADLINE.get()
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("total deadline exceeded")
    return left if timeout is None else min(timeout, left)


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver; raises ``OSError`` when it cannot."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every blocking call ends by the fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to addresses its rule allows."""

    def __init__(self, rule: AddressRule, resolver: Resolver = system_resolver):
        self.rule = rule
        self.resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.resolver(host, port)
        except OSError as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise httpcore.ConnectError(f"cannot resolve host {host}: {reason}") from None
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve host {host}: no addresses")
        allowed = [a for a in addresses if self.rule.blocked_reason(a) is None]
        if not allowed:
            reason = self.rule.blocked_reason(addresses[0])
            named = "" if host == addresses[0] else f"{host} resolves to "
            raise BlockedAddressError(
                f"refused to connect: {named}{reason} "
                "(set allow_private_networks: true to allow it)"
            )
        last: Exception | None = None
        for address in allowed:
            try:
                # Connect to the checked address itself, never to the name again.
                stream = super().connect_tcp(
                    address, port, _bounded(timeout), local_address, socket_options
                )
            except httpcore.ConnectError as error:
                last = error
                continue
            return _DeadlineStream(stream)
        assert last is not None
        raise last


def make_pool(
    rule: AddressRule,
    *,
    ssl_context: ssl.SSLContext,
    resolver: Resolver = system_resolver,
    max_connections: int = 32,
    max_keepalive_connections: int = 32,
    keepalive_expiry: float = 30.0,
) -> httpcore.ConnectionPool:
    """An httpcore connection pool whose connections all obey ``rule``.

    A pool holds connections made under one rule only, so a kept-alive connection is never
    reused by a request that its rule would not have allowed.
    """
    return httpcore.ConnectionPool(
        ssl_context=ssl_context,
        max_connections=max_connections,
        max_keepalive_connections=max_keepalive_connections,
        keepalive_expiry=keepalive_expiry,
        network_backend=GuardedBackend(rule, resolver),
    )
