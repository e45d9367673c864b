"""Fetch feeds and pages: conditional GET over HTTP(S), and local files.

The :class:`Fetcher` returns a :class:`~aggregator.models.FetchResult` or raises
:class:`~aggregator.errors.FetchError`. It decides nothing about *when* to fetch; it only does the
request politely: it sends the stored validators verbatim, names itself in the User-Agent,
limits redirects and body size, and reports permanent redirects and Retry-After to the caller.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from aggregator.config import DEFAULT_USER_AGENT
from aggregator.errors import FetchError
from aggregator.models import FetchResult

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, text/html;q=0.6, */*;q=0.1"
)


class Fetcher:
    """One HTTP client shared by many fetches (connection reuse), plus file access.

    ``file_roots`` lists the folders that ``file://`` URLs may read from; a file elsewhere is
    refused. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float = 30.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        file_roots: Sequence[Path] = (),
        transport: httpx.BaseTransport | None = None,
    ):
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.file_roots = tuple(Path(root).resolve() for root in file_roots)
        self._client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept": ACCEPT},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            transport=transport,
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """Fetch ``url`` once, conditionally when validators are given."""
        if urlsplit(url).scheme == "file":
            return self._fetch_file(url, etag=etag)
        return self._fetch_http(url, etag=etag, last_modified=last_modified)

    # -- HTTP ----------------------------------------------------------------------------------
    def _fetch_http(self, url: str, *, etag: str | None, last_modified: str | None) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        started = time.monotonic()
        deadline = started + self.timeout * 2
        current = url
        permanent: str | None = None
        all_permanent = True
        seen = {url}
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with self._client.stream("GET", current, headers=headers) as response:
                    # Not response.is_redirect: httpx counts every 3xx, 304 Not Modified too.
                    if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                        target = str(response.url.join(response.headers.get("location", "")))
                        if response.status_code not in (301, 308):
                            all_permanent = False
                        if target in seen:
                            raise FetchError(
                                f"redirect loop at {target}", status=response.status_code
                            )
                        seen.add(target)
                        current = target
                        if all_permanent:
                            permanent = target
                        continue
                    body = (
                        self._read_body(response, deadline) if response.status_code != 304 else None
                    )
                    return self._result(url, current, response, body, started, permanent)
            except httpx.TimeoutException as error:
                raise FetchError(f"timed out ({type(error).__name__})") from None
            except httpx.TransportError as error:
                raise FetchError(f"cannot connect: {_reason(error)}") from None
            except httpx.InvalidURL as error:
                raise FetchError(f"invalid URL: {error}") from None
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                f"body of {int(declared)} bytes is larger than the {self.max_bytes}-byte limit",
                status=response.status_code,
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(
                    f"body is larger than the {self.max_bytes}-byte limit",
                    status=response.status_code,
                )
            if time.monotonic() > deadline:
                raise FetchError("timed out (total deadline)", status=response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    def _result(
        self,
        url: str,
        final_url: str,
        response: httpx.Response,
        body: bytes | None,
        started: float,
        permanent: str | None,
    ) -> FetchResult:
        status = response.status_code
        if status >= 400:
            retry_after = response.headers.get("retry-after")
            raise FetchError(
                f"HTTP {status} {response.reason_phrase}".rstrip(),
                status=status,
                retry_after=_seconds(retry_after),
                headers=dict(response.headers),
            )
        return FetchResult(
            url=url,
            final_url=final_url,
            status=status,
            headers=dict(response.headers),
            content=body,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            elapsed=time.monotonic() - started,
            permanent_redirect=permanent,
        )

    # -- files ---------------------------------------------------------------------------------
    def _fetch_file(self, url: str, *, etag: str | None) -> FetchResult:
        path = file_url_path(url)
        if self.file_roots and not any(_is_under(path, root) for root in self.file_roots):
            raise FetchError(f"{path} is outside the folders file URLs may read")
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
                    f"file of {stat.st_size} bytes is larger than the {self.max_bytes}-byte limit"
                )
            content = path.read_bytes()
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
    """The filesystem path a ``file://`` URL names."""
    parts = urlsplit(url)
    return Path(unquote(parts.path)).resolve()


def body_hash(content: bytes) -> str:
    """A digest of a body, so that a 200 with an unchanged body counts as unchanged."""
    return hashlib.sha256(content).hexdigest()


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
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text


def file_roots_for(folder: Path) -> tuple[Path, ...]:
    """The default folders file URLs may read: the config file's own folder."""
    return (Path(os.path.realpath(folder)),)
