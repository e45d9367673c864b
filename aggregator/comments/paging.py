"""The other pages of a post's comments: WordPress ``/comment-page-N/`` and ``?cpage=N``, and
``rel=next``/``rel=prev`` links in the comment navigation (issue 14).

Pure: a parsed page → the URLs of the other pages of the same thread, and each URL's page
number, so that :mod:`aggregator.comments.reader` can read them all (within
:data:`~aggregator.comments.reader.MAX_FEED_PAGES`) and merge their comments in thread order.
A link counts only when it leads to the same post (its path without the comment page is this
page's path): a theme's "previous post" and "next post" links share the ``.nav-links`` markup.

Does not: fetch anything, or decide how many pages are read.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

_PAGE_IN_PATH = re.compile(r"/comment-page-(\d{1,6})(?=/|$)", re.IGNORECASE)
_CPAGE = re.compile(r"(?:^|&)cpage=(\d{1,6})(?:&|$)", re.IGNORECASE)
# Where themes put the links between pages of comments (WordPress default themes, Genesis,
# Twenty Ten's #comment-nav-above/below, the_comments_pagination's .comments-pagination).
NAVIGATION = (
    ".comment-navigation, .comments-navigation, .comments-pagination, .comment-pagination, "
    "#comment-nav-above, #comment-nav-below, .comment-nav, .nav-links, .navigation, "
    ".pagination, .wp-pagenavi"
)
_NAV_RELS = frozenset({"next", "prev", "previous"})
_POST_PARAMS = frozenset({"p", "page_id", "post", "id"})


def page_number(url: str) -> int | None:
    """The comment page a URL shows (``/comment-page-3/`` or ``?cpage=3``), ``None`` if none."""
    parts = urlsplit(url)
    found = _PAGE_IN_PATH.search(parts.path) or _CPAGE.search(parts.query)
    return int(found.group(1)) if found else None


def thread_url(url: str) -> str:
    """``url`` without its comment page and fragment: the address of the post itself."""
    parts = urlsplit(url)
    path = _PAGE_IN_PATH.sub("", parts.path) or "/"
    if not path.endswith("/") and parts.path.endswith("/"):
        path += "/"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "cpage"])
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def other_comment_pages(tree: LexborHTMLParser, page_url: str) -> tuple[str, ...]:
    """The URLs of the other pages of this page's comments, in the page's order, without
    fragments: links to ``/comment-page-N/`` or ``?cpage=N`` of this same post anywhere in the
    page, and ``rel=next``/``rel=prev`` links inside the comment navigation. Never raises."""
    if not page_url.startswith(("http://", "https://")):
        return ()
    here = _same_post_key(page_url)
    own = urlsplit(page_url)._replace(fragment="").geturl()
    found: dict[str, None] = {}
    navigations = {node.mem_id for node in tree.css(NAVIGATION)}
    for anchor in tree.css("a[href], link[href]"):
        href = (anchor.attributes.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            continue
        try:
            url = urljoin(page_url, href)
            parts = urlsplit(url)
        except ValueError:
            continue
        if parts.scheme not in ("http", "https") or _same_post_key(url) != here:
            continue
        url = parts._replace(fragment="").geturl()
        if url == own:
            continue
        if page_number(url) is not None:
            found.setdefault(url)
            continue
        rels = set((anchor.attributes.get("rel") or "").lower().split())
        if rels & _NAV_RELS and _inside(anchor, navigations):
            found.setdefault(url)
    return tuple(found)


def _same_post_key(url: str) -> tuple[str, str, str]:
    """What names a post: host, path and the query's post id (``?p=12``, plain permalinks)."""
    parts = urlsplit(thread_url(url))
    post = [f"{k}={v}" for k, v in parse_qsl(parts.query) if k.lower() in _POST_PARAMS]
    return parts.netloc.lower(), parts.path.rstrip("/"), "&".join(post)


def _inside(node: object, ids: set[int]) -> bool:
    current = getattr(node, "parent", None)
    while current is not None:
        if current.mem_id in ids:
            return True
        current = current.parent
    return False
