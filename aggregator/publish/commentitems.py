"""Pure: comments as the items of an output (``items: comments``, issue 15, item 2).

Each comment becomes an item titled "AUTHOR on POST TITLE" whose content is the comment, after
a quoted first line of the comment it replies to. The output's entry rules (``include``,
``exclude``, dates) are applied to the comment as if it were an entry: its title, its text as
``content``, its author, its permalink as ``link`` and its time as date. No IO.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from html import escape

from aggregator.models import StoredComment, StoredEntry
from aggregator.parse.sanitize import plain_text
from aggregator.publish.inline import comment_time

QUOTE_CHARS = 200
_LINE_END = re.compile(r"</(?:p|div|li|blockquote|h[1-6]|pre)\s*>|<br\s*/?>|\n", re.IGNORECASE)


@dataclass(frozen=True)
class ParentView:
    """What an item shows of the comment it replies to."""

    author: str | None
    content: str | None
    link: str | None


def item_title(comment: StoredComment, entry_title: str | None) -> str:
    """``"AUTHOR on POST TITLE"``."""
    return f"{comment.author or 'anonymous'} on {entry_title or 'a post'}"


def first_line(html: str | None, limit: int = QUOTE_CHARS) -> str:
    """The first non-empty line of a comment's visible text, cut at ``limit`` characters."""
    # Stored HTML is sanitized: a line ends where a block or a line break does.
    pieces = _LINE_END.split(html or "")
    texts = ((plain_text(piece, limit=None) or "").strip() for piece in pieces)
    line = next((text for text in texts if text), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def item_content(comment: StoredComment, parent: ParentView | None) -> str:
    """The comment's HTML after a quoted first line of its parent (when it answers one)."""
    if parent is None or (parent.author is None and parent.content is None):
        return comment.content or ""
    quoted = escape(first_line(parent.content))
    who = escape(parent.author or "anonymous")
    return f"<blockquote><p>{who} wrote: {quoted}</p></blockquote>" + (comment.content or "")


def as_item(comment: StoredComment, parent: ParentView | None) -> StoredComment:
    """``comment`` with the content its item shows."""
    return replace(comment, content=item_content(comment, parent))


def as_entry(comment: StoredComment, entry: StoredEntry) -> StoredEntry:
    """A comment in the shape entry rules read (title, content, author, link, date)."""
    when = comment_time(comment)
    return replace(
        entry,
        id=-comment.id,
        public_id=comment.public_id,
        title=item_title(comment, entry.title),
        link=comment.link or entry.link,
        author=comment.author,
        summary=None,
        content=comment.content,
        published_at=when,
        updated_at=None,
        first_seen_at=comment.first_seen_at,
        sort_at=when,
        categories=(),
        comment_count=0,
    )
