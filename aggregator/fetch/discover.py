"""Find the feed behind a URL, for ``aggregator add``.

Given a blog's home page or a feed URL: if the URL is a feed, that is the answer; if it is an
HTML page, its ``<link rel="alternate">`` feeds (RSS Autodiscovery, the HTML Living Standard's
"alternate" + feed type) are tried in order, then the paths where blog engines put feeds
(``/feed/``, ``/rss``, ``/atom.xml``, ``/index.rdf`` ...). Each candidate is fetched and must
parse as a feed. What was found is summed up in a :class:`FoundFeed`: title, format, entries,
and whether posts carry comment feeds (``wfw:commentRss`` / ``rel="replies"``) or comment
pages.

Where a URL came from decides what it may reach (issue 12): the URL typed is the operator's,
but every URL found on the way (a ``<link rel="alternate">``, a usual path on the origin a
redirect led to) is a *found* URL, fetched under the found-URL rules of
:mod:`aggregator.fetch.addresses` against the URL typed: never a private, loopback or link-local
address off that URL's origin, unless ``allow_private_networks: true``. So nothing found
there can end up in the config. Pages and feeds are parsed by the ``parser`` given, the
daemon's sandbox in ``aggregator add``.

:func:`probe_comments` then says where the posts' comments would be read from: their comment
feeds, or the thread ``comments_page: auto`` finds in the newest post's page (issue 14), or a
comment system that loads them by script, named.

Does not: change the configuration, or follow comment feeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from aggregator.comments.selectors import AUTO as AUTO_SELECTORS
from aggregator.discussions.detect import Proposal
from aggregator.errors import AggregatorError, FeedNotFoundError, ParseError
from aggregator.fetch.addresses import Provenance
from aggregator.fetch.fetcher import Fetcher
from aggregator.models import FeedData, FetchResult
from aggregator.parse.links import DISCOVERY_TYPES as FEED_TYPES
from aggregator.parse.sandbox import InProcessParser, Parser

__all__ = [
    "FEED_TYPES",
    "CommentProbe",
    "FoundFeed",
    "autodiscover",
    "find_feed",
    "normalize_url",
    "probe_comments",
]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Post pages ``probe_comments`` reads at most, newest first, to find where comments are.
PROBED_POSTS = 3
# Where blog engines publish feeds: WordPress, Typepad/Movable Type, Blogger, Jekyll, Hugo ...
COMMON_PATHS = (
    "feed/",
    "feed",
    "rss",
    "rss.xml",
    "atom.xml",
    "index.rdf",
    "index.xml",
    "feed.xml",
    "atom",
    "feeds/posts/default",
)
FORMATS = {
    "rss20": "RSS 2.0",
    "rss10": "RSS 1.0 (RDF)",
    "rss090": "RSS 0.90",
    "rss091u": "RSS 0.91",
    "rss091n": "RSS 0.91",
    "rss092": "RSS 0.92",
    "rss093": "RSS 0.93",
    "rss094": "RSS 0.94",
    "atom10": "Atom 1.0",
    "atom03": "Atom 0.3",
}


@dataclass(frozen=True)
class FoundFeed:
    """A feed found for a URL, and what it holds."""

    url: str
    how: str
    title: str | None
    site_url: str | None
    format: str
    entries: int
    with_comment_feed: int
    with_comment_page: int
    #: The pages of the newest posts, newest first (a post's comments page when the feed
    #: names one), at most :data:`PROBED_POSTS`, for :func:`probe_comments`.
    recent_posts: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommentProbe:
    """Where the comments of a found feed's posts would be read from (``aggregator add``).

    ``kind``: ``feed`` (posts carry comment feeds), ``page`` (a detector finds the thread in
    the newest post's page: ``comments_page: auto``), ``script`` (the page loads its comments
    by script: ``script_systems`` names the systems), ``none`` (nothing found), ``error`` (the
    page could not be read: ``error`` says why).
    """

    kind: str
    page_url: str | None = None
    detector: str | None = None
    comments: int = 0
    script_systems: tuple[str, ...] = ()
    error: str | None = None
    #: ``comment_system`` settings the page's embed code suggests (issue 16).
    proposals: tuple[Proposal, ...] = ()

    @property
    def comments_page(self) -> str | None:
        """What ``add`` writes as the source's ``comments_page``: ``auto`` for ``page``."""
        return "auto" if self.kind == "page" else None


def describe_format(version: str) -> str:
    """A person's name for a feedparser version string (``rss20`` -> ``RSS 2.0``)."""
    return FORMATS.get(version, version or "unknown")


def normalize_url(url: str) -> str:
    """``example.org/blog`` -> ``https://example.org/blog``; http(s) URLs unchanged."""
    url = url.strip()
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FeedNotFoundError(f"{url!r} is not an http(s) URL")
    return url


