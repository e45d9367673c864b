"""Find a page's comment thread without configuration: ``comments_page: auto`` (issue 14).

Pure: a page's bytes → :class:`Detection`, which says which detector matched, the comments it
read and the script-loaded comment systems the page embeds (named, never read). The detectors
are tried in this order, the first that finds comments wins:

1. structured data: microformats2 (an ``h-entry`` whose ``comment`` property holds ``h-cite`` or
   ``h-entry`` items, through mf2py), schema.org ``Comment`` in microdata and in JSON-LD;
2. platform fingerprints (:data:`aggregator.comments.platforms.PLATFORMS`: wpDiscuz, Epoch,
   Blogger, Typepad, WordPress themes, Drupal, Movable Type, XenForo);
3. when no fingerprint matched, the careful ``generic`` fallback
   (:mod:`aggregator.comments.generic`): repeated sibling blocks with an author, a date and a
   permalink each, only when it is confident.

A fingerprint that matches but finds no comment (a Blogger post nobody commented on) is still
reported as the detector. Pingbacks and trackbacks are not comments and are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from aggregator.comments.generic import MIN_BLOCKS, find_generic
from aggregator.comments.page_dates import _DateReader, _zone
from aggregator.comments.pages import _sha256, _squash, extract_comments, page_language
from aggregator.comments.paging import other_comment_pages
from aggregator.comments.platforms import PLATFORMS, Platform, find_script_systems
from aggregator.comments.selectors import PageSelectors, selectors_from_config
from aggregator.discussions.detect import Proposal, propose
from aggregator.models import CommentData
from aggregator.parse.comment_feed import comment_anchor
from aggregator.parse.links import _parse_html, _web_url
from aggregator.parse.sanitize import clean_html

AUTO = "auto"
GENERIC = "generic"
_COMMENT_PAGE = re.compile(r"/comment-page-\d+", re.IGNORECASE)
_PINGBACK = re.compile(r"^\s*(?:pingback|trackback)\b", re.IGNORECASE)
_MF2_HINT = re.compile(rb"class=[\"'][^\"']*\b(?:h-cite|p-comment|u-comment)\b")
_SCHEMA_ORG = Platform(
    "schema.org",
    "[itemtype*='schema.org/Comment']",
    PageSelectors(
        container="[itemtype*='schema.org/Comment']",
        author=("[itemprop=author] [itemprop=name]", "[itemprop=author]", "[itemprop=creator]"),
        date=("[itemprop=dateCreated]", "[itemprop=datePublished]", "time"),
        body=("[itemprop=text]", "[itemprop=description]"),
        link=("[itemprop=url]", "a[href*='#comment']"),
        replies="[itemprop=comment]",
        exclude="[itemprop=author], [itemprop=dateCreated], .reply, form, script, style",
    ),
)


@dataclass(frozen=True)
class Detection:
    """What ``auto`` found in one page.

    ``detector`` names what matched (``mf2``, ``json-ld``, ``schema.org``, a platform of
    :data:`~aggregator.comments.platforms.PLATFORMS`, a preset name, or ``custom``), ``None``
    when nothing did. ``script_systems`` names the comment systems the page loads by script.
    """

    detector: str | None
    comments: tuple[CommentData, ...]
    script_systems: tuple[str, ...] = ()
    #: Other pages of this thread the page links to (:mod:`aggregator.comments.paging`).
    more_pages: tuple[str, ...] = ()
    #: The ``comment_system`` settings the page's embed code suggests, when ``auto`` found no
    #: comment in it (:mod:`aggregator.discussions.detect`, issue 16).
    proposals: tuple[Proposal, ...] = ()

    @property
    def script_note(self) -> str | None:
        """What to record when the page shows no comment but loads a comment system by script:
        ``comments load by script (Disqus); none in the page``, and the setting that would
        follow them when the embed code tells; ``None`` otherwise."""
        if self.comments or not self.script_systems:
            return None
        note = f"comments load by script ({', '.join(self.script_systems)}); none in the page"
        if self.proposals:
            note += f"; to follow them, set {self.proposals[0].describe()}"
        return note

    @property
    def undated(self) -> int:
        """How many comments have no readable date (they keep the time they were first seen)."""
        return sum(1 for c in self.comments if c.published_at is None)


def read_comments(
    html: bytes | str,
    page_url: str,
    comments_page: str | Mapping[str, str] | PageSelectors,
    timezone: str | None = None,
    *,
    now: datetime | None = None,
) -> Detection:
    """The comments of one page, through ``auto`` detection, a preset or custom selectors.

    ``comments_page`` is what a source's config holds (``auto``, a preset name, a mapping of
    selectors) or ready :class:`PageSelectors`. Raises ``ValueError`` only for a bad
    ``comments_page`` or an unknown ``timezone``; nothing in the page makes it raise.
    """
    raw = html.encode("utf-8", "replace") if isinstance(html, str) else html
    if isinstance(comments_page, str) and comments_page.strip().lower() == AUTO:
        return detect_comments(raw, page_url, timezone, now=now)
    if isinstance(comments_page, PageSelectors):
        selectors, name = comments_page, "custom"
    else:
        selectors = selectors_from_config(comments_page)
        name = comments_page.strip().lower() if isinstance(comments_page, str) else "custom"
    tree = _parse_html(raw)
    comments = extract_comments(raw, page_url, selectors, timezone, now=now, tree=tree)
    return Detection(
        name, tuple(comments), find_script_systems(raw), other_comment_pages(tree, page_url)
    )


def detect_comments(
    html: bytes, page_url: str, timezone: str | None = None, *, now: datetime | None = None
) -> Detection:
    """Find and read the comment thread of a page with no configuration (see the module doc).

    ``now`` is when the page was fetched, for relative dates. Never raises for the page's
    content; ``ValueError`` for an unknown ``timezone``.
    """
    tree = _parse_html(html)
    found = _detect(html, tree, page_url, timezone, now)
    # Only a page that shows no comment but loads a system by script is read for its embed.
    proposals = propose(html, page_url, tree) if found.script_note else ()
    return replace(found, more_pages=other_comment_pages(tree, page_url), proposals=proposals)


def _detect(
    html: bytes,
    tree: LexborHTMLParser,
    page_url: str,
    timezone: str | None,
    now: datetime | None,
) -> Detection:
    zone = _zone(timezone)
    systems = find_script_systems(html)
    if _MF2_HINT.search(html):
        comments = _from_mf2(html, page_url, _DateReader(zone, page_language(tree), now))
        if comments:
            return Detection("mf2", comments, systems)
    comments = _from_json_ld(tree, page_url, _DateReader(zone, page_language(tree), now))
    if comments:
        return Detection("json-ld", comments, systems)
    matched: str | None = None
    for platform in (_SCHEMA_ORG, *PLATFORMS):
        if tree.css_first(platform.fingerprint) is None:
            continue
        found = _keep_comments(
            extract_comments(html, page_url, platform.selectors, timezone, now=now, tree=tree),
            _page_paths(tree, page_url),
            weak=platform.name in _WEAK,
        )
        if found:
            return Detection(platform.name, found, systems)
        matched = matched or (None if platform.name in _WEAK else platform.name)
    if matched is None:
        generic = find_generic(tree, page_url)
        if generic is not None:
            found = _keep_comments(
                extract_comments(html, page_url, generic, timezone, now=now, tree=tree),
                _page_paths(tree, page_url),
                weak=True,
            )
            if len(found) >= MIN_BLOCKS:
                return Detection(GENERIC, found, systems)
    return Detection(matched, (), systems)


# Fingerprints too loose to name the platform when they find nothing (any id="comment-...").
_WEAK = frozenset({"wordpress", "drupal", "schema.org", "movabletype"})


def canonical_url(html: bytes) -> str | None:
    """The page's own http(s) URL as it states it (``rel=canonical``, else ``og:url``)."""
    tree = _parse_html(html)
    for node in tree.css('link[rel="canonical"], meta[property="og:url"]'):
        url = _web_url(node.attributes.get("href") or node.attributes.get("content"), None)
        if url:
            return url
    return None


