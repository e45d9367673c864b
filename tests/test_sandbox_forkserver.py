"""The sandbox's fork server (aggregator.parse.sandbox): stopped when the last parser closes.

Run in a fresh interpreter: in the test process other modules' parsers may still be open (a
module-scoped fixture, another test file on the same xdist worker), and the server stops only
when none is.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import multiprocessing.forkserver
    from datetime import UTC, datetime

    from hostile_server import good_feed

    from aggregator.parse import workers
    from aggregator.parse.sandbox import SandboxParser

    NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert not workers._open_parsers
    server = multiprocessing.forkserver._forkserver
    with SandboxParser(small_workers=1) as first, SandboxParser(small_workers=1) as second:
        first.parse_feed(good_feed(1), {}, "http://example.org/feed", now=NOW)
        second.parse_feed(good_feed(1), {}, "http://example.org/feed", now=NOW)
        first.close()
        assert server._forkserver_pid is not None, "stopped while the second parser used it"
        feed = second.parse_feed(good_feed(2), {}, "http://example.org/feed", now=NOW)
        assert len(feed.entries) == 2
    assert server._forkserver_pid is None, "still running after the last parser closed"
    print("fork server stopped")
    """
)


def test_the_fork_server_stops_with_the_last_parser() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fork server stopped" in done.stdout
