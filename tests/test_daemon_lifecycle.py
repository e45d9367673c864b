"""The daemon as an operator meets it: a real process, real signals, a real database file.

Each test starts ``python -m aggregator run`` against a temporary folder and a local port,
listens on a ``NOTIFY_SOCKET`` like systemd does, and talks to it only through signals, its
log, its HTTP port and the database file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from scripted_server import Answer, ScriptedServer, rss

from aggregator.storage import Storage

# Real daemons in subprocesses, kill -9: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>{name}</title><link>http://example.org/{name}</link>
<description>d</description>
<item><title>{name} one</title><guid>{name}-1</guid><pubDate>Mon, 04 Mar 2024 10:00:00 GMT</pubDate></item>
<item><title>{name} two</title><guid>{name}-2</guid><pubDate>Tue, 05 Mar 2024 10:00:00 GMT</pubDate></item>
</channel></rss>
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Setup:
    """A config folder with file sources, and helpers to rewrite it."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.config = tmp_path / "aggregator.yaml"
        self.database = tmp_path / "agg.db"
        self.port = free_port()

    def write(self, sources: list[dict], **defaults: object) -> None:
        for source in sources:
            if "url" not in source:
                (self.dir / f"{source['name']}.rss").write_text(FEED.format(name=source["name"]))
                source["url"] = f"{source['name']}.rss"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "database": str(self.database),
                    "public_dir": str(self.dir / "public"),
                    "server": {"host": "127.0.0.1", "port": self.port},
                    "defaults": {"interval": "1h", **defaults},
                    "sources": sources,
                    "outputs": [{"name": "all"}],
                }
            )
        )

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as answer:
            return answer.status, answer.read()

    def row(self, name: str):
        with Storage(self.database) as storage:
            return storage.get_source(name)


class Daemon:
    """One ``aggregator run`` process, its stderr collected line by line."""

    def __init__(self, setup: Setup, notify_path: Path | None = None):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)
        if notify_path is not None:
            env["NOTIFY_SOCKET"] = str(notify_path)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "-c", str(setup.config), "run"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 15.0, start: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if text in line:
                    return line
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} in the log:\n" + "\n".join(self.lines))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(10)
        finally:
            self._reader.join(2)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


@pytest.fixture
def notify_socket(tmp_path: Path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(15)
    yield path, sock
    sock.close()


def wait_for_entries(setup: Setup, count: int, timeout: float = 10.0) -> bool:
    """Whether the published merged feed, read back by feedparser, reaches ``count`` entries."""
    import feedparser

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(feedparser.parse(setup.get("/feeds/all.atom")[1]).entries) >= count:
            return True
        time.sleep(0.05)
    return False


def receive(sock: socket.socket, wanted: str) -> str:
    while True:
        message = sock.recv(4096).decode()
        if wanted in message.splitlines():
            return message


def test_lifecycle_ready_health_lock_reload_and_clean_stop(setup: Setup, notify_socket):
    notify_path, sock = notify_socket
    setup.write([{"name": "alpha"}])
    daemon = Daemon(setup, notify_path)
    try:
        receive(sock, "READY=1")
        daemon.wait_for("alpha: 2 new")

        status, body = setup.get("/healthz")
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok" and health["sources"] == 1
        status, body = setup.get("/metrics")
        text = body.decode()
        assert 'aggregator_polls_total{result="new",source="alpha"} 1.0' in text
        assert 'aggregator_source_entries{source="alpha"} 2.0' in text
        assert "aggregator_fetch_duration_seconds_bucket" in text

        # A second daemon on the same database refuses, in one line, and exits non-zero.
        second = subprocess.run(
            [sys.executable, "-m", "aggregator", "-c", str(setup.config), "run"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert second.stderr.strip().count("\n") == 0
        assert "already running" in second.stderr and str(daemon.process.pid) in second.stderr

        # SIGHUP with a new source: it is polled without a restart.
        setup.write([{"name": "alpha"}, {"name": "beta"}])
        mark = len(daemon.lines)
        daemon.signal(signal.SIGHUP)
        daemon.wait_for("reloaded", start=mark)
        receive(sock, "READY=1")
        daemon.wait_for("beta: 2 new", start=mark)
        assert wait_for_entries(setup, 4), "\n".join(daemon.lines)  # output re-rendered

        # SIGHUP with a broken file: refused with the reason; the old configuration runs on.
        setup.config.write_text(setup.config.read_text().replace("interval: 1h", "interval: soon"))
        mark = len(daemon.lines)
        daemon.signal(signal.SIGHUP)
        refused = daemon.wait_for("reload refused", start=mark)
        assert "defaults.interval" in refused and "soon" in refused
        assert daemon.process.poll() is None
        assert json.loads(setup.get("/healthz")[1])["sources"] == 2

        # SIGTERM: a clean exit within a few seconds.
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.process.wait(10) == 0
        assert time.monotonic() - started < 5
        receive(sock, "STOPPING=1")
        daemon.wait_for("stopped")
    finally:
        daemon.stop()
    with sqlite3.connect(setup.database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_kill_9_during_a_poll_loses_nothing_committed_and_the_schedule_continues(setup: Setup):
    with ScriptedServer() as server:
        server.hold = threading.Event()
        server.script("/slow", Answer(200, {}, rss(("s1", server.clock()))))
        setup.write([{"name": "local"}, {"name": "slow", "url": server.url("/slow")}])
        daemon = Daemon(setup)
        try:
            daemon.wait_for("local: 2 new")
            assert server.arrived.wait(15)  # the slow source's poll is in flight
            before = setup.row("local")
            daemon.process.kill()
            daemon.process.wait(10)
        finally:
            daemon.stop()

        server.hold.set()
        restarted = Daemon(setup)  # the kernel released the lock with the process
        try:
            restarted.wait_for("running:")
            restarted.wait_for("slow: 1 new")  # the poll that never committed is redone
            after = setup.row("local")
            # Committed before the kill: still there, and its schedule carried on unchanged.
            assert after.last_polled_at == before.last_polled_at
            assert after.next_poll_at == before.next_poll_at
            with Storage(setup.database) as storage:
                assert len(storage.list_entries(["local"], 10)) == 2
        finally:
            assert restarted.stop() == 0
    with sqlite3.connect(setup.database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_sigterm_during_a_stalled_request_exits_within_seconds_and_records_nothing(
    setup: Setup,
):
    with ScriptedServer() as server:
        server.hold = threading.Event()  # the request never gets its answer
        server.script("/stalled", Answer(200, {}, rss(("s1", server.clock()))))
        setup.write([{"name": "stalled", "url": server.url("/stalled")}])
        daemon = Daemon(setup)
        try:
            daemon.wait_for("running:")
            assert server.arrived.wait(15)
            started = time.monotonic()
            daemon.signal(signal.SIGTERM)
            assert daemon.process.wait(15) == 0
            assert time.monotonic() - started < 8
            daemon.wait_for("exiting anyway")
        finally:
            daemon.stop()
    row = setup.row("stalled")
    assert row.error_count == 0 and row.last_polled_at is None  # abandoned, not an error
