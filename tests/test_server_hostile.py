"""The HTTP server under hostile requests: only published feeds are served, errors are short
texts without tracebacks, and an oversized request head is refused while the server goes on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response

from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.config.server import ServerConfig
from aggregator.serve.httpserver import make_server
from aggregator.serve.server import FileCache, create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    root = tmp_path_factory.mktemp("site")
    public = root / "public"
    (public / "feeds").mkdir(parents=True)
    (public / "feeds" / "all.atom").write_text("<feed/>")
    (public / "secret.txt").write_text("secret")
    (root / "aggregator.yaml").write_text("database: x\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = AppConfig(
        database=root / "x.db",
        public_dir=public,
        server=ServerConfig(port=port),
        outputs=(OutputConfig(name="all"),),
    )
    app = create_app(config)

    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug with a secret /etc/aggregator path")

    app.add_route("/boom", boom)
    server = make_server(app, config.server, log_level="critical")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield port, root
    server.should_exit = True
    thread.join(5)


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def get(port: int, target: str) -> tuple[int, bytes]:
    answer = raw(port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_a_published_feed_is_served(served: tuple[int, Path]) -> None:
    assert get(served[0], "/feeds/all.atom") == (200, b"<feed/>")


@pytest.mark.parametrize(
    "target",
    [
        "/feeds/../secret.txt",
        "/feeds/%2e%2e/secret.txt",
        "/feeds/..%2fsecret.txt",
        "/feeds/%2e%2e%2f%2e%2e%2faggregator.yaml",
        "/feeds//etc/passwd",
        "/feeds/all.atom/../../secret.txt",
        "/feeds/all/..%2F..%2Fsecret.txt",
        "/feeds/..\\secret.txt",
        "/feeds/%00all.atom",
        "/secret.txt",
        "/../../etc/passwd",
        "/feeds/all.atom%00.txt",
    ],
)
def test_nothing_outside_the_feeds_folder_is_served(served: tuple[int, Path], target: str) -> None:
    status, body = get(served[0], target)
    assert status in (400, 404)
    assert b"secret" not in body and b"root:" not in body


def test_an_error_is_a_short_text_without_traceback(served: tuple[int, Path]) -> None:
    status, body = get(served[0], "/boom")
    assert status == 500
    assert body == b"Internal server error.\n"


def test_an_oversized_request_head_is_refused_and_the_server_goes_on(
    served: tuple[int, Path],
) -> None:
    port = served[0]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        # A head that keeps growing without ending: h11 holds at most 16 KB of it.
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
        time.sleep(0.3)
        try:
            sock.sendall(b"a" * 40_000 + b"\r\n\r\n")
            answer = sock.recv(65536)
        except OSError:
            answer = b""
    assert answer == b"" or answer.split(b" ")[1] in (b"400", b"431")
    assert get(port, "/feeds/all.atom")[0] == 200


def test_unknown_methods_are_refused(served: tuple[int, Path]) -> None:
    answer = raw(
        served[0], b"DELETE /feeds/all.atom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert answer.split(b" ")[1] == b"405"


def test_the_file_cache_is_bounded(tmp_path: Path) -> None:
    cache = FileCache(max_bytes=50_000)
    for n in range(20):
        path = tmp_path / f"{n}.atom"
        path.write_bytes(bytes([n]) * 10_000)
        assert cache.get(path) is not None
    assert cache.size <= 50_000 + 20_000
