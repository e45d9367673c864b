"""Follow each entry's comment thread: per-entry comment feeds, a site-wide comment feed, or
the entry's HTML page, in that order of preference (see the README, "Comments").

This module fetches and stores; *when* a thread is polled next, and whether a feed skipped
comments, are decided by :mod:`aggregator.decide`. One failing thread is logged and recorded on
its entry; it never stops the others or the source's own poll. Threads are fetched in worker
threads that never touch the database: what they need of it is read before they start, and what
they read is stored by the calling thread, one transaction per thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urldefrag

from aggregator.config import AppConfig, SourceConfig
from aggregator.decide import decide_next_comments_poll, detect_comment_gap
from aggregator.errors import AggregatorError, FetchError
from aggregator.fetch import Fetcher
from aggregator.models import CommentData, FetchResult, SourceState, ThreadState
from aggregator.pages import (
    PageSelectors,
    extract_comments,
    has_more_comment_pages,
    selectors_from_config,
)
from aggregator.parse import parse_comment_feed, parse_comments
from aggregator.storage import Storage

log = logging.getLogger(__name__)

# A comment feed split into pages (RFC 5005 rel="next") is read this many pages deep at most.
MAX_FEED_PAGES = 20
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


@dataclass(frozen=True)
class _Known:
    """What is stored of one thread, read before the workers start (they open no database)."""

    numbers: tuple[int | None, ...]
    newest_at: datetime | None
    keys: frozenset[str]


@dataclass(frozen=True)
class _ThreadRead:
    """Comments read for one thread, ready to store."""

    thread: ThreadState
    comments: tuple[CommentData, ...] | None  # None: unchanged (304 or skipped)
    fetched: FetchResult | None = None
    complete: bool = False  # a full page listing: comments missing from it are gone
    error: str | None = None
    missing: int | None = None  # the comment feed answered 404 or 410


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
        workers: int = 8,
    ):
        self.config = config
        self._storage = storage
        self.fetcher = fetcher
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
            self._follow_site_feed(source, state, selectors, result, force=force)
        threads = storage.list_threads(state.id, None if force else now)
        readable = [t for t in threads if t.comments_feed_url or (selectors and t.link)]
        if not readable:
            return result
        known = {t.entry_id: _known(storage, t.entry_id) for t in readable if t.comment_count}
        reader = _ThreadReader(self.fetcher, source, selectors, known=known, force=force)
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(readable)))) as pool:
            for read in pool.map(reader.read, readable):
                self._store(source, read, result)
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
            )
            comments = (
                ()
                if fetched.not_modified
                else parse_comments(fetched.content or b"", fetched.headers, fetched.final_url)
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
                fields: dict[str, object] = {}
                if stored.new:
                    fields["comments_last_new_at"] = now
                if gap and selectors and thread.link:
                    fields.update(comments_next_poll_at=now, comments_stopped=0)
                if fields:
                    storage.update_thread(thread.entry_id, **fields)
            storage.update_source(
                state.id,
                comments_etag=fetched.etag or state.comments_etag,
                comments_last_modified=fetched.last_modified or state.comments_last_modified,
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
                fields = self._store_thread(storage, source, read, result, now)
                storage.update_thread(thread.entry_id, **fields)
        except AggregatorError as error:
            result.errors.append(f"{source.name}: {thread.link or thread.key}: {error}")
            log.warning("%s: cannot store comments of %s: %s", source.name, thread.link, error)

    def _store_thread(
        self,
        storage: Storage,
        source: SourceConfig,
        read: _ThreadRead,
        result: CommentsResult,
        now: datetime,
    ) -> dict[str, object]:
        """Store one read's comments; return the thread's new state (validators, schedule)."""
        thread = read.thread
        fields: dict[str, object] = {"comments_polled_at": now}
        new_at = thread.last_new_comment_at
        if read.error:
            fields["comments_error"] = read.error
            result.errors.append(f"{source.name}: {thread.link or thread.key}: {read.error}")
        elif read.missing is not None:
            # The count is not recorded as read: the feed is tried once more despite it.
            fields["comments_error"] = f"{_MISSING} (HTTP {read.missing})"
        else:
            fields["comments_error"] = None
            fields["comments_hint_polled"] = thread.comment_count_hint
        if read.fetched is not None and not read.error:
            # A 304 need not repeat the validators (RFC 9110 section 15.4.5): keep ours.
            fields["comments_etag"] = read.fetched.etag or thread.etag
            fields["comments_last_modified"] = read.fetched.last_modified or thread.last_modified
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
                fields["comments_last_new_at"] = now
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
                fields["comments_hint_polled"] = thread.comment_count_hint
            elif next_at is not None:
                next_at = max(next_at, now + MISSING_RETRY)
        fields["comments_next_poll_at"] = next_at
        fields["comments_stopped"] = 1 if next_at is None else 0
        return fields


class _ThreadReader:
    """Fetches and parses one thread; runs in worker threads and never touches the database."""

    def __init__(
        self,
        fetcher: Fetcher,
        source: SourceConfig,
        selectors: PageSelectors | None,
        *,
        known: dict[int, _Known],
        force: bool,
    ):
        self.fetcher = fetcher
        self.source = source
        self.selectors = selectors
        self.known = known
        self.force = force

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

    def _skip(self, thread: ThreadState) -> bool:
        """Whether the entry's own feed says there is nothing new to read (issue 8)."""
        hint = thread.comment_count_hint
        if hint == 0 and thread.comment_count == 0:
            # The blog says the thread is empty and we hold none of it: even a manual poll
            # would fetch nothing. Storage resumes the thread when the count moves.
            return True
        if self.force:
            return False
        return (
            hint is not None and thread.hint_at_last_poll == hint and thread.polled_at is not None
        )

    def _read_feed(self, thread: ThreadState) -> _ThreadRead:
        assert thread.comments_feed_url
        if self._skip(thread):
            return _ThreadRead(thread, None)
        try:
            fetched = self.fetcher.fetch(
                thread.comments_feed_url, etag=thread.etag, last_modified=thread.last_modified
            )
        except FetchError as error:
            if error.status not in (404, 410):
                raise
            # WordPress and others answer 404 for the feed of a post with comments closed.
            if self.selectors and thread.link:
                return self._read_page(thread, conditional=False)
            log.info(
                "%s: comment feed of %s answered %s",
                self.source.name,
                thread.link or thread.key,
                error.status,
            )
            return _ThreadRead(thread, None, missing=error.status)
        if fetched.not_modified:
            return _ThreadRead(thread, None, fetched)
        comments = self._read_pages(thread, fetched)
        known = self.known.get(thread.entry_id)
        if known and detect_comment_gap(known.numbers, known.newest_at, comments):
            log.warning(
                "%s: comment feed of %s skipped comments since the last poll%s",
                self.source.name,
                thread.link or thread.key,
                "; reading the page" if self.selectors and thread.link else "",
            )
            if self.selectors and thread.link:
                page = self._read_page(thread, conditional=False)
                if page.comments:
                    return _ThreadRead(thread, _merge(page.comments, comments), fetched)
        return _ThreadRead(thread, comments, fetched)

    def _read_pages(self, thread: ThreadState, fetched: FetchResult) -> tuple[CommentData, ...]:
        """The comments of a comment feed's first document and of the pages after it.

        Pages listed newest first are followed until one brings nothing that is not stored yet;
        pages listed oldest first are followed to the end, where the new comments are. Either
        way no more than :data:`MAX_FEED_PAGES`, and never the same URL twice.
        """
        document = parse_comment_feed(fetched.content or b"", fetched.headers, fetched.final_url)
        comments = {c.key: c for c in document.comments}
        known = self.known.get(thread.entry_id)
        seen = {fetched.url, fetched.final_url}
        pages = 1
        while document.next_url and document.next_url not in seen:
            stored = known.keys if known else frozenset()
            if document.newest_first and all(c.key in stored for c in document.comments):
                break
            if pages >= MAX_FEED_PAGES:
                log.warning(
                    "%s: comment feed of %s has more than %d pages; read the first %d",
                    self.source.name,
                    thread.link or thread.key,
                    MAX_FEED_PAGES,
                    MAX_FEED_PAGES,
                )
                break
            seen.add(document.next_url)
            page = self.fetcher.fetch(document.next_url)
            document = parse_comment_feed(page.content or b"", page.headers, page.final_url)
            pages += 1
            for comment in document.comments:
                comments.setdefault(comment.key, comment)
        return tuple(comments.values())

    def _read_page(self, thread: ThreadState, *, conditional: bool = True) -> _ThreadRead:
        assert self.selectors and thread.link
        fetched = self.fetcher.fetch(
            thread.link,
            etag=thread.etag if conditional else None,
            last_modified=thread.last_modified if conditional else None,
        )
        if fetched.not_modified:
            return _ThreadRead(thread, None, fetched)
        comments = extract_comments(
            fetched.content or b"", fetched.final_url, self.selectors, timezone=self.source.timezone
        )
        complete = True
        if has_more_comment_pages(fetched.content or b""):
            # Comments split over several pages: those not on this one are not gone, and a
            # position on this page is no position in the thread.
            log.info(
                "%s: %s shows one page of its comments; the others are not read",
                self.source.name,
                thread.link,
            )
            complete = False
            if self.selectors.number is None and self.selectors.footer is None:
                comments = [replace(c, number=None) for c in comments]
        elif not comments and thread.entry_id in self.known:
            # A page that lost every comment is more likely an error page or new markup than a
            # blog that deleted the whole thread: keep the stored comments as they are.
            log.warning(
                "%s: no comments found on %s, where %d were stored; not marking them gone",
                self.source.name,
                thread.link,
                thread.comment_count,
            )
            complete = False
        return _ThreadRead(thread, tuple(comments), fetched, complete=complete)


