"""A real HTTP server on 127.0.0.1 whose answers are scripted per path, over a driven clock.

Each path has a queue of answers (the last one repeats); an answer is a status, headers and a
body, or a callable building one from the request time. Every request is logged with the
*test's* clock time, so a test can check that no request came earlier than a hint allowed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler

from factories import Clock
from quiet_server import QuietServer


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Script = Answer | Callable[[datetime], Answer]


@dataclass(frozen=True)
class Request:
    path: str
    at: datetime
    headers: dict[str, str]


class ScriptedServer:
    """Serves scripted answers; use as a context manager."""

    def __init__(self, clock: Clock | None = None):
        self.clock = clock or Clock()
        self.log: list[Request] = []
        self._scripts: dict[str, list[Script]] = {}
        self._lock = threading.Lock()
        self.delay = 0.0  # seconds each answer waits (for concurrency tests)
        self.arrived = threading.Event()  # set by every request
        self.hold: threading.Event | None = None  # when set, requests wait until it is set
        self.active = 0
        self.max_active = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Script) -> None:
        with self._lock:
            self._scripts[path] = list(answers)

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.log if path is None or r.path == path]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.hold is not None:
            self.hold.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        import time

        at = self.clock()
        with self._lock:
            self.log.append(Request(handler.path, at, dict(handler.headers.items())))
            queue = self._scripts.get(handler.path)
            script = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Answer(404)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.arrived.set()
        try:
            if self.hold is not None:
                self.hold.wait(30)
            if self.delay:
                time.sleep(self.delay)
            answer = script(at) if callable(script) else script
        finally:
            # A request is active until its answer starts: once the client has the whole
            # answer it may send the next one while this thread is still finishing the write,
            # which a loaded machine can delay (that would count two at once falsely).
            with self._lock:
                self.active -= 1
        handler.send_response(answer.status)
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)


def http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(UTC), usegmt=True)


def rss(*items: tuple[str, datetime], ttl: int | None = None, extra: str = "") -> bytes:
    """A small RSS 2.0 feed: one item per (guid, date)."""
    body = "".join(
        f"<item><title>{guid}</title><guid>{guid}</guid><link>http://example.org/{guid}</link>"
        f"<pubDate>{http_date(at)}</pubDate></item>"
        for guid, at in items
    )
    ttl_element = f"<ttl>{ttl}</ttl>" if ttl is not None else ""
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>scripted</title>'
        f"<link>http://example.org/</link><description>d</description>{ttl_element}{extra}"
        f"{body}</channel></rss>"
    ).encode()
