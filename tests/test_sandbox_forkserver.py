"""Where the sandbox's workers come from (aggregator.parse.workers, aggregator.parse.zygote).

A process that opens its first parser while it has one thread (``aggregator poll``, the daemon)
forks the zygote; a threaded one uses multiprocessing's fork server. Either stops when the last
parser closes. Each case runs in a fresh interpreter: the test process has threads (pytest-xdist)
and other modules' parsers may still be open in it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

PRELUDE = """
import multiprocessing.forkserver, os, threading
from datetime import UTC, datetime

import pytest
from hostile_server import good_feed
from test_sandbox import slow_feed

from aggregator.errors import ParseError
from aggregator.parse import workers
from aggregator.parse.sandbox import SandboxParser

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
URL = "http://example.org/feed"
server = multiprocessing.forkserver._forkserver
assert not workers._open_parsers
"""

ZYGOTE = """
with SandboxParser(small_workers=1, timeout=0.3) as first, SandboxParser(small_workers=1) as second:
    assert workers.zygote_running(), "one thread, yet no zygote"
    zygote_pid = workers._zygote.pid
    assert len(first.parse_feed(good_feed(3), {}, URL, now=NOW).entries) == 3
    assert server._forkserver_pid is None, "multiprocessing's fork server started anyway"
    lane = first._small._lanes[0]
    assert lane._process.pid != os.getpid() and os.getppid() != lane._process.pid
    # A parse over the time limit: the worker is killed and a new one forked.
    with pytest.raises(ParseError, match="took longer than 0.3s"):
        first.parse_feed(slow_feed(), {}, URL, now=NOW)
    assert first.parse_feed(good_feed(1), {}, URL, now=NOW).entries
    # A worker that dies (killed from outside): that document fails, the next one parses.
    old = lane._process
    os.kill(old.pid, 9)
    old.join(10)
    assert old.exitcode == -9, old.exitcode
    assert first.parse_feed(good_feed(2), {}, URL, now=NOW).entries
    # Over the memory limit: one clear error, and the lane recovers.
    with SandboxParser(memory_limit=16 * 1024 * 1024, small_document=0) as capped:
        huge = good_feed(1).replace(b"Body 0", b"&lt;b&gt;x&lt;/b&gt; " * 400_000)
        with pytest.raises(ParseError, match="16 MB"):
            capped.parse_feed(huge, {}, URL, now=NOW)
        assert capped.parse_feed(good_feed(1), {}, URL, now=NOW).entries
    first.close()
    assert workers.zygote_running(), "stopped while the second parser used it"
    assert len(second.parse_feed(good_feed(2), {}, URL, now=NOW).entries) == 2
assert not workers.zygote_running()
try:
    os.waitpid(zygote_pid, os.WNOHANG)
    raise AssertionError("the zygote was not waited for")
except ChildProcessError:
    pass
print("zygote stopped")
"""

THREADED = """
stop = threading.Event()
threading.Thread(target=stop.wait, daemon=True).start()
with SandboxParser(small_workers=1) as first, SandboxParser(small_workers=1) as second:
    assert not workers.zygote_running(), "forked a zygote from a threaded process"
    first.parse_feed(good_feed(1), {}, URL, now=NOW)
    second.parse_feed(good_feed(1), {}, URL, now=NOW)
    first.close()
    assert server._forkserver_pid is not None, "stopped while the second parser used it"
    feed = second.parse_feed(good_feed(2), {}, URL, now=NOW)
    assert len(feed.entries) == 2
assert server._forkserver_pid is None, "still running after the last parser closed"
stop.set()
print("fork server stopped")
"""


MANY_DESCRIPTORS = """
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # a busy daemon's sockets
with SandboxParser(small_workers=1) as parser:
    assert workers.zygote_running()
    assert parser.parse_feed(good_feed(1), {}, URL, now=NOW).entries
    worker = parser._small._lanes[0]._process
    assert worker._status_fd > 1023
    os.kill(worker.pid, 9)
    worker.join(10)
    assert worker.exitcode == -9, worker.exitcode
    assert parser.parse_feed(good_feed(2), {}, URL, now=NOW).entries
print("past 1023")
"""


LAZY = """
import platform, sys, time
assert "lxml" not in str(sys.modules.keys())  # this process never imports it: the zygote does
# poll() and ppoll(): the zygote waiting for requests (aggregator.parse.zygote._serve).
WAITING = {"x86_64": {"7", "271"}, "aarch64": {"73"}}[platform.machine()]
with SandboxParser(small_workers=1) as parser:
    pid = workers._zygote.pid
    maps = lambda: open(f"/proc/{pid}/maps").read()
    deadline = time.monotonic() + 60
    while open(f"/proc/{pid}/syscall").read().split()[0] not in WAITING:
        assert time.monotonic() < deadline, "the zygote never waited for a request"
        time.sleep(0.01)
    assert "lxml" not in maps(), "the zygote loaded the parse modules before any parse"
    assert parser.parse_feed(good_feed(1), {}, URL, now=NOW).entries
    assert "lxml" in maps()
print("loaded when needed")
"""


def _run(body: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PRELUDE) + textwrap.dedent(body)],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_single_threaded_process_forks_workers_from_its_zygote() -> None:
    """Parses, a time limit, a killed worker and the memory limit all work through the zygote,
    which stops (and is waited for) when the last parser closes."""
    assert "zygote stopped" in _run(ZYGOTE)


def test_a_threaded_process_uses_the_fork_server_until_the_last_parser_closes() -> None:
    assert "fork server stopped" in _run(THREADED)


def test_a_worker_is_watched_past_descriptor_1023() -> None:
    """select() refuses descriptors over 1023; a daemon with many open connections hands its
    workers' status pipes numbers above that, and they are still waited for."""
    assert "past 1023" in _run(MANY_DESCRIPTORS)


def test_the_zygote_loads_the_parse_modules_at_its_first_request() -> None:
    """``aggregator poll --due`` with nothing due opens a parser and never parses."""
    assert "loaded when needed" in _run(LAZY)