def _page_paths(tree: LexborHTMLParser, page_url: str) -> frozenset[str]:
    """The paths this page is known by: its URL, its canonical URL, its ``og:url``."""
    urls = [page_url]
    for node in tree.css('link[rel="canonical"], meta[property="og:url"]'):
        urls.append(node.attributes.get("href") or node.attributes.get("content") or "")
    return frozenset(filter(None, (_path(url) for url in urls)))


def _path(url: str | None) -> str | None:
    """A URL's path without its comment page (/comment-page-2/), or ``None`` when it has none
    worth comparing (``/``, ``/?p=12``)."""
    try:
        path = urlsplit(url or "").path
    except ValueError:
        return None
    path = _COMMENT_PAGE.sub("", path).rstrip("/")
    return path or None


def _keep_comments(
    comments: list[CommentData], paths: frozenset[str] = frozenset(), *, weak: bool = False
) -> tuple[CommentData, ...]:
    """Comments without pingbacks, trackbacks, empty blocks and the comments of other posts
    (a sidebar's "latest comments" links each to its own post). From a ``weak`` fingerprint, a
    block with neither author nor date is no comment either (a form's "Submit Comment")."""
    owns = [_path(c.link) if c.link and "#" in c.link else None for c in comments]
    # Only when some comments link to this page do the others belong to other posts; when none
    # does, the page is known here by another address (a redirect, a renamed post).
    here = any(own in paths for own in owns if own)
    kept = []
    for comment, own in zip(comments, owns, strict=True):
        if here and own and own not in paths:
            continue
        if weak and not comment.author and comment.published_at is None:
            continue
        if comment.author and _PINGBACK.match(comment.author):
            continue
        if not _squash(_text(comment.content)):
            continue
        kept.append(comment)
    return tuple(kept)


