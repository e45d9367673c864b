"""Render comment documents: an entry's comment feed, an output's latest comments and the
items of an output of ``items: comments`` (Atom, RSS and JSON Feed).

Each comment names what it replies to (``thr:in-reply-to``). Owns :func:`render_comments`, the
comment titles (:func:`comment_title`) and how an output shows comments (:func:`shown_comments`:
without images under ``images: strip``). Which comments an output shows is decided by
:class:`aggregator.select.chooser.OutputChooser`; writing the files by
:mod:`aggregator.publish.publisher`. Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from feedgen.feed import FeedGenerator

from aggregator.config.outputs import OutputConfig
from aggregator.models import StoredComment, StoredEntry
from aggregator.parse.sanitize import strip_images
from aggregator.publish.fragments import FragmentCache, Piece
from aggregator.publish.links import FeedLinks, Page, urn
from aggregator.publish.render import EPOCH, json_bytes, new_generator, serialize

# What a rendered comment depends on (see aggregator.publish.fragments.Piece).
_CommentPiece = Piece[
    tuple[
        StoredComment,
        tuple[str, str, str | None],
        str | None,
        str,
        Callable[[StoredComment, str], str],
    ]
]


def shown_comments(output: OutputConfig, comments: list[StoredComment]) -> list[StoredComment]:
    """Comments as ``output`` republishes them: without images under ``images: strip``."""
    if output.images == "keep":
        return comments
    return [replace(c, content=strip_images(c.content) or "") for c in comments]


def shown_comments_with(
    output: OutputConfig, items: list[tuple[StoredComment, StoredEntry]]
) -> list[tuple[StoredComment, StoredEntry]]:
    """As :func:`shown_comments`, for comments paired with their entries."""
    if output.images == "keep":
        return items
    return [(replace(c, content=strip_images(c.content) or ""), e) for c, e in items]


def comment_title(comment: StoredComment, entry_title: str) -> str:
    """A plain-text title for a comment, which Atom requires and readers list."""
    return f"Comment by {comment.author or 'anonymous'} on {entry_title or 'a post'}"


def comment_updated(comment: StoredComment) -> datetime:
    return comment.published_at or comment.first_seen_at


def render_comments(
    title: str,
    feed_id: str,
    comments: Sequence[StoredComment],
    entries: dict[int, StoredEntry],
    self_url: str,
    home: str,
    fmt: str,
    hub: str | None = None,
    *,
    fragments: FragmentCache | None = None,
    title_of: Callable[[StoredComment, str], str] = comment_title,
    page: Page | None = None,
    page_links: FeedLinks | None = None,
    parent_links: Mapping[str, str] | None = None,
) -> bytes:
    """Render a comment feed: one entry's thread, or an output's latest comments.

    Each comment names what it replies to (``thr:in-reply-to``): its parent comment where the
    source threads replies, else the post. ``hub`` is the WebSub hub to name, if any.
    ``fragments`` holds comments rendered before (see
    :func:`aggregator.publish.render.render_output`).
    ``title_of`` makes each item's title; ``page`` and ``page_links`` place the document in
    a paged feed (RFC 5005, an output of ``items: comments``); ``parent_links`` are the
    permalinks of parents that are not in this document.
    """
    updated = max((comment_updated(c) for c in comments), default=EPOCH)
    permalinks = {**(parent_links or {}), **{c.public_id: c.link for c in comments if c.link}}
    paging = page.links(page_links, fmt) if page and page_links else []
    pieces: list[_CommentPiece] = []
    for comment in comments:
        entry = entries[comment.entry_id]
        replied = (
            permalinks.get(comment.parent_public_id) or entry.link
            if comment.parent_public_id
            else None
        )
        shown = (entry.public_id, entry.title, entry.link)
        pieces.append(
            Piece(("comment", feed_id, fmt, comment.id), (comment, shown, replied, home, title_of))
        )
    if fmt == "json":
        document = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "home_page_url": home,
            "feed_url": self_url,
            "authors": [{"name": title}],
            "items": [],
            **({"hubs": [{"type": "WebSub", "url": hub}]} if hub else {}),
        }
        if page and page_links and page.number < page.count:
            document["next_url"] = page_links.feed_page("json", page.number + 1)

        def item(piece: _CommentPiece) -> dict[str, object]:
            comment = piece.depends[0]
            return _json_comment(comment, entries[comment.entry_id], title_of)

        if fragments is None:
            return json_bytes({**document, "items": [item(piece) for piece in pieces]})
        return fragments.json(document, pieces, item)

    def render(some: Sequence[_CommentPiece]) -> bytes:
        generator = new_generator(
            feed_id,
            title,
            title,
            self_url,
            fmt,
            updated,
            home,
            ([("hub", hub)] if hub else []) + paging,
        )
        for piece in reversed(some):
            comment, _, replied, _, _ = piece.depends
            _add_comment(
                generator, comment, entries[comment.entry_id], fmt, home, replied, title_of
            )
        return serialize(generator, fmt)

    return render(pieces) if fragments is None else fragments.xml(fmt, pieces, render)


def _add_comment(
    generator: FeedGenerator,
    comment: StoredComment,
    entry: StoredEntry,
    fmt: str,
    home: str,
    replied: str | None,
    title_of: Callable[[StoredComment, str], str] = comment_title,
) -> None:
    """One comment as an entry; ``replied`` is the parent comment's permalink (else the
    post's), when the comment answers another."""
    item = generator.add_entry()
    item.id(urn(comment.public_id))
    item.guid(urn(comment.public_id), permalink=False)
    item.title(title_of(comment, entry.title))
    item.link(href=comment.link or entry.link or home, rel="alternate")
    if comment.author:
        if fmt == "rss":
            item.dc.dc_creator(comment.author)
        else:
            item.author(
                {
                    "name": comment.author,
                    **({"uri": comment.author_url} if comment.author_url else {}),
                }
            )
    item.published(comment_updated(comment))
    item.updated(comment_updated(comment))
    item.content(comment.content or "", type="html")
    if fmt == "rss":
        item.description(comment.content or "")
    if comment.parent_public_id:
        item.thread.in_reply_to(urn(comment.parent_public_id), href=replied, type="text/html")
    else:
        item.thread.in_reply_to(urn(entry.public_id), href=entry.link, type="text/html")


def _json_comment(
    comment: StoredComment,
    entry: StoredEntry,
    title_of: Callable[[StoredComment, str], str] = comment_title,
) -> dict[str, object]:
    item: dict[str, object] = {
        "id": urn(comment.public_id),
        "title": title_of(comment, entry.title),
        "content_html": comment.content or "",
        "date_published": comment_updated(comment).isoformat(),
        "_aggregator": {
            "in_reply_to": urn(comment.parent_public_id or entry.public_id),
            "entry_url": entry.link,
            "number": comment.number,
            **({"gone_at": comment.gone_at.isoformat()} if comment.gone_at else {}),
        },
    }
    if comment.link:
        item["url"] = comment.link
    if comment.author:
        item["authors"] = [
            {"name": comment.author, **({"url": comment.author_url} if comment.author_url else {})}
        ]
    return item
