"""The jobs a parse worker runs: one function per kind of document, each the parse module's own.

Module-level so that a worker can import them by name (a job crosses the pipe as a reference to
its function, :mod:`aggregator.parse.workers`); :class:`~aggregator.parse.sandbox.InProcessParser`
calls them directly. The parse modules are imported where they are used: the daemon and
``aggregator poll`` only send documents to workers, which have them preloaded
(:data:`aggregator.parse.workers.PRELOAD`). Nothing here decides what a parse means: the
functions are those of :mod:`aggregator.parse.feed`, :mod:`aggregator.parse.comment_feed`,
:mod:`aggregator.comments.pages`, :mod:`aggregator.comments.detect`,
:mod:`aggregator.parse.links` and :mod:`aggregator.fulltext.extract`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.models import CommentData, CommentFeedData, FeedData, RewriteChange, RewriteRule

if TYPE_CHECKING:
    from aggregator.comments.detect import Detection
    from aggregator.comments.selectors import PageSelectors


def parse_feed(
    content: bytes,
    headers: Mapping[str, str],
    url: str,
    now: datetime,
    rules: tuple[RewriteRule, ...] = (),
) -> FeedData:
    """A feed document as :class:`FeedData`, rewritten by ``rules`` (their changes left out)."""
    from aggregator.parse import feed as parse

    feed = parse.parse_feed(content, headers, url, now=now, rewrite=rules)
    # What the rules changed is for preview --explain; a poll need not carry it back.
    return replace(feed, rewrite_changes=()) if feed.rewrite_changes else feed


def explain_rewrite(
    content: bytes,
    headers: Mapping[str, str],
    url: str,
    now: datetime,
    rules: tuple[RewriteRule, ...],
) -> tuple[RewriteChange, ...]:
    """What each of ``rules`` changes in a feed document (``preview --explain``)."""
    from aggregator.parse import feed as parse

    return parse.parse_feed(content, headers, url, now=now, rewrite=rules).rewrite_changes


def parse_comments(
    content: bytes, headers: Mapping[str, str], url: str, now: datetime
) -> tuple[CommentData, ...]:
    """A comment feed's comments."""
    from aggregator.parse import comment_feed

    return comment_feed.parse_comments(content, headers, url, now=now)


def parse_comment_feed(
    content: bytes, headers: Mapping[str, str], url: str, now: datetime
) -> CommentFeedData:
    """A comment feed: its comments and its paging links."""
    from aggregator.parse import comment_feed

    return comment_feed.parse_comment_feed(content, headers, url, now=now)


def extract_comments(
    html: bytes,
    page_url: str,
    selectors: PageSelectors,
    timezone: str | None,
    now: datetime | None = None,
) -> list[CommentData]:
    """The comments of a post's HTML page, read with ``selectors``."""
    from aggregator.comments import pages

    return pages.extract_comments(html, page_url, selectors, timezone=timezone, now=now)


def read_page(
    html: bytes,
    page_url: str,
    selectors: PageSelectors,
    timezone: str | None,
    now: datetime | None = None,
) -> Detection:
    """A post page's comments, the detector that matched and the page's other clues
    (:func:`aggregator.comments.detect.read_comments`)."""
    from aggregator.comments.detect import read_comments

    return read_comments(
        html, page_url, "auto" if selectors.detect else selectors, timezone, now=now
    )


def alternate_feeds(html: bytes, page_url: str) -> list[str]:
    """The feeds an HTML page links to."""
    from aggregator.parse import links

    return links.alternate_feeds(html, page_url)


def extract_article(html: bytes, page_url: str) -> str | None:
    """The article of an entry's page as sanitized HTML, or ``None`` when none was found."""
    # Imported here: trafilatura is loaded only where articles are extracted.
    from aggregator.fulltext import extract

    return extract.extract_article(html, page_url)
