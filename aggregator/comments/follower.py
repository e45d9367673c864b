"""The comment follower: which threads of a source are due, its site-wide comment feed, and
storing what each thread read gave, with the thread's next read time.

Threads are read in worker threads (:mod:`aggregator.comments.reader`) that never open the
database: what they need of it is read here first (one query for the whole round), and what
they read is stored here, by the calling thread, in batches: every read that is ready when the
previous batch is stored, up to :data:`MAX_THREADS_PER_BATCH` threads or
:data:`MAX_COMMENTS_PER_BATCH` comments, in one transaction, each thread in a savepoint of its
own (issue 8).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from aggregator.comments.matching import match_comments_to_threads
from aggregator.comments.reader import KnownThread, ThreadRead, ThreadReader
from aggregator.comments.selectors import PageSelectors, selectors_from_config
from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.discussions import DiscussionFollower
from aggregator.errors import AggregatorError
from aggregator.fetch.fetcher import Fetcher
from aggregator.models import SourceState, SourceUpdate, ThreadState, ThreadUpdate
from aggregator.parse.sandbox import InProcessParser, Parser
from aggregator.schedule.decide import decide_next_comments_poll, detect_comment_gap
from aggregator.storage import Storage

#: Threads read in one round of one source at most (newest first); the rest wait for the next
#: round, so a feed listing thousands of comment feeds cannot keep the daemon busy for hours.
MAX_THREADS_PER_ROUND = 200
#: Reads stored in one transaction at most: a batch holds the write lock that every poll
#: thread waits for, so it is kept short (a few tens of milliseconds); each commit has a fixed
#: cost (the full-text index is written once per transaction), so it is not one per thread.
MAX_THREADS_PER_BATCH = 50
MAX_COMMENTS_PER_BATCH = 2000

log = logging.getLogger("aggregator.comments")

# A comment feed answering 404 is tried again after this long; a second 404 stops the thread
# until the entry's comment count moves (comments closed: issue 3). 410 stops it at once.
MISSING_RETRY = timedelta(days=1)
_MISSING = "comment feed missing"
# The site-wide comment feed is read no more often than this, as decide's polling floor says.
SITE_FEED_FLOOR = timedelta(minutes=15)


@dataclass
class CommentsResult:
    """What one follow of one source's threads changed."""

    threads: int = 0
    new: int = 0
    updated: int = 0
    gone: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: CommentsResult) -> None:
        """Count ``other``'s changes and errors (not its threads) in this result too."""
        self.new += other.new
        self.updated += other.updated
        self.gone += other.gone
        self.errors += other.errors


