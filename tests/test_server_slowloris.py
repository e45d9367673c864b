"""The HTTP server under an idle-connection flood (slowloris), on a real socket.

Thousands of connections that send nothing, or an unfinished request head, must not keep the
server from answering others; each is closed once ``server.header_timeout`` has passed without
a complete head, and over ``server.max_connections`` the longest idle connection goes first.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.config.server import ServerConfig
from aggregator.serve.httpserver import Server, make_server
from aggregator.serve.server import create_app

IDLE = 1200
HALF_SENT = 300


@contextlib.contextmanager
def running(tmp_path: Path, **server: object) -> Iterator[int]:
    public = tmp_path / "public"
    (public / "feeds").mkdir(parents=True, exist_ok=True)
    (public / "feeds" / "all.atom").write_text("<feed/>")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = AppConfig(
        database=tmp_path / "x.db",
        public_dir=public,
        server=ServerConfig(port=port, **server),  # type: ignore[arg-type]
        outputs=(OutputConfig(name="all"),),
    )
    instance: Server = make_server(create_app(config), config.server, log_level="critical")
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        instance.should_exit = True
        thread.join(10)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def timed_get(port: int, target: str = "/feeds/all.atom") -> tuple[int, float]:
    """(status, seconds) of one complete request on a fresh connection."""
    started = time.monotonic()
    with connect(port) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), time.monotonic() - started


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if min(soft, hard) < 2 * (IDLE + HALF_SENT) + 200 and hard < 2 * (IDLE + HALF_SENT) + 200:
        pytest.skip(f"the open files limit ({hard}) is too low for {IDLE + HALF_SENT} sockets")
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def test_requests_are_served_while_thousands_of_idle_connections_are_held(
    tmp_path: Path, sockets: list[socket.socket]
) -> None:
    with running(tmp_path, header_timeout=60) as port:
        for _ in range(IDLE):
            sockets.append(connect(port))
        for number in range(HALF_SENT):
            sock = connect(port)
            sock.sendall(f"GET /feeds/all.atom?{number} HTTP/1.1\r\nHost: x\r\n".encode())
            sockets.append(sock)
        for _ in range(5):
            status, seconds = timed_get(port)
            assert status == 200
            assert seconds < 2.0
        # The flood is still there: nothing was closed to make room (the cap is far above it).
        assert not closed_by_server(sockets[0], within=0.2)


def test_a_connection_without_a_complete_request_head_is_closed_after_the_timeout(
    tmp_path: Path,
) -> None:
    with running(tmp_path, header_timeout=1.0) as port:
        idle = connect(port)
        trickled = connect(port)
        started = time.monotonic()
        # A head sent a few bytes at a time never resets the clock.
        for piece in (b"GET /feeds/all.atom HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n"):
            trickled.sendall(piece)
            time.sleep(0.3)
        assert closed_by_server(idle, within=5)
        assert closed_by_server(trickled, within=5)
        assert time.monotonic() - started < 5
        # A client that sends its request in time is served, and its keep-alive connection
        # takes another request after a pause shorter than the timeout.
        with connect(port) as sock:
            for _ in range(2):
                sock.sendall(b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while not answer.endswith(b"<feed/>"):
                    chunk = sock.recv(65536)
                    assert chunk, "closed before the answer"
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 200")
                time.sleep(0.5)
        idle.close()
        trickled.close()


def test_over_the_cap_the_longest_idle_connection_makes_room(
    tmp_path: Path, sockets: list[socket.socket]
) -> None:
    with running(tmp_path, header_timeout=60, max_connections=50) as port:
        for _ in range(200):
            sockets.append(connect(port))
        status, seconds = timed_get(port)
        assert (status, seconds < 2.0) == (200, True)
        # The oldest idle connections were closed to make room, the newest are still open.
        assert closed_by_server(sockets[0], within=5)
        assert not closed_by_server(sockets[-1], within=0.2)
