"""The HTTP app (starlette): published feeds with ETag/Last-Modified/304, the web pages,
``/healthz`` (JSON) and ``/metrics`` (Prometheus text).

Feeds are served from the public folder that :mod:`aggregator.publish` writes, from an
in-memory cache that is refreshed when a file's mtime or size changes, so a busy reader costs
a ``stat`` and a dictionary lookup. Nothing outside ``<public_dir>/feeds`` is ever served: a
path must match the published names (no ``..``, no other folder), else 404. No error page ever
shows a traceback: an unexpected error answers a short 500 text and is logged. The cache holds
at most :data:`CACHE_BYTES`, least recently used first out, and uvicorn runs with
:data:`SERVER_LIMITS` (bounded connections, header size and idle time).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator.config import AppConfig
from aggregator.errors import AggregatorError, NotFoundError
from aggregator.health import assess_health
from aggregator.metrics import Metrics, SourceGauges
from aggregator.models import SourceState
from aggregator.publish import EXTENSIONS, MEDIA_TYPES
from aggregator.status_page import status_routes
from aggregator.storage import Storage, parse_time
from aggregator.web import web_routes

# A source whose poll is this late while the daemon runs means the scheduler is stuck.
OVERDUE_AFTER = timedelta(hours=1)

_FEED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Published paths under /feeds/: an output, one of its older pages (RFC 5005), its latest
# comments, or one entry's comment feed.
_FEED_PATH = re.compile(
    r"^(?:[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*"
    r"|[A-Za-z0-9][A-Za-z0-9._-]*/page/[1-9][0-9]{0,5}"
    r"|[A-Za-z0-9][A-Za-z0-9._-]*/(?:[0-9a-f]{32}/)?comments)\.(atom|rss|json)$"
)
_TYPES_BY_EXTENSION = {ext: MEDIA_TYPES[fmt] for fmt, ext in EXTENSIONS.items()}
#: Published files kept in memory at most (bodies and their gzipped copies).
CACHE_BYTES = 64 * 1024 * 1024
#: uvicorn settings that bound what one client can hold: connections and tasks at once, the
#: size of an unfinished request head (h11), and how long an idle keep-alive connection stays.
SERVER_LIMITS: dict[str, int] = {
    "limit_concurrency": 256,
    "h11_max_incomplete_event_size": 16 * 1024,
    "timeout_keep_alive": 5,
    "backlog": 256,
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedFile:
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    stamp: tuple[int, int]


class FileCache:
    """Published files kept in memory, keyed by path, refreshed when the file changes.

    Holds at most ``max_bytes``; the least recently served files leave first.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self._files: OrderedDict[Path, CachedFile] = OrderedDict()
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.size = 0

    def get(self, path: Path) -> CachedFile | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._files.get(path)
            if cached and cached.stamp == stamp:
                self._files.move_to_end(path)
                return cached
        try:
            body = path.read_bytes()
        except OSError:
            return None
        cached = CachedFile(
            body=body,
            gzipped=gzip.compress(body, compresslevel=6, mtime=0),
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC).replace(microsecond=0),
            stamp=stamp,
        )
        with self._lock:
            old = self._files.pop(path, None)
            if old is not None:
                self.size -= len(old.body) + len(old.gzipped)
            self._files[path] = cached
            self.size += len(body) + len(cached.gzipped)
            while self.size > self.max_bytes and len(self._files) > 1:
                _, evicted = self._files.popitem(last=False)
                self.size -= len(evicted.body) + len(evicted.gzipped)
        return cached


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


def file_response(request: Request, cached: CachedFile, media_type: str) -> Response:
    """A conditional, optionally gzipped response for a cached file."""
    headers = {
        "ETag": cached.etag,
        "Last-Modified": format_datetime(cached.last_modified, usegmt=True),
        "Cache-Control": "public, max-age=300",
        "Vary": "Accept-Encoding",
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


class _StateReader:
    """Reads source states for ``/healthz`` and ``/metrics`` through one lazily opened
    connection (request handlers run on a thread pool, so access is serialized)."""

    def __init__(self, config: Callable[[], AppConfig]):
        self._config = config
        self._storage: Storage | None = None
        self._lock = threading.Lock()

    def states(self) -> list[SourceState]:
        config = self._config()
        with self._lock:
            if self._storage is None:
                self._storage = Storage(config.database)
            states = []
            for source in config.sources:
                try:
                    states.append(self._storage.get_source(source.name))
                except NotFoundError:
                    continue  # configured but not polled yet: nothing to judge
            return states

    def gauges(self) -> list[SourceGauges]:
        config = self._config()
        configured = {source.name for source in config.sources}
        try:
            with self._lock:
                if self._storage is None:
                    self._storage = Storage(config.database)
                rows = self._storage.list_source_rows()
        except AggregatorError:
            return []
        return [
            SourceGauges(
                name=row["name"],
                entries=row["entry_count"],
                comments=row["comment_total"],
                error_count=row["error_count"],
                retired=row["retired_at"] is not None,
                next_poll_at=parse_time(row["next_poll_at"]),
                last_success_at=parse_time(row["last_success_at"]),
            )
            for row in rows
            if row["name"] in configured
        ]


def create_app(
    config: AppConfig | Callable[[], AppConfig],
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    expect_polling: bool = False,
) -> Starlette:
    """The starlette application serving one configuration's outputs, ``/healthz`` and
    ``/metrics``.

    ``config`` may be a callable returning the current configuration, so that a daemon's
    reload shows at once. ``metrics`` are the daemon's counters (a bare ``serve`` has only the
    per-source gauges read from the database). ``expect_polling`` makes ``/healthz`` report
    sources whose poll is overdue, which only makes sense while a daemon polls.
    """
    current: Callable[[], AppConfig] = config if callable(config) else (lambda: config)
    feeds_dir = (current().public_dir / "feeds").resolve()
    cache = FileCache()
    reader = _StateReader(current)
    if metrics is None:
        metrics = Metrics(sources=reader.gauges)
    else:
        metrics.add_sources(reader.gauges)

    async def feed(request: Request) -> Response:
        name = request.path_params["name"]
        match = _FEED_PATH.match(name)
        if not match or ".." in name:
            return PlainTextResponse("No such feed.\n", status_code=404)
        extension = match.group(1)
        path = (feeds_dir / name).resolve()
        cached = cache.get(path) if path.is_relative_to(feeds_dir) else None
        if cached is None:
            return PlainTextResponse(f"No such feed: {name}\n", status_code=404)
        return file_response(request, cached, _TYPES_BY_EXTENSION[extension])

    def healthz(request: Request) -> Response:  # sync: starlette runs it on its thread pool
        defaults = current().defaults
        try:
            states = reader.states()
        except AggregatorError as error:
            return JSONResponse({"status": "error", "error": str(error)}, status_code=503)
        report = assess_health(
            states,
            clock(),
            stale_after=defaults.stale_after,
            overdue_after=OVERDUE_AFTER if expect_polling else None,
        )
        return JSONResponse(report.as_json(), headers={"Cache-Control": "no-store"})

    def metrics_page(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(
            body,
            media_type=content_type.split(";")[0],
            headers={"Content-Type": content_type, "Cache-Control": "no-store"},
        )

    async def internal_error(request: Request, error: Exception) -> Response:
        # Never a traceback on the wire; the log has it.
        log.error("error serving %s: %r", request.url.path, error, exc_info=error)
        return PlainTextResponse("Internal server error.\n", status_code=500)

    routes = [
        *web_routes(current),
        *status_routes(current, clock),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/feeds/{name:path}", feed, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes, exception_handlers={Exception: internal_error})
