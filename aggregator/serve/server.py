"""The HTTP app (starlette): published feeds with ETag/Last-Modified/304, the web pages,
``/healthz`` (JSON) and ``/metrics`` (Prometheus text).

Feeds are served from the public folder that :mod:`aggregator.publish.publisher` writes, from an
in-memory cache that is refreshed when a file's mtime or size changes, so a busy reader costs
a ``stat`` and a dictionary lookup. Nothing outside ``<public_dir>/feeds`` is ever served: a
path must match the published names (no ``..``, no other folder), else 404. No error page ever
shows a traceback: an unexpected error answers a short 500 text and is logged. The cache holds
at most :data:`CACHE_BYTES`, least recently used first out. The server that runs the app, and
its guard against idle connections, is :mod:`aggregator.serve.httpserver`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.errors import AggregatorError, NotFoundError
from aggregator.models import SourceState
from aggregator.publish.access import allowed, challenge
from aggregator.publish.links import EXTENSIONS, MEDIA_TYPES
from aggregator.serve.health import assess_health
from aggregator.serve.metrics import Metrics, SourceGauges
from aggregator.serve.responses import (
    CachedFile,
    SecurityHeaders,
    cached_body,
    file_response,
)
from aggregator.serve.status_page import status_routes
from aggregator.serve.web import web_routes
from aggregator.serve.websub import WebSubReceiver, websub_routes
from aggregator.storage import Storage
from aggregator.storage.rows import parse_time

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
log = logging.getLogger(__name__)


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
        modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
        cached = cached_body(body, modified, stamp)
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


def is_loopback(request: Request) -> bool:
    """Whether the request's peer address (the socket's, not a header) is a loopback address.

    No proxy header is believed: behind a reverse proxy on the same host every request looks
    local, so such a setup must not publish ``/healthz`` and ``/metrics`` (or accept that)."""
    client = request.client
    if client is None or not client.host:
        return False
    try:
        address = ipaddress.ip_address(client.host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _output_of(config: AppConfig, path: str) -> OutputConfig | None:
    """The configured output a published path under /feeds/ belongs to, if any."""
    name = path.split("/", 1)[0] if "/" in path else path.rsplit(".", 1)[0]
    try:
        return config.output(name)
    except KeyError:
        return None


def create_app(
    config: AppConfig | Callable[[], AppConfig],
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    expect_polling: bool = False,
    websub: WebSubReceiver | None = None,
) -> Starlette:
    """The starlette application serving one configuration's outputs, ``/healthz`` and
    ``/metrics``.

    ``config`` may be a callable returning the current configuration, so that a daemon's
    reload shows at once. ``metrics`` are the daemon's counters (a bare ``serve`` has only the
    per-source gauges read from the database). ``expect_polling`` makes ``/healthz`` report
    sources whose poll is overdue, which only makes sense while a daemon polls. ``websub`` is
    the daemon's WebSub subscriber: with it, hubs verify and push at ``/websub/{id}``.
    """
    current: Callable[[], AppConfig] = config if callable(config) else (lambda: config)
    feeds_dir = (current().public_dir / "feeds").resolve()
    private_dir = (current().public_dir / "private" / "feeds").resolve()
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
        base = feeds_dir
        output = _output_of(current(), name)
        if output is not None and output.access is not None:
            if not allowed(output.access, request.headers, request.query_params):
                return PlainTextResponse(
                    "This feed needs a credential.\n",
                    status_code=401,
                    headers={
                        "WWW-Authenticate": challenge(output.access),
                        "Cache-Control": "no-store",
                    },
                )
            base = private_dir
        path = (base / name).resolve()
        cached = cache.get(path) if path.is_relative_to(base) else None
        if cached is None:
            return PlainTextResponse(f"No such feed: {name}\n", status_code=404)
        if base is private_dir:  # shared caches must not hand it to others
            return file_response(
                request, cached, _TYPES_BY_EXTENSION[extension], cache_control="private, no-cache"
            )
        return file_response(request, cached, _TYPES_BY_EXTENSION[extension])

    def detailed(request: Request) -> bool:
        return current().server.public_health_details or is_loopback(request)

    def healthz(request: Request) -> Response:  # sync: starlette runs it on its thread pool
        defaults = current().defaults
        headers = {"Cache-Control": "no-store"}
        try:
            states = reader.states()
        except AggregatorError as error:
            answer = {"status": "error", **({"error": str(error)} if detailed(request) else {})}
            return JSONResponse(answer, status_code=503, headers=headers)
        report = assess_health(
            states,
            clock(),
            stale_after=defaults.stale_after,
            overdue_after=OVERDUE_AFTER if expect_polling else None,
        )
        answer = report.as_json() if detailed(request) else report.as_counts()
        return JSONResponse(answer, headers=headers)

    def metrics_page(request: Request) -> Response:
        body, content_type = metrics.render(per_source=detailed(request))
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
        *(websub_routes(websub, current) if websub is not None else []),
    ]
    app = Starlette(routes=routes, exception_handlers={Exception: internal_error})
    app.add_middleware(SecurityHeaders)
    return app
