"""Parse untrusted documents in a worker process with a memory cap and a time limit.

feedparser is pure Python and keeps the whole document as objects: a 10 MB feed of 300,000
tiny entries takes over a minute and ~400 MB, and it holds the GIL all along, which would stall
the scheduler and the HTTP server. So the daemon parses in separate processes
(:mod:`aggregator.parse.workers`: lanes, pools, the fork server):

* small and large documents have separate workers, so small feeds never queue behind big ones;
* what a parse may add to the worker's address space is capped (:data:`MEMORY_LIMIT`); a
  document that needs more fails with a clear :class:`~aggregator.errors.ParseError` while
  the daemon's own memory does not move;
* a parse that runs longer than the time limit is killed, and the worker replaced;
* a worker that dies (a crash in a C extension) costs that one document only;
* articles are extracted from entries' pages (``full_text``, :mod:`aggregator.fulltext.extract`)
  in a lane of their own (:data:`EXTRACT_MEMORY_LIMIT`, :data:`EXTRACT_TIMEOUT`), started only
  when a source asks for full text, so trafilatura is never loaded otherwise.

This module is the API: :class:`Parser`, what the pipeline needs; :class:`SandboxParser`, which
chooses the lane and sends it a job; :class:`InProcessParser`, the same calls without a worker,
for tests and tools that parse a handful of known files. The jobs themselves are the functions
of :mod:`aggregator.parse.jobs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from aggregator.comments.selectors import PageSelectors
from aggregator.models import CommentData, CommentFeedData, FeedData, RewriteChange, RewriteRule
from aggregator.parse import jobs
from aggregator.parse.workers import Lane, Pool, default_workers, parser_closed, parser_opened

__all__ = [
    "EXTRACT_MEMORY_LIMIT",
    "EXTRACT_TIMEOUT",
    "MEMORY_LIMIT",
    "PARSE_TIMEOUT",
    "SMALL_DOCUMENT",
    "InProcessParser",
    "Parser",
    "SandboxParser",
    "default_workers",
]

if TYPE_CHECKING:
    from aggregator.comments.detect import Detection

#: What one parse may add to a worker's address space (above what the worker has mapped once
#: started: Python and the parse libraries, which a limit need not allow for).
MEMORY_LIMIT = 128 * 1024 * 1024
#: One document's parse at most, in seconds (a 10,000-entry feed takes about 5).
PARSE_TIMEOUT = 60.0
#: Documents up to this size have their own worker, with smaller limits.
SMALL_DOCUMENT = 512 * 1024
SMALL_MEMORY_LIMIT = 64 * 1024 * 1024
SMALL_TIMEOUT = 20.0
#: Extracting one article from a page (trafilatura) at most: the memory it may add to its
#: worker (trafilatura itself loaded) and its time.
EXTRACT_MEMORY_LIMIT = 128 * 1024 * 1024
EXTRACT_TIMEOUT = 20.0
#: What the extraction worker imports before its memory is capped.
_EXTRACT_MODULE = "aggregator.fulltext.extract"


class Parser(Protocol):
    """What the pipeline needs from a parser, wherever it runs.

    ``parse_feed``'s ``rewrite`` rules (:mod:`aggregator.parse.rewrite`) are applied where the
    feed is parsed, so a rule's work on hostile HTML has the parse's limits too.
    """

    def parse_feed(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule] = (),
    ) -> FeedData: ...

    def explain_rewrite(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule],
    ) -> tuple[RewriteChange, ...]: ...

    def parse_comments(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> tuple[CommentData, ...]: ...

    def parse_comment_feed(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> CommentFeedData: ...

    def extract_comments(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> list[CommentData]: ...

    def read_page(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> Detection: ...

    def alternate_feeds(self, html: bytes, page_url: str) -> list[str]: ...

    def extract_article(self, html: bytes, page_url: str) -> str | None: ...

    def close(self) -> None: ...


class InProcessParser:
    """Parses in the calling thread: no limits beyond those of the parse functions."""

    def parse_feed(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule] = (),
    ) -> FeedData:
        return jobs.parse_feed(content, dict(headers), url, now, tuple(rewrite))

    def explain_rewrite(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule],
    ) -> tuple[RewriteChange, ...]:
        return jobs.explain_rewrite(content, dict(headers), url, now, tuple(rewrite))

    def parse_comments(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> tuple[CommentData, ...]:
        return jobs.parse_comments(content, headers, url, now)

    def parse_comment_feed(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> CommentFeedData:
        return jobs.parse_comment_feed(content, headers, url, now)

    def extract_comments(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> list[CommentData]:
        return jobs.extract_comments(html, page_url, selectors, timezone, now)

    def read_page(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> Detection:
        return jobs.read_page(html, page_url, selectors, timezone, now)

    def alternate_feeds(self, html: bytes, page_url: str) -> list[str]:
        return jobs.alternate_feeds(html, page_url)

    def extract_article(self, html: bytes, page_url: str) -> str | None:
        return jobs.extract_article(html, page_url)

    def close(self) -> None:
        pass


class SandboxParser:
    """Parses in worker processes with a memory cap and a time limit each, in two lanes.

    Documents up to :data:`SMALL_DOCUMENT` bytes (nearly every feed and comment feed) have a
    worker of their own, so a good source's small feed never waits behind a hostile 10 MB one
    that takes its full minute. Larger documents go to the other lane, with
    :data:`MEMORY_LIMIT` and the full time limit. Each lane starts on first use and restarts
    itself if it breaks; :meth:`close` stops both. Safe to share between threads.
    """

    def __init__(
        self,
        *,
        memory_limit: int = MEMORY_LIMIT,
        timeout: float = PARSE_TIMEOUT,
        small_document: int = SMALL_DOCUMENT,
        small_workers: int | None = None,
        extract_memory_limit: int = EXTRACT_MEMORY_LIMIT,
    ):
        self.small_document = small_document
        # Nearly every document is small: one worker per core parses them side by side
        # (feedparser is pure Python, so threads alone would use one core).
        self._small = Pool(
            [
                Lane(min(memory_limit, SMALL_MEMORY_LIMIT), min(timeout, SMALL_TIMEOUT))
                for _ in range(small_workers or default_workers())
            ]
        )
        self._large = Pool([Lane(memory_limit, timeout)])
        self._extract = Pool(
            [
                Lane(
                    extract_memory_limit,
                    min(timeout, EXTRACT_TIMEOUT),
                    preload=_EXTRACT_MODULE,
                )
            ]
        )
        parser_opened(self)

    def parse_feed(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule] = (),
    ) -> FeedData:
        result: FeedData = self._lane(content).run(
            jobs.parse_feed, content, dict(headers), url, now, tuple(rewrite)
        )
        return result

    def explain_rewrite(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule],
    ) -> tuple[RewriteChange, ...]:
        """What each rule of ``rewrite`` changes in the feed (``aggregator preview --explain``)."""
        result: tuple[RewriteChange, ...] = self._lane(content).run(
            jobs.explain_rewrite, content, dict(headers), url, now, tuple(rewrite)
        )
        return result

    def parse_comments(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> tuple[CommentData, ...]:
        result: tuple[CommentData, ...] = self._lane(content).run(
            jobs.parse_comments, content, dict(headers), url, now
        )
        return result

    def parse_comment_feed(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> CommentFeedData:
        result: CommentFeedData = self._lane(content).run(
            jobs.parse_comment_feed, content, dict(headers), url, now
        )
        return result

    def extract_comments(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> list[CommentData]:
        result: list[CommentData] = self._lane(html).run(
            jobs.extract_comments, html, page_url, selectors, timezone, now
        )
        return result

    def read_page(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> Detection:
        """A post page's comments, the detector that matched, the comment systems it loads by
        script and its other pages of comments (:class:`~aggregator.comments.detect.Detection`)."""
        result: Detection = self._lane(html).run(
            jobs.read_page, html, page_url, selectors, timezone, now
        )
        return result

    def alternate_feeds(self, html: bytes, page_url: str) -> list[str]:
        """The feeds an HTML page links to (``aggregator add``), read in the sandbox."""
        result: list[str] = self._lane(html).run(jobs.alternate_feeds, html, page_url)
        return result

    def extract_article(self, html: bytes, page_url: str) -> str | None:
        """The article of an entry's page as sanitized HTML, or ``None`` when none was found
        (:func:`aggregator.fulltext.extract.extract_article`), in the extraction worker."""
        result: str | None = self._extract.run(jobs.extract_article, html, page_url)
        return result

    def close(self) -> None:
        self._small.close()
        self._large.close()
        self._extract.close()
        parser_closed(self)

    def __enter__(self) -> SandboxParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lane(self, content: bytes) -> Pool:
        return self._small if len(content) <= self.small_document else self._large
