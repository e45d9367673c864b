"""Shared fixtures: a real feed server on 127.0.0.1, config files in tmp_path, free ports.

Nothing here mocks an HTTP client or a database: tests talk to a thread HTTP server over a real
socket and use a real SQLite file under ``tmp_path``.

- ``feed_server``: a :class:`FeedServer`; ``feed_server.serve_feed("/x.rss", "formats/rss2.rss")``
  serves a fixture with ETag and Last-Modified (304 on a matching conditional request) and
  returns its URL; ``route(...)`` answers any status, headers, delay or gzip;
  ``requests_for(path)`` lists what clients sent.
- ``write_config(sources=[...], outputs=[...], **top)``: a YAML config in tmp_path whose
  database and public_dir are under ``tmp_path/var``; returns its path.
- ``free_port``: a TCP port on 127.0.0.1 that nothing listens on.
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import re
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml
from blogsim import START, Blog
from factories import Clock
from pytest_httpserver import HTTPServer
from quiet_server import QuietServer
from werkzeug.wrappers import Request, Response

from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig

FEEDS = Path(__file__).parent / "data" / "feeds"

CONTENT_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def feed_bytes(name: str) -> bytes:
    """The bytes of a fixture under ``tests/data/feeds`` (e.g. ``"formats/rss2.rss"``)."""
    return (FEEDS / name).read_bytes()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the feed server ---------------------------------------------------------------------------


@dataclass
class Route:
    """What the feed server answers for one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/xml"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    gzip: bool = False
    send_length: bool = True  # False: no Content-Length, the body ends when the connection closes


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names


class FeedServer:
    """A thread HTTP/1.1 server on 127.0.0.1 serving configurable routes.

    A route with an ``etag`` or ``last_modified`` answers 304 to a matching conditional request
    (If-None-Match is compared verbatim and wins over If-Modified-Since, as RFC 9110 says).
    Every request is recorded with its headers, so tests can assert what the client sent.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._revision = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server._handle(self)

            def do_HEAD(self) -> None:  # noqa: N802
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # a handler sleeping for a timeout test must not block
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- configuring routes ----------------------------------------------------------------------
    def route(self, path: str, **kwargs: Any) -> str:
        """Answer ``path`` with a :class:`Route` built from ``kwargs``; returns the full URL."""
        with self._lock:
            self.routes[path] = Route(**kwargs)
        return self.url(path)

    def serve_feed(
        self,
        path: str,
        fixture: str | bytes,
        *,
        validators: bool = True,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Serve a fixture file (or bytes) with an ETag and Last-Modified; returns the URL.

        Calling it again for the same path with other bytes gives new validators, as a real
        server does when the file changes.
        """
        body = fixture if isinstance(fixture, bytes) else feed_bytes(fixture)
        if content_type is None:
            suffix = Path(fixture).suffix if isinstance(fixture, str) else ".rss"
            content_type = CONTENT_TYPES.get(suffix, "application/xml")
        etag = last_modified = None
        if validators:
            with self._lock:
                self._revision += 1
                revision = self._revision
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            last_modified = formatdate(1_700_000_000 + revision * 60, usegmt=True)
        return self.route(
            path,
            body=body,
            content_type=content_type,
            etag=etag,
            last_modified=last_modified,
            **kwargs,
        )

    def redirect(self, path: str, to: str, status: int = 301) -> str:
        return self.route(path, status=status, headers={"Location": to})

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    # -- answering -------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {key.lower(): value for key, value in handler.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(handler.command, handler.path, headers))
            route = self.routes.get(handler.path)
        if route is None:
            self._send(handler, 404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        if route.delay:
            time.sleep(route.delay)
        out = {"Content-Type": route.content_type, **route.headers}
        if route.etag:
            out["ETag"] = route.etag
        if route.last_modified:
            out["Last-Modified"] = route.last_modified
        if route.status == 200 and _matches(headers, route):
            self._send(handler, 304, {k: v for k, v in out.items() if k != "Content-Type"}, b"")
            return
        body = route.body
        if route.gzip and "gzip" in headers.get("accept-encoding", ""):
            body = gzip_module.compress(body)
            out["Content-Encoding"] = "gzip"
        self._send(handler, route.status, out, body, send_length=route.send_length)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        send_length: bool = True,
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        if not send_length:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        elif status != 304:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD" and status != 304:
            handler.wfile.write(body)


def _matches(headers: Mapping[str, str], route: Route) -> bool:
    if "if-none-match" in headers:
        return route.etag is not None and headers["if-none-match"] == route.etag
    if "if-modified-since" in headers:
        return (
            route.last_modified is not None and headers["if-modified-since"] == route.last_modified
        )
    return False


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A fresh :class:`FeedServer` on a free port of 127.0.0.1."""
    server = FeedServer().start()
    try:
        yield server
    finally:
        server.stop()


# -- configuration files -----------------------------------------------------------------------


def make_config_file(
    folder: Path,
    *,
    sources: Sequence[Mapping[str, Any]] = (),
    outputs: Sequence[Mapping[str, Any]] = ({"name": "all"},),
    name: str = "aggregator.yaml",
    **top: Any,
) -> Path:
    """Write a YAML config into ``folder`` whose database and public_dir live in ``folder/var``.

    ``top`` adds or overrides top-level keys (``server={"port": 8123}``, ``defaults=...``).
    """
    data: dict[str, Any] = {
        "database": "var/aggregator.db",
        "public_dir": "var/public",
        "defaults": {"timeout": "5s"},
        **top,
        "sources": [dict(source) for source in sources],
        "outputs": [dict(output) for output in outputs],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def write_config(tmp_path: Path):
    """``write_config(sources=[...], outputs=[...], **top) -> Path`` of a config in tmp_path."""

    def write(
        sources: Sequence[Mapping[str, Any]] = (),
        outputs: Sequence[Mapping[str, Any]] = ({"name": "all"},),
        **top: Any,
    ) -> Path:
        return make_config_file(tmp_path, sources=sources, outputs=outputs, **top)

    return write


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def blogs(httpserver: HTTPServer) -> Callable[..., Blog]:
    """A factory of blogs served by one local server, each under its own path prefix."""
    served: dict[str, Blog] = {}

    def dispatch(request: Request) -> Response:
        for prefix, blog in served.items():
            if request.path.startswith(prefix + "/"):
                return blog.handle(request)
        return Response("not found", status=404)

    httpserver.expect_request(re.compile(r"^/")).respond_with_handler(dispatch)
    origin = httpserver.url_for("/").rstrip("/")

    def make(prefix: str, kind: str, **options: object) -> Blog:
        blog = Blog(origin, prefix, kind, **options)  # type: ignore[arg-type]
        served[blog.prefix] = blog
        return blog

    return make


@pytest.fixture
def write_yaml_config(tmp_path: Path) -> Callable[[str], AppConfig]:
    """Write a YAML config (database and public folder in ``tmp_path``) and load it."""

    def write(body: str) -> AppConfig:
        path = tmp_path / "aggregator.yaml"
        header = (
            f"database: {tmp_path / 'aggregator.db'}\n"
            f"public_dir: {tmp_path / 'public'}\n"
            "server:\n  base_url: https://feeds.example.org\n"
        )
        path.write_text(header + textwrap.dedent(body), encoding="utf-8")
        return load_config(path)

    return write


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_port()


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver listens on 127.0.0.1 (not "localhost", which may resolve elsewhere)."""
    return ("127.0.0.1", 0)
