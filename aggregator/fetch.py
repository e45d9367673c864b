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

import contextlib
import hashlib
import os
import ssl
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from aggregator.addresses import (
    CONFIGURED,
    FOUND,
    OPEN,
    AddressRule,
    Provenance,
    rule_for,
)
from aggregator.config import DEFAULT_USER_AGENT
from aggregator.decoding import ACCEPT_ENCODING, BoundedDecoder, DecodingError, format_size
from aggregator.errors import BlockedAddressError, FetchError, StoppedError
from aggregator.limits import FetchLimits
from aggregator.models import FetchResult
from aggregator.transport import DeadlineExceeded, Resolver, deadline, make_pool, system_resolver

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
# Not httpx's is_redirect: a redirect is one of these with a Location header.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, text/html;q=0.6, */*;q=0.1"
)
CONNECT_TIMEOUT = 10.0


class Fetcher:
    """HTTP clients shared by many fetches (connection reuse), plus file access.

    ``timeout`` is the total deadline of one fetch in seconds, redirects included; a connect
    waits at most 10 s of it. ``max_bytes`` caps a body both as sent and as decoded.
    ``file_roots`` lists the folders ``file://`` URLs may read from. ``resolver`` and
    ``ssl_context`` are injectable for tests. Use it as a context manager, or call :meth:`close`.
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
        context = ssl_context or httpx.create_ssl_context()
        rules = (OPEN,) if allow_private_networks else (CONFIGURED, FOUND)
        self._clients = {
            rule: self._make_client(rule, user_agent, context, resolver) for rule in rules
        }

    def _make_client(
        self, rule: AddressRule, user_agent: str, context: ssl.SSLContext, resolver: Resolver
    ) -> httpx.Client:
        transport = httpx.HTTPTransport(verify=context, trust_env=False)
        # httpx does not let a transport choose httpcore's network backend; swap the pool for
        # one whose backend checks addresses and keeps the deadline (aggregator.transport).
        transport._pool = make_pool(rule, ssl_context=context, resolver=resolver)
        return httpx.Client(
            headers={
                "User-Agent": user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT)),
            follow_redirects=False,
            transport=transport,
            trust_env=False,  # no proxies from the environment: they would bypass the rules
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stop()
        for client in self._clients.values():
            client.close()

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
    ) -> FetchResult:
        """Fetch ``url`` once, conditionally when validators are given.

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
            with deadline(self.timeout) as until:
                try:
                    return self._fetch_http(
                        url, etag=etag, last_modified=last_modified, provenance=provenance
                    )
                except httpx.HTTPError as error:
                    expired = time.monotonic() >= until - 0.01
                    raise FetchError(_describe(error, self.timeout, expired=expired)) from None

    # -- HTTP ----------------------------------------------------------------------------------
    def _fetch_http(
        self, url: str, *, etag: str | None, last_modified: str | None, provenance: Provenance
    ) -> FetchResult:
        headers = {}
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
            client = self._client_for(current, hop_provenance)
            with contextlib.ExitStack() as stack:
                try:
                    response = stack.enter_context(client.stream("GET", current, headers=headers))
                except httpx.InvalidURL as error:  # httpx reads a bad Location header itself
                    raise FetchError(
                        f"invalid URL or redirect at {_short(current)}: {error}"
                    ) from None
                status = response.status_code
                if status in REDIRECT_STATUSES and "location" in response.headers:
                    target = _redirect_target(response)
                    if status not in (301, 308):
                        all_permanent = False
                    if target in seen:
                        raise FetchError(f"redirect loop at {_short(target)}", status=status)
                    seen.add(target)
                    current = target
                    if all_permanent:
                        permanent = target
                    # Where a redirect points is not the operator's choice (see addresses.py).
                    hop_provenance = Provenance.found_in(provenance.source_url)
                    continue
                if status == 304:
                    return self._result(url, current, response, None, started, permanent)
                if not 200 <= status < 300:
                    raise _status_error(response)
                body = self._read_body(response)
                if not body:
                    raise FetchError(f"empty response (HTTP {status}, no body)", status=status)
                return self._result(url, current, response, body, started, permanent)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    def _client_for(self, url: str, provenance: Provenance) -> httpx.Client:
        rule = rule_for(url, provenance, allow_private_networks=self.allow_private_networks)
        return self._clients[rule]

    def _read_body(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                f"body of {format_size(int(declared))} is larger than the "
                f"{format_size(self.max_bytes)} limit",
                status=response.status_code,
            )
        try:
            decoder = BoundedDecoder(response.headers.get("content-encoding"), self.max_bytes)
        except DecodingError as error:
            raise FetchError(str(error), status=response.status_code) from None
        body = bytearray()
        received = 0
        try:
            for chunk in response.iter_raw():
                received += len(chunk)
                if received > self.max_bytes:
                    raise FetchError(
                        f"body is larger than the {format_size(self.max_bytes)} limit",
                        status=response.status_code,
                    )
                for piece in decoder.feed(chunk):
                    body += piece
        except DecodingError as error:
            raise FetchError(str(error), status=response.status_code) from None
        return bytes(body)

    def _result(
        self,
        url: str,
        final_url: str,
        response: httpx.Response,
        body: bytes | None,
        started: float,
        permanent: str | None,
    ) -> FetchResult:
        return FetchResult(
            url=url,
            final_url=final_url,
            status=response.status_code,
            headers=dict(response.headers),
            content=body,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            elapsed=time.monotonic() - started,
            permanent_redirect=permanent,
        )

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


