"""Fetch feeds and pages: conditional GET over HTTP(S), and local files.

The :class:`Fetcher` returns a :class:`~aggregator.models.FetchResult` or raises
:class:`~aggregator.errors.FetchError` with one clear line. It decides nothing about *when* to
fetch; it only does the request politely and safely:

* it sends the stored validators verbatim and names itself in the User-Agent;
* a total deadline bounds the whole fetch, redirects included, even when a server trickles
  bytes (:mod:`aggregator.transport`);
* the body is capped while it streams and again after decompression (:mod:`aggregator.decoding`);
* redirects are followed by hand, at most :data:`MAX_REDIRECTS`, loops refused, and only to
  http(s) URLs;
* every connection obeys the SSRF rules of :mod:`aggregator.addresses`: the caller says where a
  URL came from (:class:`~aggregator.addresses.Provenance`), the fetcher picks the rule, and the
  address actually connected to is checked;
* ``file://`` URLs are read only under the configured folders, and a file URL found in content
  only under its own file source's folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp

from aggregator.addresses import AddressRule, Provenance, rule_for, same_origin
from aggregator.config import DEFAULT_USER_AGENT
from aggregator.decoding import ACCEPT_ENCODING, BoundedDecoder, DecodingError, format_size
from aggregator.errors import BlockedAddressError, FetchError, StoppedError
from aggregator.limits import FetchLimits
from aggregator.models import FetchResult
from aggregator.transport import (
    LoopThread,
    Resolver,
    default_ssl_context,
    make_session,
    request_url,
    system_resolver,
)

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
    (:class:`~aggregator.transport.LoopThread`), started on the first HTTP request.
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
        self._loop = LoopThread()
        self._sessions: dict[AddressRule, aiohttp.ClientSession] = {}  # used on the loop only

    def _session(self, rule: AddressRule) -> aiohttp.ClientSession:
        session = self._sessions.get(rule)
        if session is None:
            session = self._sessions[rule] = make_session(
                rule,
                ssl_context=self._ssl_context,
                resolver=self._resolver,
                headers=self._headers,
                connect_timeout=min(self.timeout, CONNECT_TIMEOUT),
                max_connections=max(1, self.limits.total),
            )
        return session

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
    ) -> FetchResult:
        """Fetch ``url`` once, conditionally when validators are given.

        ``headers`` are sent too (an API's ``Accept`` or ``Authorization``), on the first
        request and on redirects to the same origin only.

        HTTP requests wait for a slot under :attr:`limits` (global, per host, per domain);
        files cost nothing and do not. ``provenance`` says where the URL came from; without it the URL counts as configured.
        Raises :class:`FetchError` (:class:`BlockedAddressError` when a rule refuses it).
        """
        provenance = provenance or Provenance.config(url)
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as error:  # e.g. "Invalid IPv6 URL" from a feed's link
            raise FetchError(f"invalid URL {url!r}: {error}") from None
        if scheme == "file":
            return self._fetch_file(url, etag=etag, provenance=provenance)
        if scheme not in ("http", "https"):
            raise FetchError(f"unsupported URL scheme in {_short(url)}: use http, https or file")
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
                )
        except TimeoutError:
            if bound.expired():
                raise FetchError(
                    f"took longer than the {self.timeout:g}s limit for one fetch"
                ) from None
            raise FetchError("timed out while connecting") from None
        except aiohttp.ClientError as error:
            raise FetchError(_describe(error)) from None
        except (OSError, ValueError) as error:
            raise FetchError(f"cannot fetch {_short(url)}: {_reason(error)}") from None

    async def _fetch_http(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        provenance: Provenance,
        extra: dict[str, str],
    ) -> FetchResult:
        headers = dict(extra)
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
                request = self._session(rule).get(
                    requested, headers=headers, allow_redirects=False
                )
            except (aiohttp.InvalidURL, ValueError) as error:
                raise FetchError(f"invalid URL {_short(current)}: {error}") from None
            async with request as response:
                status = response.status
                response_headers = _headers(response)
                if status in REDIRECT_STATUSES and "location" in response_headers:
                    target = _redirect_target(current, response_headers["location"], status)
                    if status not in (301, 308):
                        all_permanent = False
                    if target in seen:
                        raise FetchError(f"redirect loop at {_short(target)}", status=status)
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
                    raise _status_error(status, response.reason, response_headers)
                body = await self._read_body(response, response_headers)
                if not body:
                    raise FetchError(f"empty response (HTTP {status}, no body)", status=status)
                return _result(url, current, status, response_headers, body, started, permanent)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    async def _read_body(self, response: aiohttp.ClientResponse, headers: dict[str, str]) -> bytes:
        status = response.status
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                f"body of {format_size(int(declared))} is larger than the "
                f"{format_size(self.max_bytes)} limit",
                status=status,
            )
        try:
            decoder = BoundedDecoder(headers.get("content-encoding"), self.max_bytes)
        except DecodingError as error:
            raise FetchError(str(error), status=status) from None
        body = bytearray()
        received = 0
        try:
            async for chunk in response.content.iter_any():
                received += len(chunk)
                if received > self.max_bytes:
                    raise FetchError(
                        f"body is larger than the {format_size(self.max_bytes)} limit",
                        status=status,
                    )
                for piece in decoder.feed(chunk):
                    body += piece
        except DecodingError as error:
            raise FetchError(str(error), status=status) from None
        return bytes(body)

    # -- files ---------------------------------------------------------------------------------
    def _fetch_file(self, url: str, *, etag: str | None, provenance: Provenance) -> FetchResult:
        if urlsplit(url).netloc not in ("", "localhost"):
            raise BlockedAddressError(f"refused to read {_short(url)}: a file URL names no host")
        path = file_url_path(url)
        if not provenance.configured:
            # A file URL from content is followed only from a file source, inside its folder
            # (the bundled demo's relative wfw:commentRss links), never from an http source.
            source = provenance.source_url
            if urlsplit(source).scheme != "file" or not _is_under(
                path, file_url_path(source).parent
            ):
                raise BlockedAddressError(
                    f"refused to read {_short(url)}: a file URL found in a feed is followed "
                    "only inside its own file source's folder"
                )
        if not any(_is_under(path, root) for root in self.file_roots):
            raise BlockedAddressError(f"{path} is outside the folders file URLs may read")
        started = time.monotonic()
        try:
            stat = path.stat()
            validator = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
            if etag and etag == validator:
                return FetchResult(
                    url=url, final_url=url, status=304, headers={}, content=None, etag=etag
                )
            if stat.st_size > self.max_bytes:
                raise FetchError(
                    f"file of {format_size(stat.st_size)} is larger than the "
                    f"{format_size(self.max_bytes)} limit"
                )
            with path.open("rb") as handle:
                content = handle.read(self.max_bytes + 1)
            if len(content) > self.max_bytes:
                raise FetchError(f"file is larger than the {format_size(self.max_bytes)} limit")
        except FileNotFoundError:
            raise FetchError(f"no such file: {path}", status=404) from None
        except OSError as error:
            raise FetchError(f"cannot read {path}: {error.strerror or error}") from None
        return FetchResult(
            url=url,
            final_url=url,
            status=200,
            headers={"content-type": _guess_type(path)},
            content=content,
            etag=validator,
            elapsed=time.monotonic() - started,
        )


def file_url_path(url: str) -> Path:
    """The filesystem path a ``file://`` URL names (symlinks resolved)."""
    parts = urlsplit(url)
    return Path(unquote(parts.path)).resolve()


def body_hash(content: bytes) -> str:
    """A digest of a body, so that a 200 with an unchanged body counts as unchanged."""
    return hashlib.sha256(content).hexdigest()


def file_roots_for(folder: Path) -> tuple[Path, ...]:
    """The default folders file URLs may read: the config file's own folder."""
    return (Path(os.path.realpath(folder)),)


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


def _status_error(status: int, reason: str | None, headers: dict[str, str]) -> FetchError:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return FetchError(
        f"HTTP {status} {reason}".rstrip(),
        status=status,
        headers=headers,
    )


def _describe(error: aiohttp.ClientError) -> str:
    """One line for an aiohttp error: what went wrong, in words a user can act on."""
    if isinstance(error, aiohttp.ClientConnectorError):  # ClientSSLError among them
        text = _reason(error.os_error)
        tls = "SSL" in text or "certificate" in text.lower() or "TLS" in text
        if isinstance(error, aiohttp.ClientSSLError) or tls:
            return f"TLS error: {text}"
        return f"cannot connect: {text}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server broke the HTTP protocol: it closed the connection without an answer"
    if isinstance(error, aiohttp.ClientPayloadError):
        return f"the server broke the HTTP protocol: {_reason(error)}"
    if isinstance(error, aiohttp.ClientResponseError):  # unreadable status line or headers
        return f"the server broke the HTTP protocol: {_reason(error.message or error)}"
    if isinstance(error, aiohttp.ClientOSError):
        return f"connection lost: {_reason(error)}"
    if isinstance(error, aiohttp.InvalidURL):
        return f"invalid URL: {_reason(error)}"
    return f"{type(error).__name__}: {_reason(error)}"


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _guess_type(path: Path) -> str:
    suffix = path.suffix.lower()
    return {
        ".atom": "application/atom+xml",
        ".rss": "application/rss+xml",
        ".rdf": "application/rdf+xml",
        ".json": "application/feed+json",
        ".html": "text/html",
        ".htm": "text/html",
    }.get(suffix, "application/xml")


def _reason(error: object) -> str:
    if isinstance(error, OSError) and error.errno and not isinstance(error, ssl.SSLError):
        return os.strerror(error.errno)  # asyncio says "Connect call failed (...)"
    text = str(error) or type(error).__name__
    # OSError text such as "[Errno 111] Connection refused"; keep it short.
    text = text.split("] ", 1)[-1] if text.startswith("[Errno") else text
    return text.splitlines()[0][:300] if text else type(error).__name__


def _short(url: str) -> str:
    return url if len(url) <= 200 else url[:197] + "..."
