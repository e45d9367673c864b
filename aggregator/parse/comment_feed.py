"""Comment feeds (an entry's ``wfw:commentRss``, a site-wide comment feed) → :class:`CommentFeedData`,
and :func:`comment_anchor`, the key one comment has wherever it is read (its feed, a site-wide
feed, the post's page).

A document is read by the fast path (:mod:`aggregator.parse.fastparse`) or by feedparser through
:mod:`aggregator.parse.feed` (defused, capped), whose entry helpers this module shares; it does not
import feedparser itself. Dates follow :mod:`aggregator.parse.dates`. Pure: following, fetching
and storing threads are :mod:`aggregator.comments`'s.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aggregator.models import CommentData, CommentFeedData
from aggregator.parse.dates import _LATEST_AHEAD, _date
from aggregator.parse.fastparse import read_comment_feed
from aggregator.parse.feed import (
    MAX_ENTRIES,
    _absolute_link,
    _content,
    _fields,
    _hash,
    _key_text,
    _legacy_key,
    _run_feedparser,
)
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

_TITLE_AUTHOR = re.compile(
    r"^(?:by:|comment from|comment on .+ by)\s+(?P<name>.+)$", re.IGNORECASE | re.DOTALL
)


def parse_comments(
    content: bytes,
    headers: Mapping[str, str] | None = None,
    url: str = "",
    *,
    now: datetime | None = None,
    fast: bool = True,
) -> tuple[CommentData, ...]:
    """Parse a comment feed (per-entry or site-wide) into comments, oldest first."""
    return parse_comment_feed(content, headers, url, now=now, fast=fast).comments


def parse_comment_feed(
    content: bytes,
    headers: Mapping[str, str] | None = None,
    url: str = "",
    *,
    now: datetime | None = None,
    fast: bool = True,
) -> CommentFeedData:
    """Parse one document of a comment feed: its comments, oldest first, and its next page.

    Keys are made so that one comment has the same key wherever it is read (see
    :func:`comment_anchor`); two comments of one document never share a key. A comment whose
    ``thr:in-reply-to`` names another comment (not the post) gets that comment as its parent.
    Raises :class:`ParseError` when the document holds no feed. ``fast`` reads a plain
    comment feed with lxml (:mod:`aggregator.parse.fastparse`: the same result as feedparser,
    about 30 times faster); false reads every document with feedparser, the reference.
    """
    feed, raw_entries = _read_comment_document(content, headers, url, fast)
    latest = (now or datetime.now(UTC)) + _LATEST_AHEAD
    base = clean_url(feed.get("link"), url or None) or url
    comments = [_comment(raw, base, latest, url) for raw in raw_entries[:MAX_ENTRIES]]
    # A fragment shared by several items ("#comments" on each) does not identify a comment.
    anchors = [_anchor_of(c) for c in comments]
    uses = Counter(anchors)
    keys = [
        a if a is not None and uses[a] == 1 else c.key
        for c, a in zip(comments, anchors, strict=True)
    ]
    by_ref = {c.link: key for c, key in zip(comments, keys, strict=True) if c.link} | {
        c.guid: key for c, key in zip(comments, keys, strict=True) if c.guid
    }
    comments = [
        _with_keys(c, key, _parent_key(c, key, by_ref))
        for c, key in zip(comments, keys, strict=True)
    ]
    dates = [c.published_at for c in comments if c.published_at]
    newest_first = sum(a > b for a, b in zip(dates, dates[1:], strict=False)) >= sum(
        a < b for a, b in zip(dates, dates[1:], strict=False)
    )
    comments.sort(key=lambda c: c.published_at or datetime.max.replace(tzinfo=UTC))
    next_url = next(
        (
            _absolute_link(link.get("href"), url or base)
            for link in feed.get("links", []) or []
            if link.get("rel") == "next" and link.get("href")
        ),
        None,
    )
    return CommentFeedData(comments=tuple(comments), next_url=next_url, newest_first=newest_first)


def _read_comment_document(
    content: bytes, headers: Mapping[str, str] | None, url: str, fast: bool
) -> tuple[Mapping[str, Any], list[Any]]:
    """The feed's values and its raw entries: with ``fast``, through the fast path for a plain
    comment feed (:mod:`aggregator.parse.fastparse`, which reads exactly what feedparser would), else
    feedparser."""
    quick = read_comment_feed(content, headers) if fast else None
    if quick is not None:
        return quick
    parsed, _, _ = _run_feedparser(content, headers, url)
    return parsed.get("feed", {}), parsed.get("entries", [])


def comment_anchor(url: str | None) -> str | None:
    """The fragment of a comment's permalink or guid when it names one comment, else ``None``.

    ``https://blog/?p=3#comment-101`` (a WordPress guid), ``https://blog/post/#comment-101`` (its
    link) and the permalink on the post's page all give ``comment-101``, so a comment read from a
    comment feed, a site-wide feed or the page is stored once. A fragment without a digit
    (``#comments``, ``#respond``) names a section of the page, not a comment.
    """
    if not url or "#" not in url:
        return None
    fragment = url.partition("#")[2].strip()
    if not fragment or len(fragment) > 200 or not any(ch.isdigit() for ch in fragment):
        return None
    return fragment


def _anchor_of(comment: CommentData) -> str | None:
    return comment_anchor(comment.link) or comment_anchor(comment.guid)


def _parent_key(comment: CommentData, own_key: str, by_ref: Mapping[str, str]) -> str | None:
    """The parent comment's key when ``thr:in-reply-to`` names a comment rather than the post
    (``own_key``: the comment's key in its document)."""
    for ref in (comment.in_reply_to, comment.in_reply_to_href):
        if not ref:
            continue
        key = by_ref.get(ref) or comment_anchor(ref)
        if key and key != own_key:
            return key
    return None


def _with_keys(comment: CommentData, key: str, parent_key: str | None) -> CommentData:
    """``comment`` with its key in the document and its parent's (one copy at most: a
    ``dataclasses.replace`` costs more than most of the rest of a comment)."""
    if key == comment.key and parent_key == comment.parent_key:
        return comment
    return replace(comment, key=key, parent_key=parent_key)


def _comment(raw: Any, base: str, latest: datetime, document_url: str = "") -> CommentData:
    raw = _fields(raw)
    link = _absolute_link(raw.get("link"), base)
    content = clean_html(_content(raw) or raw.get("summary"), link or base)
    title = plain_text(raw.get("title")) or None
    # Movable Type and Typepad comment feeds name the author only in the title.
    author = plain_text(raw.get("author")) or _author_from_title(title)
    author_detail = raw.get("author_detail") or {}
    # dict.get: FeedParserDict.get("updated_parsed") warns when only the published date exists.
    published = _date(dict.get(raw, "published_parsed"), latest) or _date(
        dict.get(raw, "updated_parsed"), latest
    )
    in_reply_to = raw.get("thr_in-reply-to")
    ref = href = None
    if isinstance(in_reply_to, Mapping):
        ref = _key_text(in_reply_to.get("ref"))
        href = _absolute_link(in_reply_to.get("href"), base)
    guid = _guid(raw)
    key = guid or link or _hash(author or "", published.isoformat() if published else "", content)
    legacy = _legacy_key(guid, document_url)
    return CommentData(
        key=key,
        content=content,
        author=author,
        author_url=_web_url(author_detail.get("href")),
        published_at=published,
        link=link,
        in_reply_to=ref or href,
        in_reply_to_href=href,
        title=title,
        guid=guid,
        content_hash=_hash(
            json.dumps([content, author, link, published and published.isoformat()])
        ),
        alternate_keys=(legacy,) if legacy and legacy != guid else (),
    )


def _guid(raw: Any) -> str | None:
    return _key_text(raw.get("id"))


def _author_from_title(title: str | None) -> str | None:
    """The author named by a comment's title: "By: NAME" (WordPress), "Comment from NAME"
    (Movable Type), "Comment on POST by NAME" (WordPress's site-wide feed)."""
    if not title:
        return None
    found = _TITLE_AUTHOR.match(title)
    return found.group("name").strip() or None if found else None


def _web_url(value: Any) -> str | None:
    text = clean_url(value)
    return text if text and text.lower().startswith(("http://", "https://")) else None
