"""Issue 15, item 0: a thread whose comment count moved in the feed is read in the same poll.

A simulated WordPress blog (:mod:`blogsim`) on 127.0.0.1; the daemon's own scheduler
(:class:`~aggregator.schedule.scheduler.PollScheduler`) polls it and publishes after each run, as
``aggregator run`` does. The comment round's periodic job is minutes away, so only the poll
that saw the count move can bring the new comment to the output in time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import feedparser
from blogsim import START, Blog, requests_to
from pytest_httpserver import HTTPServer

from aggregator.config.schema import AppConfig
from aggregator.models import PollResult
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.schedule.scheduler import PollScheduler
from aggregator.storage import Storage

CONFIG = """
defaults:
  comments: true
  comments_quiet_after: 3650d
sources:
  - name: wp
    url: {url}
outputs:
  - name: all
    formats: [atom]
"""


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_daemon_poll_that_sees_a_count_move_publishes_the_new_comment(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    httpserver: HTTPServer,
) -> None:
    blog = blogs("/wp", "wordpress")
    busy = blog.add_post("busy", "Busy", START - timedelta(days=2))
    calm = blog.add_post("calm", "Calm", START - timedelta(days=1))
    blog.comment(busy, "Alice", "First.", START - timedelta(days=2) + timedelta(hours=1))
    blog.comment(calm, "Bob", "Calm words.", START - timedelta(days=1) + timedelta(hours=1))
    config = write_yaml_config(CONFIG.format(url=blog.origin + "/wp/feed/"))
    results: list[PollResult] = []
    lock = threading.Lock()

    def comment_titles() -> set[str]:
        path = config.public_dir / "feeds" / "all" / "comments.atom"
        if not path.exists():
            return set()
        return {entry.get("author", "") for entry in feedparser.parse(path.read_bytes()).entries}

    with Poller(config) as poller, Storage(config.database) as storage:
        poller.sync_sources()
        publisher = Publisher(config, storage)

        def on_result(source, result):  # noqa: ANN001 - the daemon's _after_poll, in short
            with lock:
                results.append(result)
                if result.changed:
                    publisher.publish()

        scheduler = PollScheduler(config, poller, on_result, rng=random.Random(1))
        scheduler.start()
        try:
            assert wait_until(lambda: {"Alice", "Bob"} <= comment_titles())
            calm_feed = blog.comments_feed_path(calm)
            busy_feed = blog.comments_feed_path(busy)
            reads_of_calm = len(requests_to(httpserver.log, calm_feed))
            reads_of_busy = len(requests_to(httpserver.log, busy_feed))

            blog.comment(busy, "Carol", "Something new.", datetime.now(UTC) - timedelta(minutes=1))
            scheduler._schedule("wp", datetime.now(UTC))  # the source's poll comes due
            assert wait_until(lambda: "Carol" in comment_titles()), "the new comment waited"
            assert len(requests_to(httpserver.log, busy_feed)) == reads_of_busy + 1
            # The thread whose count did not move was not read again.
            assert len(requests_to(httpserver.log, calm_feed)) == reads_of_calm
            with lock:
                assert any(r.moved_threads == 1 for r in results)
        finally:
            scheduler.shutdown()
            poller.stop()
            poller.wait_idle(5)
