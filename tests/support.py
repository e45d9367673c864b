"""Helpers shared by the publishing, serving and web tests: real configs, real servers.

A configuration folder is copied into ``tmp_path`` (so its database and public folder land
there), polled with the real :class:`~aggregator.poll.poller.Poller` from its bundled files, and
published with the real :class:`~aggregator.publish.publisher.Publisher`. :func:`serve` runs the real
starlette app under uvicorn on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import uvicorn
from quiet_server import QuietServer
from starlette.types import ASGIApp

from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "config"
DATA = Path(__file__).resolve().parent / "data"
SAMPLE_CONFIG = DATA / "publish"


def copy_config(folder: Path, destination: Path, name: str) -> Path:
    """Copy a config folder to ``destination``; return the path of the YAML file ``name``."""
    target = destination / folder.name
    shutil.copytree(folder, target)
    return target / name


def demo_config_path(destination: Path) -> Path:
    """The bundled demo configuration, copied (its ``../var`` lands in ``destination``)."""
    return copy_config(DEMO_CONFIG, destination, "aggregator.yaml")


def sample_config_path(destination: Path, origin: str) -> Path:
    """The publishing tests' sample configuration (tests/data/publish/sample.yaml), copied.

    Its sources are read over HTTP from ``origin`` (see :func:`serve_folder`).
    """
    path = copy_config(SAMPLE_CONFIG, destination, "sample.yaml")
    path.write_text(path.read_text(encoding="utf-8").replace("ORIGIN", origin), encoding="utf-8")
    return path


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve a folder's files over HTTP on 127.0.0.1 in a thread; yield the origin URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".rss": "application/rss+xml",
        ".atom": "application/atom+xml",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


def poll_and_publish(config_path: Path, config: AppConfig | None = None) -> AppConfig:
    """Poll every source of a config once (comments too) and publish every output."""
    config = config or load_config(config_path)
    with Poller(config, manual=True) as poller:
        results = poller.poll_many(list(config.sources))
    assert all(result.ok for result in results), [r.describe() for r in results]
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
    return config


def published_files(config: AppConfig) -> dict[str, Path]:
    """Every published document, keyed by its public URL."""
    feeds = config.public_dir / "feeds"
    return {
        f"{config.server.public_url}/feeds/{path.relative_to(feeds).as_posix()}": path
        for path in sorted(feeds.rglob("*"))
        if path.is_file() and path.suffix in (".atom", ".rss", ".json")
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: ASGIApp, port: int | None = None) -> Iterator[str]:
    """Run an ASGI app on 127.0.0.1 in a thread; yield its base URL; stop it afterwards."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def in_a_terminal(args: list[str], columns: int = 100, env: dict[str, str] | None = None) -> str:
    """Run a command on a pseudo-terminal ``columns`` wide (its stdin, stdout and stderr), as
    a person at a terminal would; return everything it printed."""
    import fcntl
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    drop = ("COLUMNS", "LINES", "INVOCATION_ID", "JOURNAL_STREAM")
    env = {k: v for k, v in os.environ.items() if k not in drop} | (env or {})
    process = subprocess.Popen(args, stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(60)
    os.close(controller)
    return b"".join(chunks).decode().replace("\r\n", "\n")
