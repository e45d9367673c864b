"""Caps on concurrent requests: in total, per host, and per registrable domain.

Many feeds can live on one operator's servers under different host names (``a.tumblr.com``,
``b.tumblr.com``: FreshRSS #8925), so besides the per-host cap there is one per *registrable
domain* as the Public Suffix List defines it. This module is the only user of
``publicsuffixlist``, which bundles a snapshot of the list (updated with each release) and
never fetches it at run time. Only the ICANN section of the list is used: private suffixes such
as ``blogspot.com`` or ``github.io`` are one operator's servers, so their blogs share one limit.

It decides nothing about *when* to fetch (that is :mod:`aggregator.schedule.decide`); it only makes a
caller wait for a free slot.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aggregator.errors import StoppedError

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    """The list, read on first use: parsing it takes ~0.15 CPU s, which a poll of sources on
    IP addresses alone (or a command that fetches nothing) need not pay."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True)


@lru_cache(maxsize=4096)
def registrable_domain(host: str) -> str:
    """The domain a host is registered under: ``a.tumblr.com`` -> ``tumblr.com``,
    ``www.bbc.co.uk`` -> ``bbc.co.uk``. An IP address, ``localhost`` or a bare public suffix is
    its own domain."""
    host = host.strip().rstrip(".").lower()
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return host
    return _psl().privatesuffix(host) or host


def is_loopback(host: str) -> bool:
    """Whether a host is this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_of(url: str) -> str:
    """The lower-cased host name of a URL (without port or credentials)."""
    return (urlsplit(url).hostname or "").lower()


class FetchLimits:
    """Counting semaphores for every request: a global one, one per host, one per domain.

    Slots are always taken in the same order (domain, host, global), so two requests can never
    wait for each other. :meth:`stop` makes every waiting and future :meth:`slot` call raise
    :class:`~aggregator.errors.StoppedError`, so a daemon that is stopping starts no request.
    """

    def __init__(self, total: int = 32, per_host: int = 2, per_domain: int = 4):
        if min(total, per_host, per_domain) < 1:
            raise ValueError("every limit must be at least 1")
        self.total = total
        self.per_host = per_host
        self.per_domain = per_domain
        self._global = threading.BoundedSemaphore(total)
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._domains: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Refuse every slot from now on (waiting callers give up within a tenth of a second)."""
        self._stopped.set()

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one request slot for ``url`` for the duration of the ``with`` block.

        A server on this machine (a self-hosted RSS-Bridge, a local mirror) is the operator's
        own: politeness caps protect other people's servers, so only the global cap applies.
        """
        host = host_of(url)
        semaphores: tuple[threading.BoundedSemaphore, ...] = (self._global,)
        if not is_loopback(host):
            domain = registrable_domain(host) if host else ""
            with self._lock:
                domain_sem = self._domains.setdefault(
                    domain, threading.BoundedSemaphore(self.per_domain)
                )
                host_sem = self._hosts.setdefault(host, threading.BoundedSemaphore(self.per_host))
            semaphores = (domain_sem, host_sem, self._global)
        taken: list[threading.BoundedSemaphore] = []
        try:
            for semaphore in semaphores:
                self._acquire(semaphore)
                taken.append(semaphore)
            yield
        finally:
            for semaphore in reversed(taken):
                semaphore.release()

    def _acquire(self, semaphore: threading.BoundedSemaphore) -> None:
        if semaphore.acquire(blocking=False):  # the common case: a slot is free, no waiting
            if self._stopped.is_set():
                semaphore.release()
                raise StoppedError("not fetching: aggregator is stopping")
            return
        while not semaphore.acquire(timeout=0.1):
            if self._stopped.is_set():
                raise StoppedError("not fetching: aggregator is stopping")
        if self._stopped.is_set():
            semaphore.release()
            raise StoppedError("not fetching: aggregator is stopping")
