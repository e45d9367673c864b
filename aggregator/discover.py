"""Find the feed behind a URL, for ``aggregator add``.

Given a blog's home page or a feed URL: if the URL is a feed, that is the answer; if it is an
HTML page, its ``<link rel="alternate">`` feeds (RSS Autodiscovery, the HTML Living Standard's
"alternate" + feed type) are tried in order, then the paths where blog engines put feeds
(``/feed/``, ``/rss``, ``/atom.xml``, ``/index.rdf`` ...). Each candidate is fetched and must
parse as a feed. What was found is summed up in a :class:`FoundFeed`: title, format, entries,
and whether posts carry comment feeds (``wfw:commentRss`` / ``rel="replies"``) or comment
pages.

Does not: change the configuration, or follow comment feeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

from aggregator.errors import AggregatorError, FeedNotFoundError, ParseError
from aggregator.fetch import Fetcher
from aggregator.models import FeedData, FetchResult
from aggregator.parse import parse_feed

# Types a page may announce its feed with; JSON Feed last, as it cannot be polled yet.
FEED_TYPES = (
    "application/atom+xml",
    "application/rss+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/feed+json",
)
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


def find_feed(url: str, fetcher: Fetcher) -> FoundFeed:
    """The feed at ``url``, or the first feed its page links to or a common path holds.

    Raises :class:`FeedNotFoundError` when there is none (saying what was tried), or
    :class:`~aggregator.errors.FetchError` when ``url`` itself cannot be fetched.
    """
    url = normalize_url(url)
    page = fetcher.fetch(url)
    try:
        return _found(page.final_url, "the URL is a feed", _parse(page))
    except ParseError as error:
        if not _is_html(page):
            raise FeedNotFoundError(f"{url}: neither a feed nor an HTML page ({error})") from None
    tried: list[str] = []
    for candidate, how in _candidates(page):
        if candidate in tried:
            continue
        tried.append(candidate)
        try:
            fetched = fetcher.fetch(candidate)
            return _found(fetched.final_url, how, _parse(fetched))
        except AggregatorError:
            continue
    raise FeedNotFoundError(
        f"no feed found for {url}: the page links to none, and none of {len(tried)} "
        f"usual places ({', '.join(COMMON_PATHS[:4])} ...) holds one"
    )


def _parse(result: FetchResult) -> FeedData:
    return parse_feed(result.content or b"", result.headers, result.final_url)


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
    )


def _is_html(result: FetchResult) -> bool:
    kind = next((v for k, v in result.headers.items() if k.lower() == "content-type"), "")
    head = (result.content or b"")[:2048].lower()
    return "html" in kind or b"<html" in head or b"<!doctype html" in head


def _candidates(page: FetchResult) -> Iterator[tuple[str, str]]:
    """Feed URLs to try for an HTML page, best first, with how each was found."""
    yield from ((url, f'<link rel="alternate"> on {page.final_url}') for url in autodiscover(page))
    parts = urlsplit(page.final_url)
    root = f"{parts.scheme}://{parts.netloc}/"
    folder = urljoin(page.final_url, ".")
    bases = [folder, root] if folder != root else [root]
    for base in bases:
        for path in COMMON_PATHS:
            yield urljoin(base, path), f"the usual place {urljoin(base, path)}"


def autodiscover(page: FetchResult) -> list[str]:
    """Feed URLs an HTML page announces with ``<link rel="alternate" type="...">``, in order."""
    tree = LexborHTMLParser((page.content or b"").decode("utf-8", "replace"))
    base = page.final_url
    base_element = tree.css_first("base[href]")
    if base_element is not None:
        base = urljoin(base, base_element.attributes.get("href") or "")
    found: list[tuple[bool, str]] = []
    for link in tree.css("link[href]"):
        rels = (link.attributes.get("rel") or "").lower().split()
        kind = (link.attributes.get("type") or "").lower().split(";")[0].strip()
        if "alternate" not in rels or kind not in FEED_TYPES:
            continue
        href = urljoin(base, (link.attributes.get("href") or "").strip())
        if urlsplit(href).scheme in ("http", "https"):
            found.append((kind == "application/feed+json", href))
    # The page's own order (a blog lists its posts feed before its comments feed), JSON last.
    return list(dict.fromkeys(href for _, href in sorted(found, key=lambda pair: pair[0])))
