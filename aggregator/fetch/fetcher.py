"""Fetch feeds and pages: conditional GET over HTTP(S), and local files.

The :class:`Fetcher` returns a :class:`~aggregator.models.FetchResult` or raises
:class:`~aggregator.errors.FetchError` with one clear line. It decides nothing about *when* to
fetch; it only does the request politely and safely (errors worded by
:mod:`aggregator.fetch.describe`):

* it sends the stored validators verbatim and names itself in the User-Agent;
* a total deadline bounds the whole fetch, redirects included, even when a server trickles
  bytes (:mod:`aggregator.fetch.transport`);
* the body is capped while it streams and again after decompression (:mod:`aggregator.fetch.decoding`);
* redirects are followed by hand, at most :data:`MAX_REDIRECTS`, loops refused, and only to
  http(s) URLs;
* every connection obeys the SSRF rules of :mod:`aggregator.fetch.addresses`: the caller says where a
  URL came from (:class:`~aggregator.fetch.addresses.Provenance`), the fetcher picks the rule, and the
  address actually connected to is checked;
* ``file://`` URLs are read only under the configured folders, and a file URL found in content
  only under its own file source's folder (:mod:`aggregator.fetch.files`);
* a source's request options (:class:`~aggregator.models.RequestOptions`): its User-Agent, its
  credentials (only to the origin of its configured URL, never across a redirect to another
  origin) and its proxy, else the ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` environment.

Through a proxy the address rules change shape (README, "Request options"): the socket goes to
the proxy, whose address is the operator's choice (configured or in the environment), so it is
allowed like a configured URL. The target is still judged before a byte is sent: an IP literal
by :func:`~aggregator.fetch.transport.request_url`, a name by resolving it here and refusing it when
any of its addresses breaks the rule. The proxy resolves the name again, so DNS rebinding is not
excluded through a proxy; a name only the proxy can resolve is left to the proxy.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp

from aggregator.config.request_options import DEFAULT_USER_AGENT, origin_of
from aggregator.errors import BlockedAddressError, FetchError, StoppedError
from aggregator.fetch.addresses import (
    CONFIGURED,
    OPEN,
    AddressRule,
    Provenance,
    rule_for,
    same_origin,
)
from aggregator.fetch.decoding import ACCEPT_ENCODING, BoundedDecoder, DecodingError, format_size
from aggregator.fetch.describe import (
    describe_client_error,
    error_reason,
    short_url,
    status_error,
)
from aggregator.fetch.files import fetch_file
from aggregator.fetch.limits import FetchLimits
from aggregator.fetch.transport import (
    LoopThread,
    Resolver,
    check_target_name,
    default_ssl_context,
    make_session,
    request_url,
    split_proxy,
    system_resolver,
)
from aggregator.models import FetchResult, RequestOptions

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
# A redirect is one of these with a Location header.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, text/html;q=0.6, */*;q=0.1"
)
CONNECT_TIMEOUT = 10.0


class Fetcher:
    """HTTP sessions shared by many fetches (connection reuse), plus file access.

    ``timeout`` is the total deadline of one fetch in seconds, redirects included; a connect
    waits at most 10 s of it. ``max_bytes`` caps a body both as sent and as decoded.
    ``file_roots`` lists the folders ``file://`` URLs may read from. ``resolver`` and
    ``ssl_context`` are injectable for tests. Use it as a context manager, or call :meth:`close`.

    :meth:`fetch` blocks its caller; the requests of every calling thread run on one event loop
    (:class:`~aggregator.fetch.transport.LoopThread`), started on the first HTTP request.
    """

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float = 30.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        file_roots: Sequence[Path] = (),
        limits: FetchLimits | None = None,
        allow_private_networks: bool = False,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        environ: Mapping[str, str] | None = None,
    ):
        self.max_bytes = max_bytes
        self.limits = limits or FetchLimits()
        self.timeout = timeout
        self.allow_private_networks = allow_private_networks
        self.file_roots = tuple(Path(root).resolve() for root in file_roots)
        self._stopped = False
        self._ssl_context = ssl_context or default_ssl_context()
        self._resolver = resolver
        self._headers = {
            "User-Agent": user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        self._env_proxies = env_proxies(os.environ if environ is None else environ)
        self._loop = LoopThread()
        # By (rule, proxy URL): used on the loop only.
        self._sessions: dict[tuple[AddressRule, str], aiohttp.ClientSession] = {}

    def _session(self, rule: AddressRule, proxy: str = "") -> aiohttp.ClientSession:
        key = (rule, proxy)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = make_session(
                # The proxy is the operator's choice: its address passes like a configured one.
                rule if not proxy else (OPEN if self.allow_private_networks else CONFIGURED),
                ssl_context=self._ssl_context,
                resolver=self._resolver,
                headers=self._headers,
                connect_timeout=min(self.timeout, CONNECT_TIMEOUT),
                max_connections=max(1, self.limits.total),
                socks_proxy=proxy if proxy.startswith("socks") else None,
            )
        return session

    def proxy_for(self, url: str, request: RequestOptions | None) -> str | None:
        """The proxy URL a request for ``url`` goes through, or ``None`` (direct)."""
        if request is not None and request.proxy is not None:
            return request.proxy.reveal()
        if request is not None and not request.proxy_from_env:
            return None
        return proxy_from_env(url, self._env_proxies)

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop, then close every connection and the event loop."""
        self.stop()
        self._loop.close(self._close_sessions())

    async def _close_sessions(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    def stop(self) -> None:
        """Start no new request (each raises :class:`StoppedError`); those running go on."""
        self.limits.stop()
        self._stopped = True

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        provenance: Provenance | None = None,
        headers: Mapping[str, str] | None = None,
        request: RequestOptions | None = None,
        max_bytes: int | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> FetchResult:
        """Fetch ``url`` once, conditionally when validators are given.

        ``headers`` are sent too (an API's ``Accept`` or ``Authorization``), on the first
        request and on redirects to the same origin only. ``method`` and ``body`` make another
        request than a GET (a comment API's ``POST``, issue 16) under the same rules and limits;
        a 307/308 redirect repeats it, any other redirect turns it into a GET (RFC 9110, 15.4).

        HTTP requests wait for a slot under :attr:`limits` (global, per host, per domain);
        files cost nothing and do not. ``provenance`` says where the URL came from; without it
        the URL counts as configured. ``request`` holds the source's request options.
        ``max_bytes`` lowers the fetcher's size cap for this fetch (an entry's page).
        Raises :class:`FetchError` (:class:`BlockedAddressError` when a rule refuses it).
        """
        provenance = provenance or Provenance.config(url)
        limit = self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes)
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as error:  # e.g. "Invalid IPv6 URL" from a feed's link
            raise FetchError(f"invalid URL {url!r}: {error}") from None
        if scheme == "file":
            return fetch_file(
                url,
                etag=etag,
                provenance=provenance,
                file_roots=self.file_roots,
                max_bytes=limit,
            )
        if scheme not in ("http", "https"):
            raise FetchError(f"unsupported URL scheme in {short_url(url)}: use http, https or file")
        with self.limits.slot(url):
            if self._stopped:
                raise StoppedError("not fetching: aggregator is stopping")
            return self._loop.run(
                self._fetch_bounded(
                    url,
                    etag=etag,
                    last_modified=last_modified,
                    provenance=provenance,
                    extra=dict(headers or {}),
                    request=request,
                    max_bytes=limit,
                    method=method,
                    body=body,
                )
            )

    # -- HTTP ----------------------------------------------------------------------------------
    async def _fetch_bounded(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        provenance: Provenance,
        extra: dict[str, str] | None = None,
        request: RequestOptions | None = None,
        max_bytes: int | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> FetchResult:
        """One fetch, redirects included, within the total deadline; errors as one line."""
        bound = asyncio.timeout(self.timeout)
        try:
            async with bound:
                return await self._fetch_http(
                    url,
                    etag=etag,
                    last_modified=last_modified,
                    provenance=provenance,
                    extra=extra or {},
                    request=request,
                    max_bytes=max_bytes or self.max_bytes,
                    method=method,
                    body=body,
                )
        except TimeoutError:
            if bound.expired():
                raise FetchError(
                    f"took longer than the {self.timeout:g}s limit for one fetch"
                ) from None
            raise FetchError("timed out while connecting") from None
        except aiohttp.ClientError as error:
            raise FetchError(describe_client_error(error)) from None
        except (OSError, ValueError) as error:
            raise FetchError(f"cannot fetch {short_url(url)}: {error_reason(error)}") from None

    async def _fetch_http(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        provenance: Provenance,
        extra: dict[str, str],
        request: RequestOptions | None = None,
        max_bytes: int | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> FetchResult:
        headers = dict(extra)
        if request is not None and request.user_agent:
            headers["User-Agent"] = request.user_agent
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        started = time.monotonic()
        current = url
        permanent: str | None = None
        all_permanent = True
        seen = {url}
        hop_provenance = provenance
        for _ in range(MAX_REDIRECTS + 1):
            rule = rule_for(
                current, hop_provenance, allow_private_networks=self.allow_private_networks
            )
            try:
                host = urlsplit(current).hostname or ""
                # The host aiohttp will use, judged as such (IDNA can turn 127。0。0。1 into
                # an IP address that no resolver is asked about: issue 12).
                requested = request_url(current, host, rule)
                proxy = self.proxy_for(current, request)
                if proxy:
                    # The proxy connects, so judge the name here (see the module docstring).
                    await check_target_name(requested, rule, self._resolver)
                hop_headers = _hop_headers(headers, current, request)
                proxy_url, proxy_auth = split_proxy(proxy)
                call = self._session(rule, proxy or "").request(
                    method,
                    requested,
                    data=body,
                    headers=hop_headers,
                    allow_redirects=False,
                    proxy=proxy_url,
                    proxy_auth=proxy_auth,
                )
            except (aiohttp.InvalidURL, ValueError) as error:
                raise FetchError(f"invalid URL {short_url(current)}: {error}") from None
            async with call as response:
                status = response.status
                response_headers = _headers(response)
                if status in REDIRECT_STATUSES and "location" in response_headers:
                    target = _redirect_target(current, response_headers["location"], status)
                    if status not in (301, 308):
                        all_permanent = False
                    if status not in (307, 308):
                        method, body = "GET", None
                    if target in seen:
                        raise FetchError(f"redirect loop at {short_url(target)}", status=status)
                    seen.add(target)
                    if extra and not same_origin(target, url):
                        # An API token is for the API's origin, not for where it redirects.
                        headers = {k: v for k, v in headers.items() if k not in extra}
                    current = target
                    if all_permanent:
                        permanent = target
                    # Where a redirect points is not the operator's choice (see addresses.py).
                    hop_provenance = Provenance.found_in(provenance.source_url)
                    continue
                if status == 304:
                    return _result(url, current, status, response_headers, None, started, permanent)
                if not 200 <= status < 300:
                    raise status_error(status, response.reason, response_headers)
                content = await self._read_body(
                    response, response_headers, max_bytes or self.max_bytes
                )
                if not content:
                    raise FetchError(f"empty response (HTTP {status}, no body)", status=status)
                return _result(url, current, status, response_headers, content, started, permanent)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    async def _read_body(
        self, response: aiohttp.ClientResponse, headers: dict[str, str], limit: int
    ) -> bytes:
        status = response.status
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(
                f"body of {format_size(int(declared))} is larger than the "
                f"{format_size(limit)} limit",
                status=status,
            )
        try:
            decoder = BoundedDecoder(headers.get("content-encoding"), limit)
        except DecodingError as error:
            raise FetchError(str(error), status=status) from None
        body = bytearray()
        received = 0
        try:
            async for chunk in response.content.iter_any():
                received += len(chunk)
                if received > limit:
                    raise FetchError(
                        f"body is larger than the {format_size(limit)} limit",
                        status=status,
                    )
                for piece in decoder.feed(chunk):
                    body += piece
        except DecodingError as error:
            raise FetchError(str(error), status=status) from None
        return bytes(body)


def _hop_headers(
    headers: dict[str, str], url: str, request: RequestOptions | None
) -> dict[str, str]:
    """The headers of one request: a source's credentials only on its own origin."""
    if request is None or not request.credentials or origin_of(url) != request.origin:
        return headers
    sent = dict(headers)
    for name, value in request.credentials:
        sent[name] = value.reveal()
    return sent


# urllib's NO_PROXY matching (suffixes, "*", host:port); typeshed does not list it.
_proxy_bypass: Callable[[str, dict[str, str]], bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]


def env_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``http``, ``https`` and ``no`` from the proxy environment (lower case names first, as
    curl and urllib read them); empty values are unset."""
    found: dict[str, str] = {}
    for key in ("http", "https", "no"):
        value = environ.get(f"{key}_proxy") or environ.get(f"{key.upper()}_PROXY")
        if value and value.strip():
            found[key] = value.strip()
    return found


def proxy_from_env(url: str, proxies: Mapping[str, str]) -> str | None:
    """The environment's proxy for ``url`` (``HTTP_PROXY`` or ``HTTPS_PROXY`` by its scheme),
    ``None`` when there is none or ``NO_PROXY`` names its host."""
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme.lower())
    if not proxy:
        return None
    host = parts.hostname or ""
    if "no" in proxies and host:
        try:
            port = parts.port
        except ValueError:
            port = None
        for candidate in (host, f"{host}:{port}" if port else host):
            if _proxy_bypass(candidate, {"no": proxies["no"]}):
                return None
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    return proxy


def body_hash(content: bytes) -> str:
    """A digest of a body, so that a 200 with an unchanged body counts as unchanged."""
    return hashlib.sha256(content).hexdigest()


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """The response headers by lower-case name, repeated ones joined with ", "."""
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _result(
    url: str,
    final_url: str,
    status: int,
    headers: dict[str, str],
    body: bytes | None,
    started: float,
    permanent: str | None,
) -> FetchResult:
    return FetchResult(
        url=url,
        final_url=final_url,
        status=status,
        headers=headers,
        content=body,
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
        elapsed=time.monotonic() - started,
        permanent_redirect=permanent,
    )


def _redirect_target(current: str, location: str, status: int) -> str:
    """The absolute URL a redirect's Location names; only http(s) URLs are followed."""
    location = location.strip()
    try:
        target = urljoin(current, location)
        parts = urlsplit(target)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as error:
        raise FetchError(
            f"redirect to an invalid URL {location[:200]!r}: {error}", status=status
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedAddressError(
            f"refused to follow a redirect to a {scheme or 'relative'}: URL", status=status
        )
    if not parts.hostname:
        raise FetchError(f"redirect to an invalid URL {location[:200]!r}: no host", status=status)
    return target