def _text(html: str) -> str:
    return LexborHTMLParser(f"<div>{html}</div>").text(separator=" ") if html else ""


def _make_comment(
    *,
    content: str,
    author: str | None,
    author_url: str | None,
    date_text: str | None,
    link: str | None,
    number: int,
    parent_key: str | None,
    dates: _DateReader,
) -> CommentData:
    published_at = dates.read(date_text) if date_text else None
    key = comment_anchor(link) or link or _sha256([author, date_text, _squash(_text(content))])
    return CommentData(
        key=key,
        content=content,
        author=author,
        author_url=author_url,
        published_at=published_at,
        link=link,
        number=number,
        parent_key=parent_key,
        content_hash=_sha256(
            [content, author, author_url, published_at.isoformat() if published_at else None, parent_key]
        ),
    )


def _from_mf2(html: bytes, page_url: str, dates: _DateReader) -> tuple[CommentData, ...]:
    """Comments of the page's ``h-entry`` items (their ``comment`` property), through mf2py."""
    import mf2py  # imported here: only pages with microformats classes pay for it

    try:
        parsed = mf2py.parse(doc=html.decode("utf-8", "replace"), url=page_url)
    except Exception:  # mf2py on hostile markup: no structured data, not a failed page
        return ()
    base = _web_url(page_url, None)
    found: list[CommentData] = []

    def walk(items: list[object], parent_key: str | None) -> None:
        for item in items:
            if not isinstance(item, dict):
                continue
            props = item.get("properties") or {}
            content = _first(props.get("content"))
            html_text = (
                content.get("html") or content.get("value")
                if isinstance(content, dict)
                else content
            )
            html_text = html_text or _first(props.get("summary")) or _first(props.get("name"))
            if not isinstance(html_text, str) or not html_text.strip():
                continue
            author = _first(props.get("author"))
            name, url = None, None
            if isinstance(author, dict):
                author_props = author.get("properties") or {}
                name = _first(author_props.get("name")) or author.get("value")
                url = _first(author_props.get("url"))
            elif isinstance(author, str):
                name = author
            link = _first(props.get("url"))
            if parent_key is None:  # not nested: its u-in-reply-to may name an earlier comment
                parent_key = _replied(props.get("in-reply-to"), found)
            comment = _make_comment(
                content=clean_html(html_text.strip(), base),
                author=_squash(name) or None if isinstance(name, str) else None,
                author_url=_web_url(url, base) if isinstance(url, str) else None,
                date_text=_string(_first(props.get("published"))),
                link=_web_url(link, base) if isinstance(link, str) else None,
                number=len(found) + 1,
                parent_key=parent_key,
                dates=dates,
            )
            found.append(comment)
            walk(props.get("comment") or [], comment.key)

    for entry in _h_entries(parsed.get("items") or []):
        walk(entry.get("properties", {}).get("comment") or [], None)
    return _keep_comments(_unique(found))