class CommentFollower:
    """Polls the comment threads of one configuration's sources."""

    def __init__(
        self,
        config: AppConfig,
        *,
        storage: Callable[[], Storage],
        fetcher: Fetcher,
        clock: Callable[[], datetime],
        write_lock: threading.Lock,
        parser: Parser | None = None,
        workers: int = 8,
    ):
        self.config = config
        self._storage = storage
        self.fetcher = fetcher
        self.parser: Parser = parser or InProcessParser()
        self.clock = clock
        self.write_lock = write_lock
        self.workers = workers
        # One pool of reader threads for every source's rounds: threads are not started and
        # stopped for each source (a warm poll of 300 blogs started 2,400 of them).
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # Threads kept behind APIs (comment_system, discussions): read in the calling thread,
        # one request at a time per API host (aggregator.discussions).
        self.discussions = DiscussionFollower(
            lambda: self.config,
            storage=storage,
            fetcher=lambda: self.fetcher,
            clock=clock,
            write_lock=write_lock,
        )

    def _readers(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, self.workers), thread_name_prefix="aggregator-comments"
                )
            return self._pool

    def close(self) -> None:
        """Stop the reader threads (reads not yet started are dropped)."""
        self.discussions.api.stop()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def follow(self, source: SourceConfig, *, force: bool = False) -> CommentsResult:
        """Read the source's due threads (every followed thread when ``force``) and store them."""
        result = CommentsResult()
        if not self.config.comments_for(source):
            return result
        if source.comment_system or self.config.discussions_for(source):
            self.discussions.follow(source, result, force=force)
        storage = self._storage()
        state = storage.get_source(source.name)
        now = self.clock()
        selectors = selectors_from_config(source.comments_page) if source.comments_page else None
        if source.comments_url:
            self._follow_site_feed(source, state, selectors, result, force=force)
        threads = storage.list_threads(state.id, None if force else now)
        readable = [t for t in threads if t.comments_feed_url or (selectors and t.link)]
        readable = readable[:MAX_THREADS_PER_ROUND]
        if not readable:
            return result
        known = _known(storage, [t.entry_id for t in readable if t.comment_count])
        reader = ThreadReader(
            self.fetcher,
            source,
            selectors,
            known=known,
            force=force,
            parser=self.parser,
            now=now,
            request=self.config.request_for(source),
        )
        pool = self._readers()
        # In the order listed, as pool.map would; a batch is the next read and every one after
        # it that is already done.
        reads = deque(pool.submit(reader.read, thread) for thread in readable)
        try:
            while reads:
                self._store(source, _next_batch(reads), result)
        finally:
            for waiting in reads:  # only when storing failed: what is left is not stored
                waiting.cancel()
        return result

    # -- a site-wide comment feed ---------------------------------------------------------------
    def _follow_site_feed(
        self,
        source: SourceConfig,
        state: SourceState,
        selectors: PageSelectors | None,
        result: CommentsResult,
        *,
        force: bool,
    ) -> None:
        """Read the site-wide comment feed and store its comments on their entries.

        Read at most every :data:`SITE_FEED_FLOOR` unless ``force``d. When the feed's window
        slid past the newest stored comment (comments were missed), that is logged, and with
        ``comments_page`` set the pages of the posts it names are read in this same follow.
        """
        storage = self._storage()
        assert source.comments_url
        now = self.clock()
        polled = state.comments_polled_at
        if not force and polled is not None and now - polled < SITE_FEED_FLOOR:
            return
        try:
            fetched = self.fetcher.fetch(
                source.comments_url,
                etag=state.comments_etag,
                last_modified=state.comments_last_modified,
                request=self.config.request_for(source),
            )
            comments = (
                ()
                if fetched.not_modified
                else self.parser.parse_comments(
                    fetched.content or b"", fetched.headers, fetched.final_url, now=now
                )
            )
        except AggregatorError as error:
            message = f"{source.name}: site-wide comment feed: {error}"
            log.warning("%s", message)
            result.errors.append(message)
            return
        # Any entry may receive a comment, followed or not: matching costs no request.
        threads = storage.list_threads(state.id, None, include_stopped=True)
        grouped = match_comments_to_threads(comments, threads)
        gap = detect_comment_gap((), storage.newest_comment_at(state.id), comments)
        if gap:
            log.warning(
                "%s: site-wide comment feed skipped comments since its last read%s",
                source.name,
                "; reading the pages of the posts it names" if selectors else "",
            )
        with self.write_lock, storage.transaction():
            for thread, items in grouped:
                stored = storage.store_comments(thread.entry_id, thread.public_id, items, now)
                result.new += stored.new
                result.updated += stored.updated
                update = ThreadUpdate()
                if stored.new:
                    update = replace(update, comments_last_new_at=now)
                if gap and selectors and thread.link:
                    update = replace(update, comments_next_poll_at=now, comments_stopped=0)
                if update.columns():
                    storage.update_thread(thread.entry_id, update)
            storage.update_source(
                state.id,
                SourceUpdate(
                    comments_etag=fetched.etag
                    or (state.comments_etag if fetched.not_modified else None),
                    comments_last_modified=fetched.last_modified
                    or (state.comments_last_modified if fetched.not_modified else None),
                    comments_polled_at=now,
                ),
            )
        unmatched = len(comments) - sum(len(items) for _, items in grouped)
        if unmatched:
            log.info(
                "%s: %d comment(s) in the site-wide feed match no stored entry",
                source.name,
                unmatched,
            )

    # -- storing a batch of threads -------------------------------------------------------------
    def _store(
        self, source: SourceConfig, reads: Sequence[ThreadRead], result: CommentsResult
    ) -> None:
        """Store ``reads`` in one transaction, each thread in a savepoint of its own.

        A thread that cannot be stored is rolled back alone, its error recorded, and the
        others are kept. Counts reach ``result`` only once the transaction committed; when
        the transaction itself fails, every thread of the batch records the error (and stays
        due, since its new schedule was not written either).
        """
        storage = self._storage()
        now = self.clock()
        result.threads += len(reads)
        batch = CommentsResult()
        try:
            with self.write_lock, storage.transaction():
                for read in reads:
                    self._store_one(storage, source, read, batch, now)
        except Exception as error:  # the whole batch is lost; the next round reads it again
            if not isinstance(error, AggregatorError):
                log.exception("%s: unexpected error while storing comments", source.name)
            for read in reads:
                self._failed(source, read.thread, error, result)
            return
        result.add(batch)

    def _store_one(
        self,
        storage: Storage,
        source: SourceConfig,
        read: ThreadRead,
        batch: CommentsResult,
        now: datetime,
    ) -> None:
        """Store one read in a savepoint; a failure undoes this thread's writes only."""
        counts = CommentsResult()
        try:
            with storage.transaction():  # nested: a savepoint
                update = self._store_thread(storage, source, read, counts, now)
                storage.update_thread(read.thread.entry_id, update)
        except Exception as error:
            if not storage.db.conn.in_transaction:
                raise  # SQLite rolled back the whole transaction: nothing of the batch is left
            if not isinstance(error, AggregatorError):
                log.exception(
                    "%s: unexpected error while storing comments of %s",
                    source.name,
                    read.thread.link,
                )
            batch.errors += counts.errors
            self._failed(source, read.thread, error, batch)
            return
        batch.add(counts)

    def _failed(
        self,
        source: SourceConfig,
        thread: ThreadState,
        error: BaseException,
        result: CommentsResult,
    ) -> None:
        result.errors.append(f"{source.name}: {thread.link or thread.key}: {error}")
        log.warning("%s: cannot store comments of %s: %s", source.name, thread.link, error)

    def _store_thread(
        self,
        storage: Storage,
        source: SourceConfig,
        read: ThreadRead,
        result: CommentsResult,
        now: datetime,
    ) -> ThreadUpdate:
        """Store one read's comments; return the thread's new state (validators, schedule)."""
        thread = read.thread
        update = ThreadUpdate(comments_polled_at=now)
        new_at = thread.last_new_comment_at
        if read.error:
            update = replace(update, comments_error=read.error)
            result.errors.append(f"{source.name}: {thread.link or thread.key}: {read.error}")
        elif read.missing is not None:
            # The count is not recorded as read: the feed is tried once more despite it.
            update = replace(update, comments_error=f"{_MISSING} (HTTP {read.missing})")
        else:
            # A page with no comment but a comment system loaded by script says so (issue 14).
            update = replace(
                update, comments_error=read.note, comments_hint_polled=thread.comment_count_hint
            )
        if read.fetched is not None and not read.error:
            fetched = read.fetched
            # A 304 need not repeat the validators (RFC 9110 section 15.4.5): keep ours.
            kept = fetched.not_modified
            update = replace(
                update,
                comments_etag=fetched.etag or (thread.etag if kept else None),
                comments_last_modified=fetched.last_modified
                or (thread.last_modified if kept else None),
            )
        last_comment_at = thread.last_comment_at
        if read.comments is not None:
            stored = storage.store_comments(thread.entry_id, thread.public_id, read.comments, now)
            if read.complete:
                result.gone += storage.mark_comments_gone(
                    thread.entry_id, (c.key for c in read.comments), now
                )
            result.new += stored.new
            result.updated += stored.updated
            if stored.new:
                new_at = now
                update = replace(update, comments_last_new_at=now)
            dates = [c.published_at for c in read.comments if c.published_at]
            if dates:
                last_comment_at = max([*dates, *([last_comment_at] if last_comment_at else [])])
        next_at = decide_next_comments_poll(
            thread.first_seen_at,
            last_comment_at,
            new_at,
            now,
            quiet_after=self.config.defaults.comments_quiet_after,
        )
        if read.missing is not None:
            if read.missing == 410 or (thread.error or "").startswith(_MISSING):
                log.info(
                    "%s: comment feed of %s answered %d again: not read until its count moves",
                    source.name,
                    thread.link or thread.key,
                    read.missing,
                )
                next_at = None
                update = replace(update, comments_hint_polled=thread.comment_count_hint)
            elif next_at is not None:
                next_at = max(next_at, now + MISSING_RETRY)
        return replace(
            update, comments_next_poll_at=next_at, comments_stopped=1 if next_at is None else 0
        )


def _known(storage: Storage, entry_ids: Sequence[int]) -> dict[int, KnownThread]:
    """What is stored of each of ``entry_ids`` (threads with comments), in one query."""
    stored = storage.known_comments(entry_ids)
    empty: tuple[tuple[int | None, ...], datetime | None, frozenset[str]] = ((), None, frozenset())
    return {entry_id: KnownThread(*stored.get(entry_id, empty)) for entry_id in entry_ids}


def _next_batch(reads: deque[Future[ThreadRead]]) -> list[ThreadRead]:
    """The next read (waiting for it) and those after it that are done, within the limits."""
    batch = [reads.popleft().result()]
    comments = len(batch[0].comments or ())
    while (
        reads
        and reads[0].done()
        and len(batch) < MAX_THREADS_PER_BATCH
        and comments < MAX_COMMENTS_PER_BATCH
    ):
        batch.append(reads.popleft().result())
        comments += len(batch[-1].comments or ())
    return batch