def _redirect_target(response: httpx.Response) -> str:
    location = response.headers.get("location", "").strip()
    try:
        target = response.url.join(location)
    except (httpx.InvalidURL, ValueError) as error:
        raise FetchError(
            f"redirect to an invalid URL {location[:200]!r}: {error}",
            status=response.status_code,
        ) from None
    if target.scheme not in ("http", "https"):
        raise BlockedAddressError(
            f"refused to follow a redirect to a {target.scheme or 'relative'}: URL",
            status=response.status_code,
        )
    return str(target)


def _status_error(response: httpx.Response) -> FetchError:
    status = response.status_code
    reason = response.reason_phrase or httpx.codes.get_reason_phrase(status)
    return FetchError(
        f"HTTP {status} {reason}".rstrip(),
        status=status,
        retry_after=_seconds(response.headers.get("retry-after")),
        headers=dict(response.headers),
    )


def _describe(error: httpx.HTTPError, timeout: float, *, expired: bool = False) -> str:
    """One line for an httpx error: what went wrong, in words a user can act on."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, DeadlineExceeded):
        cause = cause.__cause__ or cause.__context__
    if cause is not None or (expired and isinstance(error, httpx.TimeoutException)):
        return f"took longer than the {timeout:g}s limit for one fetch"
    text = _reason(error)
    if isinstance(error, httpx.ConnectTimeout):
        return "timed out while connecting"
    if isinstance(error, httpx.TimeoutException):
        return f"timed out waiting for the server ({type(error).__name__})"
    if isinstance(error, httpx.ConnectError):
        if "SSL" in text or "certificate" in text.lower() or "TLS" in text:
            return f"TLS error: {text}"
        if text.startswith("cannot resolve"):
            return text
        return f"cannot connect: {text}"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"the server broke the HTTP protocol: {text}"
    if isinstance(error, httpx.ReadError | httpx.WriteError):
        return f"connection lost: {text}"
    if isinstance(error, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"invalid URL: {text}"
    return f"{type(error).__name__}: {text}"


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


def _seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    # httpx wraps OSError text such as "[Errno 111] Connection refused"; keep it short.
    text = text.split("] ", 1)[-1] if text.startswith("[Errno") else text
    return text.splitlines()[0][:300] if text else type(error).__name__


def _short(url: str) -> str:
    return url if len(url) <= 200 else url[:197] + "..."
