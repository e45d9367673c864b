"""Follow each entry's comment thread: per-entry comment feeds, a site-wide comment feed, or
the entry's HTML page, in that order of preference (see the README, "Comments").

This module fetches and stores; *when* a thread is polled next, and whether a feed skipped
comments, are decided by :mod:`aggregator.decide`. One failing thread is logged and recorded on
its entry; it never stops the others or the source's own poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urldefrag

from aggregator.addresses import Provenance
from aggregator.config import AppConfig, SourceConfig
from aggregator.decide import decide_next_comments_poll, detect_comment_gap
from aggregator.errors import AggregatorError
from aggregator.fetch import Fetcher
from aggregator.models import CommentData, FetchResult, SourceState, ThreadState
from aggregator.pages import PageSelectors, selectors_from_config
from aggregator.sandbox import InProcessParser, Parser
from aggregator.storage import Storage

log = logging.getLogger(__name__)

#: Threads read in one round of one source at most (newest first); the rest wait for the next
#: round, so a feed listing thousands of comment feeds cannot keep the daemon busy for hours.
MAX_THREADS_PER_ROUND = 200


@dataclass
class CommentsResult:
    """What one follow of one source's threads changed."""

    threads: int = 0
    new: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _ThreadRead:
    """Comments read for one thread, ready to store."""

    thread: ThreadState
    comments: tuple[CommentData, ...] | None  # None: unchanged (304 or skipped)
    fetched: FetchResult | None = None
    complete: bool = False  # a full page listing: comments missing from it are gone
    error: str | None = None


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

    def follow(self, source: SourceConfig, *, force: bool = False) -> CommentsResult:
        """Read the source's due threads (every followed thread when ``force``) and store them."""
        result = CommentsResult()
        if not self.config.comments_for(source):
            return result
        storage = self._storage()
        state = storage.get_source(source.name)
        now = self.clock()
        selectors = selectors_from_config(source.comments_page) if source.comments_page else None
        if source.comments_url:
            self._follow_site_feed(source, state, result)
        threads = storage.list_threads(state.id, None if force else now)
        readable = [t for t in threads if t.comments_feed_url or (selectors and t.link)]
        readable = readable[:MAX_THREADS_PER_ROUND]
        if not readable:
            return result
        reader = _ThreadReader(
            self.fetcher,
            self.parser,
            source,
            selectors,
            storage_numbers=self._numbers,
            force=force,
            now=now,
        )
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(readable)))) as pool:
            for read in pool.map(reader.read, readable):
                self._store(source, read, result)
        return result

    def _numbers(self, entry_id: int) -> tuple[list[int | None], datetime | None]:
        return self._storage().comment_numbers(entry_id)

    # -- a site-wide comment feed ---------------------------------------------------------------
    def _follow_site_feed(
        self, source: SourceConfig, state: SourceState, result: CommentsResult
    ) -> None:
        storage = self._storage()
        assert source.comments_url
        try:
            fetched = self.fetcher.fetch(
                source.comments_url,
                etag=state.comments_etag,
                last_modified=state.comments_last_modified,
            )
            if fetched.not_modified:
                return
            comments = self.parser.parse_comments(
                fetched.content or b"", fetched.headers, fetched.final_url, now=self.clock()
            )
        except AggregatorError as error:
            message = f"{source.name}: site-wide comment feed: {error}"
            log.warning("%s", message)
            result.errors.append(message)
            return
        threads = storage.list_threads(state.id, None)
        grouped = match_comments_to_threads(comments, threads)
        now = self.clock()
        with self.write_lock, storage.transaction():
            for thread, items in grouped:
                stored = storage.store_comments(thread.entry_id, thread.public_id, items, now)
                result.new += stored.new
                result.updated += stored.updated
                if stored.new:
                    storage.update_thread(thread.entry_id, comments_last_new_at=now)
            storage.update_source(
                state.id,
                comments_etag=fetched.etag,
                comments_last_modified=fetched.last_modified,
                comments_polled_at=now,
            )
        unmatched = len(comments) - sum(len(items) for _, items in grouped)
        if unmatched:
            log.info(
                "%s: %d comment(s) in the site-wide feed match no stored entry",
                source.name,
                unmatched,
            )

    # -- storing one thread ---------------------------------------------------------------------
    def _store(self, source: SourceConfig, read: _ThreadRead, result: CommentsResult) -> None:
        storage = self._storage()
        thread = read.thread
        now = self.clock()
        result.threads += 1
        try:
            with self.write_lock, storage.transaction():
                fields: dict[str, object] = {"comments_polled_at": now}
                new_at = thread.last_new_comment_at
                if read.error:
                    fields["comments_error"] = read.error
                    result.errors.append(
                        f"{source.name}: {thread.link or thread.key}: {read.error}"
                    )
                else:
                    fields["comments_error"] = None
                    fields["comments_hint_polled"] = thread.comment_count_hint
                if read.fetched is not None and not read.error:
                    fields["comments_etag"] = read.fetched.etag
                    fields["comments_last_modified"] = read.fetched.last_modified
                last_comment_at = thread.last_comment_at
                if read.comments is not None:
                    stored = storage.store_comments(
                        thread.entry_id, thread.public_id, read.comments, now
                    )
                    if read.complete:
                        storage.mark_comments_gone(
                            thread.entry_id, (c.key for c in read.comments), now
                        )
                    result.new += stored.new
                    result.updated += stored.updated
                    if stored.new:
                        new_at = now
                        fields["comments_last_new_at"] = now
                    dates = [c.published_at for c in read.comments if c.published_at]
                    if dates:
                        last_comment_at = max(
                            [*dates, *([last_comment_at] if last_comment_at else [])]
                        )
                next_at = decide_next_comments_poll(
                    thread.first_seen_at,
                    last_comment_at,
                    new_at,
                    now,
                    quiet_after=self.config.defaults.comments_quiet_after,
                )
                fields["comments_next_poll_at"] = next_at
                fields["comments_stopped"] = 1 if next_at is None else 0
                storage.update_thread(thread.entry_id, **fields)
        except AggregatorError as error:
            result.errors.append(f"{source.name}: {thread.link or thread.key}: {error}")
            log.warning("%s: cannot store comments of %s: %s", source.name, thread.link, error)


