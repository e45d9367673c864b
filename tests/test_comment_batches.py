"""Comment threads are stored in batches (issue 8): several threads per transaction, each in a
savepoint of its own. One thread that cannot be stored loses its own rows only; a batch whose
transaction fails loses nothing committed before and leaves its threads due.

Real HTTP server on 127.0.0.1, real SQLite file; the storage failures are real SQLite errors,
raised by a trigger the test adds to the database.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hostile_server import HostileServer, item, rss, static

from aggregator.comments import follower as follower_module
from aggregator.comments.follower import CommentFollower, CommentsResult
from aggregator.comments.reader import ThreadRead, ThreadReader
from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.models import ThreadState
from aggregator.parse.sandbox import InProcessParser
from aggregator.poll.poller import Poller
from aggregator.poll.resources import make_fetcher
from aggregator.storage import Storage

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
POSTS = 6
COMMENTS = 4


def comment_feed(post: int) -> bytes:
    items = "".join(
        f"<item><title>Re: Post {post}</title>"
        f"<link>http://example.org/{post}#comment-{post}-{n}</link>"
        f"<guid>http://example.org/{post}#comment-{post}-{n}</guid>"
        f"<pubDate>Mon, 02 Nov 2026 1{n}:00:00 +0000</pubDate>"
        f"<description>zebra {post} says {n}</description></item>"
        for n in range(COMMENTS)
    )
    return rss(items, title=f"Comments on post {post}")


class CountingLock:
    """The write lock, counting how often it is taken (one batch, one acquisition)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0

    def __enter__(self) -> CountingLock:
        self._lock.acquire()
        self.taken += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


@pytest.fixture()
def server() -> HostileServer:
    with HostileServer() as running:
        posts = "".join(
            item(n, extra=f"<wfw:commentRss>{running.base}/c/{n}.rss</wfw:commentRss>")
            for n in range(POSTS)
        )
        running.cases["/feed.rss"] = static(rss(posts))
        for n in range(POSTS):
            running.cases[f"/c/{n}.rss"] = static(comment_feed(n))
        yield running


@pytest.fixture(autouse=True)
def first_read_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads are stored in the order they are listed: the first read returns only once every
    other read is done, so the others are ready together and share batches (a condition, not a
    sleep: a loaded machine cannot break it)."""
    original = ThreadReader.read
    started = 0
    others_done = threading.Semaphore(0)
    count_lock = threading.Lock()

    def read(self: ThreadReader, thread: ThreadState) -> ThreadRead:
        nonlocal started
        with count_lock:
            first, started = started == 0, started + 1
        if not first:
            try:
                return original(self, thread)
            finally:
                others_done.release()
        for _ in range(POSTS - 1):
            assert others_done.acquire(timeout=60), "the other reads never finished"
        return original(self, thread)

    monkeypatch.setattr(ThreadReader, "read", read)


def make_config(tmp_path: Path, server: HostileServer) -> AppConfig:
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        "database: aggregator.db\npublic_dir: public\n"
        "defaults:\n  comments: true\n"
        f"sources:\n  - name: blog\n    url: {server.url('/feed.rss')}\n"
        "outputs:\n  - name: all\n"
    )
    return load_config(path)


def poll_entries(config: AppConfig) -> None:
    with Poller(config, clock=lambda: NOW, parser=InProcessParser()) as poller:
        result = poller.poll_source(config.sources[0], comments=False)
    assert result.status == "new" and result.new == POSTS, result


def follow(config: AppConfig, storage: Storage, lock: CountingLock) -> CommentsResult:
    fetcher = make_fetcher(config)
    try:
        follower = CommentFollower(
            config,
            storage=lambda: storage,
            fetcher=fetcher,
            clock=lambda: NOW,
            write_lock=lock,  # type: ignore[arg-type]
            parser=InProcessParser(),
        )
        return follower.follow(config.sources[0], force=True)
    finally:
        fetcher.close()


def stored(storage: Storage) -> dict[str, int]:
    """Comments stored per post link, with the thread state written in the same batch."""
    rows = storage.db.execute(
        "SELECT e.link, count(c.id), e.comment_count, e.comments_polled_at FROM entries e "
        "LEFT JOIN comments c ON c.entry_id = e.id GROUP BY e.id"
    ).fetchall()
    for link, count, comment_count, polled_at in rows:
        assert count == comment_count, link  # the entry's count moved with its comments
        assert (polled_at is not None) == (count > 0), link  # and its state with them
    return {link: count for link, count, _, _ in rows}


def searchable(storage: Storage) -> int:
    assert storage.db.execute("SELECT count(*) FROM search_queue").fetchone()[0] == 0
    return int(storage.db.execute("SELECT count(*) FROM comments_fts").fetchone()[0])


def test_one_thread_that_cannot_be_stored_leaves_the_others_of_its_batch(
    tmp_path: Path, server: HostileServer
) -> None:
    config = make_config(tmp_path, server)
    poll_entries(config)
    with Storage(config.database) as storage:
        storage.db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON comments WHEN new.key LIKE 'comment-3-%' "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
        lock = CountingLock()
        result = follow(config, storage, lock)
        assert lock.taken < POSTS  # batched: fewer transactions than threads
        assert result.threads == POSTS
        assert result.new == (POSTS - 1) * COMMENTS
        assert len(result.errors) == 1
        assert "http://example.org/3" in result.errors[0]
        assert "disk says no" in result.errors[0]
        counts = stored(storage)
        assert counts.pop("http://example.org/3") == 0
        assert set(counts.values()) == {COMMENTS}
        assert searchable(storage) == (POSTS - 1) * COMMENTS
        # The failed thread was not marked read: it is read again, and stored, next time.
        storage.db.execute("DROP TRIGGER poison")
        result = follow(config, storage, CountingLock())
        assert result.new == COMMENTS and not result.errors
        assert set(stored(storage).values()) == {COMMENTS}
        assert searchable(storage) == POSTS * COMMENTS


def test_a_batch_whose_transaction_fails_keeps_what_was_committed(
    tmp_path: Path, server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, server)
    poll_entries(config)
    # Two threads per batch, so the failing batch sits between committed ones.
    monkeypatch.setattr(follower_module, "MAX_THREADS_PER_BATCH", 2)
    with Storage(config.database) as storage:
        # RAISE(ROLLBACK) ends the whole transaction, savepoints and all.
        storage.db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON comments WHEN new.key LIKE 'comment-3-%' "
            "BEGIN SELECT RAISE(ROLLBACK, 'disk says no'); END"
        )
        result = follow(config, storage, CountingLock())
        counts = stored(storage)
        lost = sorted(link for link, count in counts.items() if count == 0)
        # Thread 3 and the thread stored with it are lost, each with the error; the rest kept.
        assert "http://example.org/3" in lost and len(lost) == 2
        assert len(result.errors) == 2 and all("disk says no" in e for e in result.errors)
        assert result.new == (POSTS - 2) * COMMENTS
        assert searchable(storage) == (POSTS - 2) * COMMENTS
        storage.db.execute("DROP TRIGGER poison")
        result = follow(config, storage, CountingLock())
        assert not result.errors
        assert set(stored(storage).values()) == {COMMENTS}
        assert searchable(storage) == POSTS * COMMENTS
