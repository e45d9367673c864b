"""A hostile HTTP server on 127.0.0.1: one misbehaviour per path, written at the socket level.

Used by the fetch, daemon and kill-and-restart tests. Each case is a function that gets the
raw socket after the request head was read and writes whatever it likes (or nothing). Slow
cases stop by themselves after at most ``MAX_CASE_SECONDS`` or when the client goes away, so a
test run never leaves traffic behind. Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

MAX_CASE_SECONDS = 20.0
Case = Callable[["Request"], None]


class Request:
    """One request as the server saw it, with helpers to answer."""

    def __init__(self, sock: socket.socket, method: str, path: str, headers: dict[str, str]):
        self.sock = sock
        self.method = method
        self.path = path
        self.headers = headers

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def respond(
        self,
        body: bytes,
        *,
        status: str = "200 OK",
        content_type: str = "application/rss+xml",
        headers: dict[str, str] | None = None,
        length: bool = True,
    ) -> None:
        head = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", "Connection: close"]
        if length:
            head.append(f"Content-Length: {len(body)}")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def trickle(self, data: bytes, every: float) -> None:
        """Send ``data`` one byte at a time, ``every`` seconds apart, until done or stopped."""
        stop_at = time.monotonic() + MAX_CASE_SECONDS
        for byte in data:
            if time.monotonic() > stop_at or not self.send(bytes([byte])):
                return
            time.sleep(every)


class HostileServer:
    """Serves ``cases`` (path -> case) on 127.0.0.1; also records every request path seen."""

    def __init__(self, cases: dict[str, Case] | None = None):
        self.cases: dict[str, Case] = dict(cases or {})
        self.seen: list[str] = []
        self.seen_at: list[tuple[str, float]] = []  # (path, time.monotonic())
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 64

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> HostileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(MAX_CASE_SECONDS)
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) < 2:
                return
            method, path = parts[0], parts[1]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            self.seen.append(path)
            self.seen_at.append((path, time.monotonic()))
            case = self.cases.get(path.split("?", 1)[0])
            request = Request(sock, method, path, headers)
            if case is None:
                request.respond(b"not here\n", status="404 Not Found", content_type="text/plain")
            else:
                case(request)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


# -- documents -----------------------------------------------------------------------------


def rss(items: str, *, title: str = "Test feed", extra_ns: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
        f'xmlns:slash="http://purl.org/rss/1.0/modules/slash/" {extra_ns}>'
        f"<channel><title>{title}</title><link>http://example.org/</link>"
        f"<description>d</description>{items}</channel></rss>"
    ).encode()


def item(n: int, *, date: str | None = "Mon, 02 Nov 2026 10:00:00 +0000", extra: str = "") -> str:
    pub = f"<pubDate>{date}</pubDate>" if date else ""
    return (
        f"<item><title>Post {n}</title><link>http://example.org/{n}</link>"
        f"<guid>post-{n}</guid>{pub}<description>Body {n}</description>{extra}</item>"
    )


def good_feed(count: int = 3, title: str = "Good feed") -> bytes:
    return rss("".join(item(n) for n in range(count)), title=title)


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']>\n<rss version="2.0"><channel><title>Laughs &lol3;</title>'
    + b"<item><title>lol</title><guid>lol</guid><description>&lol9;</description></item>"
    + b"</channel></rss>"
)
# The same bomb with a comment before the DOCTYPE: feedparser's own DOCTYPE stripping (a
# regex over the text before the first "<letter") stops at the "<x" in the comment.
BILLION_LAUGHS_BEHIND_COMMENT = BILLION_LAUGHS.replace(
    b'<?xml version="1.0"?>\n', b'<?xml version="1.0"?>\n<!-- <x -->\n', 1
)
QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "'
    + b"A" * 50_000
    + b'">\n]>\n<rss version="2.0"><channel><title>q</title><item><title>q</title>'
    + b"<guid>q</guid><description>"
    + b"&a;" * 20_000
    + b"</description></item></channel></rss>"
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
    b'<!ENTITY file SYSTEM "file:///etc/passwd">\n'
    b'<!ENTITY remote SYSTEM "http://127.0.0.1:{port}/xxe-fetched">\n'
    b'<!ENTITY % param SYSTEM "http://127.0.0.1:{port}/xxe-param">\n%param;\n]>\n'
    b'<rss version="2.0"><channel><title>XXE</title><item><title>t &file;</title>'
    b"<guid>xxe</guid><description>&remote;</description></item></channel></rss>"
)


def gzip_bomb(size: int = 200 * 1024 * 1024) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


# -- cases ---------------------------------------------------------------------------------


def static(body: bytes, **kwargs: object) -> Case:
    def case(request: Request) -> None:
        request.respond(body, **kwargs)  # type: ignore[arg-type]

    return case


def status(code: int, reason: str = "") -> Case:
    return static(
        f"status {code}\n".encode(), status=f"{code} {reason}".strip(), content_type="text/plain"
    )


def redirect(location: str, code: int = 302) -> Case:
    return static(b"", status=f"{code} Redirect", headers={"Location": location})


def trickle_body(every: float = 0.1) -> Case:
    def case(request: Request) -> None:
        body = good_feed(50)
        request.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        request.trickle(body, every)

    return case


def trickle_headers(every: float = 0.1) -> Case:
    def case(request: Request) -> None:
        request.trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 2000 + b"\r\n\r\n", every)

    return case


def hang(request: Request) -> None:
    """Read the request and say nothing until the client leaves (or the case times out)."""
    request.sock.settimeout(MAX_CASE_SECONDS)
    with contextlib.suppress(OSError):
        request.sock.recv(1)


def endless(request: Request) -> None:
    """A body with no length that never ends (stops when the client leaves)."""
    request.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n")
    chunk = b"<item><title>x</title></item>" * 1000
    stop_at = time.monotonic() + MAX_CASE_SECONDS
    while time.monotonic() < stop_at and request.send(chunk):
        pass


def reset_mid_body(request: Request) -> None:
    request.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 5000\r\n\r\n"
        + good_feed(3)[:100]
    )
    request.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")


def garbage(request: Request) -> None:
    request.send(b"HELLO THIS IS NOT HTTP\r\n\r\n")


def huge_header(request: Request) -> None:
    request.send(
        b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\nok"
    )


def http_date(offset: timedelta = timedelta()) -> str:
    return format_datetime(datetime.now(UTC) + offset, usegmt=True)


def gzip_body(body: bytes, **kwargs: object) -> Case:
    return static(gzip.compress(body), headers={"Content-Encoding": "gzip"}, **kwargs)
