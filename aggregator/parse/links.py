"""The feeds an HTML page announces (``<link rel="alternate">`` autodiscovery), and the two helpers
every reader of HTML pages here shares: a page's bytes parsed with selectolax (:func:`_parse_html`)
and an http(s) link made absolute (:func:`_web_url`).

:func:`alternate_feeds`, the one autodiscovery reader, is what ``aggregator add`` follows
(:mod:`aggregator.fetch.discover`, through the parse sandbox, :mod:`aggregator.parse.sandbox`:
the page is hostile input), and what :func:`aggregator.parse.feed.parse_feed` names when a page
was fetched as a feed (its error for an HTML page). Pure: nothing here fetches, and
a broken page gives an empty list. The comments on a page are :mod:`aggregator.comments.pages`'s.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

_WEB_URL = re.compile(r"https?://[^/?#\s]", re.IGNORECASE)


def _parse_html(html: bytes | str) -> LexborHTMLParser:
    if isinstance(html, str):
        # Lone surrogates cannot be encoded for the parser; they carry no text anyway.
        return LexborHTMLParser(html.encode("utf-8", "replace"))
    return LexborHTMLParser(html, encoding=True)


def _web_url(href: str | None, base: str | None) -> str | None:
    """``href`` made absolute, when it is an http(s) URL: never a ``javascript:`` author link."""
    href = (href or "").strip()
    if not href or _WEB_URL.match(href):
        return href or None
    try:
        url = urljoin(base, href) if base else ""
    except ValueError:  # e.g. an unclosed IPv6 literal, "http://[::1"
        return None
    return url if _WEB_URL.match(url) else None


# What ``aggregator add`` accepts as a page's feed, best first; JSON Feed last (not polled yet).
DISCOVERY_TYPES = (
    "application/atom+xml",
    "application/rss+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/feed+json",
)


def alternate_feeds(html: bytes, page_url: str) -> list[str]:
    """The feed URLs a page announces for ``aggregator add``: every ``<link rel="alternate">``
    of a :data:`DISCOVERY_TYPES` type, made absolute (``<base href>`` honoured), http(s) only,
    in page order with JSON Feed last.

    Pure, like the rest of this module, so it runs in the parse sandbox: the page is hostile
    input. The URLs are found URLs, not configured ones (issue 12).
    """
    try:
        tree = _parse_html(html)
        base_element = tree.css_first("base[href]")
        nodes = tree.css("link[href]")
    except (SelectolaxError, ValueError):
        return []
    base = _web_url(page_url, None)
    if base_element is not None:
        base = _web_url(base_element.attributes.get("href"), base) or base
    found: list[tuple[bool, str]] = []
    for node in nodes:
        rels = (node.attributes.get("rel") or "").lower().split()
        kind = (node.attributes.get("type") or "").lower().split(";")[0].strip()
        if "alternate" not in rels or kind not in DISCOVERY_TYPES:
            continue
        url = _web_url(node.attributes.get("href"), base)
        if url:
            found.append((kind == "application/feed+json", url))
    # The page's own order (a blog lists its posts feed before its comments feed), JSON last.
    return list(dict.fromkeys(url for _, url in sorted(found, key=lambda pair: pair[0])))
