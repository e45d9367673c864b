"""A forward HTTP proxy on 127.0.0.1 for tests: it answers absolute-URI requests by fetching
them itself, records what it received, and can map host names to local servers (so a source
at ``http://feeds.invalid/`` is reachable only through it)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from quiet_server import QuietServer


class ForwardProxy:
    """``requests``: (absolute URL, lower-case headers) of every request it received."""

    def __init__(self, hosts: Mapping[str, tuple[str, int]] | None = None) -> None:
        self.hosts = dict(hosts or {})
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                proxy._forward(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {key.lower(): value for key, value in handler.headers.items()}
        with self._lock:
            self.requests.append((handler.path, headers))
        parts = urlsplit(handler.path)
        host, port = self.hosts.get(parts.hostname or "", (parts.hostname, parts.port or 80))
        connection = http.client.HTTPConnection(str(host), int(port or 80), timeout=5)
        forwarded = {
            key: value
            for key, value in handler.headers.items()
            if key.lower() not in ("proxy-authorization", "proxy-connection", "connection")
        }
        connection.request("GET", parts.path or "/", headers=forwarded)
        response = connection.getresponse()
        body = response.read()
        handler.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        connection.close()
