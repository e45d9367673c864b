"""HTTP answers shared by the feeds and the web pages: bodies kept with their ETag and gzipped
copy, conditional answers (``ETag``/``Last-Modified`` → 304), and the security headers that
every answer carries.

Every answer gets ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``;
an answer without a Content-Security-Policy of its own gets :data:`DEFAULT_CSP` (nothing may
load, no framing). The HTML pages set theirs with :func:`page_csp`: scripts from nowhere,
styles only from our own ``/static/`` files (no inline style or script anywhere), remote
images and media only where the output keeps them (``images: keep``).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: For answers that load nothing (feeds, JSON, text, errors).
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_PAGE_CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; object-src 'none'; "
    "frame-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "img-src {images}; media-src {media}"
)
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def page_csp(remote_images: bool) -> str:
    """The Content-Security-Policy of an HTML page: remote images and media (the republished
    content's) only when ``remote_images``; otherwise our own and ``data:`` images only."""
    if remote_images:
        return _PAGE_CSP.format(images="'self' data: https: http:", media="'self' https: http:")
    return _PAGE_CSP.format(images="'self' data:", media="'self'")


class SecurityHeaders:
    """ASGI middleware: the common security headers on every answer, and
    :data:`DEFAULT_CSP` on answers that did not set a policy of their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name for name, _ in headers}
                headers.extend(h for h in _COMMON_HEADERS if h[0] not in names)
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", DEFAULT_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True)
class CachedFile:
    """A body ready to serve: its gzipped copy, ETag and Last-Modified, and the stamp of
    whatever it was made from (a file's mtime and size, a page's published feeds)."""

    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    stamp: tuple[object, ...]


def cached_body(body: bytes, last_modified: datetime, stamp: tuple[object, ...]) -> CachedFile:
    """``body`` with its gzipped copy and a strong ETag (a hash of the bytes)."""
    return CachedFile(
        body=body,
        gzipped=gzip.compress(body, compresslevel=6, mtime=0),
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        last_modified=last_modified.replace(microsecond=0),
        stamp=stamp,
    )


def not_modified(request: Request, cached: CachedFile) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since."""
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in match.split(",")}
        return "*" in tags or cached.etag in tags
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return cached.last_modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def file_response(
    request: Request,
    cached: CachedFile,
    media_type: str,
    *,
    cache_control: str = "public, max-age=300",
    headers: dict[str, str] | None = None,
) -> Response:
    """A conditional, optionally gzipped response for a cached body."""
    headers = {
        "ETag": cached.etag,
        "Last-Modified": format_datetime(cached.last_modified, usegmt=True),
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding",
        **(headers or {}),
    }
    if not_modified(request, cached):
        return Response(status_code=304, headers=headers)
    body = cached.body
    if "gzip" in request.headers.get("accept-encoding", "") and len(body) > 512:
        body = cached.gzipped
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(status_code=200, headers=headers, media_type=media_type)
    return Response(body, headers=headers, media_type=media_type)