def _known(storage: Storage, entry_id: int) -> _Known:
    numbers, newest_at = storage.comment_numbers(entry_id)
    return _Known(tuple(numbers), newest_at, frozenset(storage.comment_keys(entry_id)))


def _merge(
    from_page: Sequence[CommentData], from_feed: Sequence[CommentData]
) -> tuple[CommentData, ...]:
    """One list of a page's and a feed's comments: the feed's version of a comment both hold,
    completed with what only the page knows (its number, parent and author URL)."""
    merged = {c.key: c for c in from_page}
    for comment in from_feed:
        page = merged.get(comment.key)
        if page is not None:
            comment = replace(
                comment,
                number=comment.number if comment.number is not None else page.number,
                parent_key=comment.parent_key or page.parent_key,
                author_url=comment.author_url or page.author_url,
            )
        merged[comment.key] = comment
    return tuple(merged.values())


def match_comments_to_threads(
    comments: Sequence[CommentData], threads: Sequence[ThreadState]
) -> list[tuple[ThreadState, list[CommentData]]]:
    """Group a site-wide feed's comments by entry.

    A comment names its entry through ``thr:in-reply-to`` (its ``ref``, the post's guid, or its
    ``href``, the post's URL), else through its link (WordPress: ``<post-url>#comment-123``), else
    through its guid (WordPress: ``https://blog/?p=3#comment-123``, the post's guid plus the
    comment's anchor). A reply's ``thr:in-reply-to`` names its parent comment, whose URL without
    the fragment is the post's again. Comments that match no entry are left out.
    """
    by_ref: dict[str, ThreadState] = {}
    for thread in threads:
        for ref in (thread.guid, thread.link, thread.key):
            if ref:
                by_ref.setdefault(ref, thread)
                by_ref.setdefault(_strip(ref), thread)
    groups: dict[int, tuple[ThreadState, list[CommentData]]] = {}
    for comment in comments:
        thread = None
        for ref in (comment.in_reply_to, comment.in_reply_to_href, comment.link, comment.guid):
            if ref:
                thread = by_ref.get(ref) or by_ref.get(_strip(ref))
            if thread is not None:
                break
        if thread is not None:
            groups.setdefault(thread.entry_id, (thread, []))[1].append(comment)
    return list(groups.values())


def _strip(url: str) -> str:
    return urldefrag(url)[0].rstrip("/")
