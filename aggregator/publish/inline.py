"""Pure: an entry's comment thread as HTML at the end of its content (issue 15, item 1).

Most feed readers ignore ``wfw:commentRss``, ``thr:`` and ``slash:``; with an output's
``inline_comments`` the thread travels inside the entry itself: the count, the N newest comments
(or the whole thread, replies nested under their parent), each with author, time and text and a
link to its permalink, then links to the thread's web page and comment feeds. The comments'
HTML was sanitized when it was stored (:mod:`aggregator.parse.sanitize`); author names and URLs are
escaped here. No IO: callers pass the comments an output shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from html import escape

from aggregator.models import StoredComment, StoredEntry
from aggregator.parse.sanitize import plain_text

Limit = int | str  # a number of newest comments, or "all"


@dataclass(frozen=True)
class ThreadSection:
    """What an entry gains: ``html`` ends its content, ``count_line`` ends its summary."""

    html: str
    count_line: str


@dataclass
class _Node:
    comment: StoredComment
    replies: list[_Node] = field(default_factory=list)


def comment_time(comment: StoredComment) -> datetime:
    """When a comment was written (else first seen), as every format shows it."""
    return comment.published_at or comment.first_seen_at


def count_text(count: int) -> str:
    """``"1 comment"``, ``"3 comments"``, ``"No comments yet"``."""
    if count == 0:
        return "No comments yet"
    return f"{count} comment{'' if count == 1 else 's'}"


def nest(comments: Sequence[StoredComment]) -> list[_Node]:
    """Replies under the comment they answer, order kept; an orphan reply stays at the top."""
    nodes = {c.public_id: _Node(c) for c in comments}
    roots: list[_Node] = []
    for comment in comments:
        parent = nodes.get(comment.parent_public_id or "")
        if parent is not None and parent.comment.public_id != comment.public_id:
            parent.replies.append(nodes[comment.public_id])
        else:
            roots.append(nodes[comment.public_id])
    return roots


def _url(value: str | None) -> str | None:
    if value and value.lower().startswith(("http://", "https://")):
        return value
    return None


def _comment_html(comment: StoredComment, label: str | None) -> str:
    author = escape(comment.author or "anonymous")
    author_url = _url(comment.author_url)
    who = f'<a href="{escape(author_url)}">{author}</a>' if author_url else f"<b>{author}</b>"
    when = comment_time(comment).strftime("%Y-%m-%d %H:%M UTC")
    permalink = _url(comment.link)
    stamp = f'<a href="{escape(permalink)}">{when}</a>' if permalink else when
    source = f" ({escape(label)})" if label else ""
    gone = " (gone from the source)" if comment.gone_at else ""
    text = comment.content or ""
    return f"<p>{who}{source}, {stamp}{gone}:</p><blockquote>{text}</blockquote>"


def _tree_html(nodes: Sequence[_Node], labels: dict[int, str]) -> str:
    items = []
    for node in nodes:
        inner = _comment_html(node.comment, labels.get(node.comment.entry_id))
        if node.replies:
            inner += _tree_html(node.replies, labels)
        items.append(f"<li>{inner}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def thread_section(
    comments: Sequence[StoredComment],
    limit: Limit,
    page_url: str | None,
    feed_urls: Sequence[tuple[str, str]],
    labels: dict[int, str] | None = None,
) -> ThreadSection:
    """The thread section of an entry. Pure.

    ``comments`` are those the output shows, oldest first; ``limit`` a number of newest ones
    (shown oldest first, flat) or ``"all"`` (nested under their parents). ``page_url`` is the
    thread's web page, ``feed_urls`` (label, url) its comment feeds. ``labels`` names, by entry
    id, the source a comment came from (a thread merged from copies of one post).
    """
    labels = labels or {}
    count = len(comments)
    heading = count_text(count)
    parts = ['<hr/><section class="aggregator-thread">', f"<p><b>{heading}</b>"]
    if limit != "all" and count > int(limit):
        parts.append(f" (the {int(limit)} newest below)")
    parts.append("</p>")
    if count:
        if limit == "all":
            parts.append(_tree_html(nest(comments), labels))
        else:
            newest = sorted(comments, key=comment_time)[-int(limit) :]
            parts.append(_tree_html([_Node(c) for c in newest], labels))
    links = []
    if page_url:
        links.append(f'<a href="{escape(page_url)}">Read the thread</a>')
    links.extend(f'<a href="{escape(url)}">{escape(label)}</a>' for label, url in feed_urls)
    if links:
        parts.append("<p>" + " · ".join(links) + "</p>")
    parts.append("</section>")
    count_line = f"<p>{heading}"
    if page_url:
        count_line += f' · <a href="{escape(page_url)}">Read the thread</a>'
    count_line += "</p>"
    return ThreadSection("".join(parts), count_line)


def with_thread(
    entry: StoredEntry, section: ThreadSection, last_comment_at: datetime | None, bump: bool
) -> StoredEntry:
    """``entry`` with ``section`` at the end of its content (and its count line at the end of
    its summary, when it has one), and with ``bump`` its ``updated`` time moved to its newest
    comment's. Its id never changes. Pure."""
    content = (entry.content or entry.summary or "") + section.html
    summary = entry.summary + section.count_line if entry.summary else None
    updated = entry.updated_at
    if bump and last_comment_at is not None:
        own = entry.updated_at or entry.published_at or entry.first_seen_at
        updated = max(own, last_comment_at)
    return replace(entry, content=content, summary=summary, updated_at=updated)


def merge_threads(
    entry: StoredEntry, threads: Sequence[tuple[StoredEntry, Sequence[StoredComment]]]
) -> list[StoredComment]:
    """One thread for a story that dedupe folded from copies in several sources (issue 15,
    item 4): the comments of every copy, each labelled with the source it came from, a comment
    seen in two copies (the same permalink, or the same author and text) counted once, oldest
    first, all attached to ``entry`` (the copy the output keeps). Pure."""
    seen: set[object] = set()
    merged: list[StoredComment] = []
    for copy, comments in threads:
        label = escape(copy.source_title or copy.source_name)
        for comment in comments:
            text = (comment.author or "").casefold(), plain_text(comment.content or "", limit=None)
            if (comment.link and comment.link in seen) or text in seen:
                continue
            seen.add(text)
            if comment.link:
                seen.add(comment.link)
            merged.append(
                replace(
                    comment,
                    entry_id=entry.id,
                    entry_public_id=entry.public_id,
                    content=f'<p class="aggregator-source">From {label}:</p>'
                    + (comment.content or ""),
                )
            )
    merged.sort(key=comment_time)
    return merged