def find_feed(url: str, fetcher: Fetcher, parser: Parser | None = None) -> FoundFeed:
    """The feed at ``url``, or the first feed its page links to or a common path holds.

    ``url`` is fetched as configured; every candidate found from it as a URL found in
    ``url`` (SSRF rules). ``parser`` reads pages and feeds (default: in this process; the CLI
    gives the sandbox). Raises :class:`FeedNotFoundError` when there is none (saying what was
    tried), or :class:`~aggregator.errors.FetchError` when ``url`` itself cannot be fetched.
    """
    url = normalize_url(url)
    parser = parser or InProcessParser()
    page = fetcher.fetch(url)
    try:
        return _found(page.final_url, "the URL is a feed", _parse(page, parser))
    except ParseError as error:
        if not _is_html(page):
            raise FeedNotFoundError(f"{url}: neither a feed nor an HTML page ({error})") from None
    found_in = Provenance.found_in(url)
    tried: list[str] = []
    for candidate, how in _candidates(page, parser):
        if candidate in tried:
            continue
        tried.append(candidate)
        try:
            fetched = fetcher.fetch(candidate, provenance=found_in)
            return _found(fetched.final_url, how, _parse(fetched, parser))
        except AggregatorError:
            continue
    raise FeedNotFoundError(
        f"no feed found for {url}: the page links to none, and none of {len(tried)} "
        f"usual places ({', '.join(COMMON_PATHS[:4])} ...) holds one"
    )


def _parse(result: FetchResult, parser: Parser) -> FeedData:
    return parser.parse_feed(
        result.content or b"", result.headers, result.final_url, now=datetime.now(UTC)
    )


def _found(url: str, how: str, feed: FeedData) -> FoundFeed:
    return FoundFeed(
        url=url,
        how=how,
        title=feed.title,
        site_url=feed.link,
        format=describe_format(feed.version),
        entries=len(feed.entries),
        with_comment_feed=sum(1 for e in feed.entries if e.comments_feed_url),
        with_comment_page=sum(1 for e in feed.entries if e.comments_page_url),
        recent_posts=_recent_posts(feed),
    )


def _recent_posts(feed: FeedData) -> tuple[str, ...]:
    linked = [e for e in feed.entries if e.link or e.comments_page_url]
    # Newest first; undated entries keep the feed's order, after the dated ones.
    linked.sort(key=lambda e: e.published_at or _EPOCH, reverse=True)
    urls = (urlsplit(e.comments_page_url or e.link or "")._replace(fragment="") for e in linked)
    return tuple(dict.fromkeys(u.geturl() for u in urls if u.scheme))[:PROBED_POSTS]


def probe_comments(
    found: FoundFeed, url: str, fetcher: Fetcher, parser: Parser | None = None
) -> CommentProbe:
    """Where the found feed's comments would be read from: its comment feeds when posts carry
    them, else the thread ``comments_page: auto`` finds in the newest post's page.

    The page is a URL found in ``url`` (the URL typed), fetched under the found-URL rules and
    read by ``parser`` (the sandbox in ``aggregator add``). Never raises for the page: a page
    that cannot be read is an ``error`` probe.
    """
    if found.with_comment_feed:
        return CommentProbe("feed")
    parser = parser or InProcessParser()
    first: CommentProbe | None = None
    # The newest post may have no comment yet: the next ones are asked too, until one tells;
    # when none does, the newest post's answer is reported.
    for page_url in found.recent_posts:
        probe = _probe_page(page_url, url, fetcher, parser)
        if probe.kind in ("page", "script"):
            return probe
        first = first or probe
    return first or CommentProbe("none")


def _probe_page(page_url: str, url: str, fetcher: Fetcher, parser: Parser) -> CommentProbe:
    try:
        fetched = fetcher.fetch(page_url, provenance=Provenance.found_in(normalize_url(url)))
        detection = parser.read_page(
            fetched.content or b"", fetched.final_url, AUTO_SELECTORS, None, datetime.now(UTC)
        )
    except AggregatorError as error:
        return CommentProbe("error", page_url, error=str(error))
    if detection.detector:
        kind = "page"
    elif detection.script_systems:
        kind = "script"
    else:
        kind = "none"
    return CommentProbe(
        kind,
        page_url,
        detection.detector,
        len(detection.comments),
        detection.script_systems,
        proposals=detection.proposals,
    )


def _is_html(result: FetchResult) -> bool:
    kind = next((v for k, v in result.headers.items() if k.lower() == "content-type"), "")
    head = (result.content or b"")[:2048].lower()
    return "html" in kind or b"<html" in head or b"<!doctype html" in head


def _candidates(page: FetchResult, parser: Parser) -> Iterator[tuple[str, str]]:
    """Feed URLs to try for an HTML page, best first, with how each was found."""
    links = autodiscover(page, parser)
    yield from ((url, f'<link rel="alternate"> on {page.final_url}') for url in links)
    parts = urlsplit(page.final_url)
    root = f"{parts.scheme}://{parts.netloc}/"
    folder = urljoin(page.final_url, ".")
    bases = [folder, root] if folder != root else [root]
    for base in bases:
        for path in COMMON_PATHS:
            yield urljoin(base, path), f"the usual place {urljoin(base, path)}"


def autodiscover(page: FetchResult, parser: Parser | None = None) -> list[str]:
    """Feed URLs an HTML page announces with ``<link rel="alternate" type="...">``, in order
    (JSON Feed last), read by ``parser`` (:func:`aggregator.parse.links.alternate_feeds`)."""
    return (parser or InProcessParser()).alternate_feeds(page.content or b"", page.final_url)
