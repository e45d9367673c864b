"""Requests to comment APIs, made politely: the one way providers reach the network.

:class:`ApiClient` wraps the project's :class:`~aggregator.fetch.fetcher.Fetcher` (address rules, size
and time limits, per-host slots) and adds what APIs need:

* one request budget per API host, spaced by the provider's published rate limit (the
  strictest of the providers sharing a host), shared by every source and thread;
* ``429``, and ``403`` or ``503`` with ``Retry-After``, and an exhausted
  ``X-RateLimit-Remaining`` (GitHub answers 403 with it), stop
  every request to that host until the time given (:class:`~aggregator.errors.RateLimitedError`);
* responses kept with their validators (``ETag``, ``Last-Modified``) and ``Cache-Control:
  max-age``: a fresh one is reused without a request, a stale one is asked for conditionally;
  with a ``memory`` (:class:`~aggregator.discussions.memory.StoredApiMemory`) the validated
  responses and the hosts' blocks outlive a restart (not a response whose ``Link`` header
  pages it: the memory keeps no headers);
* the ``Link`` header given back with the answer (:meth:`ApiClient.get_response`), kept with
  the cached copy;
* the body capped (:data:`MAX_JSON_BYTES`) and parsed as JSON; errors as one line in which
  no secret and no query string appears.

It decides nothing about which threads to read; :mod:`aggregator.discussions.follower` does.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from aggregator.errors import FetchError, ParseError, RateLimitedError, StoppedError
from aggregator.fetch.addresses import Provenance
from aggregator.schedule.hints import parse_retry_after

if TYPE_CHECKING:
    from aggregator.discussions.base import Provider
    from aggregator.discussions.memory import ApiMemory
    from aggregator.fetch.fetcher import Fetcher

MAX_JSON_BYTES = 4 * 1024 * 1024
# A request whose turn is further away than this is not waited for: the thread is read later.
MAX_WAIT = 20.0
# A host that asks for longer than this is left alone that long, not longer (a day).
MAX_BLOCK = 86400.0
# Without Retry-After, a 429 stops requests to the host this long.
DEFAULT_BLOCK = 60.0
CACHE_BYTES = 16 * 1024 * 1024
_MAX_AGE = re.compile(r"max-age=(\d+)")
_URL = re.compile(r"https?://\S+")


@dataclass
class _Budget:
    next_at: float = 0.0  # monotonic time of the next request allowed
    blocked_until: float = 0.0
    blocked_wall: datetime | None = None


@dataclass(frozen=True)
class _Cached:
    body: bytes
    etag: str | None
    last_modified: str | None
    fresh_until: float
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiResponse:
    """An API's answer (its JSON, or its bytes when not decoded) and the response headers a
    provider reads (``Link``)."""

    data: Any
    headers: Mapping[str, str]


class ApiClient:
    """JSON requests for providers (GET; POST where an API reads with it, GraphQL included),
    under one budget per API host. Thread-safe."""

    def __init__(
        self,
        fetcher: Callable[[], Fetcher],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], object] | None = None,
        max_wait: float = MAX_WAIT,
        cache_bytes: int = CACHE_BYTES,
        memory: ApiMemory | None = None,
    ):
        self._fetcher = fetcher
        self._monotonic = monotonic
        self._wall = wall
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._budgets: dict[str, _Budget] = {}
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self.requests = 0  # made, for tests and metrics
        self.memory = memory
        self._recalled = memory is None  # the stored blocks are read before the first request

    def now(self) -> datetime:
        """The wall clock the client judges rate limits by (aware UTC)."""
        return self._wall()

    def stop(self) -> None:
        """Wake any request waiting for its turn; no new request is made."""
        self._stop.set()

    # -- the budget ------------------------------------------------------------------------
    def _recall(self) -> None:
        """Take up the blocks remembered from before a restart (once)."""
        if self._recalled or self.memory is None:
            return
        self._recalled = True
        blocks = self.memory.blocks()
        with self._lock:
            now, wall = self._monotonic(), self._wall()
            for host, until in blocks.items():
                seconds = min((until - wall).total_seconds(), MAX_BLOCK)
                budget = self._budgets.setdefault(host, _Budget())
                if seconds > 0 and now + seconds > budget.blocked_until:
                    budget.blocked_until = now + seconds
                    budget.blocked_wall = until

    def blocked_until(self, url: str) -> datetime | None:
        """When requests to ``url``'s host may resume, when they are stopped now."""
        self._recall()
        with self._lock:
            budget = self._budgets.get(_host(url))
            if budget and budget.blocked_until > self._monotonic():
                return budget.blocked_wall
        return None

    def _take_turn(self, host: str, rate: float, label: str) -> None:
        """Wait for this host's next slot, or raise when it is blocked or too far away."""
        interval = 60.0 / max(rate, 0.001)
        with self._lock:
            now = self._monotonic()
            budget = self._budgets.setdefault(host, _Budget())
            if budget.blocked_until > now:
                raise RateLimitedError(
                    f"{label}: the API asked to wait until "
                    f"{_stamp(budget.blocked_wall)}; not asking before",
                    until=budget.blocked_wall,
                )
            wait = max(0.0, budget.next_at - now)
            if wait > self.max_wait:
                until = self._wall() + timedelta(seconds=wait)
                raise RateLimitedError(
                    f"{label}: request budget spent ({rate:g} per minute); next turn at "
                    f"{_stamp(until)}",
                    until=until,
                )
            budget.next_at = max(now, budget.next_at) + interval
        if wait > 0:
            self._sleep(wait)
        if self._stop.is_set():
            raise StoppedError("not fetching: aggregator is stopping")
        if wait > 0:
            # The host may have refused an earlier request while this one waited its turn.
            with self._lock:
                if budget.blocked_until > self._monotonic():
                    raise RateLimitedError(
                        f"{label}: the API asked to wait until "
                        f"{_stamp(budget.blocked_wall)}; not asking before",
                        until=budget.blocked_wall,
                    )

    def _block(self, host: str, seconds: float) -> datetime:
        seconds = min(max(seconds, 1.0), MAX_BLOCK)
        with self._lock:
            budget = self._budgets.setdefault(host, _Budget())
            until = self._monotonic() + seconds
            if until > budget.blocked_until:
                budget.blocked_until = until
                budget.blocked_wall = self._wall() + timedelta(seconds=seconds)
            wall = budget.blocked_wall or self._wall()
        if self.memory is not None:
            self.memory.block(host, wall)  # outside the lock: a database write
        return wall

    # -- the cache -------------------------------------------------------------------------
    def _cached(self, url: str) -> _Cached | None:
        with self._lock:
            found = self._cache.get(url)
            if found is not None:
                self._cache.move_to_end(url)
                return found
        if self.memory is None:
            return None
        stored = self.memory.load(url)
        if stored is None:
            return None
        # Stale (its max-age was not kept): asked for again, conditionally.
        return _Cached(stored.body, stored.etag, stored.last_modified, 0.0)

    def _keep(self, url: str, entry: _Cached) -> None:
        if len(entry.body) > self._cache_limit // 8:
            return
        with self._lock:
            old = self._cache.pop(url, None)
            if old is not None:
                self._cache_bytes -= len(old.body)
            self._cache[url] = entry
            self._cache_bytes += len(entry.body)
            while self._cache_bytes > self._cache_limit and self._cache:
                _, dropped = self._cache.popitem(last=False)
                self._cache_bytes -= len(dropped.body)

    # -- a request -------------------------------------------------------------------------
    def get_json(
        self,
        provider: Provider,
        url: str,
        params: Mapping[str, object] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        found: bool = False,
    ) -> Any:
        """GET ``url`` (with ``params``) and return its JSON.

        The URL counts as configured (the provider's base URL is the operator's choice) unless
        ``found``: then it came from a response and the rules for found URLs apply. Raises
        :class:`RateLimitedError`, :class:`FetchError` or :class:`ParseError`, one line each,
        without the query string or any secret of ``provider``.
        """
        return self.get_response(provider, url, params, headers=headers, found=found).data

    def get_response(
        self,
        provider: Provider,
        url: str,
        params: Mapping[str, object] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        found: bool = False,
    ) -> ApiResponse:
        """:meth:`get_json` with the response's ``Link`` header (the next page of a listing)."""
        url = _with_params(url, params)
        return self._request(provider, url, headers=headers, found=found, decode=True)

    def post_json(
        self,
        provider: Provider,
        url: str,
        payload: Mapping[str, object],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """POST ``payload`` as JSON to ``url`` and return the JSON answer (Commento's API reads
        with POST, GitHub's GraphQL API too). Same budget, limits and errors as
        :meth:`get_json`; never cached."""
        body = json.dumps(payload).encode()
        return self._request(
            provider,
            url,
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST",
            body=body,
            decode=True,
        ).data

    def get_page(self, provider: Provider, url: str) -> bytes:
        """The bytes of a web page the provider must read (a post's page holding the embed
        code), fetched as a found URL under the same budget and limits; never cached."""
        page: bytes = self._request(provider, url, found=True, accept="text/html", cache=False).data
        return page

    def _request(
        self,
        provider: Provider,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        found: bool = False,
        method: str = "GET",
        body: bytes | None = None,
        accept: str = "application/json",
        cache: bool = True,
        decode: bool = False,
    ) -> ApiResponse:
        """One request under the host's budget; the body of the answer (from the cache when a
        fresh copy is kept there, or after a 304), its JSON when ``decode``, with its ``Link``
        header. Only GET answers are cached, and only JSON ones without a ``Link`` header are
        remembered across restarts (``memory``, which keeps no headers)."""
        self._recall()
        host = _host(url)
        shown = f"{provider.label} API {_path(url)}"
        cache = cache and method == "GET"
        cached = self._cached(url) if cache else None
        if cached is not None and cached.fresh_until > self._monotonic():
            data = self._decode(cached.body, shown, provider) if decode else cached.body
            return ApiResponse(data, cached.headers)
        self._take_turn(host, provider.rate, provider.label)
        provenance = Provenance.found_in(provider.base_url) if found else Provenance.config(url)
        self.requests += 1
        try:
            fetched = self._fetcher().fetch(
                url,
                etag=cached.etag if cached else None,
                last_modified=cached.last_modified if cached else None,
                provenance=provenance,
                headers={"Accept": accept, **(headers or {})},
                method=method,
                body=body,
            )
        except RateLimitedError:
            raise
        except FetchError as error:
            message = _redact(f"{shown}: {error}", provider.secrets)
            # Retry-After is read where every other one is (hints.parse_retry_after).
            now = datetime.now(UTC)
            retry_at = parse_retry_after(error.headers.get("retry-after"), now)
            retry_after = (retry_at - now).total_seconds() if retry_at is not None else None
            if error.status == 429 or (error.status in (403, 503) and retry_after is not None):
                until = self._block(host, retry_after or DEFAULT_BLOCK)
                raise RateLimitedError(
                    f"{message}; not asking before {_stamp(until)}", until=until, status=429
                ) from None
            if error.status == 403 and self._note_limits(host, error.headers):
                # GitHub's primary rate limit: 403 with X-RateLimit-Remaining: 0 and the reset.
                blocked = self.blocked_until(url)
                raise RateLimitedError(
                    f"{message}; rate limit spent, not asking before {_stamp(blocked)}",
                    until=blocked,
                    status=403,
                ) from None
            raise type(error)(message, status=error.status, headers=error.headers) from None
        self._note_limits(host, fetched.headers)
        if fetched.not_modified and cached is not None:
            answer = cached.body
        else:
            answer = fetched.content or b""
        if len(answer) > MAX_JSON_BYTES:
            raise FetchError(f"{shown}: response larger than {MAX_JSON_BYTES} bytes")
        kept = {k: v for k, v in fetched.headers.items() if k.lower() == "link"}
        if fetched.not_modified and cached is not None and not kept:
            kept = dict(cached.headers)
        if not cache:
            data = self._decode(answer, shown, provider) if decode else answer
            return ApiResponse(data, kept)
        fresh = _max_age(fetched.headers)
        etag = fetched.etag or (cached.etag if cached and fetched.not_modified else None)
        modified = fetched.last_modified or (
            cached.last_modified if cached and fetched.not_modified else None
        )
        if etag or modified or fresh:
            self._keep(url, _Cached(answer, etag, modified, self._monotonic() + fresh, kept))
        if not decode:
            return ApiResponse(answer, kept)
        decoded = self._decode(answer, shown, provider)
        remember = (etag or modified) and not fetched.not_modified and not kept
        if self.memory is not None and remember:
            self.memory.save(url, answer, etag, modified)  # only a body that is JSON
        return ApiResponse(decoded, kept)

    def _note_limits(self, host: str, headers: Mapping[str, str]) -> bool:
        """An exhausted ``X-RateLimit-Remaining`` stops the host until ``X-RateLimit-Reset``
        (seconds from now, Unix time, or an ISO 8601 time, as Reddit, Disqus and GitHub, and
        Mastodon write it). Whether it did."""
        lower = {k.lower(): v for k, v in headers.items()}
        remaining = lower.get("x-ratelimit-remaining")
        if remaining is None:
            return False
        try:
            if float(remaining) >= 1:
                return False
        except ValueError:
            return False
        reset = lower.get("x-ratelimit-reset", "")
        seconds = DEFAULT_BLOCK
        try:
            number = float(reset)
            seconds = number - self._wall().timestamp() if number > 1e9 else number
        except ValueError:
            from aggregator.discussions.base import from_iso

            when = from_iso(reset)
            if when is not None:
                seconds = (when - self._wall()).total_seconds()
        self._block(host, seconds)
        return True

    @staticmethod
    def _decode(body: bytes, shown: str, provider: Provider) -> Any:
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as error:
            reason = _redact(str(error), provider.secrets)[:200]
            raise ParseError(f"{shown}: not JSON: {reason}") from None


def _with_params(url: str, params: Mapping[str, object] | None) -> str:
    """``url`` with ``params`` added to its query (a list value repeats the key)."""
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}"


def _path(url: str) -> str:
    """A URL without its query (where keys travel), for messages."""
    parts = urlsplit(url)
    return parts.path or "/"


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` without any secret, and its URLs without their queries."""
    text = _URL.sub(lambda m: m.group(0).split("?", 1)[0], text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _max_age(headers: Mapping[str, str]) -> float:
    lower = {k.lower(): v for k, v in headers.items()}
    control = lower.get("cache-control", "")
    if "no-store" in control or "no-cache" in control:
        return 0.0
    match = _MAX_AGE.search(control)
    return min(float(match.group(1)), 3600.0) if match else 0.0


def _stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "later"