def _replied(value: object, earlier: list[CommentData]) -> str | None:
    """The key of the earlier comment an mf2 ``in-reply-to`` names (by its permalink)."""
    for item in value if isinstance(value, list) else [value]:
        url = item.get("value") if isinstance(item, dict) else item
        if isinstance(item, dict) and not isinstance(url, str):
            url = _first((item.get("properties") or {}).get("url"))
        target = comment_anchor(url) if isinstance(url, str) else None
        if target:
            found = next((c.key for c in earlier if c.key == target), None)
            if found:
                return found
    return None


def _h_entries(items: list[object]) -> Iterator[dict[str, Any]]:
    for item in items:
        if isinstance(item, dict):
            if "h-entry" in (item.get("type") or []):
                yield item
            yield from _h_entries(item.get("children") or [])


def _from_json_ld(
    tree: LexborHTMLParser, page_url: str, dates: _DateReader
) -> tuple[CommentData, ...]:
    """schema.org ``Comment`` objects in the page's JSON-LD (``comment`` of a posting)."""
    base = _web_url(page_url, None)
    found: list[CommentData] = []

    def walk(value: object, parent_key: str | None, in_comment: bool) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, parent_key, in_comment)
            return
        if not isinstance(value, dict):
            return
        kind = value.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        key = parent_key
        if "Comment" in kinds and isinstance(value.get("text"), str):
            author = value.get("author")
            if isinstance(author, list):
                author = author[0] if author else None
            name = author.get("name") if isinstance(author, dict) else author
            url = author.get("url") if isinstance(author, dict) else None
            date = value.get("dateCreated") or value.get("datePublished")
            link = value.get("url")
            comment = _make_comment(
                content=clean_html(value["text"].strip(), base),
                author=_squash(name) or None if isinstance(name, str) else None,
                author_url=_web_url(url, base) if isinstance(url, str) else None,
                date_text=date if isinstance(date, str) else None,
                link=_web_url(link, base) if isinstance(link, str) else None,
                number=len(found) + 1,
                parent_key=parent_key if in_comment else None,
                dates=dates,
            )
            found.append(comment)
            key, in_comment = comment.key, True
        for name, item in value.items():
            if name in ("comment", "@graph", "mainEntity", "hasPart"):
                walk(item, key, in_comment)

    for node in tree.css('script[type="application/ld+json"]'):
        try:
            data = json.loads(node.text() or "")
        except ValueError:
            continue
        walk(data, None, False)
    return _keep_comments(_unique(found))


def _first(value: object) -> object:
    return value[0] if isinstance(value, list) and value else value if value else None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _unique(comments: list[CommentData]) -> list[CommentData]:
    seen: dict[str, CommentData] = {}
    for comment in comments:
        seen.setdefault(comment.key, comment)
    return [replace(c, number=n) for n, c in enumerate(seen.values(), 1)]
