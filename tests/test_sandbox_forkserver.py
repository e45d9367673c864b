"""The sandbox's fork server (aggregator.parse.workers): stopped when the last parser closes.

In a module of its own: the other sandbox tests keep a parser open for their whole module, and
the server stops only when none is.
"""

from __future__ import annotations

import multiprocessing.forkserver
from datetime import UTC, datetime

import pytest
from hostile_server import good_feed

from aggregator.parse import workers
from aggregator.parse.sandbox import SandboxParser

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def test_the_fork_server_stops_with_the_last_parser() -> None:
    if workers._open_parsers:
        pytest.skip("another parser of this process is open")
    server = multiprocessing.forkserver._forkserver
    with SandboxParser(small_workers=1) as first, SandboxParser(small_workers=1) as second:
        first.parse_feed(good_feed(1), {}, "http://example.org/feed", now=NOW)
        second.parse_feed(good_feed(1), {}, "http://example.org/feed", now=NOW)
        first.close()
        assert server._forkserver_pid is not None  # the second one still uses it
        feed = second.parse_feed(good_feed(2), {}, "http://example.org/feed", now=NOW)
        assert len(feed.entries) == 2
    assert server._forkserver_pid is None