class _ThreadReader:
    """Fetches and parses one thread; runs in worker threads, touches no storage writes."""

    def __init__(
        self,
        fetcher: Fetcher,
        parser: Parser,
        source: SourceConfig,
        selectors: PageSelectors | None,
        *,
        storage_numbers: Callable[[int], tuple[list[int | None], datetime | None]],
        force: bool,
        now: datetime,
    ):
        self.fetcher = fetcher
        self.parser = parser
        self.now = now
        self.source = source
        self.selectors = selectors
        self.storage_numbers = storage_numbers
        self.force = force
        self._numbers_lock = threading.Lock()

    def read(self, thread: ThreadState) -> _ThreadRead:
        try:
            if thread.comments_feed_url:
                return self._read_feed(thread)
            return self._read_page(thread)
        except AggregatorError as error:
            log.warning(
                "%s: comments of %s: %s", self.source.name, thread.link or thread.key, error
            )
            return _ThreadRead(thread, None, error=str(error))
        except Exception as error:  # a bug must not stop the other threads
            log.exception(
                "%s: unexpected error reading comments of %s", self.source.name, thread.link
            )
            return _ThreadRead(thread, None, error=f"internal error: {error!r}")

    def _read_feed(self, thread: ThreadState) -> _ThreadRead:
        assert thread.comments_feed_url
        hint_unchanged = (
            thread.comment_count_hint is not None
            and thread.hint_at_last_poll == thread.comment_count_hint
            and thread.polled_at is not None
        )
        if hint_unchanged and not self.force:
            # The feed says the count did not move since we last read the thread (issue 8).
            return _ThreadRead(thread, None)
        fetched = self.fetcher.fetch(
            thread.comments_feed_url,
            etag=thread.etag,
            last_modified=thread.last_modified,
            # Found in the source's feed: not the operator's choice (SSRF rules, addresses.py).
            provenance=Provenance.found_in(self.source.url),
        )
        if fetched.not_modified:
            return _ThreadRead(thread, None, fetched)
        comments = self.parser.parse_comments(
            fetched.content or b"", fetched.headers, fetched.final_url, now=self.now
        )
        if thread.comment_count:
            with self._numbers_lock:
                numbers, newest = self.storage_numbers(thread.entry_id)
            if detect_comment_gap(numbers, newest, comments):
                log.warning(
                    "%s: comment feed of %s skipped comments since the last poll%s",
                    self.source.name,
                    thread.link or thread.key,
                    "; reading the page" if self.selectors and thread.link else "",
                )
                if self.selectors and thread.link:
                    page = self._read_page(thread, conditional=False)
                    if page.comments:
                        merged = {c.key: c for c in page.comments}
                        merged.update({c.key: c for c in comments})
                        return _ThreadRead(thread, tuple(merged.values()), fetched)
        return _ThreadRead(thread, comments, fetched)

    def _read_page(self, thread: ThreadState, *, conditional: bool = True) -> _ThreadRead:
        assert self.selectors and thread.link
        fetched = self.fetcher.fetch(
            thread.link,
            etag=thread.etag if conditional else None,
            last_modified=thread.last_modified if conditional else None,
            provenance=Provenance.found_in(self.source.url),
        )
        if fetched.not_modified:
            return _ThreadRead(thread, None, fetched)
        comments = self.parser.extract_comments(
            fetched.content or b"", fetched.final_url, self.selectors, self.source.timezone
        )
        return _ThreadRead(thread, tuple(comments), fetched, complete=True)


def match_comments_to_threads(
    comments: Sequence[CommentData], threads: Sequence[ThreadState]
) -> list[tuple[ThreadState, list[CommentData]]]:
    """Group a site-wide feed's comments by entry: ``thr:in-reply-to`` first, else the link.

    A comment's ``in_reply_to`` may name the entry's guid or its URL; a WordPress comment link
    is ``<post-url>#comment-123``, so the link without its fragment names the post.
    """
    by_ref: dict[str, ThreadState] = {}
    for thread in threads:
        if thread.guid:
            by_ref.setdefault(thread.guid, thread)
        if thread.link:
            by_ref.setdefault(_strip(thread.link), thread)
        by_ref.setdefault(thread.key, thread)
    groups: dict[int, tuple[ThreadState, list[CommentData]]] = {}
    for comment in comments:
        thread = None
        if comment.in_reply_to:
            thread = by_ref.get(comment.in_reply_to) or by_ref.get(_strip(comment.in_reply_to))
        if thread is None and comment.link:
            thread = by_ref.get(_strip(comment.link))
        if thread is not None:
            groups.setdefault(thread.entry_id, (thread, []))[1].append(comment)
    return list(groups.values())


def _strip(url: str) -> str:
    return urldefrag(url)[0].rstrip("/")
