"""End to end: ``python -m aggregator run`` as a subprocess against a local feed server and a
temporary ``var/``; the merged feed is read back over HTTP with feedparser, then the daemon is
stopped with SIGTERM.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import httpx
import pytest

# Real daemons in subprocesses: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

REPO = Path(__file__).parent.parent
FEEDS = Path(__file__).parent / "data" / "feeds"
# A cap for what the tests wait for (returned as soon as it holds): a cold start spawns parse
# workers (fresh interpreters), which takes several times longer on a loaded machine.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 5.0


class Daemon:
    """A running ``aggregator run`` subprocess, its log, and a client for its port."""

    def __init__(self, config_path: Path, port: int, cwd: Path):
        self.log_path = cwd / "daemon.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config_path), "run"],
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.base, timeout=2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_feed(self, path: str, ready, timeout: float = START_TIMEOUT):
        """GET ``path`` until ``ready(parsed_feed)`` is true; returns the parsed feed."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"daemon exited early:\n{self.log()}"
            try:
                response = self.client.get(path)
            except httpx.TransportError:  # not listening yet
                response = None
            if response is not None and response.status_code == 200:
                last = feedparser.parse(response.content)
                if ready(last):
                    return last
            time.sleep(0.1)
        entries = [e.get("title") for e in last.entries] if last else None
        pytest.fail(f"{path} not ready after {timeout}s (last entries: {entries}):\n{self.log()}")

    def terminate(self) -> int | None:
        """SIGTERM; the exit code, or None when it did not exit within STOP_TIMEOUT."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


@pytest.fixture
def start_daemon():
    started: list[Daemon] = []

    def start(config_path: Path, port: int, cwd: Path) -> Daemon:
        daemon = Daemon(config_path, port, cwd)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def titles(parsed) -> set[str]:
    return {entry.title for entry in parsed.entries}


def test_daemon_polls_publishes_serves_and_stops(
    feed_server, write_config, free_port, tmp_path, start_daemon
):
    path = write_config(
        sources=[
            {"name": "mill", "url": feed_server.serve_feed("/mill.rss", "formats/rss2.rss")},
            {"name": "ferry", "url": feed_server.serve_feed("/ferry.rss", "poll/changed-v1.rss")},
        ],
        outputs=[{"name": "merged", "title": "Merged"}],
        server={"host": "127.0.0.1", "port": free_port},
        defaults={
            "interval": "1s",
            "interval_floor": "1s",
            "min_interval": "1s",
            "adaptive": False,
            "timeout": "5s",
        },
    )
    daemon = start_daemon(path, free_port, tmp_path)
    expected = {
        "The new bridge opens",
        "Market day moves to Friday",
        "Snow closes the school",
        "Winter timetable",
        "Ticket office hours",
    }

    parsed = daemon.wait_for_feed("/feeds/merged.atom", lambda p: titles(p) == expected)

    assert parsed.bozo == 0
    assert parsed.feed.title == "Merged"
    assert (tmp_path / "var" / "aggregator.db").is_file()
    assert (tmp_path / "var" / "public" / "feeds" / "merged.atom").is_file()
    index = daemon.client.get("/")
    assert index.status_code == 200
    assert f"{daemon.base}/feeds/merged.atom" in index.text

    # The daemon keeps polling on schedule and republishes what changed.
    ids = {entry.title: entry.id for entry in parsed.entries}
    feed_server.serve_feed("/ferry.rss", "poll/changed-v2.rss")
    changed = daemon.wait_for_feed(
        "/feeds/merged.atom", lambda p: "Winter timetable (corrected)" in titles(p)
    )
    assert len(changed.entries) == 5
    new_ids = {entry.title: entry.id for entry in changed.entries}
    assert new_ids["Winter timetable (corrected)"] == ids["Winter timetable"]
    # Once the first poll stored validators, later polls are conditional (a slow first poll
    # under load may time out, so look from the second request on for one that is).
    deadline = time.monotonic() + START_TIMEOUT
    while len(feed_server.requests_for("/mill.rss")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    later = feed_server.requests_for("/mill.rss")[1:]
    assert later and any("if-none-match" in r.headers for r in later)

    started = time.monotonic()
    code = daemon.terminate()

    assert code == 0, f"exit code {code} after SIGTERM:\n{daemon.log()}"
    assert time.monotonic() - started < STOP_TIMEOUT
    assert "Traceback" not in daemon.log()
    # Published files are logged by their path under public_dir (every output's comment feeds
    # share the name comments.atom).
    assert "published feeds/merged.atom" in daemon.log()


def test_demo_config_copy_serves_the_demo_entries(tmp_path, free_port, start_daemon):
    # What `make run` does, on a copy of config/ with another port and its own var/.
    shutil.copytree(REPO / "config", tmp_path / "config")
    config = tmp_path / "config" / "aggregator.yaml"
    text = config.read_text()
    assert "port: 8080" in text
    config.write_text(text.replace("port: 8080", f"port: {free_port}", 1))
    demo = tmp_path / "config" / "demo"
    expected = set()
    for name in ("riverbank.rss", "harbour-log.atom", "valley-weather.rdf"):
        expected |= titles(feedparser.parse((demo / name).read_bytes()))
    assert len(expected) == 7

    daemon = start_daemon(config, free_port, tmp_path)
    parsed = daemon.wait_for_feed("/feeds/all.atom", lambda p: titles(p) == expected)

    assert parsed.bozo == 0
    local = daemon.wait_for_feed("/feeds/local.atom", lambda p: len(p.entries) == 4)
    assert local.bozo == 0
    assert (tmp_path / "var" / "public" / "feeds" / "all.atom").is_file()
    assert not (REPO / "config" / "var").exists()
