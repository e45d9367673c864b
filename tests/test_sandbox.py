"""Tests for aggregator.parse.sandbox: parsing in a worker process with memory and time limits."""

from __future__ import annotations

import resource
import sys
import threading
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hostile_server import good_feed

from aggregator.comments.selectors import PRESETS
from aggregator.errors import ParseError
from aggregator.parse import jobs
from aggregator.parse.sandbox import SandboxParser
from aggregator.parse.workers import Lane

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def many_entries(count: int) -> bytes:
    items = b"".join(
        b"<item><title>Entry %d</title><link>http://example.org/%d</link><guid>g%d</guid>"
        b"<description>&lt;p&gt;Hello %d&lt;/p&gt;</description></item>" % (n, n, n, n)
        for n in range(count)
    )
    return b'<rss version="2.0"><channel><title>t</title>' + items + b"</channel></rss>"


def slow_feed() -> bytes:
    """10,000 entries with markup to clean: well over a second of parsing on this machine (1.3
    CPU s), so that a 0.3 s time limit is overrun on a machine several times faster too."""
    markup = b"&lt;p&gt;Hello &lt;a href=&quot;/x&quot;&gt;link&lt;/a&gt; &lt;i&gt;more&lt;/i&gt;&lt;/p&gt;"
    return many_entries(10_000).replace(b"&lt;p&gt;Hello ", markup * 5 + b"&lt;p&gt;Hello ")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxParser]:
    with SandboxParser(timeout=20) as parser:
        yield parser


def test_a_feed_is_parsed_in_the_worker(sandbox: SandboxParser) -> None:
    feed = sandbox.parse_feed(good_feed(3), {}, "http://example.org/feed", now=NOW)
    assert [e.title for e in feed.entries] == ["Post 0", "Post 1", "Post 2"]
    comments = sandbox.parse_comments(good_feed(2), {}, "http://example.org/c", now=NOW)
    assert len(comments) == 2


def test_a_page_is_read_in_the_worker(sandbox: SandboxParser) -> None:
    page = (
        b'<div class="comment" id="c1"><div class="comment-content"><p>Hi</p></div>'
        b'<p class="comment-footer">Posted by: Ann | March 3, 2019 at 11:05 AM</p></div>'
    )
    comments = sandbox.extract_comments(page, "http://example.org/p", PRESETS["typepad"], None)
    assert [c.author for c in comments] == ["Ann"]


def test_errors_come_back_as_parse_errors(sandbox: SandboxParser) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        sandbox.parse_feed(b"not xml at all", {}, "http://example.org/feed", now=NOW)


def test_a_document_over_the_memory_cap_fails_and_the_worker_recovers() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    huge = good_feed(1).replace(b"Body 0", b"&lt;b&gt;x&lt;/b&gt; " * 400_000)  # 8 MB
    # Parsing it adds about 24 MB to the worker's address space.
    with SandboxParser(memory_limit=16 * 1024 * 1024, timeout=30, small_document=0) as small:
        with pytest.raises(ParseError, match="16 MB"):
            small.parse_feed(huge, {}, "http://example.org/feed", now=NOW)
        feed = small.parse_feed(good_feed(1), {}, "http://example.org/feed", now=NOW)
        assert len(feed.entries) == 1
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 60, "the memory was spent in the worker, not here"


def test_a_parse_over_the_time_limit_is_killed() -> None:
    with SandboxParser(timeout=0.3, small_document=0) as hasty:
        with pytest.raises(ParseError, match="took longer than 0.3s"):
            hasty.parse_feed(slow_feed(), {}, "http://example.org/feed", now=NOW)
        assert hasty.parse_feed(good_feed(1), {}, "http://example.org/f", now=NOW).entries


def test_small_documents_do_not_wait_behind_large_ones() -> None:
    with SandboxParser(timeout=20) as parser:
        parser.parse_feed(good_feed(1), {}, "http://example.org/f", now=NOW)  # start the lanes
        slow = threading.Thread(
            target=parser.parse_feed,
            args=(slow_feed(), {}, "http://example.org/big"),
            kwargs={"now": NOW},
        )
        slow.start()
        time.sleep(0.3)  # let the large document reach its lane first
        # No time limit here (a loaded machine stretches both): the small document's answer
        # comes back while the large one, a hundred times the work, is still being parsed.
        assert parser.parse_feed(good_feed(2), {}, "http://example.org/f", now=NOW).entries
        assert slow.is_alive(), "the small document waited for the large one"
        slow.join()


def test_workers_do_not_run_the_main_script_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """multiprocessing runs the parent's main script again in each new process; for the
    ``aggregator`` console script that imported the whole command line in every worker."""
    marker = tmp_path / "ran"
    script = tmp_path / "main_script.py"
    script.write_text(f"open({str(marker)!r}, 'a').write('ran')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    with SandboxParser(small_workers=1) as parser:
        feed = parser.parse_feed(good_feed(1), {}, "http://example.org/feed", now=NOW)
    assert len(feed.entries) == 1
    assert not marker.exists()


def test_a_slow_worker_start_does_not_count_against_the_parse_time_limit() -> None:
    """The limit is the parse's: a worker that needs 1.5 s to start (its preload sleeps) still
    parses a small feed under a 0.5 s limit, because the clock starts once it says ready."""
    lane = Lane(256 * 1024 * 1024, 0.5, preload="slow_start_module")
    try:
        feed = lane.run(jobs.parse_feed, good_feed(1), {}, "http://example.org/f", NOW)
        assert len(feed.entries) == 1
    finally:
        lane.close()
