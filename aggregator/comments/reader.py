"""Read one comment thread: its comment feed (and the pages that feed is split into), or the
post's HTML page. Runs in worker threads and never touches the database; a :class:`ThreadRead`
carries what was read back to :mod:`aggregator.comments.follower`, which stores it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aggregator.comments.paging import page_number, thread_url
from aggregator.comments.selectors import PageSelectors
from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError, FetchError
from aggregator.fetch.addresses import Provenance
from aggregator.fetch.fetcher import Fetcher
from aggregator.models import CommentData, FetchResult, RequestOptions, ThreadState
from aggregator.parse.sandbox import InProcessParser, Parser
from aggregator.schedule.threads import detect_comment_gap

if TYPE_CHECKING:
    from aggregator.comments.detect import Detection

log = logging.getLogger("aggregator.comments")

# A comment feed split into pages (RFC 5005 rel="next") is read this many pages deep at most.
MAX_FEED_PAGES = 20


@dataclass(frozen=True)
class KnownThread:
    """What is stored of one thread, read before the workers start (they open no database)."""

    numbers: tuple[int | None, ...]
    newest_at: datetime | None
    keys: frozenset[str]


@dataclass(frozen=True)
class ThreadRead:
    """Comments read for one thread, ready to store."""

    thread: ThreadState
    comments: tuple[CommentData, ...] | None  # None: unchanged (304 or skipped)
    fetched: FetchResult | None = None
    complete: bool = False  # a full page listing: comments missing from it are gone
    error: str | None = None
    missing: int | None = None  # the comment feed answered 404 or 410
    #: Why a page read gave no comment though it has some elsewhere ("comments load by
    #: script (Disqus); none in the page"), recorded as the thread's ``comments_error``.
    note: str | None = None


class ThreadReader:
    """Fetches and parses one thread; runs in worker threads and never touches the database."""

    def __init__(
        self,
        fetcher: Fetcher,
        source: SourceConfig,
        selectors: PageSelectors | None,
        *,
        known: dict[int, KnownThread],
        force: bool,
        parser: Parser | None = None,
        now: datetime | None = None,
        request: RequestOptions | None = None,
    ):
        self.fetcher = fetcher
        # The source's request options: its proxy, and its credentials on its own origin.
        self.request = request
        self.parser: Parser = parser or InProcessParser()
        self.now = now or datetime.now(UTC)
        # URLs read here were found in the source's feed, not configured (SSRF rules).
        self.provenance = Provenance.found_in(source.url)
        self.source = source
        self.selectors = selectors
        self.known = known
        self.force = force

    def read(self, thread: ThreadState) -> ThreadRead:
        try:
            if thread.comments_feed_url:
                return self._read_feed(thread)
            return self._read_page(thread)
        except AggregatorError as error:
            log.warning(
                "%s: comments of %s: %s", self.source.name, thread.link or thread.key, error
            )
            return ThreadRead(thread, None, error=str(error))
        except Exception as error:  # a bug must not stop the other threads
            log.exception(
                "%s: unexpected error reading comments of %s", self.source.name, thread.link
            )
            return ThreadRead(thread, None, error=f"internal error: {error!r}")

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

    def _read_feed(self, thread: ThreadState) -> ThreadRead:
        assert thread.comments_feed_url
        if self._skip(thread):
            return ThreadRead(thread, None)
        try:
            fetched = self.fetcher.fetch(
                thread.comments_feed_url,
                etag=thread.etag,
                last_modified=thread.last_modified,
                provenance=self.provenance,
                request=self.request,
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
            return ThreadRead(thread, None, missing=error.status)
        if fetched.not_modified:
            return ThreadRead(thread, None, fetched)
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
                    return ThreadRead(thread, merge_reads(page.comments, comments), fetched)
        return ThreadRead(thread, comments, fetched)

    def _read_pages(self, thread: ThreadState, fetched: FetchResult) -> tuple[CommentData, ...]:
        """The comments of a comment feed's first document and of the pages after it.

        Pages listed newest first are followed until one brings nothing that is not stored yet;
        pages listed oldest first are followed to the end, where the new comments are. Either
        way no more than :data:`MAX_FEED_PAGES`, and never the same URL twice.
        """
        document = self.parser.parse_comment_feed(
            fetched.content or b"", fetched.headers, fetched.final_url, now=self.now
        )
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
            page = self.fetcher.fetch(
                document.next_url, provenance=self.provenance, request=self.request
            )
            document = self.parser.parse_comment_feed(
                page.content or b"", page.headers, page.final_url, now=self.now
            )
            pages += 1
            for comment in document.comments:
                comments.setdefault(comment.key, comment)
        return tuple(comments.values())

    def _read_page(self, thread: ThreadState, *, conditional: bool = True) -> ThreadRead:
        assert self.selectors and thread.link
        fetched = self.fetcher.fetch(
            thread.link,
            etag=thread.etag if conditional else None,
            last_modified=thread.last_modified if conditional else None,
            provenance=self.provenance,
            request=self.request,
        )
        if fetched.not_modified:
            return ThreadRead(thread, None, fetched)
        found = self._detect(fetched)
        comments, complete = self._read_other_pages(thread, fetched, found)
        note = found.script_note if not comments else None
        if note:
            log.info("%s: %s: %s", self.source.name, thread.link, note)
        if not complete:
            # Comments split over pages not all read: those not read are not gone, and a
            # position on one page is no position in the thread.
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
        return ThreadRead(thread, tuple(comments), fetched, complete=complete, note=note)

    def _detect(self, fetched: FetchResult) -> Detection:
        assert self.selectors
        return self.parser.read_page(
            fetched.content or b"",
            fetched.final_url,
            self.selectors,
            self.source.timezone,
            now=self.now,  # relative dates ("3 days ago") count from the fetch
        )

    def _read_other_pages(
        self, thread: ThreadState, fetched: FetchResult, first: Detection
    ) -> tuple[list[CommentData], bool]:
        """The comments of the post's page and of the other pages of its comments
        (``/comment-page-N/``, ``?cpage=N``, rel=next/prev in the comment navigation), merged
        in thread order, and whether every page was read.

        Pages are found URLs (SSRF rules), read at most :data:`MAX_FEED_PAGES` in all and never
        twice; links found on each page are followed too. A page that cannot be read leaves the
        thread incomplete (nothing is marked gone) but keeps what the others gave.
        """
        if not first.more_pages:
            return list(first.comments), True
        read: dict[str, Detection] = {thread_url(fetched.final_url): first}
        first_key = thread_url(fetched.final_url)
        numbers: dict[str, int | None] = {first_key: page_number(fetched.final_url)}
        waiting = list(first.more_pages)
        complete = True
        while waiting:
            url = waiting.pop(0)
            if url in numbers or url in read:
                continue
            if len(read) >= MAX_FEED_PAGES:
                log.warning(
                    "%s: comments of %s are split into more than %d pages; read the first %d",
                    self.source.name,
                    thread.link,
                    MAX_FEED_PAGES,
                    MAX_FEED_PAGES,
                )
                complete = False
                break
            numbers[url] = page_number(url)
            try:
                page = self.fetcher.fetch(url, provenance=self.provenance)
                found = self._detect(page)
            except AggregatorError as error:
                log.warning(
                    "%s: page of comments %s of %s: %s", self.source.name, url, thread.link, error
                )
                complete = False
                continue
            read[url] = found
            waiting += [u for u in found.more_pages if u not in numbers]
        numbers[first_key] = numbers[first_key] or _unnumbered_page(numbers)
        order = list(read)  # the order found, unless every page read has a number
        if all(numbers.get(url) is not None for url in order):
            order.sort(key=lambda url: numbers[url] or 0)
        merged: dict[str, CommentData] = {}
        for url in order:
            for comment in read[url].comments:
                merged.setdefault(comment.key, comment)
        comments = list(merged.values())
        selectors = self.selectors
        if selectors is None or (selectors.number is None and selectors.footer is None):
            comments = [replace(c, number=n) for n, c in enumerate(comments, 1)]
        return comments, complete


def merge_reads(
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


def _unnumbered_page(numbers: dict[str, int | None]) -> int:
    """The number of the page shown at the post's own address, from the numbers of the pages
    it links to: WordPress shows the last page there (it links to 1 .. N-1) or the first (it
    links to 2 .. N)."""
    linked = [n for n in numbers.values() if n is not None]
    if not linked:
        return 1
    return 1 if min(linked) > 1 else max(linked) + 1
